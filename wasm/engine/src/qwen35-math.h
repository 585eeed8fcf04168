// Deterministic float math for the Qwen3.5 kernels and every model's SwiGLU: exp, log1p, sigmoid,
// silu, softplus written out in IEEE f32 operations only (no host Math, no relaxed SIMD, no fused multiply-add: wasm
// SIMD128 has none, so clang cannot contract), so every host and every thread count computes the
// same bits. The vector and scalar forms run the same operation sequence on each lane, so a value
// does not depend on whether it fell in the vector body or the scalar tail.
#ifndef QWEN35_MATH_H
#define QWEN35_MATH_H

#include "engine.h"

typedef v128_t f32x4;

static inline float q35_bits_to_float(int bits) {
  union { int i; float f; } u;
  u.i = bits;
  return u.f;
}

// Cephes expf: x = n·ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial (~1 ulp), 2^n by the
// exponent bits. x is clamped to [-87.3, 88.3] so 2^n stays a normal float; sigmoid's tail
// (exp of large x) saturates at ~2e38 instead of overflowing to infinity.
#define Q35_EXP_HI 88.3f
#define Q35_EXP_LO (-87.3f)
#define Q35_LOG2E 1.44269504088896341f
#define Q35_LN2_HI 0.693359375f
#define Q35_LN2_LO (-2.12194440e-4f)

static inline float q35_expf(float x) {
  x = x > Q35_EXP_HI ? Q35_EXP_HI : x;
  x = x < Q35_EXP_LO ? Q35_EXP_LO : x;
  float n = __builtin_nearbyintf(x * Q35_LOG2E);
  float r = x - n * Q35_LN2_HI;
  r = r - n * Q35_LN2_LO;
  float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * z + r;
  p = p + 1.0f;
  return p * q35_bits_to_float(((int)n + 127) << 23);
}

// q35_expf on four lanes. The clamp takes pmin / pmax (one instruction each on x64, where min /
// max take several for their NaN and signed-zero rules; with the constant second, the values are
// the same, a NaN passing through), and 2^n comes from n + 1.5·2^23, whose low bits are n (n is
// integral and small here), instead of a saturating float-to-int conversion, which is also several
// instructions: (bits + 127) << 23 drops the magic's bits, leaving q35_expf's exponent.
static inline f32x4 q35_expf4(f32x4 x) {
  x = wasm_f32x4_pmin(x, wasm_f32x4_splat(Q35_EXP_HI));
  x = wasm_f32x4_pmax(x, wasm_f32x4_splat(Q35_EXP_LO));
  f32x4 n = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_splat(Q35_LOG2E)));
  f32x4 r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, wasm_f32x4_splat(Q35_LN2_HI)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(Q35_LN2_LO)));
  f32x4 z = wasm_f32x4_mul(r, r);
  f32x4 p = wasm_f32x4_splat(1.9875691500e-4f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.3981999507e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(8.3334519073e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(4.1665795894e-2f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.6666665459e-1f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(5.0000001201e-1f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, z), r);
  p = wasm_f32x4_add(p, wasm_f32x4_splat(1.0f));
  v128_t shifted = wasm_f32x4_add(n, wasm_f32x4_splat(12582912.0f));
  v128_t scale = wasm_i32x4_shl(wasm_i32x4_add(shifted, wasm_i32x4_splat(127)), 23);
  return wasm_f32x4_mul(p, scale);
}

// q35_expf4 on Q35_SIDE vectors, step by step side by side: the same operations on every lane,
// but independent chains in flight, where one exp is a long chain of dependent operations that
// leaves the CPU's units idle (V8 keeps the order it is given). In place on x.
#define Q35_SIDE 4
static inline void q35_expf4_side(f32x4 x[Q35_SIDE]) {
  const f32x4 hi = wasm_f32x4_splat(Q35_EXP_HI), lo = wasm_f32x4_splat(Q35_EXP_LO);
  const f32x4 log2e = wasm_f32x4_splat(Q35_LOG2E);
  const f32x4 ln2_hi = wasm_f32x4_splat(Q35_LN2_HI), ln2_lo = wasm_f32x4_splat(Q35_LN2_LO);
  f32x4 n[Q35_SIDE], r[Q35_SIDE], z[Q35_SIDE], p[Q35_SIDE];
  for (int v = 0; v < Q35_SIDE; v++) x[v] = wasm_f32x4_pmax(wasm_f32x4_pmin(x[v], hi), lo);
  for (int v = 0; v < Q35_SIDE; v++) n[v] = wasm_f32x4_nearest(wasm_f32x4_mul(x[v], log2e));
  for (int v = 0; v < Q35_SIDE; v++) r[v] = wasm_f32x4_sub(x[v], wasm_f32x4_mul(n[v], ln2_hi));
  for (int v = 0; v < Q35_SIDE; v++) r[v] = wasm_f32x4_sub(r[v], wasm_f32x4_mul(n[v], ln2_lo));
  for (int v = 0; v < Q35_SIDE; v++) z[v] = wasm_f32x4_mul(r[v], r[v]);
  for (int v = 0; v < Q35_SIDE; v++) p[v] = wasm_f32x4_splat(1.9875691500e-4f);
  static const float c[5] = {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
                             5.0000001201e-1f};
  for (int i = 0; i < 5; i++)
    for (int v = 0; v < Q35_SIDE; v++) p[v] = wasm_f32x4_add(wasm_f32x4_mul(p[v], r[v]), wasm_f32x4_splat(c[i]));
  for (int v = 0; v < Q35_SIDE; v++) p[v] = wasm_f32x4_add(wasm_f32x4_mul(p[v], z[v]), r[v]);
  for (int v = 0; v < Q35_SIDE; v++) p[v] = wasm_f32x4_add(p[v], wasm_f32x4_splat(1.0f));
  for (int v = 0; v < Q35_SIDE; v++)
    x[v] = wasm_f32x4_mul(p[v], wasm_i32x4_shl(wasm_i32x4_add(wasm_f32x4_add(n[v], wasm_f32x4_splat(12582912.0f)),
                                                              wasm_i32x4_splat(127)),
                                               23));
}

/** q35_sigmoidf4 of Q35_SIDE vectors side by side, in place. */
static inline void q35_sigmoidf4_side(f32x4 x[Q35_SIDE]) {
  for (int v = 0; v < Q35_SIDE; v++) x[v] = wasm_f32x4_neg(x[v]);
  q35_expf4_side(x);
  const f32x4 one = wasm_f32x4_splat(1.0f);
  for (int v = 0; v < Q35_SIDE; v++) x[v] = wasm_f32x4_div(one, wasm_f32x4_add(one, x[v]));
}

/** q35_siluf4 of Q35_SIDE vectors side by side, in place. */
static inline void q35_siluf4_side(f32x4 x[Q35_SIDE]) {
  f32x4 s[Q35_SIDE];
  for (int v = 0; v < Q35_SIDE; v++) s[v] = x[v];
  q35_sigmoidf4_side(s);
  for (int v = 0; v < Q35_SIDE; v++) x[v] = wasm_f32x4_mul(x[v], s[v]);
}

// sigmoid(x) = 1 / (1 + e^-x); silu(x) = x · sigmoid(x) (the reference's operation order).
static inline float q35_sigmoidf(float x) { return 1.0f / (1.0f + q35_expf(-x)); }
static inline float q35_siluf(float x) { return x * q35_sigmoidf(x); }

static inline f32x4 q35_sigmoidf4(f32x4 x) {
  f32x4 one = wasm_f32x4_splat(1.0f);
  return wasm_f32x4_div(one, wasm_f32x4_add(one, q35_expf4(wasm_f32x4_neg(x))));
}
static inline f32x4 q35_siluf4(f32x4 x) { return wasm_f32x4_mul(x, q35_sigmoidf4(x)); }

// Cephes logf for x > 0 (normal): x = m·2^e with m in [sqrt(1/2), sqrt(2)), log(m) by a degree-9
// polynomial in m − 1.
static inline float q35_logf(float x) {
  union { float f; int i; } u;
  u.f = x;
  int e = ((u.i >> 23) & 0xff) - 126;
  u.i = (u.i & 0x807fffff) | 0x3f000000; // mantissa in [0.5, 1)
  float m = u.f;
  if (m < 0.707106781186547524f) {
    e -= 1;
    m = m + m - 1.0f;
  } else {
    m = m - 1.0f;
  }
  float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  float fe = (float)e;
  y = y + fe * -2.12194440e-4f;
  y = y - 0.5f * z;
  return m + y + fe * 0.693359375f;
}

// log(1 + u) for u >= 0, accurate for small u (Goldberg's correction: the rounding of 1 + u is
// undone by u / ((1 + u) − 1)).
static inline float q35_log1pf(float u) {
  float w = 1.0f + u;
  if (w == 1.0f) return u;
  return q35_logf(w) * (u / (w - 1.0f));
}

// torch.nn.functional.softplus (beta 1, threshold 20): linear above 20.
static inline float q35_softplusf(float x) { return x > 20.0f ? x : q35_log1pf(q35_expf(x)); }

#endif
