// The prefill matrix product for 4-bit weights (MatMulNBits bits 4, block 32, in the layout
// gemv-q4.c documents): many activation rows (tokens) at once. Each tile of PANEL_ROWS output
// rows is unpacked once per chunk of k into an int16 panel with its zero points subtracted
// (gemm-panel.h), and every token of the pass then runs over the panel, so unpacking costs once
// per pass instead of once per token.
//
// Results are bit-identical to gemm_q4 (the decode GEMV) for every output: per block the integer
// dot product dot(code - zero, a) equals gemm_q4's dot(code, a) - zero * sum(a), and the float
// part is the same acc += float(dot) * (scale_w * scale_a), block after block in order. Between
// chunks of k the running sum waits in y as a float, which changes no bit.
#include "gemm-panel.h"

/** Unpacks `count` rows (4 or 8) x blocks [b0, b0 + nb) of row `n` onward into the panel, zero points subtracted. */
static inline void unpack_q4_panel(const uint8_t *weights, const uint8_t *zero_points, int blocks, int n, int count,
                                   int b0, int nb, v128_t mask, int16_t *panel) {
  const int64_t row_bytes = (int64_t)blocks * (BLOCK / 2);
  for (int b = 0; b < nb; b++)
    for (int r = 0; r < count; r++) {
      int row = n + r;
      const uint8_t *w = weights + (int64_t)row * row_bytes + (int64_t)(b0 + b) * (BLOCK / 2);
      v128_t zero = wasm_i16x8_splat(zero_points[((int64_t)(row >> 2) * blocks + b0 + b) * 4 + (row & 3)]);
      v128_t v = wasm_v128_load(w);
      int16_t *out = panel + ((int64_t)b * count + r) * BLOCK;
      wasm_v128_store(out, wasm_i16x8_sub(wasm_v128_and(v, mask), zero));
      wasm_v128_store(out + 8, wasm_i16x8_sub(wasm_v128_and(wasm_u16x8_shr(v, 4), mask), zero));
      wasm_v128_store(out + 16, wasm_i16x8_sub(wasm_v128_and(wasm_u16x8_shr(v, 8), mask), zero));
      wasm_v128_store(out + 24, wasm_i16x8_sub(wasm_u16x8_shr(v, 12), zero));
    }
}

/**
 * Every token over one panel of `groups` (1 or 2) groups of four rows starting at row n, blocks
 * [b0, b0 + nb). `first`: the chunk starts the sum (else the running sums are read back from y).
 */
static inline void run_q4_panel(const int16_t *panel, const float *weight_scales, int n_total, int blocks,
                                const int16_t *codes, const float *scales, int rows, float *y, int n, int groups,
                                int b0, int nb, int first) {
  const float *ws0 = weight_scales + ((int64_t)(n >> 2) * blocks + b0) * 4;
  const float *ws1 = ws0 + (int64_t)blocks * 4;
  for (int t = 0; t < rows; t++) {
    const int16_t *a = codes + ((int64_t)t * blocks + b0) * BLOCK;
    const float *as = scales + (int64_t)t * blocks + b0;
    float *yt = y + (int64_t)t * n_total + n;
    v128_t acc0 = first ? wasm_f32x4_splat(0.0f) : wasm_v128_load(yt);
    v128_t acc1 = first || groups < 2 ? wasm_f32x4_splat(0.0f) : wasm_v128_load(yt + 4);
    for (int b = 0; b < nb; b++) {
      const int16_t *ab = a + b * BLOCK;
      v128_t a0 = wasm_v128_load(ab), a1 = wasm_v128_load(ab + 8);
      v128_t a2 = wasm_v128_load(ab + 16), a3 = wasm_v128_load(ab + 24);
      v128_t scale_a = wasm_f32x4_splat(as[b]);
      const int16_t *w = panel + (int64_t)b * groups * 4 * BLOCK;
      v128_t dot0 = panel_group_dot(w, a0, a1, a2, a3);
      acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot0),
                                                 wasm_f32x4_mul(wasm_v128_load(ws0 + b * 4), scale_a)));
      if (groups == 2) {
        v128_t dot1 = panel_group_dot(w + 4 * BLOCK, a0, a1, a2, a3);
        acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot1),
                                                   wasm_f32x4_mul(wasm_v128_load(ws1 + b * 4), scale_a)));
      }
    }
    wasm_v128_store(yt, acc0);
    if (groups == 2) wasm_v128_store(yt + 4, acc1);
  }
}

/**
 * y[r, n] for activation rows r < rows and output rows n in [n_begin, n_end); y is [rows, n_total].
 * Arguments as gemm_q4's (codes and scales from quantize_rows_q4; the code sums are not needed).
 */
EXPORT(gemm_panel_q4)
void gemm_panel_q4(const uint8_t *weights, const float *weight_scales, const uint8_t *zero_points, int n_total,
                   int blocks, const int16_t *codes, const float *scales, int rows, float *y, int n_begin, int n_end) {
  // The nibble mask from an argument, so the compiler keeps it in a register (see gemv-q4.c).
  v128_t mask = wasm_i16x8_splat((int16_t)(0x000f | (blocks >> 30)));
  int16_t panel[PANEL_ROWS * PANEL_BLOCKS * BLOCK] __attribute__((aligned(16)));
  int n = n_begin;
  // Tiles of eight rows, then one of four (a tile starts at a multiple of 4: its scales are vectors).
  while (n < n_end && (n & 3) == 0 && n + 4 <= n_end) {
    int groups = n + 8 <= n_end ? 2 : 1;
    for (int b0 = 0; b0 < blocks; b0 += PANEL_BLOCKS) {
      int nb = blocks - b0 < PANEL_BLOCKS ? blocks - b0 : PANEL_BLOCKS;
      unpack_q4_panel(weights, zero_points, blocks, n, groups * 4, b0, nb, mask, panel);
      run_q4_panel(panel, weight_scales, n_total, blocks, codes, scales, rows, y, n, groups, b0, nb, b0 == 0);
    }
    n += groups * 4;
  }
  // Rows outside whole groups: the same arithmetic one row at a time, as gemm_q4's scalar rows.
  const int64_t row_bytes = (int64_t)blocks * (BLOCK / 2);
  for (; n < n_end; n++) {
    const float *ws = weight_scales + (int64_t)(n >> 2) * blocks * 4 + (n & 3);
    for (int b0 = 0; b0 < blocks; b0 += PANEL_BLOCKS) {
      int nb = blocks - b0 < PANEL_BLOCKS ? blocks - b0 : PANEL_BLOCKS;
      for (int b = 0; b < nb; b++) {
        const uint8_t *w = weights + (int64_t)n * row_bytes + (int64_t)(b0 + b) * (BLOCK / 2);
        v128_t zero = wasm_i16x8_splat(zero_points[((int64_t)(n >> 2) * blocks + b0 + b) * 4 + (n & 3)]);
        v128_t v = wasm_v128_load(w);
        int16_t *out = panel + (int64_t)b * BLOCK;
        wasm_v128_store(out, wasm_i16x8_sub(wasm_v128_and(v, mask), zero));
        wasm_v128_store(out + 8, wasm_i16x8_sub(wasm_v128_and(wasm_u16x8_shr(v, 4), mask), zero));
        wasm_v128_store(out + 16, wasm_i16x8_sub(wasm_v128_and(wasm_u16x8_shr(v, 8), mask), zero));
        wasm_v128_store(out + 24, wasm_i16x8_sub(wasm_u16x8_shr(v, 12), zero));
      }
      for (int t = 0; t < rows; t++) {
        const int16_t *a = codes + ((int64_t)t * blocks + b0) * BLOCK;
        const float *as = scales + (int64_t)t * blocks + b0;
        float *yt = y + (int64_t)t * n_total + n;
        float acc = b0 == 0 ? 0.0f : *yt;
        for (int b = 0; b < nb; b++) {
          const int16_t *ab = a + b * BLOCK;
          int32_t dot = sum_i32x4(panel_row_dot(panel + (int64_t)b * BLOCK, wasm_v128_load(ab), wasm_v128_load(ab + 8),
                                                wasm_v128_load(ab + 16), wasm_v128_load(ab + 24)));
          acc += (float)dot * (ws[(b0 + b) * 4] * as[b]);
        }
        *yt = acc;
      }
    }
  }
}
