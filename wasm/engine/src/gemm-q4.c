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

/** int16 vectors per (group of four rows, block) in the panel: 4 vectors x 4 nibble planes. */
#define PANEL_GROUP_VECTORS 16

/**
 * Unpacks `groups` (1 or 2) groups of four rows from row n, blocks [b0, b0 + nb), into the panel:
 * per (block, group) sixteen int16 vectors at panel + (b * groups + g) * 128, vector 4v + p being
 * nibble plane p of the group block's vector v taken in place (v & 0x000f, v & 0x00f0,
 * v & 0x0f00, v >> 12) minus the zero point times the plane's weight factor (1, 16, 256, 1). So,
 * as in the GEMV, 32-bit lane j of vector 4v + p holds row j's elements 8v + 2p and 8v + 2p + 1
 * (times the factor that makes each product 256 · (code - zero) · a with the plane-scaled
 * activation codes), and no transpose is needed: the tile broadcasts the activation pair.
 */
static inline void unpack_q4_panel(const uint8_t *weights, const uint8_t *zero_points, int blocks, int n, int groups,
                                   int b0, int nb, v128_t m0, v128_t m1, v128_t m2, int16_t *panel) {
  const int64_t group_bytes = (int64_t)blocks * 64;
  for (int b = 0; b < nb; b++)
    for (int g = 0; g < groups; g++) {
      int64_t group = (n >> 2) + g;
      const uint8_t *w = weights + group * group_bytes + (int64_t)(b0 + b) * 64;
      // int16 lanes z0, z0, z1, z1, z2, z2, z3, z3 (byte 4 of the 32-bit load is 0).
      v128_t z = wasm_v128_load32_zero(zero_points + (group * blocks + b0 + b) * 4);
      v128_t z1 = wasm_i8x16_shuffle(z, z, 0, 4, 0, 4, 1, 4, 1, 4, 2, 4, 2, 4, 3, 4, 3, 4);
      v128_t z16 = wasm_i16x8_shl(z1, 4), z256 = wasm_i16x8_shl(z1, 8);
      int16_t *out = panel + (int64_t)(b * groups + g) * PANEL_GROUP_VECTORS * 8;
      for (int v = 0; v < 4; v++) {
        v128_t x = wasm_v128_load(w + 16 * v);
        wasm_v128_store(out + 32 * v, wasm_i16x8_sub(wasm_v128_and(x, m0), z1));
        wasm_v128_store(out + 32 * v + 8, wasm_i16x8_sub(wasm_v128_and(x, m1), z16));
        wasm_v128_store(out + 32 * v + 16, wasm_i16x8_sub(wasm_v128_and(x, m2), z256));
        wasm_v128_store(out + 32 * v + 24, wasm_i16x8_sub(wasm_u16x8_shr(x, 12), z1));
      }
    }
}

/**
 * The tile: `tokens` (4 or 1) tokens x `groups` (2 or 1) groups of four rows over the chunk's
 * panel, blocks [0, nb), accumulating into acc[t * groups + g]. a[t]: token t's activation pairs
 * (int32 words, 16 per block) at the chunk's first block; as[t] its scales; ws[g] group g's
 * weight scales at the chunk's first block.
 *
 * Per block, each of the sixteen panel vectors of a group is loaded once for all the tile's
 * tokens and each broadcast activation pair serves both groups: with four tokens and two groups,
 * eight int32 sums, two panel vectors and one broadcast are live, which fits V8's x64 vector
 * registers (the relaxed build's tile, gemm-q4-relaxed.c, has the same shape). The sums are the
 * four rows' block dots in lanes, so no transpose; then the GEMV's float step.
 */
static inline __attribute__((always_inline)) void run_q4_tile(int tokens, int groups, const int16_t *panel,
                                                              const float *const *ws, const int32_t *const *a,
                                                              const float *const *as, int nb, v128_t *acc) {
  const int32_t *a0 = a[0], *a1 = tokens == 4 ? a[1] : a[0];
  const int32_t *a2 = tokens == 4 ? a[2] : a[0], *a3 = tokens == 4 ? a[3] : a[0];
  for (int b = 0; b < nb; b++) {
    const int16_t *w = panel + b * groups * PANEL_GROUP_VECTORS * 8;
    const int32_t *ab[4] = {a0 + b * 16, a1 + b * 16, a2 + b * 16, a3 + b * 16};
    PANEL_OPAQUE(w);
    for (int t = 0; t < tokens; t++) PANEL_OPAQUE(ab[t]);
    v128_t s[8];
    for (int i = 0; i < 8; i++) s[i] = wasm_i32x4_splat(0);
#pragma clang loop unroll(disable)
    for (int u = 0; u < PANEL_GROUP_VECTORS; u++) {
      v128_t w0 = wasm_v128_load(w + 8 * u);
      v128_t w1 = groups == 2 ? wasm_v128_load(w + PANEL_GROUP_VECTORS * 8 + 8 * u) : w0;
      for (int t = 0; t < tokens; t++) {
        v128_t x = wasm_v128_load32_splat(ab[t] + u);
        s[t * groups] = wasm_i32x4_add(s[t * groups], wasm_i32x4_dot_i16x8(w0, x));
        if (groups == 2) s[t * groups + 1] = wasm_i32x4_add(s[t * groups + 1], wasm_i32x4_dot_i16x8(w1, x));
      }
    }
    for (int t = 0; t < tokens; t++) {
      v128_t scale_a = wasm_f32x4_splat(as[t][b]);
      for (int g = 0; g < groups; g++) {
        // 256 · dot(code - zero, a), exact in int32; shifted down exactly.
        v128_t dot = wasm_i32x4_shr(s[t * groups + g], 8);
        acc[t * groups + g] =
            wasm_f32x4_add(acc[t * groups + g], wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot),
                                                               wasm_f32x4_mul(wasm_v128_load(ws[g] + b * 4), scale_a)));
      }
    }
  }
}

/**
 * One tile over the chunk: tokens [t, t + tokens), the panel's `groups` groups at row n, of whose
 * 4 * groups rows `valid` are real; loads the running sums from y (or starts at 0 on the first
 * chunk), runs the tile, stores them back.
 */
static inline __attribute__((always_inline)) void q4_tile_pass(int tokens, int groups, const int16_t *panel,
                                                               const float *weight_scales, int n_total, int blocks,
                                                               const int16_t *codes, const float *scales, float *y,
                                                               int n, int valid, int b0, int nb, int t) {
  const float *ws[2];
  for (int g = 0; g < groups; g++) ws[g] = weight_scales + ((int64_t)((n >> 2) + g) * blocks + b0) * 4;
  const int32_t *a[4];
  const float *as[4];
  v128_t acc[8];
  for (int i = 0; i < tokens; i++) {
    a[i] = (const int32_t *)(codes + ((int64_t)(t + i) * blocks + b0) * BLOCK);
    as[i] = scales + (int64_t)(t + i) * blocks + b0;
    for (int g = 0; g < groups; g++) {
      int lanes = valid - 4 * g < 4 ? valid - 4 * g : 4;
      acc[i * groups + g] = b0 == 0 ? wasm_f32x4_splat(0.0f) : load_lanes(y + (int64_t)(t + i) * n_total + n + 4 * g, lanes);
    }
  }
  run_q4_tile(tokens, groups, panel, ws, a, as, nb, acc);
  for (int i = 0; i < tokens; i++)
    for (int g = 0; g < groups; g++) {
      int lanes = valid - 4 * g < 4 ? valid - 4 * g : 4;
      store_lanes(y + (int64_t)(t + i) * n_total + n + 4 * g, acc[i * groups + g], lanes);
    }
}

/** Every token over the chunk's panel: four at a time, the last rows % 4 one by one. */
static inline __attribute__((always_inline)) void q4_panel_pass(int groups, const int16_t *panel,
                                                                const float *weight_scales, int n_total, int blocks,
                                                                const int16_t *codes, const float *scales, int rows,
                                                                float *y, int n, int valid, int b0, int nb) {
  int t = 0;
  for (; t + 4 <= rows; t += 4)
    q4_tile_pass(4, groups, panel, weight_scales, n_total, blocks, codes, scales, y, n, valid, b0, nb, t);
  for (; t < rows; t++)
    q4_tile_pass(1, groups, panel, weight_scales, n_total, blocks, codes, scales, y, n, valid, b0, nb, t);
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
      unpack_q4_panel(weights, zero_points, blocks, n, groups, b0, nb, m0, m1, m2, panel);
      // Two call sites with constant group counts, so each inlined copy has no branch per block.
      if (groups == 2)
        q4_panel_pass(2, panel, weight_scales, n_total, blocks, codes, scales, rows, y, n, valid, b0, nb);
      else
        q4_panel_pass(1, panel, weight_scales, n_total, blocks, codes, scales, rows, y, n, valid, b0, nb);
    }
    n += groups * 4;
  }
}
