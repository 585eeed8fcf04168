// Token embedding lookup, one kernel per stored table format (com.microsoft GatherBlockQuantized
// or a plain Gather). Token ids are checked by the caller. out is [count, hidden].
#include "engine.h"

/** float table [vocab, hidden]. */
EXPORT(embed_f32)
void embed_f32(const float *table, int hidden, const int32_t *ids, int count, float *out) {
  for (int t = 0; t < count; t++) {
    const float *row = table + (int64_t)ids[t] * hidden;
    for (int i = 0; i < hidden; i++) out[(int64_t)t * hidden + i] = row[i];
  }
}

/**
 * 4-bit blocks as MatMulNBits stores them ([vocab, hidden / 32, 16] bytes, element 2j low nibble);
 * scales and zero points [vocab, hidden / 32], one zero point per byte (GatherBlockQuantized's).
 */
EXPORT(embed_q4)
void embed_q4(const uint8_t *data, const float *scales, const uint8_t *zero_points, int hidden, const int32_t *ids,
              int count, float *out) {
  int blocks = hidden / BLOCK;
  for (int t = 0; t < count; t++) {
    int64_t id = ids[t];
    for (int b = 0; b < blocks; b++) {
      const uint8_t *bytes = data + (id * blocks + b) * (BLOCK / 2);
      float scale = scales[id * blocks + b];
      int zero = zero_points ? zero_points[id * blocks + b] : 8;
      float *dst = out + (int64_t)t * hidden + b * BLOCK;
      for (int j = 0; j < BLOCK / 2; j++) {
        dst[2 * j] = (float)((bytes[j] & 15) - zero) * scale;
        dst[2 * j + 1] = (float)((bytes[j] >> 4) - zero) * scale;
      }
    }
  }
}

/** 8-bit blocks: codes uint8 [vocab, hidden], scales and zero points [vocab, hidden / 32]. */
EXPORT(embed_q8)
void embed_q8(const uint8_t *data, const float *scales, const uint8_t *zero_points, int hidden, const int32_t *ids,
              int count, float *out) {
  int blocks = hidden / BLOCK;
  for (int t = 0; t < count; t++) {
    int64_t id = ids[t];
    for (int i = 0; i < hidden; i++) {
      int b = i / BLOCK;
      int zero = zero_points ? zero_points[id * blocks + b] : 128;
      out[(int64_t)t * hidden + i] = (float)((int)data[id * hidden + i] - zero) * scales[id * blocks + b];
    }
  }
}
