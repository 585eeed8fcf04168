// Qwen3.5's gated full attention, the parts the shared attention kernels do not cover: q_proj
// gives per head [query (head_dim) | gate (head_dim)], split here into a query block (normed and
// rotated by the shared kernels) and a gate block; after attention, out ·= sigmoid(gate).
#include "qwen35-math.h"

/** projected [rows, heads, 2·head_dim] → query [rows, heads, head_dim] and gate [rows, heads, head_dim]. */
EXPORT(qwen35_split_query_gate)
void qwen35_split_query_gate(const float *projected, float *query, float *gate, int rows, int heads, int head_dim) {
  for (int r = 0; r < rows; r++)
    for (int h = 0; h < heads; h++) {
      const float *src = projected + ((int64_t)r * heads + h) * 2 * head_dim;
      float *q = query + ((int64_t)r * heads + h) * head_dim;
      float *g = gate + ((int64_t)r * heads + h) * head_dim;
      for (int d = 0; d < head_dim; d++) q[d] = src[d];
      for (int d = 0; d < head_dim; d++) g[d] = src[head_dim + d];
    }
}

/** out[i] = out[i] · sigmoid(gate[i]). */
EXPORT(qwen35_sigmoid_gate)
void qwen35_sigmoid_gate(float *out, const float *gate, int count) {
  int i = 0;
  // 4·Q35_SIDE at a time, the sigmoids side by side (the same bits as one vector at a time).
  for (; i + 4 * Q35_SIDE <= count; i += 4 * Q35_SIDE) {
    v128_t s[Q35_SIDE];
    for (int v = 0; v < Q35_SIDE; v++) s[v] = wasm_v128_load(gate + i + 4 * v);
    q35_sigmoidf4_side(s);
    for (int v = 0; v < Q35_SIDE; v++)
      wasm_v128_store(out + i + 4 * v, wasm_f32x4_mul(wasm_v128_load(out + i + 4 * v), s[v]));
  }
  for (; i + 4 <= count; i += 4)
    wasm_v128_store(out + i, wasm_f32x4_mul(wasm_v128_load(out + i), q35_sigmoidf4(wasm_v128_load(gate + i))));
  for (; i < count; i++) out[i] = out[i] * q35_sigmoidf(gate[i]);
}
