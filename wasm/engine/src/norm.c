// RMSNorm over rows: out = x / sqrt(mean(x^2) + eps) * w, or * (1 + w) for the zero-centred
// weights Qwen3.5 stores (weight_plus_one = 1). The sum of squares is taken in float over four
// lanes (elements i, i+4, i+8, ... in lane i % 4), folded in a fixed order, then the tail.
#include "engine.h"

EXPORT(rms_norm)
void rms_norm(const float *x, const float *weight, float *out, int rows, int dim, float eps, int weight_plus_one) {
  for (int r = 0; r < rows; r++) {
    const float *row = x + (int64_t)r * dim;
    float *dst = out + (int64_t)r * dim;
    v128_t acc = wasm_f32x4_splat(0.0f);
    int i = 0;
    for (; i + 4 <= dim; i += 4) {
      v128_t v = wasm_v128_load(row + i);
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(v, v));
    }
    float sum = sum_f32x4(acc);
    for (; i < dim; i++) sum += row[i] * row[i];
    float inverse = 1.0f / __builtin_sqrtf(sum / (float)dim + eps);
    for (int j = 0; j < dim; j++) {
      float w = weight_plus_one ? 1.0f + weight[j] : weight[j];
      dst[j] = row[j] * inverse * w;
    }
  }
}
