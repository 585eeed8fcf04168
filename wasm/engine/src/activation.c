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
  v128_t n = wasm_f64x2_nearest(wasm_f64x2_mul(x, wasm_f64x2_splat(1.44269504088896338700e+00)));
  v128_t r = wasm_f64x2_sub(wasm_f64x2_sub(x, wasm_f64x2_mul(n, wasm_f64x2_splat(6.93147180369123816490e-01))),
                            wasm_f64x2_mul(n, wasm_f64x2_splat(1.90821492927058770002e-10)));
  v128_t p = wasm_f64x2_splat(1.0 / 6227020800.0);
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 479001600.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 39916800.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 3628800.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 362880.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 40320.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 5040.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 720.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 120.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 24.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 6.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(0.5));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), one);
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), one);
  // 2^n through the exponent bits, as engine_exp does (n is in [-58, 1023] here).
  // n as an integer by the 1.5 * 2^52 trick (exact for an integral |n| < 2^51): the low bits of
  // n + 1.5 * 2^52 minus those of 1.5 * 2^52.
  const v128_t magic = wasm_f64x2_splat(6755399441055744.0);
  v128_t e = wasm_i64x2_sub(wasm_f64x2_add(n, magic), magic);
  v128_t scale = wasm_i64x2_shl(wasm_i64x2_add(e, wasm_i64x2_splat(1023)), 52);
  return wasm_f64x2_div(one, wasm_f64x2_add(one, wasm_f64x2_mul(p, scale)));
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
