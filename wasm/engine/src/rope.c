// Rotary position embedding, "rotate_half" layout (Hugging Face's Llama / Qwen): for i < half,
// (x[i], x[i + half]) turns by angle = position * inv_freq[i], where half = rotary_dim / 2. Dims
// at and after rotary_dim pass through unchanged (partial rotary, Qwen3.5 rotates a quarter).
// The angle is rounded to float as the ONNX graph computes it (float position * float inv_freq);
// cos and sin are our own double-precision ones, then rounded to float.
#include "engine.h"

/** x [rows, heads, head_dim] in place; row r sits at position position0 + r. */
EXPORT(rope)
void rope(float *x, int rows, int heads, int head_dim, int rotary_dim, int position0, const float *inv_freq) {
  int half = rotary_dim / 2;
  for (int r = 0; r < rows; r++) {
    float position = (float)(position0 + r);
    float *row = x + (int64_t)r * heads * head_dim;
    for (int i = 0; i < half; i++) {
      float angle = position * inv_freq[i];
      double s, c;
      engine_sincos((double)angle, &s, &c);
      float sin_f = (float)s, cos_f = (float)c;
      for (int h = 0; h < heads; h++) {
        float *v = row + h * head_dim;
        float a = v[i], b = v[i + half];
        v[i] = a * cos_f - b * sin_f;
        v[i + half] = b * cos_f + a * sin_f;
      }
    }
  }
}
