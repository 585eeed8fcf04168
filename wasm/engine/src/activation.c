// Element-wise kernels: SwiGLU's gate, residual adds, scaling.
#include "qwen35-math.h"

/**
 * gate[i] = silu(gate[i]) * up[i], silu(x) = x * sigmoid(x) (as the graph: Mul(x, Sigmoid(x)) * up),
 * in float: sigmoid is qwen35-math.h's (an exp of ~1 ulp by a degree-6 polynomial, then
 * 1 / (1 + e^-x)), four lanes at a time and the tail by the scalar form of the same operations.
 * (Through engine.h's double exp two lanes at a time, it took ~3× as long: the largest
 * element-wise kernel of a prefill.) Elements [begin, end) only (threads split them).
 */
EXPORT(silu_mul)
void silu_mul(float *gate, const float *up, int begin, int end) {
  int i = begin;
  // 4·Q35_SIDE at a time, the sigmoids side by side (the same bits as one vector at a time).
  for (; i + 4 * Q35_SIDE <= end; i += 4 * Q35_SIDE) {
    v128_t g[Q35_SIDE], s[Q35_SIDE];
    for (int v = 0; v < Q35_SIDE; v++) s[v] = g[v] = wasm_v128_load(gate + i + 4 * v);
    q35_sigmoidf4_side(s);
    for (int v = 0; v < Q35_SIDE; v++)
      wasm_v128_store(gate + i + 4 * v, wasm_f32x4_mul(wasm_f32x4_mul(g[v], s[v]), wasm_v128_load(up + i + 4 * v)));
  }
  for (; i + 4 <= end; i += 4) {
    v128_t g = wasm_v128_load(gate + i);
    wasm_v128_store(gate + i, wasm_f32x4_mul(wasm_f32x4_mul(g, q35_sigmoidf4(g)), wasm_v128_load(up + i)));
  }
  for (; i < end; i++) {
    float g = gate[i];
    gate[i] = (g * q35_sigmoidf(g)) * up[i];
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
