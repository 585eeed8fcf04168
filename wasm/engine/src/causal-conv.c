// Qwen3.5's depthwise causal conv1d with a carried state, then SiLU (the Gated DeltaNet's
// short convolution; com.microsoft CausalConvWithState with activation "silu").
//
// Layouts (chosen for SIMD over channels; the loader repacks the ONNX [channels, 1, kernel] weight
// once): x and out [tokens, channels] (the projection's row-major output), weight [kernel,
// channels], state [kernel − 1, channels], oldest input first. Per channel and token:
//   s = w[kernel−1]·x[t] + Σ_{j<kernel−1} w[j]·input[t − (kernel−1) + j]
// summed in that fixed order (the reference's), inputs before t = 0 coming from the state.
// Afterwards the state holds the last kernel − 1 inputs. out may not alias x. Only channels
// [c_begin, c_end) are touched (threads split the channels; each is independent).

#include "qwen35-math.h"

EXPORT(qwen35_causal_conv_silu)
void qwen35_causal_conv_silu(const float *x, float *state, const float *weight, float *out,
                             int tokens, int channels, int kernel, int c_begin, int c_end) {
  if (kernel < 1 || kernel > 17) return; // the loader rejects other kernel sizes first
  const int past = kernel - 1;
  const float *inputs[16]; // the kernel − 1 earlier input rows of token t (kernel <= 17)
  for (int t = 0; t < tokens; t++) {
    const float *xt = x + (int64_t)t * channels;
    float *ot = out + (int64_t)t * channels;
    for (int j = 0; j < past; j++) {
      int p = t - past + j;
      inputs[j] = p < 0 ? state + (int64_t)(p + past) * channels : x + (int64_t)p * channels;
    }
    const float *last = weight + (int64_t)past * channels;
    int c = c_begin;
    // 4·Q35_SIDE channels at a time, their SiLUs side by side (q35_siluf4_side: the same bits).
    for (; c + 4 * Q35_SIDE <= c_end; c += 4 * Q35_SIDE) {
      f32x4 s[Q35_SIDE];
      for (int v = 0; v < Q35_SIDE; v++)
        s[v] = wasm_f32x4_mul(wasm_v128_load(last + c + 4 * v), wasm_v128_load(xt + c + 4 * v));
      for (int j = 0; j < past; j++) {
        const float *w = weight + (int64_t)j * channels + c;
        for (int v = 0; v < Q35_SIDE; v++)
          s[v] = wasm_f32x4_add(s[v], wasm_f32x4_mul(wasm_v128_load(w + 4 * v), wasm_v128_load(inputs[j] + c + 4 * v)));
      }
      q35_siluf4_side(s);
      for (int v = 0; v < Q35_SIDE; v++) wasm_v128_store(ot + c + 4 * v, s[v]);
    }
    for (; c + 4 <= c_end; c += 4) {
      f32x4 s = wasm_f32x4_mul(wasm_v128_load(last + c), wasm_v128_load(xt + c));
      for (int j = 0; j < past; j++)
        s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_v128_load(weight + (int64_t)j * channels + c), wasm_v128_load(inputs[j] + c)));
      wasm_v128_store(ot + c, q35_siluf4(s));
    }
    for (; c < c_end; c++) {
      float s = last[c] * xt[c];
      for (int j = 0; j < past; j++) s = s + weight[(int64_t)j * channels + c] * inputs[j][c];
      ot[c] = q35_siluf(s);
    }
  }
  // New state: the last `past` inputs over [state, x].
  if (tokens >= past) {
    for (int j = 0; j < past; j++) {
      const float *src = x + (int64_t)(tokens - past + j) * channels;
      float *dst = state + (int64_t)j * channels;
      for (int c = c_begin; c < c_end; c++) dst[c] = src[c];
    }
  } else {
    // Shift the old rows down by `tokens`, then append x.
    for (int j = 0; j + tokens < past; j++) {
      float *dst = state + (int64_t)j * channels;
      const float *src = state + (int64_t)(j + tokens) * channels;
      for (int c = c_begin; c < c_end; c++) dst[c] = src[c];
    }
    for (int t = 0; t < tokens; t++) {
      float *dst = state + (int64_t)(past - tokens + t) * channels;
      const float *src = x + (int64_t)t * channels;
      for (int c = c_begin; c < c_end; c++) dst[c] = src[c];
    }
  }
}
