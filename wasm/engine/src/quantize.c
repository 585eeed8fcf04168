// Activation quantization for the integer matrix products: each row of x is cut into blocks of 32
// along k, and each block becomes int8 codes (held as int16, already widened for
// i32x4.dot_i16x8_s) with one float scale: scale = max|x| / 127, code = nearest(x / scale). The
// tail of the last block is zero. The q4 variant also stores each block's code sum (for the
// weights' zero point) and scales each code by the factor of the weight nibble plane it meets.
#include "engine.h"

static void quantize_block(const float *x, int count, float *codes, float *scale_out) {
  float max_abs = 0.0f;
  for (int i = 0; i < count; i++) {
    float a = __builtin_fabsf(x[i]);
    if (a > max_abs) max_abs = a;
  }
  float scale = max_abs / 127.0f;
  float inverse = max_abs == 0.0f ? 0.0f : 127.0f / max_abs;
  for (int i = 0; i < BLOCK; i++) codes[i] = i < count ? __builtin_nearbyintf(x[i] * inverse) : 0.0f;
  *scale_out = scale;
}

/**
 * A whole block of 32 in SIMD with exactly quantize_block's arithmetic: the same max (pmax keeps
 * the running value unless the new one is larger, as the scalar `if (a > max)` does), the same
 * product and round-to-nearest-even per element; the eight vectors of codes (element 4j + l in
 * lane l of c[j]) come back as int32.
 */
static inline float quantize_block_simd(const float *x, v128_t c[8]) {
  v128_t v[8];
  v128_t m = wasm_f32x4_splat(0.0f);
  for (int j = 0; j < 8; j++) {
    v[j] = wasm_v128_load(x + 4 * j);
    m = wasm_f32x4_pmax(m, wasm_f32x4_abs(v[j]));
  }
  float m0 = wasm_f32x4_extract_lane(m, 0), m1 = wasm_f32x4_extract_lane(m, 1);
  float m2 = wasm_f32x4_extract_lane(m, 2), m3 = wasm_f32x4_extract_lane(m, 3);
  float max_abs = m0;
  if (m1 > max_abs) max_abs = m1;
  if (m2 > max_abs) max_abs = m2;
  if (m3 > max_abs) max_abs = m3;
  v128_t inverse = wasm_f32x4_splat(max_abs == 0.0f ? 0.0f : 127.0f / max_abs);
  // nearest() then a float-to-int conversion, in two cheap operations: adding 1.5·2^23 rounds the
  // product (|x| <= 127) to an integer, ties to even as nearest does, into the low mantissa bits;
  // subtracting the magic's bits as integers leaves it as int32. (A NaN product, from an infinite
  // input, gives another meaningless code than the conversion's 0.)
  const v128_t magic = wasm_f32x4_splat(12582912.0f);
  for (int j = 0; j < 8; j++)
    c[j] = wasm_i32x4_sub(wasm_f32x4_add(wasm_f32x4_mul(v[j], inverse), magic), magic);
  return max_abs / 127.0f;
}

/**
 * x [rows, k] → codes [rows, blocks * 32] (int16), scales [rows, blocks]; natural element order.
 * Like every quantizer here, only rows [row_begin, row_end) (threads split the rows; each row is
 * quantized on its own, so the split changes no byte).
 */
EXPORT(quantize_rows_q8)
void quantize_rows_q8(const float *x, int rows, int k, int16_t *codes, float *scales, int row_begin, int row_end) {
  int blocks = (k + BLOCK - 1) / BLOCK;
  float tmp[BLOCK];
  for (int r = row_begin; r < row_end; r++) {
    for (int b = 0; b < blocks; b++) {
      int start = b * BLOCK;
      int count = k - start < BLOCK ? k - start : BLOCK;
      int16_t *out = codes + ((int64_t)r * blocks + b) * BLOCK;
      if (count == BLOCK) {
        v128_t c[8];
        scales[r * blocks + b] = quantize_block_simd(x + (int64_t)r * k + start, c);
        for (int j = 0; j < 4; j++) wasm_v128_store(out + 8 * j, wasm_i16x8_narrow_i32x4(c[2 * j], c[2 * j + 1]));
        continue;
      }
      quantize_block(x + (int64_t)r * k + start, count, tmp, scales + r * blocks + b);
      for (int i = 0; i < BLOCK; i++) out[i] = (int16_t)tmp[i];
    }
  }
}

/**
 * As quantize_rows_q8, each code multiplied by its nibble plane's factor for the 4-bit kernel
 * (element i of a block by 256, 16, 1, 256 for (i >> 1) & 3 = 0, 1, 2, 3: the kernel masks the
 * weight nibbles in place instead of shifting them down, src/gemv-q4.c), and the code sums
 * (unscaled, for the weights' zero point). |127 · 256| fits in int16.
 */
EXPORT(quantize_rows_q4)
void quantize_rows_q4(const float *x, int rows, int k, int16_t *codes, float *scales, int32_t *sums, int row_begin,
                      int row_end) {
  static const int16_t plane_factor[4] = {256, 16, 1, 256};
  const v128_t factors = wasm_i16x8_make(256, 256, 16, 16, 1, 1, 256, 256);
  int blocks = (k + BLOCK - 1) / BLOCK;
  float tmp[BLOCK];
  for (int r = row_begin; r < row_end; r++) {
    for (int b = 0; b < blocks; b++) {
      int start = b * BLOCK;
      int count = k - start < BLOCK ? k - start : BLOCK;
      int16_t *out = codes + ((int64_t)r * blocks + b) * BLOCK;
      if (count == BLOCK) {
        v128_t c[8];
        scales[r * blocks + b] = quantize_block_simd(x + (int64_t)r * k + start, c);
        // Elements 8m..8m+7 (c[2m], c[2m + 1]) meet the plane factors 256 256 16 16 1 1 256 256.
        v128_t total = wasm_i32x4_splat(0);
        for (int m = 0; m < 4; m++) {
          v128_t codes16 = wasm_i16x8_narrow_i32x4(c[2 * m], c[2 * m + 1]);
          wasm_v128_store(out + 8 * m, wasm_i16x8_mul(codes16, factors));
          total = wasm_i32x4_add(total, wasm_i32x4_add(c[2 * m], c[2 * m + 1]));
        }
        sums[r * blocks + b] = sum_i32x4(total);
        continue;
      }
      quantize_block(x + (int64_t)r * k + start, count, tmp, scales + r * blocks + b);
      int32_t sum = 0;
      for (int i = 0; i < BLOCK; i++) {
        out[i] = (int16_t)((int16_t)tmp[i] * plane_factor[(i >> 1) & 3]);
        sum += (int32_t)tmp[i];
      }
      sums[r * blocks + b] = sum;
    }
  }
}

#ifdef __wasm_relaxed_simd__
/**
 * The prefill tile's start value from a block's sums of even and odd elements (each within
 * 16 * 127, so each product within +-30480: int16).
 */
static inline int32_t panel_start(int32_t even, int32_t odd) {
  return (int32_t)((uint32_t)(uint16_t)(int16_t)(-PANEL_CODE_OFFSET * even) |
                   ((uint32_t)(uint16_t)(int16_t)(-PANEL_CODE_OFFSET * odd) << 16));
}

/**
 * quantize_rows_q4's codes, scales and sums for the relaxed-SIMD 4-bit kernels
 * (src/gemm-q4-relaxed.c): the same quantization, the codes as plain bytes (no plane factor) in
 * the element order those kernels meet the weight nibbles, 0 4 1 5 2 6 3 7 within each eight,
 * and tokens in quads (relaxed_unit, engine.h): codes rows * blocks * 32 bytes, scales, sums and
 * starts rows * blocks each. starts: the prefill tile's start value for the block (see
 * gemm-q4-relaxed.c's PANEL_CODE_OFFSET): -PANEL_CODE_OFFSET times the sum of the even elements
 * in the low int16, of the odd ones in the high int16.
 */
EXPORT(quantize_rows_q4_relaxed)
void quantize_rows_q4_relaxed(const float *x, int rows, int k, int8_t *codes, float *scales, int32_t *sums,
                              int32_t *starts, int row_begin, int row_end) {
  static const int order[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  int blocks = (k + BLOCK - 1) / BLOCK;
  float tmp[BLOCK];
  for (int r = row_begin; r < row_end; r++) {
    for (int b = 0; b < blocks; b++) {
      int start = b * BLOCK;
      int count = k - start < BLOCK ? k - start : BLOCK;
      int64_t unit = relaxed_unit(r, b, rows, blocks);
      int8_t *out = codes + unit * BLOCK;
      if (count == BLOCK) {
        v128_t c[8];
        scales[unit] = quantize_block_simd(x + (int64_t)r * k + start, c);
        v128_t total = wasm_i32x4_splat(0);
        v128_t eights[4];
        for (int m = 0; m < 4; m++) {
          // Elements 8m..8m+3 and 8m+4..8m+7 interleaved: 0 4 1 5, then 2 6 3 7.
          v128_t first = wasm_i32x4_shuffle(c[2 * m], c[2 * m + 1], 0, 4, 1, 5);
          v128_t second = wasm_i32x4_shuffle(c[2 * m], c[2 * m + 1], 2, 6, 3, 7);
          eights[m] = wasm_i16x8_narrow_i32x4(first, second);
          total = wasm_i32x4_add(total, wasm_i32x4_add(c[2 * m], c[2 * m + 1]));
        }
        wasm_v128_store(out, wasm_i8x16_narrow_i16x8(eights[0], eights[1]));
        wasm_v128_store(out + 16, wasm_i8x16_narrow_i16x8(eights[2], eights[3]));
        sums[unit] = sum_i32x4(total);
        // The even elements are lanes 0 and 2 of every c (elements 4m..4m+3).
        starts[unit] = panel_start(wasm_i32x4_extract_lane(total, 0) + wasm_i32x4_extract_lane(total, 2),
                                   wasm_i32x4_extract_lane(total, 1) + wasm_i32x4_extract_lane(total, 3));
        continue;
      }
      quantize_block(x + (int64_t)r * k + start, count, tmp, scales + unit);
      int32_t even = 0, odd = 0;
      for (int i = 0; i < BLOCK; i++) {
        out[i] = (int8_t)(int)tmp[(i & ~7) + order[i & 7]];
        if (i & 1)
          odd += (int32_t)tmp[i];
        else
          even += (int32_t)tmp[i];
      }
      sums[unit] = even + odd;
      starts[unit] = panel_start(even, odd);
    }
  }
}
#endif
