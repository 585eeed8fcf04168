// Element-wise kernels: SwiGLU's gate, residual adds, scaling.
#include "engine.h"

/**
 * engine_sigmoidf on two lanes at once (f64x2), bit for bit: the same double operations as
 * engine_exp on each lane. The input is clamped to [-40, 709] first, which changes no result:
 * below -40, exp(x) < 2^-57 and 1 + exp(x) rounds to 1 as for any smaller x; above 709 (where
 * engine_exp returns infinity) 1 / (1 + exp(709)) is ~1e-308, which becomes the same float 0.
 * In that range engine_exp takes neither of its edge branches.
 */
static inline v128_t sigmoid_f64x2(v128_t g) {
  const v128_t one = wasm_f64x2_splat(1.0);
  v128_t x = wasm_f64x2_neg(g);
  // pmin / pmax (one instruction each) clamp as min / max do here, a NaN passing through.
  x = wasm_f64x2_pmax(wasm_f64x2_pmin(x, wasm_f64x2_splat(709.0)), wasm_f64x2_splat(-40.0));
  return wasm_f64x2_div(one, wasm_f64x2_add(one, engine_exp_f64x2(x)));
}

/** gate[i] = silu(gate[i]) * up[i], silu(x) = x * sigmoid(x) (as the graph: Mul(x, Sigmoid(x)) * up). */
EXPORT(silu_mul)
void silu_mul(float *gate, const float *up, int count) {
  int i = 0;
  // Four at a time with engine_sigmoidf's exact bits (sigmoid_f64x2), the tail in scalar code.
  for (; i + 4 <= count; i += 4) {
    v128_t g = wasm_v128_load(gate + i);
    v128_t low = wasm_f32x4_demote_f64x2_zero(sigmoid_f64x2(wasm_f64x2_promote_low_f32x4(g)));
    v128_t high = wasm_f32x4_demote_f64x2_zero(
        sigmoid_f64x2(wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(g, g, 2, 3, 2, 3))));
    v128_t sigmoid = wasm_i32x4_shuffle(low, high, 0, 1, 4, 5);
    wasm_v128_store(gate + i, wasm_f32x4_mul(wasm_f32x4_mul(g, sigmoid), wasm_v128_load(up + i)));
  }
  for (; i < count; i++) {
    float g = gate[i];
    gate[i] = (g * engine_sigmoidf(g)) * up[i];
  }
}

/** a[i] += b[i]. */
EXPORT(add_into)
void add_into(float *a, const float *b, int count) {
  int i = 0;
  for (; i + 4 <= count; i += 4) wasm_v128_store(a + i, wasm_f32x4_add(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  for (; i < count; i++) a[i] += b[i];
}

/** Index of the largest value (the first one on ties); -1 for count 0. For greedy checks. */
EXPORT(argmax)
int argmax(const float *x, int count) {
  int best = count > 0 ? 0 : -1;
  for (int i = 1; i < count; i++)
    if (x[i] > x[best]) best = i;
  return best;
}
