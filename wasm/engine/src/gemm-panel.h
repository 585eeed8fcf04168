// The inner loop the prefill matrix products share (gemm-q4.c, gemm-q8.c): weights already
// unpacked once into a panel of int16 (zero point subtracted), then reused by every activation
// row of the pass.
//
// Panel layout: for each block b of the chunk and each of the tile's rows r, 32 int16 weights in
// the order of the activation codes (natural order; q4's each times its nibble plane's weight
// factor, see gemm-q4.c) at panel + (b * rows + r) * 32. A chunk covers at most PANEL_BLOCKS
// blocks, so a tile of PANEL_ROWS rows is 16 KiB and stays in L1 while every token of the pass
// runs over it.
//
// What it computes is the decode GEMV's arithmetic exactly: each block's integer dot product
// reduced completely (integer adds, so the order inside a block is immaterial, and
// dot(code - zero, a) = dot(code, a) - zero * sum(a) exactly), then one float multiply-add per
// block, block after block in order.
#ifndef ONDEVICE_GEMM_PANEL_H
#define ONDEVICE_GEMM_PANEL_H

#include "engine.h"

/** Output rows per tile: two groups of four, whose results are one f32x4 each. */
#define PANEL_ROWS 8
/** Blocks per chunk of k: 8 rows x 32 blocks x 64 bytes = 16 KiB. */
#define PANEL_BLOCKS 32

/**
 * Hides a pointer's origin from the optimiser: without it, loop strength reduction rewrites the
 * loads' addresses as one induction variable plus negative constants, which WebAssembly cannot
 * encode as a load's offset, so every load paid an extra address add (measured: ~1 in 5
 * instructions of the inner loop). With it, the loads use offsets from the block's base.
 */
#define PANEL_OPAQUE(pointer) __asm__("" : "+r"(pointer))

/** Lane j of the result = the sum of the four lanes of dj (integer, so the order is immaterial). */
static inline v128_t panel_transpose_sum(v128_t d0, v128_t d1, v128_t d2, v128_t d3) {
  v128_t s01 = wasm_i32x4_add(wasm_i32x4_shuffle(d0, d1, 0, 4, 1, 5), wasm_i32x4_shuffle(d0, d1, 2, 6, 3, 7));
  v128_t s23 = wasm_i32x4_add(wasm_i32x4_shuffle(d2, d3, 0, 4, 1, 5), wasm_i32x4_shuffle(d2, d3, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(s01, s23, 0, 1, 4, 5), wasm_i32x4_shuffle(s01, s23, 2, 3, 6, 7));
}

/** One row's block of unpacked weights at w times the block's codes a0..a3, as four int32 lanes. */
static inline v128_t panel_row_dot(const int16_t *w, v128_t a0, v128_t a1, v128_t a2, v128_t a3) {
  v128_t d0 = wasm_i32x4_dot_i16x8(wasm_v128_load(w), a0);
  v128_t d1 = wasm_i32x4_dot_i16x8(wasm_v128_load(w + 8), a1);
  v128_t d2 = wasm_i32x4_dot_i16x8(wasm_v128_load(w + 16), a2);
  v128_t d3 = wasm_i32x4_dot_i16x8(wasm_v128_load(w + 24), a3);
  return wasm_i32x4_add(wasm_i32x4_add(d0, d1), wasm_i32x4_add(d2, d3));
}

/** The block dot products of four consecutive panel rows at w (lane j = row j). */
static inline v128_t panel_group_dot(const int16_t *w, v128_t a0, v128_t a1, v128_t a2, v128_t a3) {
  return panel_transpose_sum(panel_row_dot(w, a0, a1, a2, a3), panel_row_dot(w + 32, a0, a1, a2, a3),
                             panel_row_dot(w + 64, a0, a1, a2, a3), panel_row_dot(w + 96, a0, a1, a2, a3));
}

#endif
