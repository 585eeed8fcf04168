// Qwen3.5's Gated DeltaNet core: per token, L2-normalised q and k (q also scaled by dk^-1/2),
// beta = sigmoid(b), g = −exp(A_log)·softplus(a + dt_bias), and per value head h (served by key
// head h / (Hv/Hk), consecutive grouping) the delta rule on its state S [dk, dv]:
//   S ← S·e^g;  kv = Sᵀk;  δ = (v − kv)·β;  S ← S + k ⊗ δ;  o = Sᵀq
// then the gated RMSNorm per value head: out = o · rsqrt(mean(o²) + eps) · w · silu(z).
//
// Per value head the tokens run in order, and each token makes one read-write pass over S that
// first applies the previous token's update and then takes the two reductions this token needs
// (Sᵀk and Sᵀq); with S the state before the token, kv = e^g·(Sᵀk) and o = e^g·(Sᵀq) + (k·q)·δ,
// which is the rule above rearranged. A prefill thus reads the state once per token, not twice.
//
// Determinism: every sum runs in one fixed order (over i = 0..dk−1 for each output lane); SIMD
// runs across the dv lanes, which are independent, so the result does not depend on the
// blocking, on how heads are split between threads, on the host, or on how tokens are grouped
// into calls (the state values between tokens are the same either way).
//
// Layouts: qkv [tokens, qkv_stride] holding q (Hk·dk), k (Hk·dk), v (Hv·dv) after the conv;
// z [tokens, z_stride] (Hv·dv used); a and b [tokens, ab_stride] (Hv used each); state
// [Hv, dk, dv]; out [tokens, out_stride]. Heads [h_begin, h_end) are computed (thread split).
// scratch: Hv·(3·dk + 3·dv) floats (one slot per value head).

#include "qwen35-math.h"

// Sum of squares of n floats: four lanes (element i in lane i % 4) folded as sum_f32x4 does, then the tail.
static float sum_squares(const float *x, int n) {
  f32x4 acc = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    f32x4 v = wasm_v128_load(x + i);
    acc = wasm_f32x4_add(acc, wasm_f32x4_mul(v, v));
  }
  float s = sum_f32x4(acc);
  for (; i < n; i++) s = s + x[i] * x[i];
  return s;
}

static void l2_normalise(const float *x, float *y, int n, float scale) {
  float inv = 1.0f / __builtin_sqrtf(sum_squares(x, n) + 1e-6f);
  for (int i = 0; i < n; i++) y[i] = x[i] * inv * scale;
}

// One pass over a head's state S [dk, dv] for one token: first, when `pending` is set, the
// previous token's update S ← S·decay_p + k_p ⊗ δ_p (the same two operations per element as the
// reference's S·e^g then + k ⊗ δ), then the two reductions this token needs, over the updated S:
// acc_k = Sᵀk and acc_q = Sᵀq, each summed over i = 0..dk−1 in order. Fusing the update into the
// next token's reads makes a prefill one read-write pass per token instead of two; the values are
// the same as updating first, so the chunking of tokens into calls changes no bit.
static void state_pass(float *state, int pending, float decay_p, const float *k_p, const float *delta_p,
                       const float *k, const float *q, float *acc_k, float *acc_q, int dk, int dv) {
  const f32x4 dp = wasm_f32x4_splat(decay_p);
  int j = 0;
  for (; j + 8 <= dv; j += 8) {
    f32x4 ak0 = wasm_f32x4_splat(0.0f), ak1 = ak0, aq0 = ak0, aq1 = ak0;
    if (pending) {
      const f32x4 e0 = wasm_v128_load(delta_p + j), e1 = wasm_v128_load(delta_p + j + 4);
      for (int i = 0; i < dk; i++) {
        float *row = state + (int64_t)i * dv + j;
        const f32x4 kp = wasm_f32x4_splat(k_p[i]);
        f32x4 s0 = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(row), dp), wasm_f32x4_mul(kp, e0));
        f32x4 s1 = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(row + 4), dp), wasm_f32x4_mul(kp, e1));
        wasm_v128_store(row, s0);
        wasm_v128_store(row + 4, s1);
        const f32x4 ki = wasm_f32x4_splat(k[i]), qi = wasm_f32x4_splat(q[i]);
        ak0 = wasm_f32x4_add(ak0, wasm_f32x4_mul(s0, ki));
        ak1 = wasm_f32x4_add(ak1, wasm_f32x4_mul(s1, ki));
        aq0 = wasm_f32x4_add(aq0, wasm_f32x4_mul(s0, qi));
        aq1 = wasm_f32x4_add(aq1, wasm_f32x4_mul(s1, qi));
      }
    } else {
      for (int i = 0; i < dk; i++) {
        const float *row = state + (int64_t)i * dv + j;
        const f32x4 s0 = wasm_v128_load(row), s1 = wasm_v128_load(row + 4);
        const f32x4 ki = wasm_f32x4_splat(k[i]), qi = wasm_f32x4_splat(q[i]);
        ak0 = wasm_f32x4_add(ak0, wasm_f32x4_mul(s0, ki));
        ak1 = wasm_f32x4_add(ak1, wasm_f32x4_mul(s1, ki));
        aq0 = wasm_f32x4_add(aq0, wasm_f32x4_mul(s0, qi));
        aq1 = wasm_f32x4_add(aq1, wasm_f32x4_mul(s1, qi));
      }
    }
    wasm_v128_store(acc_k + j, ak0);
    wasm_v128_store(acc_k + j + 4, ak1);
    wasm_v128_store(acc_q + j, aq0);
    wasm_v128_store(acc_q + j + 4, aq1);
  }
  for (; j < dv; j++) {
    float ak = 0.0f, aq = 0.0f;
    for (int i = 0; i < dk; i++) {
      float s = state[(int64_t)i * dv + j];
      if (pending) {
        s = s * decay_p + k_p[i] * delta_p[j];
        state[(int64_t)i * dv + j] = s;
      }
      ak = ak + s * k[i];
      aq = aq + s * q[i];
    }
    acc_k[j] = ak;
    acc_q[j] = aq;
  }
}

// The last pending update: S ← S·decay + k ⊗ δ.
static void state_update(float *state, float decay, const float *k, const float *delta, int dk, int dv) {
  const f32x4 d4 = wasm_f32x4_splat(decay);
  int j = 0;
  for (; j + 16 <= dv; j += 16) {
    const f32x4 e0 = wasm_v128_load(delta + j), e1 = wasm_v128_load(delta + j + 4);
    const f32x4 e2 = wasm_v128_load(delta + j + 8), e3 = wasm_v128_load(delta + j + 12);
    for (int i = 0; i < dk; i++) {
      float *row = state + (int64_t)i * dv + j;
      const f32x4 ki = wasm_f32x4_splat(k[i]);
      wasm_v128_store(row, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(row), d4), wasm_f32x4_mul(ki, e0)));
      wasm_v128_store(row + 4, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(row + 4), d4), wasm_f32x4_mul(ki, e1)));
      wasm_v128_store(row + 8, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(row + 8), d4), wasm_f32x4_mul(ki, e2)));
      wasm_v128_store(row + 12, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(row + 12), d4), wasm_f32x4_mul(ki, e3)));
    }
  }
  for (; j < dv; j++)
    for (int i = 0; i < dk; i++) state[(int64_t)i * dv + j] = state[(int64_t)i * dv + j] * decay + k[i] * delta[j];
}

static float dot(const float *a, const float *b, int n) {
  f32x4 acc = wasm_f32x4_splat(0.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  float s = sum_f32x4(acc);
  for (; i < n; i++) s = s + a[i] * b[i];
  return s;
}

// out = o · rsqrt(mean(o²) + eps) · w · silu(z), in place on o.
static void gated_norm(float *o, const float *z, const float *w, int dv, float eps) {
  float inv = 1.0f / __builtin_sqrtf(sum_squares(o, dv) / (float)dv + eps);
  int j = 0;
  const f32x4 inv4 = wasm_f32x4_splat(inv);
  for (; j + 4 <= dv; j += 4) {
    f32x4 r = wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(o + j), inv4), wasm_v128_load(w + j));
    wasm_v128_store(o + j, wasm_f32x4_mul(r, q35_siluf4(wasm_v128_load(z + j))));
  }
  for (; j < dv; j++) o[j] = o[j] * inv * w[j] * q35_siluf(z[j]);
}

EXPORT(qwen35_gated_delta)
void qwen35_gated_delta(const float *qkv, int qkv_stride, const float *z, int z_stride,
                        const float *a, const float *b, int ab_stride, const float *neg_exp_a_log,
                        const float *dt_bias, const float *norm_weight, float *state, float *out,
                        int out_stride, float *scratch, int tokens, int key_heads, int value_heads,
                        int dk, int dv, float eps, int h_begin, int h_end) {
  if (tokens <= 0 || h_begin >= h_end) return;
  const int repeat = value_heads / key_heads;
  const int key_dim = key_heads * dk;
  const float q_scale = 1.0f / __builtin_sqrtf((float)dk);
  // Each value head has its own slot of scratch (q, two k, two δ, acc_k), so threads that split
  // the heads never share one: slot h starts at h · (3·dk + 3·dv).
  for (int h = h_begin; h < h_end; h++) {
    const int kh = h / repeat;
    float *slot = scratch + (int64_t)h * (3 * dk + 3 * dv);
    float *q = slot;
    float *keys[2] = {slot + dk, slot + 2 * dk};
    float *deltas[2] = {slot + 3 * dk, slot + 3 * dk + dv};
    float *acc_k = slot + 3 * dk + 2 * dv;
    float *s = state + (int64_t)h * dk * dv;
    float decay_p = 0.0f;
    for (int t = 0; t < tokens; t++) {
      const float *row = qkv + (int64_t)t * qkv_stride;
      float *k = keys[t & 1];
      l2_normalise(row + kh * dk, q, dk, q_scale);
      l2_normalise(row + key_dim + kh * dk, k, dk, 1.0f);
      const float *v = row + 2 * key_dim + (int64_t)h * dv;
      const float beta = q35_sigmoidf(b[(int64_t)t * ab_stride + h]);
      const float g = neg_exp_a_log[h] * q35_softplusf(a[(int64_t)t * ab_stride + h] + dt_bias[h]);
      const float decay = q35_expf(g);
      float *o = out + (int64_t)t * out_stride + (int64_t)h * dv;
      float *delta = deltas[t & 1];
      // acc_q goes straight into o.
      state_pass(s, t > 0, decay_p, keys[(t + 1) & 1], deltas[(t + 1) & 1], k, q, acc_k, o, dk, dv);
      // With S the state before this token: kv = (S·e^g)ᵀk, δ = (v − kv)·β, and
      // o = (S·e^g + k ⊗ δ)ᵀq = e^g·(Sᵀq) + (k·q)·δ.
      const float kq = dot(k, q, dk);
      for (int j = 0; j < dv; j++) {
        delta[j] = (v[j] - decay * acc_k[j]) * beta;
        o[j] = decay * o[j] + kq * delta[j];
      }
      gated_norm(o, z + (int64_t)t * z_stride + (int64_t)h * dv, norm_weight, dv, eps);
      decay_p = decay;
    }
    state_update(s, decay_p, keys[(tokens - 1) & 1], deltas[(tokens - 1) & 1], dk, dv);
  }
}
