// fp32 matrix products, for exactness tests and tiny models. Weights are [n, k] (the loader
// repacks ONNX MatMul's [k, n] once with repack_f32_columns; a Gemm with transB already is [n, k]).
// Each output is four lane sums over k in steps of 16 (four vectors), folded in a fixed order,
// then the k % 16 tail in order: the same bits for any row split or batch.
#include "engine.h"

/** dst[c * k + k0 + i] = src[i * n + c] for i < k_rows, in tiles of 256 inputs by 64 columns, so the rows being read stay in cache. */
EXPORT(repack_f32_columns)
void repack_f32_columns(const float *src, int k0, int k_rows, int n, float *dst, int k) {
  for (int i0 = 0; i0 < k_rows; i0 += 128) {
    int i1 = i0 + 128 < k_rows ? i0 + 128 : k_rows;
    for (int c0 = 0; c0 < n; c0 += 16) {
      int c1 = c0 + 16 < n ? c0 + 16 : n;
      for (int c = c0; c < c1; c++) {
        float *out = dst + (int64_t)c * k + k0;
        for (int i = i0; i < i1; i++) out[i] = src[(int64_t)i * n + c];
      }
    }
  }
}

static inline float dot_f32(const float *w, const float *x, int k) {
  v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
  int i = 0;
  for (; i + 16 <= k; i += 16) {
    a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(w + i), wasm_v128_load(x + i)));
    a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wasm_v128_load(w + i + 4), wasm_v128_load(x + i + 4)));
    a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(wasm_v128_load(w + i + 8), wasm_v128_load(x + i + 8)));
    a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(wasm_v128_load(w + i + 12), wasm_v128_load(x + i + 12)));
  }
  float sum = sum_f32x4(wasm_f32x4_add(wasm_f32x4_add(a0, a1), wasm_f32x4_add(a2, a3)));
  for (; i < k; i++) sum += w[i] * x[i];
  return sum;
}

/** y[r, n] = dot(w[n], x[r]) for r < rows, n in [n_begin, n_end); y is [rows, n_total]. */
EXPORT(gemm_f32)
void gemm_f32(const float *weights, int n_total, int k, const float *x, int rows, float *y, int n_begin,
              int n_end) {
  for (int n = n_begin; n < n_end; n++) {
    const float *w_row = weights + (int64_t)n * k;
    for (int r = 0; r < rows; r++) y[(int64_t)r * n_total + n] = dot_f32(w_row, x + (int64_t)r * k, k);
  }
}

/** IEEE half → float (for fp16 tables), exact for every input including subnormals and NaN. */
EXPORT(f16_to_f32)
void f16_to_f32(const uint16_t *src, float *dst, int count) {
  for (int i = 0; i < count; i++) {
    uint32_t h = src[i];
    uint32_t sign = (h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    uint32_t bits;
    if (exponent == 0x1f) bits = sign | 0x7f800000u | (mantissa << 13);
    else if (exponent != 0) bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    else if (mantissa == 0) bits = sign;
    else {
      // Subnormal half: normalise the mantissa.
      int shift = 0;
      while ((mantissa & 0x400) == 0) {
        mantissa <<= 1;
        shift++;
      }
      bits = sign | ((uint32_t)(113 - shift) << 23) | ((mantissa & 0x3ff) << 13);
    }
    union { uint32_t u; float f; } v = {.u = bits};
    dst[i] = v.f;
  }
}
