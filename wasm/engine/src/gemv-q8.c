// 8-bit weights (from com.microsoft DynamicQuantizeMatMul: symmetric int8, one float scale per
// output column) times int8-quantized activations.
//
// The package stores B as [k, n] (input-major). The kernel wants each output row's k codes
// contiguous, so the loader repacks once into [n, kp] with kp = k rounded up to 32 (zero padded),
// streaming the file through repack_q8_columns a few input rows at a time.
//
// result[r, n] = (sum over blocks, in order: float(dot(w, a)) * scale_a[block]) * scale_w[n]
// with each block's integer dot reduced completely first; four rows run side by side in vector
// lanes with exactly that arithmetic, other rows in scalar code with the same one.
#include "engine.h"

/**
 * dst[c * kp + k0 + i] = src[i * n + c] for i < k_rows: one slab of a [k, n] matrix into [n, kp].
 * In tiles of 256 input rows by 64 columns, so the rows being read stay in cache while each
 * output row gets a contiguous run of writes.
 */
EXPORT(repack_q8_columns)
void repack_q8_columns(const int8_t *src, int k0, int k_rows, int n, int8_t *dst, int kp) {
  for (int i0 = 0; i0 < k_rows; i0 += 256) {
    int i1 = i0 + 256 < k_rows ? i0 + 256 : k_rows;
    for (int c0 = 0; c0 < n; c0 += 64) {
      int c1 = c0 + 64 < n ? c0 + 64 : n;
      for (int c = c0; c < c1; c++) {
        int8_t *out = dst + (int64_t)c * kp + k0;
        for (int i = i0; i < i1; i++) out[i] = src[(int64_t)i * n + c];
      }
    }
  }
}

static inline v128_t block_dot_q8(const int8_t *w, v128_t a0, v128_t a1, v128_t a2, v128_t a3) {
  v128_t w0 = wasm_v128_load(w);
  v128_t w1 = wasm_v128_load(w + 16);
  v128_t d0 = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w0), a0);
  v128_t d1 = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w0), a1);
  v128_t d2 = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w1), a2);
  v128_t d3 = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w1), a3);
  return wasm_i32x4_add(wasm_i32x4_add(d0, d1), wasm_i32x4_add(d2, d3));
}

static inline v128_t transpose_sum(v128_t d0, v128_t d1, v128_t d2, v128_t d3) {
  v128_t s01 = wasm_i32x4_add(wasm_i32x4_shuffle(d0, d1, 0, 4, 1, 5), wasm_i32x4_shuffle(d0, d1, 2, 6, 3, 7));
  v128_t s23 = wasm_i32x4_add(wasm_i32x4_shuffle(d2, d3, 0, 4, 1, 5), wasm_i32x4_shuffle(d2, d3, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(s01, s23, 0, 1, 4, 5), wasm_i32x4_shuffle(s01, s23, 2, 3, 6, 7));
}

/** y[r, n] for r < rows, n in [n_begin, n_end); weights [n_total, blocks * 32]; codes from quantize_rows_q8. */
EXPORT(gemm_q8)
void gemm_q8(const int8_t *weights, const float *weight_scales, int n_total, int blocks, const int16_t *codes,
             const float *scales, int rows, float *y, int n_begin, int n_end) {
  const int64_t row_bytes = (int64_t)blocks * BLOCK;
  int n = n_begin;
  for (; n < n_end && n + 4 <= n_end; n += 4) {
    const int8_t *w0 = weights + (int64_t)n * row_bytes;
    v128_t ws = wasm_v128_load(weight_scales + n);
    int r = 0;
    // Prefill: two activation rows per pass share each widened weight block (same arithmetic).
    for (; r + 2 <= rows; r += 2) {
      const int16_t *a = codes + (int64_t)r * blocks * BLOCK;
      const int16_t *c = a + (int64_t)blocks * BLOCK;
      const float *as = scales + (int64_t)r * blocks;
      v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = acc0;
      for (int b = 0; b < blocks; b++) {
        const int8_t *wb = w0 + b * BLOCK;
        const int16_t *ab = a + b * BLOCK, *cb = c + b * BLOCK;
        v128_t x[4], z[4];
        for (int j = 0; j < 4; j++) {
          v128_t w0v = wasm_v128_load(wb + j * row_bytes);
          v128_t w1v = wasm_v128_load(wb + j * row_bytes + 16);
          v128_t e0 = wasm_i16x8_extend_low_i8x16(w0v), e1 = wasm_i16x8_extend_high_i8x16(w0v);
          v128_t e2 = wasm_i16x8_extend_low_i8x16(w1v), e3 = wasm_i16x8_extend_high_i8x16(w1v);
          x[j] = wasm_i32x4_add(
              wasm_i32x4_add(wasm_i32x4_dot_i16x8(e0, wasm_v128_load(ab)), wasm_i32x4_dot_i16x8(e1, wasm_v128_load(ab + 8))),
              wasm_i32x4_add(wasm_i32x4_dot_i16x8(e2, wasm_v128_load(ab + 16)),
                             wasm_i32x4_dot_i16x8(e3, wasm_v128_load(ab + 24))));
          z[j] = wasm_i32x4_add(
              wasm_i32x4_add(wasm_i32x4_dot_i16x8(e0, wasm_v128_load(cb)), wasm_i32x4_dot_i16x8(e1, wasm_v128_load(cb + 8))),
              wasm_i32x4_add(wasm_i32x4_dot_i16x8(e2, wasm_v128_load(cb + 16)),
                             wasm_i32x4_dot_i16x8(e3, wasm_v128_load(cb + 24))));
        }
        acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(transpose_sum(x[0], x[1], x[2], x[3])),
                                                   wasm_f32x4_splat(as[b])));
        acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(transpose_sum(z[0], z[1], z[2], z[3])),
                                                   wasm_f32x4_splat(as[blocks + b])));
      }
      wasm_v128_store(y + (int64_t)r * n_total + n, wasm_f32x4_mul(acc0, ws));
      wasm_v128_store(y + (int64_t)(r + 1) * n_total + n, wasm_f32x4_mul(acc1, ws));
    }
    for (; r < rows; r++) {
      const int16_t *a = codes + (int64_t)r * blocks * BLOCK;
      const float *as = scales + (int64_t)r * blocks;
      v128_t acc = wasm_f32x4_splat(0.0f);
      for (int b = 0; b < blocks; b++) {
        const int16_t *ab = a + b * BLOCK;
        v128_t a0 = wasm_v128_load(ab), a1 = wasm_v128_load(ab + 8);
        v128_t a2 = wasm_v128_load(ab + 16), a3 = wasm_v128_load(ab + 24);
        const int8_t *wb = w0 + b * BLOCK;
        v128_t dot = transpose_sum(block_dot_q8(wb, a0, a1, a2, a3), block_dot_q8(wb + row_bytes, a0, a1, a2, a3),
                                   block_dot_q8(wb + 2 * row_bytes, a0, a1, a2, a3),
                                   block_dot_q8(wb + 3 * row_bytes, a0, a1, a2, a3));
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot), wasm_f32x4_splat(as[b])));
      }
      wasm_v128_store(y + (int64_t)r * n_total + n, wasm_f32x4_mul(acc, ws));
    }
  }
  for (; n < n_end; n++) {
    const int8_t *w_row = weights + (int64_t)n * row_bytes;
    for (int r = 0; r < rows; r++) {
      const int16_t *a = codes + (int64_t)r * blocks * BLOCK;
      const float *as = scales + (int64_t)r * blocks;
      float acc = 0.0f;
      for (int b = 0; b < blocks; b++) {
        const int16_t *ab = a + b * BLOCK;
        v128_t d = block_dot_q8(w_row + b * BLOCK, wasm_v128_load(ab), wasm_v128_load(ab + 8), wasm_v128_load(ab + 16),
                                wasm_v128_load(ab + 24));
        acc += (float)sum_i32x4(d) * as[b];
      }
      y[(int64_t)r * n_total + n] = acc * weight_scales[n];
    }
  }
}
