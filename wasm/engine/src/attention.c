// Causal attention over the KV cache with grouped heads (query head h reads KV head
// h / (heads / kv_heads)). The cache is position-major: position t of a layer's keys starts at
// key_base + t * position_stride floats and holds kv_heads vectors of head_dim (so the cache can
// grow at the top of memory without moving). Query row r sits at position position0 + r and sees
// cache positions 0..position0 + r. For each query head: scores = (q . k_t) * scale, softmax with the
// max subtracted, then the probability-weighted sum of v_t, all in t order.
#include "engine.h"

/** Copies rows [rows, width] to cache + (position0 + r) * position_stride (floats). */
EXPORT(kv_store)
void kv_store(const float *src, float *cache, int rows, int width, int position_stride, int position0) {
  for (int r = 0; r < rows; r++) {
    const float *from = src + (int64_t)r * width;
    float *to = cache + (int64_t)(position0 + r) * position_stride;
    for (int d = 0; d < width; d++) to[d] = from[d];
  }
}

static inline float dot_head(const float *a, const float *b, int n) {
  v128_t acc = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  float sum = sum_f32x4(acc);
  for (; i < n; i++) sum += a[i] * b[i];
  return sum;
}

/**
 * (float)engine_exp(x) for the two float lanes of x promoted to double, bit for bit: engine_exp's
 * double operations on each lane. x is clamped to [-110, 709] first, which changes no result:
 * below -110 the double result is under half the smallest float and rounds to 0 as engine_exp's
 * does for any smaller x; above 709 (where engine_exp returns infinity) exp(709) also becomes
 * the float infinity. In that range engine_exp takes neither of its edge branches.
 */
static inline v128_t expf_2(v128_t x) {
  // pmin / pmax (one instruction each) clamp as min / max do here, a NaN passing through.
  x = wasm_f64x2_pmax(wasm_f64x2_pmin(wasm_f64x2_promote_low_f32x4(x), wasm_f64x2_splat(709.0)),
                      wasm_f64x2_splat(-110.0));
  return wasm_f32x4_demote_f64x2_zero(engine_exp_f64x2(x));
}

/**
 * expf_2 on eight floats (x0, x1: four each) at once, as four f64x2 chains side by side: each
 * lane gets expf_2's operations (engine_exp_f64x2's, step for step), but one exp is a long chain
 * of dependent operations and V8 keeps the order it is given, so four in flight keep the units busy.
 */
static inline void expf_8(v128_t *x0, v128_t *x1) {
  v128_t d[4] = {wasm_f64x2_promote_low_f32x4(*x0), wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(*x0, *x0, 2, 3, 2, 3)),
                 wasm_f64x2_promote_low_f32x4(*x1), wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(*x1, *x1, 2, 3, 2, 3))};
  v128_t n[4], r[4], p[4];
  for (int v = 0; v < 4; v++)
    d[v] = wasm_f64x2_pmax(wasm_f64x2_pmin(d[v], wasm_f64x2_splat(709.0)), wasm_f64x2_splat(-110.0));
  for (int v = 0; v < 4; v++) n[v] = wasm_f64x2_nearest(wasm_f64x2_mul(d[v], wasm_f64x2_splat(1.44269504088896338700e+00)));
  for (int v = 0; v < 4; v++)
    r[v] = wasm_f64x2_sub(wasm_f64x2_sub(d[v], wasm_f64x2_mul(n[v], wasm_f64x2_splat(6.93147180369123816490e-01))),
                          wasm_f64x2_mul(n[v], wasm_f64x2_splat(1.90821492927058770002e-10)));
  static const double c[13] = {1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
                               1.0 / 5040.0,      1.0 / 720.0,      1.0 / 120.0,      1.0 / 24.0,     1.0 / 6.0,
                               0.5,               1.0,              1.0};
  for (int v = 0; v < 4; v++) p[v] = wasm_f64x2_splat(1.0 / 6227020800.0);
  for (int i = 0; i < 13; i++)
    for (int v = 0; v < 4; v++) p[v] = wasm_f64x2_add(wasm_f64x2_mul(p[v], r[v]), wasm_f64x2_splat(c[i]));
  const v128_t magic = wasm_f64x2_splat(6755399441055744.0);
  for (int v = 0; v < 4; v++) {
    v128_t e = wasm_i64x2_sub(wasm_f64x2_add(n[v], magic), magic);
    d[v] = wasm_f32x4_demote_f64x2_zero(wasm_f64x2_mul(p[v], wasm_i64x2_shl(wasm_i64x2_add(e, wasm_i64x2_splat(1023)), 52)));
  }
  *x0 = wasm_i32x4_shuffle(d[0], d[1], 0, 1, 4, 5);
  *x1 = wasm_i32x4_shuffle(d[2], d[3], 0, 1, 4, 5);
}

/**
 * s[i] = e^(s[i] − max) for i < n (engine_expf's bits: eight at a time, then two, then one), and
 * their sum, added one by one in order.
 */
static inline float exp_in_place(float *s, int n, float max) {
  int i = 0;
  const v128_t max4 = wasm_f32x4_splat(max);
  for (; i + 8 <= n; i += 8) {
    v128_t x0 = wasm_f32x4_sub(wasm_v128_load(s + i), max4), x1 = wasm_f32x4_sub(wasm_v128_load(s + i + 4), max4);
    expf_8(&x0, &x1);
    wasm_v128_store(s + i, x0);
    wasm_v128_store(s + i + 4, x1);
  }
  for (; i + 2 <= n; i += 2) {
    v128_t x = wasm_f32x4_sub(wasm_v128_load64_zero(s + i), max4);
    wasm_v128_store64_lane(s + i, expf_2(x), 0);
  }
  for (; i < n; i++) s[i] = engine_expf(s[i] - max);
  float total = 0.0f;
  for (i = 0; i < n; i++) total += s[i];
  return total;
}

static inline void attend_head(const float *q, const float *key_cache, const float *value_cache, float *out,
                               float *scores, int r, int h, int heads, int group, int head_dim, int position_stride,
                               int position0, float scale) {
  int length = position0 + r + 1;
  const float *query = q + ((int64_t)r * heads + h) * head_dim;
  const float *keys = key_cache + (h / group) * head_dim;
  const float *values = value_cache + (h / group) * head_dim;
  float max = -__builtin_inff();
  for (int t = 0; t < length; t++) {
    float s = dot_head(query, keys + (int64_t)t * position_stride, head_dim) * scale;
    scores[t] = s;
    if (s > max) max = s;
  }
  float inverse = 1.0f / exp_in_place(scores, length, max);
  float *dst = out + ((int64_t)r * heads + h) * head_dim;
  // Each output element is 0 + p_0·v_0 + p_1·v_1 + ... in position order, as before; the running
  // sums of 32 elements stay in registers across the positions instead of going through memory.
  int d = 0;
  for (; d + 32 <= head_dim; d += 32) {
    v128_t acc[8];
    for (int j = 0; j < 8; j++) acc[j] = wasm_f32x4_splat(0.0f);
    for (int t = 0; t < length; t++) {
      v128_t pv = wasm_f32x4_splat(scores[t] * inverse);
      const float *v = values + (int64_t)t * position_stride + d;
      for (int j = 0; j < 8; j++) acc[j] = wasm_f32x4_add(acc[j], wasm_f32x4_mul(pv, wasm_v128_load(v + 4 * j)));
    }
    for (int j = 0; j < 8; j++) wasm_v128_store(dst + d + 4 * j, acc[j]);
  }
  for (; d + 4 <= head_dim; d += 4) {
    v128_t acc = wasm_f32x4_splat(0.0f);
    for (int t = 0; t < length; t++)
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_splat(scores[t] * inverse),
                                               wasm_v128_load(values + (int64_t)t * position_stride + d)));
    wasm_v128_store(dst + d, acc);
  }
  for (; d < head_dim; d++) {
    float acc = 0.0f;
    for (int t = 0; t < length; t++) acc += (scores[t] * inverse) * values[(int64_t)t * position_stride + d];
    dst[d] = acc;
  }
}

/**
 * out [rows, heads, head_dim] from q [rows, heads, head_dim] and the caches (already holding the
 * new rows). scores needs position0 + rows floats. Heads [head_begin, head_end) only.
 */
EXPORT(attention)
void attention(const float *q, const float *key_cache, const float *value_cache, float *out, float *scores,
               int rows, int heads, int kv_heads, int head_dim, int position_stride, int position0, float scale,
               int head_begin, int head_end) {
  int group = heads / kv_heads;
  for (int r = 0; r < rows; r++)
    for (int h = head_begin; h < head_end; h++)
      attend_head(q, key_cache, value_cache, out, scores, r, h, heads, group, head_dim, position_stride, position0,
                  scale);
}

/** A row of key sums lane by lane (x0 + x2, x1 + x3 per key, then added): lane j is sum_f32x4(aj). */
static inline v128_t fold_four(v128_t a0, v128_t a1, v128_t a2, v128_t a3) {
  v128_t s01 = wasm_f32x4_add(wasm_i32x4_shuffle(a0, a1, 0, 1, 4, 5), wasm_i32x4_shuffle(a0, a1, 2, 3, 6, 7));
  v128_t s23 = wasm_f32x4_add(wasm_i32x4_shuffle(a2, a3, 0, 1, 4, 5), wasm_i32x4_shuffle(a2, a3, 2, 3, 6, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(s01, s23, 0, 2, 4, 6), wasm_i32x4_shuffle(s01, s23, 1, 3, 5, 7));
}

/**
 * Scores of four consecutive keys (k, k + stride, ...) against one query (two when q1 is set):
 * each key's sum is dot_head's (lane by lane in i order, folded as sum_f32x4), times scale. Four
 * keys side by side make four independent running sums instead of one chain of dependent adds,
 * and a second query reuses every key load. head_dim is a multiple of 4.
 */
static inline void scores_four(const float *q0, const float *q1, const float *k, int64_t stride, int head_dim,
                               float scale, float *s0, float *s1) {
  const float *k0 = k, *k1 = k + stride, *k2 = k + 2 * stride, *k3 = k + 3 * stride;
  v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
  if (q1) {
    v128_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int i = 0; i < head_dim; i += 4) {
      v128_t x = wasm_v128_load(q0 + i), y = wasm_v128_load(q1 + i);
      v128_t c0 = wasm_v128_load(k0 + i), c1 = wasm_v128_load(k1 + i);
      v128_t c2 = wasm_v128_load(k2 + i), c3 = wasm_v128_load(k3 + i);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(x, c0));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(x, c1));
      a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(x, c2));
      a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(x, c3));
      b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(y, c0));
      b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(y, c1));
      b2 = wasm_f32x4_add(b2, wasm_f32x4_mul(y, c2));
      b3 = wasm_f32x4_add(b3, wasm_f32x4_mul(y, c3));
    }
    wasm_v128_store(s1, wasm_f32x4_mul(fold_four(b0, b1, b2, b3), wasm_f32x4_splat(scale)));
  } else {
    for (int i = 0; i < head_dim; i += 4) {
      v128_t x = wasm_v128_load(q0 + i);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(x, wasm_v128_load(k0 + i)));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(x, wasm_v128_load(k1 + i)));
      a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(x, wasm_v128_load(k2 + i)));
      a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(x, wasm_v128_load(k3 + i)));
    }
  }
  wasm_v128_store(s0, wasm_f32x4_mul(fold_four(a0, a1, a2, a3), wasm_f32x4_splat(scale)));
}

/** Scores of keys [t, end) against one query, at s[t..end): scores_four where four fit, dot_head after. */
static inline void scores_span(const float *query, const float *keys, int64_t stride, int head_dim, float scale,
                               float *s, int t, int end) {
  if ((head_dim & 3) == 0)
    for (; t + 4 <= end; t += 4) scores_four(query, 0, keys + t * stride, stride, head_dim, scale, s + t, 0);
  for (; t < end; t++) s[t] = dot_head(query, keys + t * stride, head_dim) * scale;
}

/** Query rows attended together: their scores come from one pass over the keys (kept in cache). */
#define ROW_BLOCK 8

/**
 * Rows [r0, r0 + nb) of head h, with nb rows of scores at scores + j * row_stride. Every value is
 * attend_head's, by the same operations: the scores (dot_head's sums, four keys at a time, two
 * rows sharing each key load), the max by the same in-order comparison, expf_2 / engine_expf, the
 * in-order total, p = score · (1 / total), and each output 0 + p_0·v_0 + p_1·v_1 + ... in position
 * order; only the order in which independent values are computed differs.
 */
static void attend_rows(const float *q, const float *key_cache, const float *value_cache, float *out, float *scores,
                        int row_stride, int r0, int nb, int h, int heads, int group, int head_dim, int position_stride,
                        int position0, float scale) {
  const int64_t stride = position_stride;
  const float *keys = key_cache + (h / group) * head_dim;
  const float *values = value_cache + (h / group) * head_dim;
  const float *query[ROW_BLOCK];
  int length[ROW_BLOCK];
  for (int j = 0; j < nb; j++) {
    query[j] = q + ((int64_t)(r0 + j) * heads + h) * head_dim;
    length[j] = position0 + r0 + j + 1;
  }
  // Scores: four keys at a time (their 4·head_dim floats stay in L1 across the rows), rows in pairs.
  const int longest = length[nb - 1];
  int t = 0;
  if ((head_dim & 3) == 0)
    for (; t + 4 <= longest; t += 4) {
      const float *k = keys + t * stride;
      int j = 0;
      // Rows whose length ends inside [t, t + 4) take their last keys one by one below.
      while (j < nb && t + 4 > length[j]) j++;
      for (; j + 2 <= nb; j += 2)
        scores_four(query[j], query[j + 1], k, stride, head_dim, scale, scores + j * row_stride + t,
                    scores + (j + 1) * row_stride + t);
      if (j < nb) scores_four(query[j], 0, k, stride, head_dim, scale, scores + j * row_stride + t, 0);
    }
  // What is left of each row (fewer than four keys past its last group of four): one by one.
  for (int j = 0; j < nb; j++) {
    const int from = (head_dim & 3) == 0 ? length[j] & ~3 : 0;
    scores_span(query[j], keys, stride, head_dim, scale, scores + j * row_stride, from, length[j]);
  }
  // Softmax per row, in place: s[p] becomes p_p = e^(score − max) · (1 / total).
  for (int j = 0; j < nb; j++) {
    float *s = scores + j * row_stride;
    const int n = length[j];
    float max = -__builtin_inff();
    for (int i = 0; i < n; i++)
      if (s[i] > max) max = s[i];
    float inverse = 1.0f / exp_in_place(s, n, max);
    for (int i = 0; i < n; i++) s[i] = s[i] * inverse;
  }
  // The weighted sums of values, rows in pairs (each value load serves both), 16 elements' running
  // sums per row in registers across the positions, each 0 + p_0·v_0 + p_1·v_1 + ... in order.
  int j = 0;
  if ((head_dim & 15) == 0)
    for (; j + 2 <= nb; j += 2) {
      const float *s0 = scores + j * row_stride, *s1 = s0 + row_stride;
      const int n = length[j]; // row j + 1 has one position more
      float *d0 = out + ((int64_t)(r0 + j) * heads + h) * head_dim;
      float *d1 = out + ((int64_t)(r0 + j + 1) * heads + h) * head_dim;
      for (int d = 0; d < head_dim; d += 16) {
        v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        const float *v = values + d;
        for (int p = 0; p < n; p++, v += stride) {
          const v128_t x = wasm_f32x4_splat(s0[p]), y = wasm_f32x4_splat(s1[p]);
          const v128_t v0 = wasm_v128_load(v), v1 = wasm_v128_load(v + 4);
          const v128_t v2 = wasm_v128_load(v + 8), v3 = wasm_v128_load(v + 12);
          a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(x, v0));
          a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(x, v1));
          a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(x, v2));
          a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(x, v3));
          b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(y, v0));
          b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(y, v1));
          b2 = wasm_f32x4_add(b2, wasm_f32x4_mul(y, v2));
          b3 = wasm_f32x4_add(b3, wasm_f32x4_mul(y, v3));
        }
        const v128_t y = wasm_f32x4_splat(s1[n]);
        b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(y, wasm_v128_load(v)));
        b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(y, wasm_v128_load(v + 4)));
        b2 = wasm_f32x4_add(b2, wasm_f32x4_mul(y, wasm_v128_load(v + 8)));
        b3 = wasm_f32x4_add(b3, wasm_f32x4_mul(y, wasm_v128_load(v + 12)));
        wasm_v128_store(d0 + d, a0);
        wasm_v128_store(d0 + d + 4, a1);
        wasm_v128_store(d0 + d + 8, a2);
        wasm_v128_store(d0 + d + 12, a3);
        wasm_v128_store(d1 + d, b0);
        wasm_v128_store(d1 + d + 4, b1);
        wasm_v128_store(d1 + d + 8, b2);
        wasm_v128_store(d1 + d + 12, b3);
      }
    }
  for (; j < nb; j++) {
    const float *s = scores + j * row_stride;
    const int n = length[j];
    float *dst = out + ((int64_t)(r0 + j) * heads + h) * head_dim;
    int d = 0;
    for (; d + 32 <= head_dim; d += 32) {
      v128_t acc[8];
      for (int m = 0; m < 8; m++) acc[m] = wasm_f32x4_splat(0.0f);
      for (int p = 0; p < n; p++) {
        v128_t pv = wasm_f32x4_splat(s[p]);
        const float *v = values + p * stride + d;
        for (int m = 0; m < 8; m++) acc[m] = wasm_f32x4_add(acc[m], wasm_f32x4_mul(pv, wasm_v128_load(v + 4 * m)));
      }
      for (int m = 0; m < 8; m++) wasm_v128_store(dst + d + 4 * m, acc[m]);
    }
    for (; d + 4 <= head_dim; d += 4) {
      v128_t acc = wasm_f32x4_splat(0.0f);
      for (int p = 0; p < n; p++)
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_splat(s[p]), wasm_v128_load(values + p * stride + d)));
      wasm_v128_store(dst + d, acc);
    }
    for (; d < head_dim; d++) {
      float acc = 0.0f;
      for (int p = 0; p < n; p++) acc += s[p] * values[p * stride + d];
      dst[d] = acc;
    }
  }
}

/**
 * As attention, with scratch per head (head h uses scores + h * scores_stride floats), so threads
 * can take different heads at once. Each head's rows go in blocks of up to ROW_BLOCK, as many as
 * the head's scratch holds rows of scores for (at least one): the bits do not depend on the block.
 */
EXPORT(attention_split)
void attention_split(const float *q, const float *key_cache, const float *value_cache, float *out, float *scores,
                     int scores_stride, int rows, int heads, int kv_heads, int head_dim, int position_stride,
                     int position0, float scale, int head_begin, int head_end) {
  int group = heads / kv_heads;
  for (int h = head_begin; h < head_end; h++)
    for (int r0 = 0; r0 < rows;) {
      int nb = rows - r0 < ROW_BLOCK ? rows - r0 : ROW_BLOCK;
      // Rows of scores four-aligned, each as long as the block's longest row.
      int row_stride = (position0 + r0 + nb + 3) & ~3;
      while (nb > 1 && (int64_t)nb * row_stride > scores_stride) {
        nb--;
        row_stride = (position0 + r0 + nb + 3) & ~3;
      }
      if (nb == 1) row_stride = scores_stride;
      attend_rows(q, key_cache, value_cache, out, scores + (int64_t)h * scores_stride, row_stride, r0, nb, h, heads,
                  group, head_dim, position_stride, position0, scale);
      r0 += nb;
    }
}
