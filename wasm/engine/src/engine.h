// Shared declarations for the engine's kernels: the export macro, the fixed-size types, and the
// few math helpers the kernels need. There is no libc: every function here is our own, computed
// in IEEE double or float arithmetic that WebAssembly defines bit for bit, so a kernel gives the
// same bits in Node, Chromium and workerd (the host's Math.exp / Math.cos are not used because
// engines may implement them differently).
//
// Conventions for every exported kernel:
// - pointers are byte offsets into the one linear memory (imported, so the host owns it);
// - matrices are row-major; a weight matrix is [n output rows, k inputs];
// - a kernel that produces rows takes [row_begin, row_end) so threads can split the rows; each
//   output element is reduced in one fixed order, whatever the split, so results are identical
//   for any thread count.
#ifndef ONDEVICE_ENGINE_H
#define ONDEVICE_ENGINE_H

#include <stdint.h>
#include <wasm_simd128.h>

#define EXPORT(name) __attribute__((export_name(#name))) __attribute__((visibility("default")))

/** Elements per quantization block, for weights and activations alike. */
#define BLOCK 32

/**
 * The relaxed-SIMD 4-bit kernels' activation layout (quantize_rows_q4_relaxed, gemm-q4-relaxed.c):
 * tokens in quads, a quad's codes of one block side by side. Token t of `rows` is in the quad
 * starting at t & ~3, of relaxed_quad_size(t, rows) tokens (4, or what is left at the end); its
 * block b is unit (t & ~3) * blocks + b * size + (t & 3), a unit being 32 code bytes, one scale,
 * one sum and one start. One token alone (decode) is plain row order.
 */
/**
 * What the relaxed-SIMD prefill panel adds to every weight code after subtracting its zero point
 * (gemm-q4-relaxed.c): code - zero + 15 is within [0, 30], a valid second operand of the relaxed
 * dot; the block's tile starts from -15 times the activation sums (quantize_rows_q4_relaxed's
 * starts) to take it back out.
 */
#define PANEL_CODE_OFFSET 15

static inline int relaxed_quad_size(int t, int rows) {
  int left = rows - (t & ~3);
  return left < 4 ? left : 4;
}
static inline int64_t relaxed_unit(int t, int b, int rows, int blocks) {
  return (int64_t)(t & ~3) * blocks + (int64_t)b * relaxed_quad_size(t, rows) + (t & 3);
}

/** The horizontal sum of four int32 lanes, always in the order (0 + 2) + (1 + 3). */
static inline int32_t sum_i32x4(v128_t v) {
  v128_t folded = wasm_i32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  return wasm_i32x4_extract_lane(folded, 0) + wasm_i32x4_extract_lane(folded, 1);
}

/** The horizontal sum of four float lanes, always ((0 + 2) + (1 + 3)). */
static inline float sum_f32x4(v128_t v) {
  v128_t folded = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  return wasm_f32x4_extract_lane(folded, 0) + wasm_f32x4_extract_lane(folded, 1);
}

/** Stores lanes [0, valid) of v at y (a partial last group of four rows writes only its real rows). */
static inline void store_lanes(float *y, v128_t v, int valid) {
  if (valid >= 4) {
    wasm_v128_store(y, v);
    return;
  }
  float lanes[4];
  wasm_v128_store(lanes, v);
  for (int j = 0; j < valid; j++) y[j] = lanes[j];
}

/** y[0 .. valid) as a vector (lanes past `valid` are 0). */
static inline v128_t load_lanes(const float *y, int valid) {
  if (valid >= 4) return wasm_v128_load(y);
  float lanes[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int j = 0; j < valid; j++) lanes[j] = y[j];
  return wasm_v128_load(lanes);
}

/** exp(x) in double: Cody-Waite reduction by ln 2 and a degree-13 Taylor polynomial (|r| <= ln2/2). */
static inline double engine_exp(double x) {
  if (x > 709.0) return __builtin_inf();
  if (x < -745.0) return 0.0;
  const double ln2_hi = 6.93147180369123816490e-01;
  const double ln2_lo = 1.90821492927058770002e-10;
  const double inv_ln2 = 1.44269504088896338700e+00;
  double n = __builtin_nearbyint(x * inv_ln2);
  double r = (x - n * ln2_hi) - n * ln2_lo;
  // Horner over 1/k! up to k = 13: error far below float precision on |r| <= 0.35.
  double p = 1.0 / 6227020800.0;
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  // Scale by 2^n through the exponent bits (n is within [-1075, 1023] here).
  int64_t e = (int64_t)n;
  if (e < -1020) {
    union { uint64_t u; double d; } scale = {.u = (uint64_t)(e + 1023 + 200) << 52};
    return p * scale.d * 6.22301527786965e-61; /* 2^-200 */
  }
  union { uint64_t u; double d; } scale = {.u = (uint64_t)(e + 1023) << 52};
  return p * scale.d;
}

static inline float engine_expf(float x) { return (float)engine_exp((double)x); }

/** sin and cos of a double (|x| up to ~1e6), fdlibm's kernels after a reduction by pi/2. */
static inline void engine_sincos(double x, double *sin_out, double *cos_out) {
  const double two_over_pi = 6.36619772367581382433e-01;
  const double pio2_1 = 1.57079632673412561417e+00;
  const double pio2_1t = 6.07710050650619224932e-11;
  double k = __builtin_nearbyint(x * two_over_pi);
  double r = (x - k * pio2_1) - k * pio2_1t;
  double z = r * r;
  double s = r + r * z * (-1.66666666666666324348e-01 +
                          z * (8.33333333332248946124e-03 +
                               z * (-1.98412698298579493134e-04 +
                                    z * (2.75573137070700676789e-06 +
                                         z * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10)))));
  double c = 1.0 - 0.5 * z +
             z * z * (4.16666666666666019037e-02 +
                      z * (-1.38888888888741095749e-03 +
                           z * (2.48015872894767294178e-05 +
                                z * (-2.75573143513906633035e-07 +
                                     z * (2.08757232129817482790e-09 + z * -1.13596475577881948265e-11)))));
  int quadrant = (int)((int64_t)k & 3);
  switch (quadrant) {
  case 0: *sin_out = s; *cos_out = c; break;
  case 1: *sin_out = c; *cos_out = -s; break;
  case 2: *sin_out = -s; *cos_out = -c; break;
  default: *sin_out = -c; *cos_out = s; break;
  }
}


/**
 * engine_exp on two double lanes at once, bit for bit, for x already clamped by the caller to a
 * range where engine_exp takes neither of its edge branches (x <= 709, and 2^n above the smallest
 * normal double): the same reduction, polynomial and exponent-bit scaling, lane by lane. The
 * callers say why their clamp changes no result (activation.c, attention.c).
 */
static inline v128_t engine_exp_f64x2(v128_t x) {
  const v128_t one = wasm_f64x2_splat(1.0);
  v128_t n = wasm_f64x2_nearest(wasm_f64x2_mul(x, wasm_f64x2_splat(1.44269504088896338700e+00)));
  v128_t r = wasm_f64x2_sub(wasm_f64x2_sub(x, wasm_f64x2_mul(n, wasm_f64x2_splat(6.93147180369123816490e-01))),
                            wasm_f64x2_mul(n, wasm_f64x2_splat(1.90821492927058770002e-10)));
  v128_t p = wasm_f64x2_splat(1.0 / 6227020800.0);
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 479001600.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 39916800.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 3628800.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 362880.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 40320.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 5040.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 720.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 120.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 24.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(1.0 / 6.0));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(0.5));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), one);
  p = wasm_f64x2_add(wasm_f64x2_mul(p, r), one);
  // 2^n through the exponent bits, as engine_exp does. n as an integer by the 1.5 * 2^52 trick
  // (exact for an integral |n| < 2^51): the low bits of n + 1.5 * 2^52 minus those of 1.5 * 2^52.
  const v128_t magic = wasm_f64x2_splat(6755399441055744.0);
  v128_t e = wasm_i64x2_sub(wasm_f64x2_add(n, magic), magic);
  v128_t scale = wasm_i64x2_shl(wasm_i64x2_add(e, wasm_i64x2_splat(1023)), 52);
  return wasm_f64x2_mul(p, scale);
}

#endif
