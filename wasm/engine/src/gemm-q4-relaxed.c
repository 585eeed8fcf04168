// The 4-bit matrix products on relaxed SIMD's integer dot product (engine-relaxed.wasm and
// engine-threads-relaxed.wasm only; the plain modules compile this file to nothing).
//
// i16x8.relaxed_dot_i8x16_i7x16_s multiplies sixteen signed bytes by sixteen bytes of its second
// operand and adds adjacent pairs into 16-bit lanes. It is "relaxed" only for a second operand
// with the top bit set (a host may read it as signed or unsigned) and where a pair sum could
// saturate 16 bits (x86's pmaddubsw). Here the second operand is always a weight code 0..15 and
// the first an activation code in [-127, 127]: every pair sum is within ±3810, so every host
// computes the same exact integer. One instruction per sixteen multiply-adds where the i16 path
// (i32x4.dot_i16x8_s) needs two, and the codes stay bytes.
//
// Layouts. Weights are gemv-q4.c's grouped layout unchanged: a group block's vector v holds, in
// byte 4j + 2h + s, row j's elements 8v + 2p + h in nibble p = 2s (low) and 2s + 1 (high). So
// v & 0x0f gives, in lane j's four bytes, row j's elements 8v + {0, 4, 1, 5}, and (v >> 4) & 0x0f
// its elements 8v + {2, 6, 3, 7}: no shuffle. The activations are quantized the same way as for
// the other kernels (quantize_rows_q4_relaxed: same codes, scales and sums) and stored as bytes
// in that element order (per eight: 0 4 1 5 2 6 3 7), so four of them broadcast to every lane
// meet the four rows' matching weights.
//
// Arithmetic: per block and output row, the integer dot(code, a) reduced completely (integer, so
// the order is immaterial), minus zero · sum(a) exactly, then the one float step
// acc += float(dot) * (scale_w * scale_a), block after block: gemm_q4's formula, so the same bits
// as gemm_q4 / gemm_panel_q4 for every output, any split, any host.
#include "gemm-panel.h"

#ifdef __wasm_relaxed_simd__

typedef signed char relaxed_i8x16 __attribute__((vector_size(16)));

/** int16 lane i: a[2i] · w[2i] + a[2i + 1] · w[2i + 1], within ±3810 (no host saturates it). */
static inline v128_t dot_pairs(v128_t a, v128_t w) {
  return (v128_t)__builtin_wasm_relaxed_dot_i8x16_i7x16_s_i16x8((relaxed_i8x16)a, (relaxed_i8x16)w);
}

/** Bytes per group of four rows and block of 32, in the grouped layout (gemv-q4.c). */
#define GROUP_BLOCK_BYTES 64
/** Blocks per panel chunk: 8 rows x 64 blocks x 32 bytes = 16 KiB of codes. */
#define RELAXED_PANEL_BLOCKS 64

/** zero · sum (lane j: z_j · s) as one i32x4.dot_i16x8_s: z_j in the low int16 of lane j, |s| < 2^15. */
static inline v128_t zero_term(v128_t z32, const int32_t *sum) {
  return wasm_i32x4_dot_i16x8(z32, wasm_v128_load32_splat(sum));
}

/** The four zero-point bytes as int32 lanes. */
static inline v128_t load_zero4(const uint8_t *zero4) {
  return wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(zero4)));
}

static inline v128_t accumulate(v128_t acc, v128_t dot, const float *w_scales, v128_t a_scale) {
  return wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot),
                                            wasm_f32x4_mul(wasm_v128_load(w_scales), a_scale)));
}

/**
 * The decode product (and short prompts): y[r, n] for r < rows, n in [n_begin, n_end), y
 * [rows, n_total]. Arguments as gemm_q4's, with codes / scales / sums from
 * quantize_rows_q4_relaxed. n_begin is a multiple of 4.
 */
EXPORT(gemm_q4_relaxed)
void gemm_q4_relaxed(const uint8_t *weights, const float *weight_scales, const uint8_t *zero_points, int n_total,
                     int blocks, const int8_t *codes, const float *scales, const int32_t *sums, int rows, float *y,
                     int n_begin, int n_end) {
  // The nibble mask from an argument, so the compiler keeps it in a register (see gemv-q4.c).
  const v128_t mask = wasm_i8x16_splat((int8_t)(0x0f | (blocks >> 30)));
  const int64_t group_bytes = (int64_t)blocks * GROUP_BLOCK_BYTES;
  for (int n = n_begin; n < n_end; n += 4) {
    const uint8_t *w = weights + (int64_t)(n >> 2) * group_bytes;
    const float *ws = weight_scales + (int64_t)(n >> 2) * blocks * 4;
    const uint8_t *wz = zero_points + (int64_t)(n >> 2) * blocks * 4;
    int valid = n_end - n < 4 ? n_end - n : 4;
    for (int r = 0; r < rows; r++) {
      const int8_t *a = codes + (int64_t)r * blocks * BLOCK;
      const float *as = scales + (int64_t)r * blocks;
      const int32_t *asum = sums + (int64_t)r * blocks;
      v128_t acc = wasm_f32x4_splat(0.0f);
      for (int b = 0; b < blocks; b++) {
        const uint8_t *wb = w + b * GROUP_BLOCK_BYTES;
        const int8_t *ab = a + b * BLOCK;
        PANEL_OPAQUE(wb);
        PANEL_OPAQUE(ab);
        // The eight pair dots summed in int16 (exact, see panel_dot), widened once.
        v128_t pairs[4];
        for (int v = 0; v < 4; v++) {
          v128_t x = wasm_v128_load(wb + 16 * v);
          pairs[v] = wasm_i16x8_add(dot_pairs(wasm_v128_load32_splat(ab + 8 * v), wasm_v128_and(x, mask)),
                                    dot_pairs(wasm_v128_load32_splat(ab + 8 * v + 4),
                                              wasm_v128_and(wasm_u16x8_shr(x, 4), mask)));
        }
        v128_t d = wasm_i32x4_extadd_pairwise_i16x8(
            wasm_i16x8_add(wasm_i16x8_add(pairs[0], pairs[1]), wasm_i16x8_add(pairs[2], pairs[3])));
        v128_t dot = wasm_i32x4_sub(d, zero_term(load_zero4(wz + b * 4), asum + b));
        acc = accumulate(acc, dot, ws + b * 4, wasm_f32x4_splat(as[b]));
      }
      store_lanes(y + (int64_t)r * n_total + n, acc, valid);
    }
  }
}

/**
 * Unpacks `count` rows (4 or 8) x blocks [b0, b0 + nb) of row n onward into the panel: per
 * (block, group) eight vectors (the low and high nibbles of each of the group block's four
 * vectors, codes 0..15 as bytes) at panel + (b * groups + g) * 128, and the four zero points as
 * int32 lanes at zeros[b * groups + g].
 */
static inline void unpack_relaxed_panel(const uint8_t *weights, const uint8_t *zero_points, int blocks, int n,
                                        int groups, int b0, int nb, v128_t mask, uint8_t *panel, v128_t *zeros) {
  const int64_t group_bytes = (int64_t)blocks * GROUP_BLOCK_BYTES;
  for (int b = 0; b < nb; b++)
    for (int g = 0; g < groups; g++) {
      int64_t group = (n >> 2) + g;
      const uint8_t *w = weights + group * group_bytes + (int64_t)(b0 + b) * GROUP_BLOCK_BYTES;
      uint8_t *out = panel + (b * groups + g) * 128;
      for (int v = 0; v < 4; v++) {
        v128_t x = wasm_v128_load(w + 16 * v);
        wasm_v128_store(out + 32 * v, wasm_v128_and(x, mask));
        wasm_v128_store(out + 32 * v + 16, wasm_v128_and(wasm_u16x8_shr(x, 4), mask));
      }
      zeros[b * groups + g] = load_zero4(zero_points + (group * blocks + b0 + b) * 4);
    }
}

/**
 * The integer block dot of one group (lane j = row j) from its panel vectors and the token's
 * broadcasts. The eight pair dots are added in int16 (each lane gets eight pair sums of at most
 * 2 · 127 · 15 in magnitude: |sum| <= 30480 < 2^15, exact), then widened once: three
 * instructions fewer per vector than the int32 form where the host lowers the relaxed dot to
 * pmaddubsw (x86 without AVX-VNNI).
 */
static inline v128_t panel_dot(const uint8_t *w, const v128_t *a) {
  v128_t s0 = wasm_i16x8_add(dot_pairs(a[0], wasm_v128_load(w)), dot_pairs(a[1], wasm_v128_load(w + 16)));
  v128_t s1 = wasm_i16x8_add(dot_pairs(a[2], wasm_v128_load(w + 32)), dot_pairs(a[3], wasm_v128_load(w + 48)));
  v128_t s2 = wasm_i16x8_add(dot_pairs(a[4], wasm_v128_load(w + 64)), dot_pairs(a[5], wasm_v128_load(w + 80)));
  v128_t s3 = wasm_i16x8_add(dot_pairs(a[6], wasm_v128_load(w + 96)), dot_pairs(a[7], wasm_v128_load(w + 112)));
  return wasm_i32x4_extadd_pairwise_i16x8(wasm_i16x8_add(wasm_i16x8_add(s0, s1), wasm_i16x8_add(s2, s3)));
}

/**
 * The block dots of two tokens (codes a, c) over `groups` (1 or 2) groups of the panel at w, into
 * out[token * 2 + group]. One panel vector and one broadcast at a time, each used at once by
 * every (token, group) pair it meets: the live values stay few (4 int16 sums, 2 broadcasts, 2
 * panel vectors), so V8 keeps them all in registers.
 */
static inline __attribute__((always_inline)) void panel_dot_2x(const uint8_t *w, const int8_t *a, const int8_t *c,
                                                               int groups, v128_t out[4]) {
  v128_t s00 = wasm_i16x8_splat(0), s01 = s00, s10 = s00, s11 = s00;
  for (int u = 0; u < 8; u++) {
    v128_t sa = wasm_v128_load32_splat(a + 4 * u), sc = wasm_v128_load32_splat(c + 4 * u);
    v128_t w0 = wasm_v128_load(w + 16 * u);
    s00 = wasm_i16x8_add(s00, dot_pairs(sa, w0));
    s10 = wasm_i16x8_add(s10, dot_pairs(sc, w0));
    if (groups == 2) {
      v128_t w1 = wasm_v128_load(w + 128 + 16 * u);
      s01 = wasm_i16x8_add(s01, dot_pairs(sa, w1));
      s11 = wasm_i16x8_add(s11, dot_pairs(sc, w1));
    }
  }
  out[0] = wasm_i32x4_extadd_pairwise_i16x8(s00);
  out[1] = wasm_i32x4_extadd_pairwise_i16x8(s01);
  out[2] = wasm_i32x4_extadd_pairwise_i16x8(s10);
  out[3] = wasm_i32x4_extadd_pairwise_i16x8(s11);
}

/**
 * Four tokens (codes a[0..3], blocks [0, nb)) over one group of the panel (w: its first block,
 * `stride` bytes between blocks), accumulating into acc[0..3]: each panel vector is loaded once
 * for the four tokens.
 */
static inline __attribute__((always_inline)) void run_group_4x(const uint8_t *w, int stride, const v128_t *zeros,
                                                               int zstride, const float *ws, int blocks,
                                                               const int8_t *a, const float *as, const int32_t *asum,
                                                               int nb, v128_t acc[4]) {
  for (int b = 0; b < nb; b++) {
    const uint8_t *wb = w + b * stride;
    const int8_t *ab = a + b * BLOCK;
    PANEL_OPAQUE(wb);
    PANEL_OPAQUE(ab);
    v128_t s0 = wasm_i16x8_splat(0), s1 = s0, s2 = s0, s3 = s0;
    for (int u = 0; u < 8; u++) {
      v128_t x = wasm_v128_load(wb + 16 * u);
      s0 = wasm_i16x8_add(s0, dot_pairs(wasm_v128_load32_splat(ab + 4 * u), x));
      s1 = wasm_i16x8_add(s1, dot_pairs(wasm_v128_load32_splat(ab + (int64_t)blocks * BLOCK + 4 * u), x));
      s2 = wasm_i16x8_add(s2, dot_pairs(wasm_v128_load32_splat(ab + (int64_t)2 * blocks * BLOCK + 4 * u), x));
      s3 = wasm_i16x8_add(s3, dot_pairs(wasm_v128_load32_splat(ab + (int64_t)3 * blocks * BLOCK + 4 * u), x));
    }
    v128_t z = zeros[b * zstride];
    v128_t sums[4] = {s0, s1, s2, s3};
    for (int t = 0; t < 4; t++) {
      v128_t dot = wasm_i32x4_sub(wasm_i32x4_extadd_pairwise_i16x8(sums[t]),
                                  wasm_i32x4_dot_i16x8(z, wasm_v128_load32_splat(asum + t * blocks + b)));
      acc[t] = accumulate(acc[t], dot, ws + b * 4, wasm_f32x4_splat(as[t * blocks + b]));
    }
  }
}

/**
 * Every token over one panel of `groups` (1 or 2) groups; as run_q4_panel in gemm-q4.c. Tokens
 * go four at a time over each group (measured 1.06x the whole prefill against two at a time over
 * both groups), then two, then one; every output keeps its one order of blocks.
 */
static inline __attribute__((always_inline)) void run_relaxed_panel(
    const uint8_t *panel, const v128_t *zeros, const float *weight_scales, int n_total, int blocks,
    const int8_t *codes, const float *scales, const int32_t *sums, int rows, float *y, int n, int groups, int valid,
    int b0, int nb, int first) {
  const float *ws0 = weight_scales + ((int64_t)(n >> 2) * blocks + b0) * 4;
  const float *ws1 = ws0 + (int64_t)blocks * 4;
  int t = 0;
  // Four tokens per pass over each group of the panel.
  for (; t + 4 <= rows; t += 4) {
    const int8_t *a = codes + ((int64_t)t * blocks + b0) * BLOCK;
    const float *as = scales + (int64_t)t * blocks + b0;
    const int32_t *asum = sums + (int64_t)t * blocks + b0;
    for (int g = 0; g < groups; g++) {
      int lanes = g == 0 ? (valid < 4 ? valid : 4) : 4;
      v128_t acc[4];
      for (int i = 0; i < 4; i++)
        acc[i] = first ? wasm_f32x4_splat(0.0f) : load_lanes(y + (int64_t)(t + i) * n_total + n + 4 * g, lanes);
      run_group_4x(panel + g * 128, groups * 128, zeros + g, groups, g == 0 ? ws0 : ws1, blocks, a, as, asum, nb,
                   acc);
      for (int i = 0; i < 4; i++) store_lanes(y + (int64_t)(t + i) * n_total + n + 4 * g, acc[i], lanes);
    }
  }
  // Two tokens per pass over the panel: each panel vector is loaded once for both.
  for (; t + 2 <= rows; t += 2) {
    const int8_t *a = codes + ((int64_t)t * blocks + b0) * BLOCK;
    const int8_t *c = a + (int64_t)blocks * BLOCK;
    const float *as = scales + (int64_t)t * blocks + b0;
    const int32_t *asum = sums + (int64_t)t * blocks + b0;
    float *yt = y + (int64_t)t * n_total + n;
    float *yc = yt + n_total;
    v128_t acc0 = first ? wasm_f32x4_splat(0.0f) : load_lanes(yt, valid);
    v128_t acc1 = first || groups < 2 ? wasm_f32x4_splat(0.0f) : wasm_v128_load(yt + 4);
    v128_t acc2 = first ? wasm_f32x4_splat(0.0f) : load_lanes(yc, valid);
    v128_t acc3 = first || groups < 2 ? wasm_f32x4_splat(0.0f) : wasm_v128_load(yc + 4);
    for (int b = 0; b < nb; b++) {
      const int8_t *ab = a + b * BLOCK;
      const int8_t *cb = c + b * BLOCK;
      const uint8_t *w = panel + b * groups * 128;
      PANEL_OPAQUE(ab);
      PANEL_OPAQUE(cb);
      PANEL_OPAQUE(w);
      v128_t scale_a = wasm_f32x4_splat(as[b]), scale_c = wasm_f32x4_splat(as[blocks + b]);
      v128_t sum_a = wasm_v128_load32_splat(asum + b), sum_c = wasm_v128_load32_splat(asum + blocks + b);
      v128_t d[4];
      panel_dot_2x(w, ab, cb, groups, d);
      v128_t z0 = zeros[b * groups];
      acc0 = accumulate(acc0, wasm_i32x4_sub(d[0], wasm_i32x4_dot_i16x8(z0, sum_a)), ws0 + b * 4, scale_a);
      acc2 = accumulate(acc2, wasm_i32x4_sub(d[2], wasm_i32x4_dot_i16x8(z0, sum_c)), ws0 + b * 4, scale_c);
      if (groups == 2) {
        v128_t z1 = zeros[b * groups + 1];
        acc1 = accumulate(acc1, wasm_i32x4_sub(d[1], wasm_i32x4_dot_i16x8(z1, sum_a)), ws1 + b * 4, scale_a);
        acc3 = accumulate(acc3, wasm_i32x4_sub(d[3], wasm_i32x4_dot_i16x8(z1, sum_c)), ws1 + b * 4, scale_c);
      }
    }
    store_lanes(yt, acc0, valid);
    store_lanes(yc, acc2, valid);
    if (groups == 2) {
      wasm_v128_store(yt + 4, acc1);
      wasm_v128_store(yc + 4, acc3);
    }
  }
  for (; t < rows; t++) {
    const int8_t *a = codes + ((int64_t)t * blocks + b0) * BLOCK;
    const float *as = scales + (int64_t)t * blocks + b0;
    const int32_t *asum = sums + (int64_t)t * blocks + b0;
    float *yt = y + (int64_t)t * n_total + n;
    v128_t acc0 = first ? wasm_f32x4_splat(0.0f) : load_lanes(yt, valid);
    v128_t acc1 = first || groups < 2 ? wasm_f32x4_splat(0.0f) : wasm_v128_load(yt + 4);
    for (int b = 0; b < nb; b++) {
      const int8_t *ab = a + b * BLOCK;
      const uint8_t *w = panel + b * groups * 128;
      PANEL_OPAQUE(ab);
      PANEL_OPAQUE(w);
      v128_t splat[8];
      for (int u = 0; u < 8; u++) splat[u] = wasm_v128_load32_splat(ab + 4 * u);
      v128_t scale_a = wasm_f32x4_splat(as[b]);
      v128_t sum = wasm_v128_load32_splat(asum + b);
      v128_t dot0 = wasm_i32x4_sub(panel_dot(w, splat), wasm_i32x4_dot_i16x8(zeros[b * groups], sum));
      acc0 = accumulate(acc0, dot0, ws0 + b * 4, scale_a);
      if (groups == 2) {
        v128_t dot1 = wasm_i32x4_sub(panel_dot(w + 128, splat), wasm_i32x4_dot_i16x8(zeros[b * groups + 1], sum));
        acc1 = accumulate(acc1, dot1, ws1 + b * 4, scale_a);
      }
    }
    store_lanes(yt, acc0, valid);
    if (groups == 2) wasm_v128_store(yt + 4, acc1);
  }
}

/**
 * The prefill product: gemm_panel_q4's tiling (eight rows unpacked once per chunk of k, every
 * token over them) on the relaxed dot. Arguments as gemm_q4_relaxed's.
 */
EXPORT(gemm_panel_q4_relaxed)
void gemm_panel_q4_relaxed(const uint8_t *weights, const float *weight_scales, const uint8_t *zero_points,
                           int n_total, int blocks, const int8_t *codes, const float *scales, const int32_t *sums,
                           int rows, float *y, int n_begin, int n_end) {
  const v128_t mask = wasm_i8x16_splat((int8_t)(0x0f | (blocks >> 30)));
  uint8_t panel[2 * RELAXED_PANEL_BLOCKS * 128] __attribute__((aligned(16)));
  v128_t zeros[2 * RELAXED_PANEL_BLOCKS];
  for (int n = n_begin; n < n_end;) {
    int groups = n + 8 <= n_end ? 2 : 1;
    int valid = n_end - n < 4 * groups ? n_end - n : 4 * groups;
    for (int b0 = 0; b0 < blocks; b0 += RELAXED_PANEL_BLOCKS) {
      int nb = blocks - b0 < RELAXED_PANEL_BLOCKS ? blocks - b0 : RELAXED_PANEL_BLOCKS;
      unpack_relaxed_panel(weights, zero_points, blocks, n, groups, b0, nb, mask, panel, zeros);
      if (groups == 2)
        run_relaxed_panel(panel, zeros, weight_scales, n_total, blocks, codes, scales, sums, rows, y, n, 2, valid, b0,
                          nb, b0 == 0);
      else
        run_relaxed_panel(panel, zeros, weight_scales, n_total, blocks, codes, scales, sums, rows, y, n, 1, valid, b0,
                          nb, b0 == 0);
    }
    n += groups * 4;
  }
}

#endif
