// 4-bit weights (com.microsoft MatMulNBits, bits 4, block 32) times int8-quantized activations.
//
// Weight bytes are used exactly as the package stores them: for output row n, `blocks` blocks of
// 16 bytes, element 2j of a block in the low nibble of byte j and element 2j+1 in the high one.
// Scales and zero points are repacked once at load (repack_q4_scales) so that the four rows of a
// group sit side by side per block: scales [n / 4, blocks, 4] float, zero points
// [n / 4, blocks, 4] bytes (the last group padded). Weight value = (code - zero) * scale.
//
// For each (activation row, output row) the result is
//   sum over blocks, in order: float(dot(code, a) - zero * sum(a)) * (scale_w * scale_a)
// with the block's integer dot product reduced completely first. Four rows run side by side in
// the four lanes of a vector with exactly that per-lane arithmetic, and a row outside a full group
// runs the same formula in scalar code: the bits do not depend on grouping, batching or threads.
#include "engine.h"

/**
 * scales [n, blocks] and packed zero points [n, ceil(blocks / 2)] (NULL: 8) → the grouped layout.
 * dst_scales needs ceil(n / 4) * blocks * 4 floats, dst_zero ceil(n / 4) * blocks * 4 bytes.
 */
EXPORT(repack_q4_scales)
void repack_q4_scales(const float *scales, const uint8_t *zero_points, int n, int blocks, float *dst_scales,
                      uint8_t *dst_zero) {
  int zp_stride = (blocks + 1) / 2;
  int groups = (n + 3) / 4;
  for (int g = 0; g < groups; g++)
    for (int b = 0; b < blocks; b++)
      for (int j = 0; j < 4; j++) {
        int row = g * 4 + j;
        int64_t at = ((int64_t)g * blocks + b) * 4 + j;
        if (row >= n) {
          dst_scales[at] = 0.0f;
          dst_zero[at] = 0;
          continue;
        }
        dst_scales[at] = scales[(int64_t)row * blocks + b];
        if (!zero_points) dst_zero[at] = 8;
        else {
          uint8_t byte = zero_points[(int64_t)row * zp_stride + (b >> 1)];
          dst_zero[at] = b & 1 ? byte >> 4 : byte & 15;
        }
      }
}

/**
 * The integer dot product of one 4-bit block with its activation codes, as four int32 lanes.
 * Read as eight 16-bit lanes, lane i of the 16 bytes holds elements 4i, 4i+1, 4i+2, 4i+3 in its
 * nibbles (low to high), so a mask and three shifts unpack the block into four vectors of
 * elements grouped by index mod 4, which is how quantize_rows_q4 orders the codes (a0..a3).
 */
static inline v128_t block_dot_q4(const uint8_t *w, v128_t mask, v128_t a0, v128_t a1, v128_t a2, v128_t a3) {
  v128_t v = wasm_v128_load(w);
  v128_t d0 = wasm_i32x4_dot_i16x8(wasm_v128_and(v, mask), a0);
  v128_t d1 = wasm_i32x4_dot_i16x8(wasm_v128_and(wasm_u16x8_shr(v, 4), mask), a1);
  v128_t d2 = wasm_i32x4_dot_i16x8(wasm_v128_and(wasm_u16x8_shr(v, 8), mask), a2);
  v128_t d3 = wasm_i32x4_dot_i16x8(wasm_u16x8_shr(v, 12), a3);
  return wasm_i32x4_add(wasm_i32x4_add(d0, d1), wasm_i32x4_add(d2, d3));
}

/** The four nibble planes of one block (as block_dot_q4 unpacks them). */
static inline void unpack_q4(const uint8_t *w, v128_t mask, v128_t *p0, v128_t *p1, v128_t *p2, v128_t *p3) {
  v128_t v = wasm_v128_load(w);
  *p0 = wasm_v128_and(v, mask);
  *p1 = wasm_v128_and(wasm_u16x8_shr(v, 4), mask);
  *p2 = wasm_v128_and(wasm_u16x8_shr(v, 8), mask);
  *p3 = wasm_u16x8_shr(v, 12);
}

/** The same sum as block_dot_q4, from unpacked planes and the codes at `a`. */
static inline v128_t planes_dot(v128_t p0, v128_t p1, v128_t p2, v128_t p3, const int16_t *a) {
  v128_t d0 = wasm_i32x4_dot_i16x8(p0, wasm_v128_load(a));
  v128_t d1 = wasm_i32x4_dot_i16x8(p1, wasm_v128_load(a + 8));
  v128_t d2 = wasm_i32x4_dot_i16x8(p2, wasm_v128_load(a + 16));
  v128_t d3 = wasm_i32x4_dot_i16x8(p3, wasm_v128_load(a + 24));
  return wasm_i32x4_add(wasm_i32x4_add(d0, d1), wasm_i32x4_add(d2, d3));
}

/** Lane j of the result = the sum of the four lanes of dj (integer, so the order is immaterial). */
static inline v128_t transpose_sum(v128_t d0, v128_t d1, v128_t d2, v128_t d3) {
  v128_t s01 = wasm_i32x4_add(wasm_i32x4_shuffle(d0, d1, 0, 4, 1, 5), wasm_i32x4_shuffle(d0, d1, 2, 6, 3, 7));
  v128_t s23 = wasm_i32x4_add(wasm_i32x4_shuffle(d2, d3, 0, 4, 1, 5), wasm_i32x4_shuffle(d2, d3, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(s01, s23, 0, 1, 4, 5), wasm_i32x4_shuffle(s01, s23, 2, 3, 6, 7));
}

/**
 * y[r, n] for activation rows r < rows and output rows n in [n_begin, n_end); y is [rows, n_total].
 * codes / scales / sums come from quantize_rows_q4 over the same k; weight scales and zero
 * points are in repack_q4_scales' layout.
 */
EXPORT(gemm_q4)
void gemm_q4(const uint8_t *weights, const float *weight_scales, const uint8_t *zero_points, int n_total,
             int blocks, const int16_t *codes, const float *scales, const int32_t *sums, int rows, float *y,
             int n_begin, int n_end) {
  const int64_t row_bytes = (int64_t)blocks * (BLOCK / 2);
  // The nibble mask, built from an argument (blocks >> 30 is 0 for any real size) so the compiler
  // keeps it in a register: as a constant, V8 rebuilt it on every block.
  v128_t mask = wasm_i16x8_splat((int16_t)(0x000f | (blocks >> 30)));
  int n = n_begin;
  // Whole groups of four rows (a group starts at a multiple of 4 so its scales are one vector).
  for (; n < n_end && (n & 3) == 0 && n + 4 <= n_end; n += 4) {
    const uint8_t *w0 = weights + (int64_t)n * row_bytes;
    const float *ws = weight_scales + (int64_t)(n >> 2) * blocks * 4;
    const uint8_t *wz = zero_points + (int64_t)(n >> 2) * blocks * 4;
    int r = 0;
    // Prefill: two activation rows per pass share each unpacked weight block (same arithmetic).
    for (; r + 2 <= rows; r += 2) {
      const int16_t *a = codes + (int64_t)r * blocks * BLOCK;
      const int16_t *c = a + (int64_t)blocks * BLOCK;
      const float *as = scales + (int64_t)r * blocks;
      const int32_t *asum = sums + (int64_t)r * blocks;
      v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = acc0;
      for (int b = 0; b < blocks; b++) {
        const uint8_t *wb = w0 + b * (BLOCK / 2);
        const int16_t *ab = a + b * BLOCK, *cb = c + b * BLOCK;
        v128_t p0, p1, p2, p3;
        unpack_q4(wb, mask, &p0, &p1, &p2, &p3);
        v128_t x0 = planes_dot(p0, p1, p2, p3, ab), y0 = planes_dot(p0, p1, p2, p3, cb);
        unpack_q4(wb + row_bytes, mask, &p0, &p1, &p2, &p3);
        v128_t x1 = planes_dot(p0, p1, p2, p3, ab), y1 = planes_dot(p0, p1, p2, p3, cb);
        unpack_q4(wb + 2 * row_bytes, mask, &p0, &p1, &p2, &p3);
        v128_t x2 = planes_dot(p0, p1, p2, p3, ab), y2 = planes_dot(p0, p1, p2, p3, cb);
        unpack_q4(wb + 3 * row_bytes, mask, &p0, &p1, &p2, &p3);
        v128_t x3 = planes_dot(p0, p1, p2, p3, ab), y3 = planes_dot(p0, p1, p2, p3, cb);
        v128_t zero = wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(wz + b * 4)));
        v128_t w_scale = wasm_v128_load(ws + b * 4);
        v128_t dot0 = wasm_i32x4_sub(transpose_sum(x0, x1, x2, x3), wasm_i32x4_mul(zero, wasm_i32x4_splat(asum[b])));
        v128_t dot1 =
            wasm_i32x4_sub(transpose_sum(y0, y1, y2, y3), wasm_i32x4_mul(zero, wasm_i32x4_splat(asum[blocks + b])));
        acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot0),
                                                   wasm_f32x4_mul(w_scale, wasm_f32x4_splat(as[b]))));
        acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot1),
                                                   wasm_f32x4_mul(w_scale, wasm_f32x4_splat(as[blocks + b]))));
      }
      wasm_v128_store(y + (int64_t)r * n_total + n, acc0);
      wasm_v128_store(y + (int64_t)(r + 1) * n_total + n, acc1);
    }
    for (; r < rows; r++) {
      const int16_t *a = codes + (int64_t)r * blocks * BLOCK;
      const float *as = scales + (int64_t)r * blocks;
      const int32_t *asum = sums + (int64_t)r * blocks;
      v128_t acc = wasm_f32x4_splat(0.0f);
      for (int b = 0; b < blocks; b++) {
        const int16_t *ab = a + b * BLOCK;
        v128_t a0 = wasm_v128_load(ab), a1 = wasm_v128_load(ab + 8);
        v128_t a2 = wasm_v128_load(ab + 16), a3 = wasm_v128_load(ab + 24);
        const uint8_t *wb = w0 + b * (BLOCK / 2);
        v128_t dot = transpose_sum(block_dot_q4(wb, mask, a0, a1, a2, a3), block_dot_q4(wb + row_bytes, mask, a0, a1, a2, a3),
                                   block_dot_q4(wb + 2 * row_bytes, mask, a0, a1, a2, a3),
                                   block_dot_q4(wb + 3 * row_bytes, mask, a0, a1, a2, a3));
        v128_t zero = wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(wz + b * 4)));
        dot = wasm_i32x4_sub(dot, wasm_i32x4_mul(zero, wasm_i32x4_splat(asum[b])));
        v128_t scale = wasm_f32x4_mul(wasm_v128_load(ws + b * 4), wasm_f32x4_splat(as[b]));
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot), scale));
      }
      wasm_v128_store(y + (int64_t)r * n_total + n, acc);
    }
  }
  // Rows outside whole groups: the same arithmetic, one row at a time.
  for (; n < n_end; n++) {
    const uint8_t *w_row = weights + (int64_t)n * row_bytes;
    const float *ws = weight_scales + (int64_t)(n >> 2) * blocks * 4 + (n & 3);
    const uint8_t *wz = zero_points + (int64_t)(n >> 2) * blocks * 4 + (n & 3);
    for (int r = 0; r < rows; r++) {
      const int16_t *a = codes + (int64_t)r * blocks * BLOCK;
      const float *as = scales + (int64_t)r * blocks;
      const int32_t *asum = sums + (int64_t)r * blocks;
      float acc = 0.0f;
      for (int b = 0; b < blocks; b++) {
        const int16_t *ab = a + b * BLOCK;
        v128_t d = block_dot_q4(w_row + b * (BLOCK / 2), mask, wasm_v128_load(ab), wasm_v128_load(ab + 8),
                                wasm_v128_load(ab + 16), wasm_v128_load(ab + 24));
        int32_t dot = sum_i32x4(d) - (int32_t)wz[b * 4] * asum[b];
        acc += (float)dot * (ws[b * 4] * as[b]);
      }
      y[(int64_t)r * n_total + n] = acc;
    }
  }
}
