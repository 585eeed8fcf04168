// 8-bit weights (from com.microsoft DynamicQuantizeMatMul: symmetric int8, one float scale per
// output column) times int8-quantized activations.
//
// The package stores B as [k, n] (input-major). The kernel wants each output row's k codes
// contiguous, so the loader repacks once into [n, kp] with kp = k rounded up to 32 (zero padded),
// streaming the file through repack_q8_columns a few input rows at a time.
//
// result[r, n] = scale_w[n] * sum over blocks, in order: float(dot(w, a)) * scale_a[block]
#include "engine.h"

/** dst[c * kp + k0 + i] = src[i * n + c] for i < k_rows: one slab of a [k, n] matrix into [n, kp]. */
EXPORT(repack_q8_columns)
void repack_q8_columns(const int8_t *src, int k0, int k_rows, int n, int8_t *dst, int kp) {
  for (int i = 0; i < k_rows; i++) {
    const int8_t *row = src + (int64_t)i * n;
    int8_t *column = dst + k0 + i;
    for (int c = 0; c < n; c++) column[(int64_t)c * kp] = row[c];
  }
}

static inline int32_t block_dot_q8(const int8_t *w, const int16_t *a) {
  v128_t w0 = wasm_v128_load(w);
  v128_t w1 = wasm_v128_load(w + 16);
  v128_t d0 = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w0), wasm_v128_load(a));
  v128_t d1 = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w0), wasm_v128_load(a + 8));
  v128_t d2 = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w1), wasm_v128_load(a + 16));
  v128_t d3 = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w1), wasm_v128_load(a + 24));
  return sum_i32x4(wasm_i32x4_add(wasm_i32x4_add(d0, d1), wasm_i32x4_add(d2, d3)));
}

/** y[r, n] for r < rows, n in [n_begin, n_end); weights [n_total, blocks * 32]; codes from quantize_rows_q8. */
EXPORT(gemm_q8)
void gemm_q8(const int8_t *weights, const float *weight_scales, int n_total, int blocks, const int16_t *codes,
             const float *scales, int rows, float *y, int n_begin, int n_end) {
  for (int n = n_begin; n < n_end; n++) {
    const int8_t *w_row = weights + (int64_t)n * blocks * BLOCK;
    for (int r = 0; r < rows; r++) {
      const int16_t *a = codes + (int64_t)r * blocks * BLOCK;
      const float *as = scales + (int64_t)r * blocks;
      float acc = 0.0f;
      for (int b = 0; b < blocks; b++) acc += (float)block_dot_q8(w_row + b * BLOCK, a + b * BLOCK) * as[b];
      y[(int64_t)r * n_total + n] = acc * weight_scales[n];
    }
  }
}
