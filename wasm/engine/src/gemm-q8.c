// The prefill matrix product for 8-bit weights (repacked at load to [n, kp], see gemv-q8.c): many
// activation rows (tokens) at once. Each tile of PANEL_ROWS output rows is widened once per
// chunk of k into an int16 panel (gemm-panel.h), and every token of the pass then runs over it,
// so widening costs once per pass instead of once per token.
//
// Results are bit-identical to gemm_q8 (the decode GEMV) for every output: the same integer dot
// per block, the same acc += float(dot) * scale_a block after block in order, then · scale_w.
// Between chunks of k the running sum waits in y as a float, which changes no bit.
#include "gemm-panel.h"

/** Widens `count` rows x blocks [b0, b0 + nb) of row `n` onward into the panel. */
static inline void widen_q8_panel(const int8_t *weights, int blocks, int n, int count, int b0, int nb,
                                  int16_t *panel) {
  const int64_t row_bytes = (int64_t)blocks * BLOCK;
  for (int b = 0; b < nb; b++)
    for (int r = 0; r < count; r++) {
      const int8_t *w = weights + (int64_t)(n + r) * row_bytes + (int64_t)(b0 + b) * BLOCK;
      v128_t w0 = wasm_v128_load(w), w1 = wasm_v128_load(w + 16);
      int16_t *out = panel + ((int64_t)b * count + r) * BLOCK;
      wasm_v128_store(out, wasm_i16x8_extend_low_i8x16(w0));
      wasm_v128_store(out + 8, wasm_i16x8_extend_high_i8x16(w0));
      wasm_v128_store(out + 16, wasm_i16x8_extend_low_i8x16(w1));
      wasm_v128_store(out + 24, wasm_i16x8_extend_high_i8x16(w1));
    }
}

/**
 * Every token over one panel of `groups` (1 or 2) groups of four rows starting at row n, blocks
 * [b0, b0 + nb). `first`: the chunk starts the sum (else the running sums are read back from y);
 * `last`: the chunk ends it (the sums are then scaled by the rows' weight scales).
 */
static inline __attribute__((always_inline)) void run_q8_panel(const int16_t *panel, const float *weight_scales, int n_total, int blocks,
                                const int16_t *codes, const float *scales, int rows, float *y, int n, int groups,
                                int b0, int nb, int first, int last) {
  v128_t ws0 = wasm_v128_load(weight_scales + n);
  v128_t ws1 = groups == 2 ? wasm_v128_load(weight_scales + n + 4) : ws0;
  for (int t = 0; t < rows; t++) {
    const int16_t *a = codes + ((int64_t)t * blocks + b0) * BLOCK;
    const float *as = scales + (int64_t)t * blocks + b0;
    float *yt = y + (int64_t)t * n_total + n;
    v128_t acc0 = first ? wasm_f32x4_splat(0.0f) : wasm_v128_load(yt);
    v128_t acc1 = first || groups < 2 ? wasm_f32x4_splat(0.0f) : wasm_v128_load(yt + 4);
    for (int b = 0; b < nb; b++) {
      const int16_t *ab = a + b * BLOCK;
      const int16_t *w = panel + b * groups * 4 * BLOCK;
      PANEL_OPAQUE(ab);
      PANEL_OPAQUE(w);
      v128_t a0 = wasm_v128_load(ab), a1 = wasm_v128_load(ab + 8);
      v128_t a2 = wasm_v128_load(ab + 16), a3 = wasm_v128_load(ab + 24);
      v128_t scale_a = wasm_f32x4_splat(as[b]);
      acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(panel_group_dot(w, a0, a1, a2, a3)), scale_a));
      if (groups == 2)
        acc1 = wasm_f32x4_add(
            acc1, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(panel_group_dot(w + 4 * BLOCK, a0, a1, a2, a3)), scale_a));
    }
    wasm_v128_store(yt, last ? wasm_f32x4_mul(acc0, ws0) : acc0);
    if (groups == 2) wasm_v128_store(yt + 4, last ? wasm_f32x4_mul(acc1, ws1) : acc1);
  }
}

/**
 * y[r, n] for r < rows, n in [n_begin, n_end); weights [n_total, blocks * 32]; codes and scales
 * from quantize_rows_q8 (arguments as gemm_q8's).
 */
EXPORT(gemm_panel_q8)
void gemm_panel_q8(const int8_t *weights, const float *weight_scales, int n_total, int blocks, const int16_t *codes,
                   const float *scales, int rows, float *y, int n_begin, int n_end) {
  int16_t panel[PANEL_ROWS * PANEL_BLOCKS * BLOCK] __attribute__((aligned(16)));
  int n = n_begin;
  // Tiles of eight rows, then one of four (gemm_q8 groups any four consecutive rows alike).
  while (n + 4 <= n_end) {
    int groups = n + 8 <= n_end ? 2 : 1;
    for (int b0 = 0; b0 < blocks; b0 += PANEL_BLOCKS) {
      int nb = blocks - b0 < PANEL_BLOCKS ? blocks - b0 : PANEL_BLOCKS;
      widen_q8_panel(weights, blocks, n, groups * 4, b0, nb, panel);
      // Two call sites with constant group counts, so each inlined copy has no branch per block.
      if (groups == 2)
        run_q8_panel(panel, weight_scales, n_total, blocks, codes, scales, rows, y, n, 2, b0, nb, b0 == 0,
                     b0 + nb == blocks);
      else
        run_q8_panel(panel, weight_scales, n_total, blocks, codes, scales, rows, y, n, 1, b0, nb, b0 == 0,
                     b0 + nb == blocks);
    }
    n += groups * 4;
  }
  // The last rows (fewer than four): the same arithmetic one row at a time, as gemm_q8's.
  const int64_t row_bytes = (int64_t)blocks * BLOCK;
  for (; n < n_end; n++) {
    const int8_t *w = weights + (int64_t)n * row_bytes;
    for (int t = 0; t < rows; t++) {
      const int16_t *a = codes + (int64_t)t * blocks * BLOCK;
      const float *as = scales + (int64_t)t * blocks;
      float acc = 0.0f;
      for (int b = 0; b < blocks; b++) {
        const int8_t *wb = w + (int64_t)b * BLOCK;
        const int16_t *ab = a + (int64_t)b * BLOCK;
        v128_t w0 = wasm_v128_load(wb), w1 = wasm_v128_load(wb + 16);
        v128_t d = wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w0), wasm_v128_load(ab)),
                                                 wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w0), wasm_v128_load(ab + 8))),
                                  wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w1), wasm_v128_load(ab + 16)),
                                                 wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w1), wasm_v128_load(ab + 24))));
        acc += (float)sum_i32x4(d) * as[b];
      }
      y[(int64_t)t * n_total + n] = acc * weight_scales[n];
    }
  }
}
