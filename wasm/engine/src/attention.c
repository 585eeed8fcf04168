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
  float total = 0.0f;
  for (int t = 0; t < length; t++) {
    float e = engine_expf(scores[t] - max);
    scores[t] = e;
    total += e;
  }
  float inverse = 1.0f / total;
  float *dst = out + ((int64_t)r * heads + h) * head_dim;
  for (int d = 0; d < head_dim; d++) dst[d] = 0.0f;
  for (int t = 0; t < length; t++) {
    float p = scores[t] * inverse;
    const float *v = values + (int64_t)t * position_stride;
    int d = 0;
    v128_t pv = wasm_f32x4_splat(p);
    for (; d + 4 <= head_dim; d += 4)
      wasm_v128_store(dst + d, wasm_f32x4_add(wasm_v128_load(dst + d), wasm_f32x4_mul(pv, wasm_v128_load(v + d))));
    for (; d < head_dim; d++) dst[d] += p * v[d];
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
