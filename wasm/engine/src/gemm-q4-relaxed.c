// The 4-bit matrix products on relaxed SIMD's integer dot product (engine-relaxed.wasm and
// engine-threads-relaxed.wasm only; the plain modules compile this file to nothing).
//
// i16x8.relaxed_dot_i8x16_i7x16_s multiplies sixteen signed bytes by sixteen bytes of its second
// operand and adds adjacent pairs into 16-bit lanes. It is "relaxed" only for a second operand
// with the top bit set (a host may read it as signed or unsigned) and where a pair sum could
// saturate 16 bits (x86's pmaddubsw). Here the second operand is always a weight code, 0..15 (the
// GEMV) or 0..30 (the prefill panel's offset codes), and the first an activation code in
// [-127, 127]: every pair sum is within ±7620, so every host computes the same exact integer.
// One instruction per sixteen multiply-adds where the i16 path (i32x4.dot_i16x8_s) needs two,
// and the codes stay bytes.
//
// Layouts. Weights are gemv-q4.c's grouped layout unchanged: a group block's vector v holds, in
// byte 4j + 2h + s, row j's elements 8v + 2p + h in nibble p = 2s (low) and 2s + 1 (high). So
// v & 0x0f gives, in lane j's four bytes, row j's elements 8v + {0, 4, 1, 5}, and (v >> 4) & 0x0f
// its elements 8v + {2, 6, 3, 7}: no shuffle. The activations are quantized the same way as for
// the other kernels (quantize_rows_q4_relaxed: same codes, scales and sums) and stored as bytes
// in that element order (per eight: 0 4 1 5 2 6 3 7), so four of them broadcast to every lane
// meet the four rows' matching weights. Tokens are stored in quads (relaxed_unit below): a quad's
// four codes of one block are 128 contiguous bytes, so the prefill tile reaches all four tokens
// from one address with constant offsets.
//
// Two formulations of the integer accumulation, the same integers (so the same bits) either way,
// selected per kernel by a constant `form` argument of the shared inline code below:
// - DOT_PAIRS (gemm_q4_relaxed, gemm_panel_q4_relaxed): i16x8.relaxed_dot_i8x16_i7x16_s, the
//   pair sums added in int16, widened once per block by a dot with ones. On x86 without
//   AVX-VNNI V8 lowers the dot to one pmaddubsw, so this is the fastest form there.
// - DOT_ADD (gemm_q4_relaxed_dot_add, gemm_panel_q4_relaxed_dot_add):
//   i32x4.relaxed_dot_i8x16_i7x16_add_s, four products and the accumulator into int32 lanes, no
//   int16 adds and no widening. V8 lowers it to one sdot on arm64 with DOTPROD (Apple M-series,
//   Cortex-A76/A55 and later) and one vpdpbusd on x64 with AVX-VNNI (Alder Lake and later, Zen 5),
//   where the pairs form takes four instructions (arm64: smull, smull2, addp, add); on x64 without
//   AVX-VNNI it is pmaddubsw + pmaddwd(ones) + paddd, slower than the pairs form.
// Which one a host runs is measured when a session is created (dot-form.ts); results never depend
// on it. Why dot-add is exact on every host: its second operand is a weight code 0..15 (GEMV) or
// 0..30 (panel), never with the top bit set, so signed and unsigned readings agree (sdot reads it
// signed, vpdpbusd and pmaddubsw unsigned); its first is an activation code in [-127, 127]; a pair
// of products is within 2 x 30 x 127 = 7620, so x86's fallback pmaddubsw (which saturates pair
// sums to int16) never saturates, and pmaddwd, vpdpbusd, sdot and arm64's fallback
// (smull/smull2/addp/saddlp/add) are exact integer sums; a block's int32 lane stays within
// 15 x 32 x 127 + 32 x 30 x 127 < 2^18 at every step (the start, then the partial sums), far
// from wrapping.
//
// Arithmetic: per block and output row, the integer dot(code - zero, a) reduced completely
// (integer, so the order is immaterial; the GEMV subtracts zero · sum(a), the prefill panel
// offsets its codes, see unpack_relaxed_panel), then the one float step
// acc += float(dot) * (scale_w * scale_a), block after block: gemm_q4's formula, so the same bits
// as gemm_q4 / gemm_panel_q4 for every output, any split, any host.
#include "gemm-panel.h"

#ifdef __wasm_relaxed_simd__

typedef signed char relaxed_i8x16 __attribute__((vector_size(16)));

/** int16 lane i: a[2i] · w[2i] + a[2i + 1] · w[2i + 1], within ±3810 (no host saturates it). */
static inline v128_t dot_pairs(v128_t a, v128_t w) {
  return (v128_t)__builtin_wasm_relaxed_dot_i8x16_i7x16_s_i16x8((relaxed_i8x16)a, (relaxed_i8x16)w);
}

/**
 * int32 lane i: acc[i] + a[4i..4i+3] . w[4i..4i+3] (the four products within 4 x 30 x 127; exact on
 * every host, see the file comment).
 */
static inline v128_t dot_add(v128_t a, v128_t w, v128_t acc) {
  return (v128_t)__builtin_wasm_relaxed_dot_i8x16_i7x16_add_s_i32x4((relaxed_i8x16)a, (relaxed_i8x16)w,
                                                                    (__i32x4)acc);
}

/** The two accumulation forms (see the file comment); always a compile-time constant. */
#define DOT_PAIRS 0
#define DOT_ADD 1

/** Bytes per group of four rows and block of 32, in the grouped layout (gemv-q4.c). */
#define GROUP_BLOCK_BYTES 64
/**
 * Blocks per panel chunk: 8 rows x 128 blocks x 32 bytes = 32 KiB of codes (plus 4 KiB of weight scales),
 * on the stack (a helper thread's stack is 64 KiB). 128 makes k = 3584 (Qwen3.5-0.8B's MLP down
 * projection, 112 blocks) one chunk, so its running sums are not stored to y and reloaded between
 * chunks; measured with the per-step pointers in run_tile (docs/wasm-engine.md, Prefill).
 */
#define RELAXED_PANEL_BLOCKS 128

/** The four zero-point bytes as int32 lanes (the low int16 of each, for i32x4.dot_i16x8_s). */
static inline v128_t load_zero4(const uint8_t *zero4) {
  return wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(zero4)));
}

/** One block's float step for four rows (lane j = row j): acc + float(dot) * (scale_w * scale_a). */
static inline v128_t float_step(v128_t acc, v128_t dot, v128_t w_scales, v128_t a_scale) {
  return wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot), wasm_f32x4_mul(w_scales, a_scale)));
}

/**
 * One block's integer dot(code, a) for the GEMV's four rows (lane j = row j), before the zero
 * point: `form` picks the accumulation (exact either way, see the file comment).
 */
static inline __attribute__((always_inline)) v128_t gemv_block_dot(int form, const uint8_t *wb, const int8_t *ab,
                                                                   v128_t mask, v128_t ones) {
  if (form == DOT_ADD) {
    // Two independent int32 chains (low and high nibbles), so a host's dot latency is not one
    // chain of eight; integer adds, so how they are grouped changes nothing.
    v128_t low = wasm_i32x4_splat(0), high = wasm_i32x4_splat(0);
    for (int v = 0; v < 4; v++) {
      v128_t x = wasm_v128_load(wb + 16 * v);
      low = dot_add(wasm_v128_load32_splat(ab + 8 * v), wasm_v128_and(x, mask), low);
      high = dot_add(wasm_v128_load32_splat(ab + 8 * v + 4), wasm_v128_and(wasm_u16x8_shr(x, 4), mask), high);
    }
    return wasm_i32x4_add(low, high);
  }
  // The eight pair dots summed in int16 (|sum| <= 8 pairs x 3810 < 2^15 per lane, exact), widened
  // once by a dot with ones.
  v128_t pairs[4];
  for (int v = 0; v < 4; v++) {
    v128_t x = wasm_v128_load(wb + 16 * v);
    pairs[v] = wasm_i16x8_add(dot_pairs(wasm_v128_load32_splat(ab + 8 * v), wasm_v128_and(x, mask)),
                              dot_pairs(wasm_v128_load32_splat(ab + 8 * v + 4),
                                        wasm_v128_and(wasm_u16x8_shr(x, 4), mask)));
  }
  v128_t s = wasm_i16x8_add(wasm_i16x8_add(pairs[0], pairs[1]), wasm_i16x8_add(pairs[2], pairs[3]));
  return wasm_i32x4_dot_i16x8(s, ones);
}

/** The GEMV of both forms (see gemm_q4_relaxed). */
static inline __attribute__((always_inline)) void gemv_q4_relaxed(int form, const uint8_t *weights,
                                                                  const float *weight_scales,
                                                                  const uint8_t *zero_points, int n_total,
                                                                  int blocks, const int8_t *codes,
                                                                  const float *scales, const int32_t *sums,
                                                                  int rows, float *y, int n_begin, int n_end) {
  // The masks and ones from an argument, so the compiler keeps them in registers (see gemv-q4.c).
  const v128_t mask = wasm_i8x16_splat((int8_t)(0x0f | (blocks >> 30)));
  const v128_t ones = wasm_i16x8_splat((int16_t)(1 | (blocks >> 30)));
  const int64_t group_bytes = (int64_t)blocks * GROUP_BLOCK_BYTES;
  for (int n = n_begin; n < n_end; n += 4) {
    const uint8_t *w = weights + (int64_t)(n >> 2) * group_bytes;
    const float *ws = weight_scales + (int64_t)(n >> 2) * blocks * 4;
    const uint8_t *wz = zero_points + (int64_t)(n >> 2) * blocks * 4;
    int valid = n_end - n < 4 ? n_end - n : 4;
    for (int r = 0; r < rows; r++) {
      // Token r's blocks are `stride` units apart in its quad.
      int64_t unit = relaxed_unit(r, 0, rows, blocks);
      int stride = relaxed_quad_size(r, rows);
      const int8_t *a = codes + unit * BLOCK;
      const float *as = scales + unit;
      const int32_t *asum = sums + unit;
      v128_t acc = wasm_f32x4_splat(0.0f);
      for (int b = 0; b < blocks; b++) {
        const uint8_t *wb = w + b * GROUP_BLOCK_BYTES;
        const int8_t *ab = a + (int64_t)b * stride * BLOCK;
        PANEL_OPAQUE(wb);
        PANEL_OPAQUE(ab);
        // Minus zero · sum(a) (zero j in the low int16 of lane j; |sum(a)| <= 32 · 127 < 2^15).
        v128_t dot = wasm_i32x4_sub(gemv_block_dot(form, wb, ab, mask, ones),
                                    wasm_i32x4_dot_i16x8(load_zero4(wz + b * 4), wasm_v128_load32_splat(asum + b * stride)));
        acc = float_step(acc, dot, wasm_v128_load(ws + b * 4), wasm_v128_load32_splat(as + b * stride));
      }
      store_lanes(y + (int64_t)r * n_total + n, acc, valid);
    }
  }
}

/**
 * The decode product (and prompts of fewer than four tokens): y[r, n] for r < rows, n in
 * [n_begin, n_end), y [rows, n_total]. Arguments as gemm_q4's, with codes / scales / sums from
 * quantize_rows_q4_relaxed (quad layout: relaxed_unit). n_begin is a multiple of 4. The pairs form.
 */
EXPORT(gemm_q4_relaxed)
void gemm_q4_relaxed(const uint8_t *weights, const float *weight_scales, const uint8_t *zero_points, int n_total,
                     int blocks, const int8_t *codes, const float *scales, const int32_t *sums, int rows, float *y,
                     int n_begin, int n_end) {
  gemv_q4_relaxed(DOT_PAIRS, weights, weight_scales, zero_points, n_total, blocks, codes, scales, sums, rows, y,
                  n_begin, n_end);
}

/** gemm_q4_relaxed on the dot-add form: the same arguments, the same bytes. */
EXPORT(gemm_q4_relaxed_dot_add)
void gemm_q4_relaxed_dot_add(const uint8_t *weights, const float *weight_scales, const uint8_t *zero_points,
                             int n_total, int blocks, const int8_t *codes, const float *scales, const int32_t *sums,
                             int rows, float *y, int n_begin, int n_end) {
  gemv_q4_relaxed(DOT_ADD, weights, weight_scales, zero_points, n_total, blocks, codes, scales, sums, rows, y,
                  n_begin, n_end);
}

/**
 * Unpacks `groups` (1 or 2) groups of four rows from row n, blocks [b0, b0 + nb), into the panel:
 * per (block, group) eight vectors (the low and high nibbles of each of the group block's four
 * vectors as bytes code - zero + PANEL_CODE_OFFSET, 0..30) at panel + (b * groups + g) * 128, and
 * beside them, at [b * groups + g], the four weight scales: everything a tile reads per block sits
 * at constant offsets from the block's base.
 *
 * Why the offset: the zero points leave the tile's inner loop. dot(code - zero, a) is then
 * dot(code - zero + 15, a) - 15 · sum(a), and the second term is the same for every row, so it is
 * the start value of the token's int16 sums (quantize_rows_q4_relaxed's starts), not a multiply
 * per row group and block: measured 1.10-1.12x on Qwen3.5-0.8B's shapes (512 tokens, one thread),
 * as the integer multiplies are what the tile is bound by.
 */
static inline void unpack_relaxed_panel(const uint8_t *weights, const float *weight_scales,
                                        const uint8_t *zero_points, int blocks, int n, int groups, int b0, int nb,
                                        v128_t mask, uint8_t *panel, v128_t *w_scales) {
  const int64_t group_bytes = (int64_t)blocks * GROUP_BLOCK_BYTES;
  const v128_t offset = wasm_i8x16_splat(PANEL_CODE_OFFSET);
  for (int b = 0; b < nb; b++)
    for (int g = 0; g < groups; g++) {
      int64_t group = (n >> 2) + g;
      const uint8_t *w = weights + group * group_bytes + (int64_t)(b0 + b) * GROUP_BLOCK_BYTES;
      uint8_t *out = panel + (b * groups + g) * 128;
      // Row j's zero point in lane j's four bytes (the grouped layout's rows, see above).
      v128_t zeros = wasm_i8x16_swizzle(wasm_v128_load32_zero(zero_points + (group * blocks + b0 + b) * 4),
                                        wasm_i8x16_make(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3));
      v128_t shift = wasm_i8x16_sub(offset, zeros);
      for (int v = 0; v < 4; v++) {
        v128_t x = wasm_v128_load(w + 16 * v);
        wasm_v128_store(out + 32 * v, wasm_i8x16_add(wasm_v128_and(x, mask), shift));
        wasm_v128_store(out + 32 * v + 16, wasm_i8x16_add(wasm_v128_and(wasm_u16x8_shr(x, 4), mask), shift));
      }
      w_scales[b * groups + g] = wasm_v128_load(weight_scales + (group * blocks + b0 + b) * 4);
    }
}

/**
 * The prefill tile: `tokens` (4: a whole quad, or 1) tokens x `groups` (2 or 1) groups of the
 * panel, blocks [0, nb), accumulating into acc[t * groups + g]. a / as / start: the first token's
 * codes, scale and start at the chunk's first block, `stride` units per block (relaxed_unit).
 * `form` DOT_PAIRS: `start` is quantize_rows_q4_relaxed's starts (the -15 · sum(a) int16 pair),
 * `constant` int16 ones (the widening); DOT_ADD: `start` is its sums, `constant` int32 -15 (the
 * int32 start is -15 · sum(a), one multiply per token and block, shared by both groups).
 *
 * Per block, every panel vector is loaded once for all the tile's tokens and every broadcast of
 * four codes is used once per group: with four tokens and two groups, eight sums (int16 pairs or
 * int32), two panel vectors and one broadcast are live, which fits V8's x64 vector registers.
 * Measured on Qwen3.5-0.8B's shapes (512 tokens, one thread, pairs form): 1.3-1.4x the
 * four-tokens-over-one-group tile it replaces. Left as a loop over the eight vectors of a block:
 * unrolling it (fully or by 2) measured slower, as V8 then spills the sums. The dot-add form keeps
 * the same tile: arm64's 32 vector registers would hold four groups (sixteen sums), but that
 * cannot be measured here, and on x64 it would spill.
 */
static inline __attribute__((always_inline)) void run_tile(int form, int tokens, int groups, const uint8_t *panel,
                                                           const v128_t *w_scales, const int8_t *a, const float *as,
                                                           const int32_t *start, int stride, int nb,
                                                           v128_t constant, v128_t *acc) {
  for (int b = 0; b < nb; b++) {
    const uint8_t *w = panel + b * groups * 128;
    const int8_t *ab = a + (int64_t)b * stride * BLOCK;
    PANEL_OPAQUE(w);
    PANEL_OPAQUE(ab);
    // Every group's sums of token t start from -15 · sum(a) (see unpack_relaxed_panel).
    // (The pairs form loads its start once per group, as it always did: sharing one load measured
    // ~2 % slower there, V8 then copying registers.)
    v128_t s[8];
    for (int t = 0; t < tokens; t++) {
      if (form == DOT_ADD) {
        v128_t first = wasm_i32x4_mul(wasm_v128_load32_splat(start + b * stride + t), constant);
        for (int g = 0; g < groups; g++) s[t * groups + g] = first;
      } else
        for (int g = 0; g < groups; g++) s[t * groups + g] = wasm_v128_load32_splat(start + b * stride + t);
    }
#pragma clang loop unroll(disable)
    for (int u = 0; u < 8; u++) {
      // One opaque pointer per step into the panel and one into the codes, so every load of the
      // step is a constant offset from it: otherwise clang adds each broadcast's offset with an
      // i32.add (it cannot prove the sum does not wrap) and V8 emits a lea before every load, about
      // one instruction in six of the step (V8's x64 code, counted).
      const uint8_t *wu = w + 16 * u;
      const int8_t *au = ab + 4 * u;
      PANEL_OPAQUE(wu);
      PANEL_OPAQUE(au);
      v128_t w0 = wasm_v128_load(wu);
      v128_t w1 = groups == 2 ? wasm_v128_load(wu + 128) : w0;
      for (int t = 0; t < tokens; t++) {
        v128_t x = wasm_v128_load32_splat(au + BLOCK * t);
        if (form == DOT_ADD) {
          s[t * groups] = dot_add(x, w0, s[t * groups]);
          if (groups == 2) s[t * groups + 1] = dot_add(x, w1, s[t * groups + 1]);
        } else {
          s[t * groups] = wasm_i16x8_add(s[t * groups], dot_pairs(x, w0));
          if (groups == 2) s[t * groups + 1] = wasm_i16x8_add(s[t * groups + 1], dot_pairs(x, w1));
        }
      }
    }
    // Pairs: each lane's int16 pair, now dot(code - zero, a) in halves (each within 16 x 15 x 127
    // < 2^15, so the wrapping int16 adds above are exact), widened by a dot with ones. Dot-add:
    // each lane is already dot(code - zero, a) in int32.
    for (int t = 0; t < tokens; t++) {
      v128_t a_scale = wasm_v128_load32_splat(as + b * stride + t);
      for (int g = 0; g < groups; g++) {
        v128_t dot = form == DOT_ADD ? s[t * groups + g] : wasm_i32x4_dot_i16x8(s[t * groups + g], constant);
        acc[t * groups + g] = float_step(acc[t * groups + g], dot, w_scales[b * groups + g], a_scale);
      }
    }
  }
}

/**
 * One tile over the chunk: loads its running sums from y (or starts them at 0 on the first chunk),
 * runs it, stores them back. Tokens [t, t + tokens), all `groups` groups of the panel at row
 * n, of whose 4 * groups rows `valid` are real.
 */
static inline __attribute__((always_inline)) void tile_pass(int form, int tokens, int groups, const uint8_t *panel,
                                                            const v128_t *w_scales, int n_total,
                                                            int blocks, const int8_t *codes, const float *scales,
                                                            const int32_t *starts, int rows, float *y, int n, int valid,
                                                            int b0, int nb, int t, v128_t constant) {
  int64_t unit = relaxed_unit(t, b0, rows, blocks);
  // A four-token tile is a whole quad: the constant lets every address in the tile fold.
  int stride = tokens == 4 ? 4 : relaxed_quad_size(t, rows);
  v128_t acc[8];
  for (int i = 0; i < tokens; i++)
    for (int g = 0; g < groups; g++) {
      int lanes = valid - 4 * g < 4 ? valid - 4 * g : 4;
      float *yt = y + (int64_t)(t + i) * n_total + n + 4 * g;
      acc[i * groups + g] = b0 == 0 ? wasm_f32x4_splat(0.0f) : load_lanes(yt, lanes);
    }
  run_tile(form, tokens, groups, panel, w_scales, codes + unit * BLOCK,
           scales + unit, starts + unit, stride, nb, constant, acc);
  for (int i = 0; i < tokens; i++)
    for (int g = 0; g < groups; g++) {
      int lanes = valid - 4 * g < 4 ? valid - 4 * g : 4;
      store_lanes(y + (int64_t)(t + i) * n_total + n + 4 * g, acc[i * groups + g], lanes);
    }
}

/** Every token over the chunk's panel: whole quads four at a time, a last partial quad's tokens one by one. */
static inline __attribute__((always_inline)) void panel_pass(int form, int groups, const uint8_t *panel,
                                                             const v128_t *w_scales, int n_total, int blocks,
                                                             const int8_t *codes, const float *scales,
                                                             const int32_t *starts, int rows, float *y, int n, int valid,
                                                             int b0, int nb, v128_t constant) {
  int t = 0;
  for (; t + 4 <= rows; t += 4)
    tile_pass(form, 4, groups, panel, w_scales, n_total, blocks, codes, scales, starts, rows, y, n, valid, b0, nb,
              t, constant);
  for (; t < rows; t++)
    tile_pass(form, 1, groups, panel, w_scales, n_total, blocks, codes, scales, starts, rows, y, n, valid, b0, nb,
              t, constant);
}

/**
 * The prefill product of both forms: eight rows unpacked once per chunk of k, then every token
 * over them, a whole quad at a time (tile_pass with four tokens), the tokens of a last partial quad
 * one by one. `starts`: quantize_rows_q4_relaxed's starts (DOT_PAIRS) or sums (DOT_ADD).
 */
static inline __attribute__((always_inline)) void panel_q4_relaxed(int form, const uint8_t *weights,
                                                                   const float *weight_scales,
                                                                   const uint8_t *zero_points, int n_total,
                                                                   int blocks, const int8_t *codes,
                                                                   const float *scales, const int32_t *starts,
                                                                   int rows, float *y, int n_begin, int n_end) {
  const v128_t mask = wasm_i8x16_splat((int8_t)(0x0f | (blocks >> 30)));
  const v128_t constant = form == DOT_ADD ? wasm_i32x4_splat(-PANEL_CODE_OFFSET | (blocks >> 30))
                                          : wasm_i16x8_splat((int16_t)(1 | (blocks >> 30)));
  uint8_t panel[2 * RELAXED_PANEL_BLOCKS * 128] __attribute__((aligned(16)));
  v128_t w_scales[2 * RELAXED_PANEL_BLOCKS];
  for (int n = n_begin; n < n_end;) {
    int groups = n + 8 <= n_end ? 2 : 1;
    int valid = n_end - n < 4 * groups ? n_end - n : 4 * groups;
    for (int b0 = 0; b0 < blocks; b0 += RELAXED_PANEL_BLOCKS) {
      int nb = blocks - b0 < RELAXED_PANEL_BLOCKS ? blocks - b0 : RELAXED_PANEL_BLOCKS;
      unpack_relaxed_panel(weights, weight_scales, zero_points, blocks, n, groups, b0, nb, mask, panel,
                           w_scales);
      // Two call sites with constant group counts, so each inlined copy has no branch per block.
      if (groups == 2)
        panel_pass(form, 2, panel, w_scales, n_total, blocks, codes, scales, starts, rows, y, n, valid, b0, nb,
                   constant);
      else
        panel_pass(form, 1, panel, w_scales, n_total, blocks, codes, scales, starts, rows, y, n, valid, b0, nb,
                   constant);
    }
    n += groups * 4;
  }
}

/**
 * The prefill product, pairs form. Arguments as gemm_q4_relaxed's, with quantize_rows_q4_relaxed's
 * starts in place of its sums.
 */
EXPORT(gemm_panel_q4_relaxed)
void gemm_panel_q4_relaxed(const uint8_t *weights, const float *weight_scales, const uint8_t *zero_points,
                           int n_total, int blocks, const int8_t *codes, const float *scales, const int32_t *starts,
                           int rows, float *y, int n_begin, int n_end) {
  panel_q4_relaxed(DOT_PAIRS, weights, weight_scales, zero_points, n_total, blocks, codes, scales, starts, rows, y,
                   n_begin, n_end);
}

/**
 * The prefill product, dot-add form: gemm_panel_q4_relaxed's bytes. Arguments exactly as
 * gemm_q4_relaxed's (it takes the sums, not the starts: its int32 start is -15 · sum).
 */
EXPORT(gemm_panel_q4_relaxed_dot_add)
void gemm_panel_q4_relaxed_dot_add(const uint8_t *weights, const float *weight_scales,
                                   const uint8_t *zero_points, int n_total, int blocks, const int8_t *codes,
                                   const float *scales, const int32_t *sums, int rows, float *y, int n_begin,
                                   int n_end) {
  panel_q4_relaxed(DOT_ADD, weights, weight_scales, zero_points, n_total, blocks, codes, scales, sums, rows, y,
                   n_begin, n_end);
}

#endif
