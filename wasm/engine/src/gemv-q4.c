// 4-bit weights (com.microsoft MatMulNBits, bits 4, block 32) times int8-quantized activations.
//
// Weight layout, exactly as the package stores it, so no repacking is needed: for output row n,
// `blocks` blocks of 16 bytes, element 2j of a block in the low nibble of byte j and element 2j+1
// in the high nibble; scales [n, blocks] float; zero points [n, ceil(blocks / 2)] bytes, block 2i
// in the low nibble (NULL means 8, MatMulNBits' default). Weight value = (code - zero) * scale.
//
// For each (activation row, output row) the result is
//   sum over blocks, in order: float(dot(code, a) - zero * sum(a)) * (scale_w * scale_a)
// with the block's integer dot product reduced completely first: the float sum sees one term per
// block in one order, so the bits do not depend on how rows are split or batched.
#include "engine.h"

static inline int32_t block_dot_q4(const uint8_t *w, const int16_t *a) {
  v128_t bytes = wasm_v128_load(w);
  v128_t low = wasm_v128_and(bytes, wasm_i8x16_splat(0x0f));
  v128_t high = wasm_u8x16_shr(bytes, 4);
  v128_t d0 = wasm_i32x4_dot_i16x8(wasm_u16x8_extend_low_u8x16(low), wasm_v128_load(a));
  v128_t d1 = wasm_i32x4_dot_i16x8(wasm_u16x8_extend_high_u8x16(low), wasm_v128_load(a + 8));
  v128_t d2 = wasm_i32x4_dot_i16x8(wasm_u16x8_extend_low_u8x16(high), wasm_v128_load(a + 16));
  v128_t d3 = wasm_i32x4_dot_i16x8(wasm_u16x8_extend_high_u8x16(high), wasm_v128_load(a + 24));
  return sum_i32x4(wasm_i32x4_add(wasm_i32x4_add(d0, d1), wasm_i32x4_add(d2, d3)));
}

/**
 * y[r, n] for activation rows r < rows and output rows n in [n_begin, n_end); y is [rows, n_total].
 * codes / scales / sums come from quantize_rows_q4 over the same k.
 */
EXPORT(gemm_q4)
void gemm_q4(const uint8_t *weights, const float *weight_scales, const uint8_t *zero_points, int n_total,
             int blocks, const int16_t *codes, const float *scales, const int32_t *sums, int rows, float *y,
             int n_begin, int n_end) {
  int zp_stride = (blocks + 1) / 2;
  for (int n = n_begin; n < n_end; n++) {
    const uint8_t *w_row = weights + (int64_t)n * blocks * (BLOCK / 2);
    const float *ws_row = weight_scales + (int64_t)n * blocks;
    const uint8_t *zp_row = zero_points ? zero_points + (int64_t)n * zp_stride : 0;
    for (int r = 0; r < rows; r++) {
      const int16_t *a = codes + (int64_t)r * blocks * BLOCK;
      const float *as = scales + (int64_t)r * blocks;
      const int32_t *asum = sums + (int64_t)r * blocks;
      float acc = 0.0f;
      for (int b = 0; b < blocks; b++) {
        int32_t zero = zp_row ? (b & 1 ? zp_row[b >> 1] >> 4 : zp_row[b >> 1] & 15) : 8;
        int32_t dot = block_dot_q4(w_row + b * (BLOCK / 2), a + b * BLOCK) - zero * asum[b];
        acc += (float)dot * (ws_row[b] * as[b]);
      }
      y[(int64_t)r * n_total + n] = acc;
    }
  }
}
