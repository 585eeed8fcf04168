// The prefill matrix product for 4-bit weights (MatMulNBits bits 4, block 32, in the layout
// gemv-q4.c documents): many activation rows (tokens) at once. Each tile of PANEL_ROWS output
// rows is unpacked once per chunk of k into an int16 panel with its zero points subtracted
// (gemm-panel.h), and every token of the pass then runs over the panel, so unpacking costs once
// per pass instead of once per token.
//
// The weights are in gemv-q4.c's grouped layout (four rows per 64-byte block) and the activation
// codes are scaled by nibble plane (256, 16, 1, 256); the panel holds (code - zero) times the
// complementary factor (1, 16, 256, 1), so every product is 256 · (code - zero) · a, as in the
// GEMV, and each block's dot is shifted down by 8 once (exact).
//
// Results are bit-identical to gemm_q4 (the decode GEMV) for every output: per block the integer
// dot product dot(code - zero, a) equals gemm_q4's dot(code, a) - zero * sum(a), and the float
// part is the same acc += float(dot) * (scale_w * scale_a), block after block in order. Between
// chunks of k the running sum waits in y as a float, which changes no bit.
#include "gemm-panel.h"

/**
 * Unpacks `count` rows (4 or 8: whole groups) x blocks [b0, b0 + nb) of row `n` onward into the
 * panel in the activations' element order, zero points subtracted, each element times its
 * plane's weight factor (1, 16, 256, 1 for (i >> 1) & 3). A group block's four vectors give, per
 * nibble plane, row j's element pair in 32-bit lane j; a 4 x 4 transpose of those lanes puts each
 * row's eight elements of a vector side by side.
 */
static inline void unpack_q4_panel(const uint8_t *weights, const uint8_t *zero_points, int blocks, int n, int count,
                                   int b0, int nb, v128_t m0, v128_t m1, v128_t m2, int16_t *panel) {
  const int64_t group_bytes = (int64_t)blocks * 64;
  for (int b = 0; b < nb; b++)
    for (int g = 0; g < count / 4; g++) {
      int64_t group = (n >> 2) + g;
      const uint8_t *w = weights + group * group_bytes + (int64_t)(b0 + b) * 64;
      // int16 lanes z0, z0, z1, z1, z2, z2, z3, z3 (byte 4 of the 32-bit load is 0).
      v128_t z = wasm_v128_load32_zero(zero_points + (group * blocks + b0 + b) * 4);
      v128_t z1 = wasm_i8x16_shuffle(z, z, 0, 4, 0, 4, 1, 4, 1, 4, 2, 4, 2, 4, 3, 4, 3, 4);
      v128_t z16 = wasm_i16x8_shl(z1, 4), z256 = wasm_i16x8_shl(z1, 8);
      int16_t *out = panel + ((int64_t)b * count + g * 4) * BLOCK;
      for (int v = 0; v < 4; v++) {
        v128_t x = wasm_v128_load(w + 16 * v);
        v128_t p0 = wasm_i16x8_sub(wasm_v128_and(x, m0), z1);
        v128_t p1 = wasm_i16x8_sub(wasm_v128_and(x, m1), z16);
        v128_t p2 = wasm_i16x8_sub(wasm_v128_and(x, m2), z256);
        v128_t p3 = wasm_i16x8_sub(wasm_u16x8_shr(x, 12), z1);
        v128_t lo01 = wasm_i32x4_shuffle(p0, p1, 0, 4, 1, 5), hi01 = wasm_i32x4_shuffle(p0, p1, 2, 6, 3, 7);
        v128_t lo23 = wasm_i32x4_shuffle(p2, p3, 0, 4, 1, 5), hi23 = wasm_i32x4_shuffle(p2, p3, 2, 6, 3, 7);
        wasm_v128_store(out + 8 * v, wasm_i32x4_shuffle(lo01, lo23, 0, 1, 4, 5));
        wasm_v128_store(out + BLOCK + 8 * v, wasm_i32x4_shuffle(lo01, lo23, 2, 3, 6, 7));
        wasm_v128_store(out + 2 * BLOCK + 8 * v, wasm_i32x4_shuffle(hi01, hi23, 0, 1, 4, 5));
        wasm_v128_store(out + 3 * BLOCK + 8 * v, wasm_i32x4_shuffle(hi01, hi23, 2, 3, 6, 7));
      }
    }
}

/**
 * Every token over one panel of `groups` (1 or 2) groups of four rows starting at row n, blocks
 * [b0, b0 + nb), of which `valid` rows are real (a partial last group is padded with zeros).
 * `first`: the chunk starts the sum (else the running sums are read back from y).
 */
static inline __attribute__((always_inline)) void run_q4_panel(const int16_t *panel, const float *weight_scales, int n_total, int blocks,
                                const int16_t *codes, const float *scales, int rows, float *y, int n, int groups,
                                int valid, int b0, int nb, int first) {
  const float *ws0 = weight_scales + ((int64_t)(n >> 2) * blocks + b0) * 4;
  const float *ws1 = ws0 + (int64_t)blocks * 4;
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
      v128_t dot0 = wasm_i32x4_shr(panel_group_dot(w, a0, a1, a2, a3), 8);
      acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot0),
                                                 wasm_f32x4_mul(wasm_v128_load(ws0 + b * 4), scale_a)));
      if (groups == 2) {
        v128_t dot1 = wasm_i32x4_shr(panel_group_dot(w + 4 * BLOCK, a0, a1, a2, a3), 8);
        acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot1),
                                                   wasm_f32x4_mul(wasm_v128_load(ws1 + b * 4), scale_a)));
      }
    }
    store_lanes(yt, acc0, valid);
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
  // The nibble masks from an argument, so the compiler keeps them in registers (see gemv-q4.c).
  int16_t runtime_zero = (int16_t)(blocks >> 30);
  v128_t m0 = wasm_i16x8_splat((int16_t)(0x000f | runtime_zero));
  v128_t m1 = wasm_i16x8_splat((int16_t)(0x00f0 | runtime_zero));
  v128_t m2 = wasm_i16x8_splat((int16_t)(0x0f00 | runtime_zero));
  int16_t panel[PANEL_ROWS * PANEL_BLOCKS * BLOCK] __attribute__((aligned(16)));
  // Tiles of eight rows, then one of four; n_begin is a multiple of 4 (threads split on groups), and
  // a partial last group runs as a whole one (the layout pads it) that stores only its real rows.
  for (int n = n_begin; n < n_end;) {
    int groups = n + 8 <= n_end ? 2 : 1;
    int valid = n_end - n < 4 * groups ? n_end - n : 4 * groups;
    for (int b0 = 0; b0 < blocks; b0 += PANEL_BLOCKS) {
      int nb = blocks - b0 < PANEL_BLOCKS ? blocks - b0 : PANEL_BLOCKS;
      unpack_q4_panel(weights, zero_points, blocks, n, groups * 4, b0, nb, m0, m1, m2, panel);
      // Two call sites with constant group counts, so each inlined copy has no branch per block.
      if (groups == 2)
        run_q4_panel(panel, weight_scales, n_total, blocks, codes, scales, rows, y, n, 2, valid, b0, nb, b0 == 0);
      else
        run_q4_panel(panel, weight_scales, n_total, blocks, codes, scales, rows, y, n, 1, valid, b0, nb, b0 == 0);
    }
    n += groups * 4;
  }
}
