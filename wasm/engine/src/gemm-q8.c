// The prefill matrix product for 8-bit weights (in gemv-q8.c's grouped layout: four rows per
// 128-byte block): many activation rows (tokens) at once. Each tile of PANEL_ROWS output rows is
// widened once per chunk of k into an int16 panel (gemm-panel.h), and every token of the pass then
// runs over it, so widening costs once per pass instead of once per token.
//
// Results are bit-identical to gemm_q8 (the decode GEMV) for every output: the same integer dot
// per block, the same acc += float(dot) * scale_a block after block in order, then · scale_w.
// Between chunks of k the running sum waits in y as a float, which changes no bit.
#include "gemm-panel.h"

/**
 * Widens `count` rows (4 or 8: whole groups) x blocks [b0, b0 + nb) of row `n` onward into the
 * panel. A group block holds its four rows' 32 codes one after another, the panel's order for
 * those rows, so each eight codes are one widening load and one store.
 */
static inline void widen_q8_panel(const int8_t *weights, int blocks, int n, int count, int b0, int nb,
                                  int16_t *panel) {
  const int64_t group_bytes = (int64_t)blocks * 4 * BLOCK;
  for (int b = 0; b < nb; b++)
    for (int g = 0; g < count / 4; g++) {
      const int8_t *w = weights + ((n >> 2) + g) * group_bytes + (int64_t)(b0 + b) * 4 * BLOCK;
      int16_t *out = panel + ((int64_t)b * count + g * 4) * BLOCK;
      for (int i = 0; i < 4 * BLOCK; i += 8) wasm_v128_store(out + i, wasm_i16x8_load8x8(w + i));
    }
}

/**
 * Every token over one panel of `groups` (1 or 2) groups of four rows starting at row n, blocks
 * [b0, b0 + nb), of which `valid` rows are real (a partial last group is padded with zero codes).
 * `first`: the chunk starts the sum (else the running sums are read back from y); `last`: the
 * chunk ends it (the sums are then scaled by the rows' weight scales).
 */
static inline __attribute__((always_inline)) void run_q8_panel(const int16_t *panel, const float *weight_scales, int n_total, int blocks,
                                const int16_t *codes, const float *scales, int rows, float *y, int n, int groups,
                                int valid, int b0, int nb, int first, int last) {
  v128_t ws0 = load_lanes(weight_scales + n, valid);
  v128_t ws1 = groups == 2 ? wasm_v128_load(weight_scales + n + 4) : ws0;
  for (int t = 0; t < rows; t++) {
    const int16_t *a = codes + ((int64_t)t * blocks + b0) * BLOCK;
    const float *as = scales + (int64_t)t * blocks + b0;
    float *yt = y + (int64_t)t * n_total + n;
    v128_t acc0 = first ? wasm_f32x4_splat(0.0f) : load_lanes(yt, valid);
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
    store_lanes(yt, last ? wasm_f32x4_mul(acc0, ws0) : acc0, valid);
    if (groups == 2) wasm_v128_store(yt + 4, last ? wasm_f32x4_mul(acc1, ws1) : acc1);
  }
}

/**
 * y[r, n] for activation rows r < rows and output rows n in [n_begin, n_end); y is [rows, n_total].
 * Arguments as gemm_q8's (weights in the grouped layout, codes and scales from quantize_rows_q8).
 */
EXPORT(gemm_panel_q8)
void gemm_panel_q8(const int8_t *weights, const float *weight_scales, int n_total, int blocks, const int16_t *codes,
                   const float *scales, int rows, float *y, int n_begin, int n_end) {
  int16_t panel[PANEL_ROWS * PANEL_BLOCKS * BLOCK] __attribute__((aligned(16)));
  // Tiles of eight rows, then one of four; n_begin is a multiple of 4 (threads split on groups), and
  // a partial last group runs as a whole one (the layout pads it) that stores only its real rows.
  for (int n = n_begin; n < n_end;) {
    int groups = n + 8 <= n_end ? 2 : 1;
    int valid = n_end - n < 4 * groups ? n_end - n : 4 * groups;
    for (int b0 = 0; b0 < blocks; b0 += PANEL_BLOCKS) {
      int nb = blocks - b0 < PANEL_BLOCKS ? blocks - b0 : PANEL_BLOCKS;
      widen_q8_panel(weights, blocks, n, groups * 4, b0, nb, panel);
      // Two call sites with constant group counts, so each inlined copy has no branch per block.
      if (groups == 2)
        run_q8_panel(panel, weight_scales, n_total, blocks, codes, scales, rows, y, n, 2, valid, b0, nb, b0 == 0,
                     b0 + nb == blocks);
      else
        run_q8_panel(panel, weight_scales, n_total, blocks, codes, scales, rows, y, n, 1, valid, b0, nb, b0 == 0,
                     b0 + nb == blocks);
    }
    n += groups * 4;
  }
}
