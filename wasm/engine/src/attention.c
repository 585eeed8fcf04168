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
  // The exponentials two at a time (expf_2: engine_expf's bits), then summed one by one in order.
  int t = 0;
  for (; t + 2 <= length; t += 2) {
    v128_t x = wasm_f32x4_sub(wasm_v128_load64_zero(scores + t), wasm_f32x4_splat(max));
    wasm_v128_store64_lane(scores + t, expf_2(x), 0);
  }
  for (; t < length; t++) scores[t] = engine_expf(scores[t] - max);
  float total = 0.0f;
  for (t = 0; t < length; t++) total += scores[t];
  float inverse = 1.0f / total;
  float *dst = out + ((int64_t)r * heads + h) * head_dim;
  // Each output element is 0 + p_0·v_0 + p_1·v_1 + ... in position order, as before; the running
  // sums of 32 elements stay in registers across the positions instead of going through memory.
  int d = 0;
  for (; d + 32 <= head_dim; d += 32) {
    v128_t acc[8];
    for (int j = 0; j < 8; j++) acc[j] = wasm_f32x4_splat(0.0f);
    for (t = 0; t < length; t++) {
      v128_t pv = wasm_f32x4_splat(scores[t] * inverse);
      const float *v = values + (int64_t)t * position_stride + d;
      for (int j = 0; j < 8; j++) acc[j] = wasm_f32x4_add(acc[j], wasm_f32x4_mul(pv, wasm_v128_load(v + 4 * j)));
    }
    for (int j = 0; j < 8; j++) wasm_v128_store(dst + d + 4 * j, acc[j]);
  }
  for (; d + 4 <= head_dim; d += 4) {
    v128_t acc = wasm_f32x4_splat(0.0f);
    for (t = 0; t < length; t++)
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_splat(scores[t] * inverse),
                                               wasm_v128_load(values + (int64_t)t * position_stride + d)));
    wasm_v128_store(dst + d, acc);
  }
  for (; d < head_dim; d++) {
    float acc = 0.0f;
    for (t = 0; t < length; t++) acc += (scores[t] * inverse) * values[(int64_t)t * position_stride + d];
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

/**
 * As attention, with scratch per head (head h uses scores + h * scores_stride), so threads can
 * take different heads at once.
 */
EXPORT(attention_split)
void attention_split(const float *q, const float *key_cache, const float *value_cache, float *out, float *scores,
                     int scores_stride, int rows, int heads, int kv_heads, int head_dim, int position_stride,
                     int position0, float scale, int head_begin, int head_end) {
  int group = heads / kv_heads;
  for (int r = 0; r < rows; r++)
    for (int h = head_begin; h < head_end; h++)
      attend_head(q, key_cache, value_cache, out, scores + (int64_t)h * scores_stride, r, h, heads, group, head_dim,
                  position_stride, position0, scale);
}
