// 8-bit weights (from com.microsoft DynamicQuantizeMatMul: symmetric int8, one float scale per
// output column) times int8-quantized activations.
//
// Layout (regrouped once at load by repack_q8_grouped; docs/wasm-engine.md): the package stores B
// as [k, n] (input-major); the kernels read it as groups of four output rows, and each (group,
// block of 32 inputs) is 128 contiguous bytes: row 0's 32 codes, then rows 1, 2 and 3. k is padded
// to whole blocks and n to whole groups with zero codes. So a decode step streams each matrix
// front to back in one sequential read (the former [n, kp] rows were four interleaved streams a
// row apart, which measured ~3x slower once the matrix no longer fits in cache), and each group of
// eight codes is widened to int16 by its load (v128.load8x8_s: one instruction, where a 16-byte
// load plus extend_low and extend_high cost four).
//
// result[r, n] = (sum over blocks, in order: float(dot(w, a)) * scale_a[block]) * scale_w[n]
// with each block's integer dot reduced completely first (integer sums are exact, so the lane
// order inside a block does not matter). The four rows of a group run side by side in vector lanes
// with exactly that arithmetic, so the bits do not depend on grouping, batching, the prompt split
// or threads, and equal the former one-row-at-a-time kernels' bits.
#include "engine.h"

/** Bytes of one group of four rows for one block. */
#define Q8_GROUP_BLOCK_BYTES (4 * BLOCK)

/**
 * Hides a pointer's origin from the optimiser (as gemv-q4.c does), so the block's loads use
 * offsets from its base instead of an address add each.
 */
#define Q8_OPAQUE(pointer) __asm__("" : "+r"(pointer))

/** Byte offset of input `i` of output row `c` in the grouped layout of a matrix of `blocks` blocks. */
static inline int64_t q8_offset(int64_t c, int i, int blocks) {
  return (((c >> 2) * blocks + (i >> 5)) * 4 + (c & 3)) * BLOCK + (i & (BLOCK - 1));
}

/** Inputs [i_begin, i_end) of the slab for output row c, into the row's part of its group blocks. */
static inline void copy_column(const int8_t *src, int n, int c, int k0, int i_begin, int i_end, int8_t *row) {
  // Runs of inputs inside one block are contiguous in the row's part of the group block.
  for (int i = i_begin; i < i_end;) {
    int at = k0 + i;
    int run_end = i + (BLOCK - (at & (BLOCK - 1)));
    if (run_end > i_end) run_end = i_end;
    int8_t *out = row + (int64_t)(at >> 5) * Q8_GROUP_BLOCK_BYTES + (at & (BLOCK - 1)) - i;
    for (; i < run_end; i++) out[i] = src[(int64_t)i * n + c];
  }
}

/**
 * Sixteen inputs (starting at slab row i, a multiple of 16 in the matrix, so inside one block) of
 * the four columns 4g..4g+3: a 16 x 4 byte transpose in registers. Each input's four bytes are one
 * 32-bit load; a byte shuffle gathers each column's bytes of four inputs into one 32-bit lane, and
 * a 4 x 4 transpose of those lanes gives each column's sixteen bytes, stored in one piece.
 */
static inline void transpose_16x4(const int8_t *src, int n, int i, int c, int8_t *out0) {
  v128_t v[4];
  for (int q = 0; q < 4; q++) {
    const int8_t *p = src + (int64_t)(i + 4 * q) * n + c;
    v128_t x = wasm_v128_load32_zero(p);
    x = wasm_v128_load32_lane(p + n, x, 1);
    x = wasm_v128_load32_lane(p + 2 * (int64_t)n, x, 2);
    x = wasm_v128_load32_lane(p + 3 * (int64_t)n, x, 3);
    v[q] = wasm_i8x16_shuffle(x, x, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  }
  v128_t t01 = wasm_i32x4_shuffle(v[0], v[1], 0, 4, 1, 5), t23 = wasm_i32x4_shuffle(v[2], v[3], 0, 4, 1, 5);
  v128_t u01 = wasm_i32x4_shuffle(v[0], v[1], 2, 6, 3, 7), u23 = wasm_i32x4_shuffle(v[2], v[3], 2, 6, 3, 7);
  wasm_v128_store(out0, wasm_i64x2_shuffle(t01, t23, 0, 2));
  wasm_v128_store(out0 + BLOCK, wasm_i64x2_shuffle(t01, t23, 1, 3));
  wasm_v128_store(out0 + 2 * BLOCK, wasm_i64x2_shuffle(u01, u23, 0, 2));
  wasm_v128_store(out0 + 3 * BLOCK, wasm_i64x2_shuffle(u01, u23, 1, 3));
}

/**
 * One slab of the stored [k, n] matrix, inputs k0 .. k0 + k_rows (src[i * n + c] for i < k_rows),
 * into the grouped layout at dst (the whole matrix, ceil(n / 4) * blocks * 128 bytes). The rows
 * that pad the last group get zero codes for the slab's inputs, and the slab that ends at k also
 * zeroes the padding of the last block. In tiles of 256 inputs by 64 columns, so the stored rows
 * being read stay in cache; whole groups of four columns go sixteen inputs at a time through a
 * transpose in registers, the ends of a run and a partial last group byte by byte.
 */
EXPORT(repack_q8_grouped)
void repack_q8_grouped(const int8_t *src, int k0, int k_rows, int k, int n, int8_t *dst) {
  int blocks = (k + BLOCK - 1) / BLOCK;
  int n_padded = (n + 3) & ~3;
  for (int i0 = 0; i0 < k_rows; i0 += 256) {
    int i1 = i0 + 256 < k_rows ? i0 + 256 : k_rows;
    for (int c0 = 0; c0 < n; c0 += 64) {
      int c1 = c0 + 64 < n ? c0 + 64 : n;
      for (int c = c0; c < c1; c += 4) {
        if (c + 4 > n) {
          for (int j = c; j < n; j++) copy_column(src, n, j, k0, i0, i1, dst + q8_offset(j, 0, blocks));
          continue;
        }
        int8_t *group = dst + q8_offset(c, 0, blocks);
        // Up to the next multiple of 16 in the matrix byte by byte, then sixteen at a time.
        int i = i0 + ((16 - ((k0 + i0) & 15)) & 15);
        if (i > i1) i = i1;
        for (int j = 0; j < 4; j++) copy_column(src, n, c + j, k0, i0, i, group + j * BLOCK);
        for (; i + 16 <= i1; i += 16) {
          int at = k0 + i;
          transpose_16x4(src, n, i, c, group + (int64_t)(at >> 5) * Q8_GROUP_BLOCK_BYTES + (at & (BLOCK - 1)));
        }
        for (int j = 0; j < 4; j++) copy_column(src, n, c + j, k0, i, i1, group + j * BLOCK);
      }
    }
  }
  for (int c = n; c < n_padded; c++)
    for (int i = k0; i < k0 + k_rows; i++) dst[q8_offset(c, i, blocks)] = 0;
  if (k0 + k_rows == k)
    for (int c = 0; c < n_padded; c++)
      for (int i = k; i < blocks * BLOCK; i++) dst[q8_offset(c, i, blocks)] = 0;
}

/** Lane j of the result = the sum of the four lanes of dj (integer, so the order is immaterial). */
static inline v128_t transpose_sum(v128_t d0, v128_t d1, v128_t d2, v128_t d3) {
  v128_t s01 = wasm_i32x4_add(wasm_i32x4_shuffle(d0, d1, 0, 4, 1, 5), wasm_i32x4_shuffle(d0, d1, 2, 6, 3, 7));
  v128_t s23 = wasm_i32x4_add(wasm_i32x4_shuffle(d2, d3, 0, 4, 1, 5), wasm_i32x4_shuffle(d2, d3, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(s01, s23, 0, 1, 4, 5), wasm_i32x4_shuffle(s01, s23, 2, 3, 6, 7));
}

/** One row's 32 codes at w (widened by the loads) times the block's activation codes a0..a3. */
static inline v128_t row_dot(const int8_t *w, v128_t a0, v128_t a1, v128_t a2, v128_t a3) {
  v128_t d0 = wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(w), a0);
  v128_t d1 = wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(w + 8), a1);
  v128_t d2 = wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(w + 16), a2);
  v128_t d3 = wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(w + 24), a3);
  return wasm_i32x4_add(wasm_i32x4_add(d0, d1), wasm_i32x4_add(d2, d3));
}

/** The four rows' block dots (lane j = row j) of the group block at w. */
static inline v128_t group_dot(const int8_t *w, v128_t a0, v128_t a1, v128_t a2, v128_t a3) {
  return transpose_sum(row_dot(w, a0, a1, a2, a3), row_dot(w + BLOCK, a0, a1, a2, a3),
                       row_dot(w + 2 * BLOCK, a0, a1, a2, a3), row_dot(w + 3 * BLOCK, a0, a1, a2, a3));
}

/** acc + float(dot) × scale_a, lane-wise: the one float step per block. */
static inline v128_t accumulate(v128_t acc, v128_t dot, float a_scale) {
  return wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot), wasm_f32x4_splat(a_scale)));
}

/** The weight scales of rows n .. n + valid - 1 as lanes (a partial last group reads only its rows). */
static inline v128_t load_scales(const float *weight_scales, int n, int valid) {
  if (valid >= 4) return wasm_v128_load(weight_scales + n);
  float lanes[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int j = 0; j < valid; j++) lanes[j] = weight_scales[n + j];
  return wasm_v128_load(lanes);
}

/**
 * y[r, n] for activation rows r < rows and output rows n in [n_begin, n_end); y is [rows, n_total].
 * n_begin is a multiple of 4 (threads split on group boundaries). Weights in the grouped layout,
 * weight_scales [n_total] as stored; codes and scales from quantize_rows_q8 over the same k.
 */
EXPORT(gemm_q8)
void gemm_q8(const int8_t *weights, const float *weight_scales, int n_total, int blocks, const int16_t *codes,
             const float *scales, int rows, float *y, int n_begin, int n_end) {
  const int64_t group_bytes = (int64_t)blocks * Q8_GROUP_BLOCK_BYTES;
  for (int n = n_begin; n < n_end; n += 4) {
    const int valid = n_end - n < 4 ? n_end - n : 4;
    const int8_t *w = weights + (int64_t)(n >> 2) * group_bytes;
    const v128_t ws = load_scales(weight_scales, n, valid);
    int r = 0;
    // Prefill of two or three tokens: two activation rows per pass share each weight load.
    for (; r + 2 <= rows; r += 2) {
      const int16_t *a = codes + (int64_t)r * blocks * BLOCK;
      const int16_t *c = a + (int64_t)blocks * BLOCK;
      const float *as = scales + (int64_t)r * blocks;
      v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = acc0;
      for (int b = 0; b < blocks; b++) {
        const int8_t *wb = w + (int64_t)b * Q8_GROUP_BLOCK_BYTES;
        const int16_t *ab = a + b * BLOCK, *cb = c + b * BLOCK;
        Q8_OPAQUE(wb);
        Q8_OPAQUE(ab);
        Q8_OPAQUE(cb);
        v128_t x[4], z[4];
        for (int j = 0; j < 4; j++) {
          const int8_t *wr = wb + j * BLOCK;
          v128_t e0 = wasm_i16x8_load8x8(wr), e1 = wasm_i16x8_load8x8(wr + 8);
          v128_t e2 = wasm_i16x8_load8x8(wr + 16), e3 = wasm_i16x8_load8x8(wr + 24);
          x[j] = wasm_i32x4_add(
              wasm_i32x4_add(wasm_i32x4_dot_i16x8(e0, wasm_v128_load(ab)), wasm_i32x4_dot_i16x8(e1, wasm_v128_load(ab + 8))),
              wasm_i32x4_add(wasm_i32x4_dot_i16x8(e2, wasm_v128_load(ab + 16)),
                             wasm_i32x4_dot_i16x8(e3, wasm_v128_load(ab + 24))));
          z[j] = wasm_i32x4_add(
              wasm_i32x4_add(wasm_i32x4_dot_i16x8(e0, wasm_v128_load(cb)), wasm_i32x4_dot_i16x8(e1, wasm_v128_load(cb + 8))),
              wasm_i32x4_add(wasm_i32x4_dot_i16x8(e2, wasm_v128_load(cb + 16)),
                             wasm_i32x4_dot_i16x8(e3, wasm_v128_load(cb + 24))));
        }
        acc0 = accumulate(acc0, transpose_sum(x[0], x[1], x[2], x[3]), as[b]);
        acc1 = accumulate(acc1, transpose_sum(z[0], z[1], z[2], z[3]), as[blocks + b]);
      }
      store_lanes(y + (int64_t)r * n_total + n, wasm_f32x4_mul(acc0, ws), valid);
      store_lanes(y + (int64_t)(r + 1) * n_total + n, wasm_f32x4_mul(acc1, ws), valid);
    }
    for (; r < rows; r++) {
      const int16_t *a = codes + (int64_t)r * blocks * BLOCK;
      const float *as = scales + (int64_t)r * blocks;
      v128_t acc = wasm_f32x4_splat(0.0f);
      for (int b = 0; b < blocks; b++) {
        const int8_t *wb = w + (int64_t)b * Q8_GROUP_BLOCK_BYTES;
        const int16_t *ab = a + b * BLOCK;
        Q8_OPAQUE(wb);
        Q8_OPAQUE(ab);
        v128_t a0 = wasm_v128_load(ab), a1 = wasm_v128_load(ab + 8);
        v128_t a2 = wasm_v128_load(ab + 16), a3 = wasm_v128_load(ab + 24);
        acc = accumulate(acc, group_dot(wb, a0, a1, a2, a3), as[b]);
      }
      store_lanes(y + (int64_t)r * n_total + n, wasm_f32x4_mul(acc, ws), valid);
    }
  }
}
