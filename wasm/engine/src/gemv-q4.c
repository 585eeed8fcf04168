// 4-bit weights (com.microsoft MatMulNBits, bits 4, block 32) times int8-quantized activations.
//
// Layout (repacked once at load by repack_q4_weights; docs/wasm-engine.md): rows go in groups of
// four, and each (group, block) is 64 bytes, four 16-byte vectors. Read as eight 16-bit lanes,
// vector v of a block holds, in lane 2j + h, row j's elements 8v + 2p + h for p = 0..3 in nibble
// p (bits 4p..4p+3). So one vector covers eight elements of all four rows, and a row's elements
// never meet another row's in a lane: i32x4.dot_i16x8_s of a nibble plane with the activation
// pair (8v + 2p, 8v + 2p + 1) broadcast to every 32-bit lane gives lane j = row j's partial sum,
// and adding the sixteen products of a block gives the four rows' dots in the four lanes with no
// transpose. The planes are taken without shifting them down: v & 0x000f, v & 0x00f0 (16 w),
// v & 0x0f00 (256 w) and v >> 12, and the activations are stored times 256, 16, 1 and 256 by
// plane (quantize_rows_q4), so every product is 256 · w · a: one mask or shift per plane, and the
// block sum is 256 times the dot (exact in int32: |256 · 32 · 15 · 127| < 2^24), shifted back
// down exactly once per block. Scales are [n / 4, blocks, 4] floats (four rows side by side),
// zero points [n / 4, blocks, 4] bytes; a partial last group is padded with zero codes, zero
// points and scales. Weight value = (code - zero) * scale.
//
// For each (activation row, output row) the result is
//   sum over blocks, in order: float(dot(code, a) - zero * sum(a)) * (scale_w * scale_a)
// with the block's integer dot product reduced completely first (integer sums are exact, so the
// lane and plane order inside a block does not matter). Every row runs in a lane of a group with
// exactly that arithmetic: the bits do not depend on grouping, batching, the prompt split or
// threads, and equal those of any kernel that keeps this formula (the q4 prefill GEMMs too).
#include "engine.h"

/** Bytes of one group of four rows for one block. */
#define GROUP_BLOCK_BYTES 64

/**
 * Hides a pointer's origin from the optimiser (as gemm-panel.h does): otherwise loop strength
 * reduction turns the block's sixteen activation loads into address adds on one induction
 * variable, which WebAssembly cannot encode as load offsets, and V8 then spends an instruction
 * per load on the address.
 */
#define OPAQUE(pointer) __asm__("" : "+r"(pointer))

/**
 * Stored rows [rows, blocks, 16] (element 2m in the low nibble of byte m, 2m + 1 in the high one)
 * → the grouped layout at dst (the first group of these rows). `rows` is a multiple of 4 except
 * for the matrix's last slab, whose missing rows are zero codes.
 */
EXPORT(repack_q4_weights)
void repack_q4_weights(const uint8_t *src, int rows, int blocks, uint8_t *dst) {
  const int64_t row_bytes = (int64_t)blocks * (BLOCK / 2);
  int groups = (rows + 3) / 4;
  for (int g = 0; g < groups; g++)
    for (int b = 0; b < blocks; b++) {
      uint8_t *out = dst + ((int64_t)g * blocks + b) * GROUP_BLOCK_BYTES;
      for (int j = 0; j < 4; j++) {
        int row = g * 4 + j;
        uint8_t in[BLOCK / 2];
        for (int m = 0; m < BLOCK / 2; m++) in[m] = row < rows ? src[row * row_bytes + b * (BLOCK / 2) + m] : 0;
        // Lane 2j + h of vector v, byte q holds nibbles p = 2q (low) and 2q + 1 (high), i.e. the
        // elements 8v + 2p + h, which are in stored byte m = 4v + p, nibble h.
        for (int v = 0; v < 4; v++)
          for (int h = 0; h < 2; h++)
            for (int q = 0; q < 2; q++) {
              uint8_t lo = in[4 * v + 2 * q], hi = in[4 * v + 2 * q + 1];
              uint8_t nibble_lo = h ? lo >> 4 : lo & 15, nibble_hi = h ? hi >> 4 : hi & 15;
              out[v * 16 + (2 * j + h) * 2 + q] = (uint8_t)(nibble_lo | nibble_hi << 4);
            }
      }
    }
}

/** Element i (0..31) of row `row` of block `block` from the grouped layout, as the stored code 0..15. */
static inline int q4_code(const uint8_t *weights, int blocks, int64_t row, int block, int i) {
  const uint8_t *gb = weights + ((row >> 2) * blocks + block) * GROUP_BLOCK_BYTES;
  int v = i >> 3, p = (i >> 1) & 3, h = i & 1, j = (int)(row & 3);
  uint8_t byte = gb[v * 16 + (2 * j + h) * 2 + (p >> 1)];
  return p & 1 ? byte >> 4 : byte & 15;
}

/**
 * Embedding lookup over a q4 matrix in the grouped layout (a tied table shared with the LM head):
 * out[t] = (code - zero) * scale per element, scales and zero points [vocab, hidden / 32] as the
 * GatherBlockQuantized node stores them (one zero point per byte; NULL: 8).
 */
EXPORT(embed_q4_grouped)
void embed_q4_grouped(const uint8_t *weights, const float *scales, const uint8_t *zero_points, int hidden,
                      const int32_t *ids, int count, float *out) {
  int blocks = hidden / BLOCK;
  for (int t = 0; t < count; t++) {
    int64_t id = ids[t];
    for (int b = 0; b < blocks; b++) {
      float scale = scales[id * blocks + b];
      int zero = zero_points ? zero_points[id * blocks + b] : 8;
      float *dst = out + (int64_t)t * hidden + b * BLOCK;
      for (int i = 0; i < BLOCK; i++) dst[i] = (float)(q4_code(weights, blocks, id, b, i) - zero) * scale;
    }
  }
}

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

/** The nibble masks, built from a runtime value so the compiler keeps them in registers (as
 * constants, V8 rebuilt them on every block). */
typedef struct {
  v128_t m0, m1, m2;
} masks_t;

static inline masks_t make_masks(int blocks) {
  int16_t zero = (int16_t)(blocks >> 30); // 0 for any real size
  masks_t m = {wasm_i16x8_splat((int16_t)(0x000f | zero)), wasm_i16x8_splat((int16_t)(0x00f0 | zero)),
               wasm_i16x8_splat((int16_t)(0x0f00 | zero))};
  return m;
}

/**
 * 256 × the four rows' integer dots of one block (lane j = row j), before the zero point: `w` is
 * the group's 64 bytes for the block, `a` the block's 16 activation pairs (as int32 words).
 */
static inline v128_t group_dot(const uint8_t *w, const int32_t *a, masks_t m) {
  v128_t sum[4];
  for (int v = 0; v < 4; v++) {
    v128_t x = wasm_v128_load(w + 16 * v);
    v128_t d0 = wasm_i32x4_dot_i16x8(wasm_v128_and(x, m.m0), wasm_v128_load32_splat(a + 4 * v));
    v128_t d1 = wasm_i32x4_dot_i16x8(wasm_v128_and(x, m.m1), wasm_v128_load32_splat(a + 4 * v + 1));
    v128_t d2 = wasm_i32x4_dot_i16x8(wasm_v128_and(x, m.m2), wasm_v128_load32_splat(a + 4 * v + 2));
    v128_t d3 = wasm_i32x4_dot_i16x8(wasm_u16x8_shr(x, 12), wasm_v128_load32_splat(a + 4 * v + 3));
    sum[v] = wasm_i32x4_add(wasm_i32x4_add(d0, d1), wasm_i32x4_add(d2, d3));
  }
  return wasm_i32x4_add(wasm_i32x4_add(sum[0], sum[1]), wasm_i32x4_add(sum[2], sum[3]));
}

/** Two activation rows over the same group block: each plane unpacked once. */
static inline void group_dot2(const uint8_t *w, const int32_t *a, const int32_t *c, masks_t m, v128_t *out_a,
                              v128_t *out_c) {
  v128_t sa = wasm_i32x4_splat(0), sc = sa;
  for (int v = 0; v < 4; v++) {
    v128_t x = wasm_v128_load(w + 16 * v);
    v128_t p0 = wasm_v128_and(x, m.m0), p1 = wasm_v128_and(x, m.m1);
    v128_t p2 = wasm_v128_and(x, m.m2), p3 = wasm_u16x8_shr(x, 12);
    sa = wasm_i32x4_add(sa, wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_dot_i16x8(p0, wasm_v128_load32_splat(a + 4 * v)),
                                                          wasm_i32x4_dot_i16x8(p1, wasm_v128_load32_splat(a + 4 * v + 1))),
                                           wasm_i32x4_add(wasm_i32x4_dot_i16x8(p2, wasm_v128_load32_splat(a + 4 * v + 2)),
                                                          wasm_i32x4_dot_i16x8(p3, wasm_v128_load32_splat(a + 4 * v + 3)))));
    sc = wasm_i32x4_add(sc, wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_dot_i16x8(p0, wasm_v128_load32_splat(c + 4 * v)),
                                                          wasm_i32x4_dot_i16x8(p1, wasm_v128_load32_splat(c + 4 * v + 1))),
                                           wasm_i32x4_add(wasm_i32x4_dot_i16x8(p2, wasm_v128_load32_splat(c + 4 * v + 2)),
                                                          wasm_i32x4_dot_i16x8(p3, wasm_v128_load32_splat(c + 4 * v + 3)))));
  }
  *out_a = sa;
  *out_c = sc;
}

/**
 * The block's dots (lane j = row j) with the zero point taken off: dot256 / 256 - zero · sum. dot256
 * is exactly 256 times an integer, so the shift is exact and this is gemv's dot(code, a) - zero ·
 * sum(a). The four zero-point bytes are widened to z_j in the low int16 of each 32-bit lane (the
 * high one 0), so one dot_i16x8_s with the broadcast code sum gives z_j S. The barrier keeps the
 * first widening a widening: without it (and with a shift after it) clang wrote it as an
 * i8x16.shuffle, whose mask V8 rebuilt on every block (four instructions and a pshufb).
 */
static inline v128_t finish_dot(v128_t dot256, const uint8_t *zero4, const int32_t *sum) {
  v128_t z16 = wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(zero4));
  __asm__("" : "+r"(z16));
  v128_t zero_term = wasm_i32x4_dot_i16x8(wasm_u32x4_extend_low_u16x8(z16), wasm_v128_load32_splat(sum));
  return wasm_i32x4_sub(wasm_i32x4_shr(dot256, 8), zero_term);
}

/** acc + float(dot) × (scale_w × scale_a), lane-wise: the one float step of the reduction order. */
static inline v128_t accumulate(v128_t acc, v128_t dot, const float *w_scales, float a_scale) {
  v128_t scale = wasm_f32x4_mul(wasm_v128_load(w_scales), wasm_f32x4_splat(a_scale));
  return wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot), scale));
}

/** Stores the group's four lanes at y[n..n+3], or only the rows below n_end (a partial group). */
static inline void store_group(float *y, int n, int n_end, v128_t acc) {
  if (n + 4 <= n_end) {
    wasm_v128_store(y + n, acc);
    return;
  }
  float lanes[4];
  wasm_v128_store(lanes, acc);
  for (int j = 0; n + j < n_end; j++) y[n + j] = lanes[j];
}

/**
 * y[r, n] for activation rows r < rows and output rows n in [n_begin, n_end); y is [rows, n_total].
 * n_begin is a multiple of 4 (threads split on group boundaries). codes / scales / sums come from
 * quantize_rows_q4 over the same k; weights, scales and zero points are in the grouped layout.
 */
EXPORT(gemm_q4)
void gemm_q4(const uint8_t *weights, const float *weight_scales, const uint8_t *zero_points, int n_total,
             int blocks, const int16_t *codes, const float *scales, const int32_t *sums, int rows, float *y,
             int n_begin, int n_end) {
  const masks_t m = make_masks(blocks);
  const int64_t group_bytes = (int64_t)blocks * GROUP_BLOCK_BYTES;
  int n = n_begin;
  for (; n < n_end; n += 4) {
    const uint8_t *w = weights + (int64_t)(n >> 2) * group_bytes;
    const float *ws = weight_scales + (int64_t)(n >> 2) * blocks * 4;
    const uint8_t *wz = zero_points + (int64_t)(n >> 2) * blocks * 4;
    int r = 0;
    // Prefill: two activation rows per pass share each unpacked block (same arithmetic).
    for (; r + 2 <= rows; r += 2) {
      const int32_t *a = (const int32_t *)(codes + (int64_t)r * blocks * BLOCK);
      const int32_t *c = a + (int64_t)blocks * 16;
      const float *as = scales + (int64_t)r * blocks;
      const int32_t *asum = sums + (int64_t)r * blocks;
      v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = acc0;
      for (int b = 0; b < blocks; b++) {
        const uint8_t *wb = w + b * GROUP_BLOCK_BYTES;
        const int32_t *ab = a + b * 16, *cb = c + b * 16;
        OPAQUE(wb);
        OPAQUE(ab);
        OPAQUE(cb);
        v128_t d0, d1;
        group_dot2(wb, ab, cb, m, &d0, &d1);
        acc0 = accumulate(acc0, finish_dot(d0, wz + b * 4, asum + b), ws + b * 4, as[b]);
        acc1 = accumulate(acc1, finish_dot(d1, wz + b * 4, asum + blocks + b), ws + b * 4, as[blocks + b]);
      }
      store_group(y + (int64_t)r * n_total, n, n_end, acc0);
      store_group(y + (int64_t)(r + 1) * n_total, n, n_end, acc1);
    }
    for (; r < rows; r++) {
      const int32_t *a = (const int32_t *)(codes + (int64_t)r * blocks * BLOCK);
      const float *as = scales + (int64_t)r * blocks;
      const int32_t *asum = sums + (int64_t)r * blocks;
      v128_t acc = wasm_f32x4_splat(0.0f);
      for (int b = 0; b < blocks; b++) {
        const uint8_t *wb = w + b * GROUP_BLOCK_BYTES;
        const int32_t *ab = a + b * 16;
        OPAQUE(wb);
        OPAQUE(ab);
        acc = accumulate(acc, finish_dot(group_dot(wb, ab, m), wz + b * 4, asum + b), ws + b * 4, as[b]);
      }
      store_group(y + (int64_t)r * n_total, n, n_end, acc);
    }
  }
}
