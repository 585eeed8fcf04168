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

/** x [rows, k] → codes [rows, blocks * 32] (int16), scales [rows, blocks]; natural element order. */
EXPORT(quantize_rows_q8)
void quantize_rows_q8(const float *x, int rows, int k, int16_t *codes, float *scales) {
  int blocks = (k + BLOCK - 1) / BLOCK;
  float tmp[BLOCK];
  for (int r = 0; r < rows; r++) {
    for (int b = 0; b < blocks; b++) {
      int start = b * BLOCK;
      int count = k - start < BLOCK ? k - start : BLOCK;
      quantize_block(x + (int64_t)r * k + start, count, tmp, scales + r * blocks + b);
      int16_t *out = codes + ((int64_t)r * blocks + b) * BLOCK;
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
void quantize_rows_q4(const float *x, int rows, int k, int16_t *codes, float *scales, int32_t *sums) {
  static const int16_t plane_factor[4] = {256, 16, 1, 256};
  int blocks = (k + BLOCK - 1) / BLOCK;
  float tmp[BLOCK];
  for (int r = 0; r < rows; r++) {
    for (int b = 0; b < blocks; b++) {
      int start = b * BLOCK;
      int count = k - start < BLOCK ? k - start : BLOCK;
      quantize_block(x + (int64_t)r * k + start, count, tmp, scales + r * blocks + b);
      int16_t *out = codes + ((int64_t)r * blocks + b) * BLOCK;
      int32_t sum = 0;
      for (int i = 0; i < BLOCK; i++) {
        out[i] = (int16_t)((int16_t)tmp[i] * plane_factor[(i >> 1) & 3]);
        sum += (int32_t)tmp[i];
      }
      sums[r * blocks + b] = sum;
    }
  }
}
