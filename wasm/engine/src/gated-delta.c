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
// Column j of kv, δ and o depends on column j of S only, so the state goes in strips of eight
// columns, each strip through a block of up to TOKEN_BLOCK tokens while it sits in L1 (δ in
// registers), the block's last update applied before the next strip: every element sees the same
// operations in the same order as token after token over the whole state.
//
// Determinism: every sum runs in one fixed order (over i = 0..dk−1 for each output lane); SIMD
// runs across the dv lanes, which are independent, so the result does not depend on the
// blocking, on how heads are split between threads, on the host, or on how tokens are grouped
// into calls (the state values between tokens are the same either way).
//
// Layouts: qkv [tokens, qkv_stride] holding q (Hk·dk), k (Hk·dk), v (Hv·dv) after the conv;
// z [tokens, z_stride] (Hv·dv used); a and b [tokens, ab_stride] (Hv used each); state
// [Hv, dk, dv]; out [tokens, out_stride]. Heads [h_begin, h_end) are computed (thread split).
// scratch: qwen35_gated_delta_scratch_floats(Hv, dk, dv) floats (one slot per value head).

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
  // 4·Q35_SIDE at a time, the SiLUs side by side (the same bits as one vector at a time).
  for (; j + 4 * Q35_SIDE <= dv; j += 4 * Q35_SIDE) {
    f32x4 s[Q35_SIDE];
    for (int v = 0; v < Q35_SIDE; v++) s[v] = wasm_v128_load(z + j + 4 * v);
    q35_siluf4_side(s);
    for (int v = 0; v < Q35_SIDE; v++) {
      f32x4 r = wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(o + j + 4 * v), inv4), wasm_v128_load(w + j + 4 * v));
      wasm_v128_store(o + j + 4 * v, wasm_f32x4_mul(r, s[v]));
    }
  }
  for (; j + 4 <= dv; j += 4) {
    f32x4 r = wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(o + j), inv4), wasm_v128_load(w + j));
    wasm_v128_store(o + j, wasm_f32x4_mul(r, q35_siluf4(wasm_v128_load(z + j))));
  }
  for (; j < dv; j++) o[j] = o[j] * inv * w[j] * q35_siluf(z[j]);
}

// Tokens whose normalised q and k a head keeps in scratch at once: each strip of the state stays
// in L1 across them.
#define TOKEN_BLOCK 16

/** Floats of scratch qwen35_gated_delta needs: one slot of 2 · TOKEN_BLOCK · dk per value head. */
EXPORT(qwen35_gated_delta_scratch_floats)
int qwen35_gated_delta_scratch_floats(int value_heads, int dk, int dv) { return value_heads * 2 * TOKEN_BLOCK * dk; }

// One strip of eight state columns [dk, j..j+8) of a head through tokens [0, n) of a block, the
// strip staying in registers and L1. Per token: first, from the second token on, the previous
// token's update S ← S·decay_p + k_p ⊗ δ_p (the reference's S·e^g, then + k ⊗ δ, as two
// operations per element), then the two reductions this token needs over the updated S,
// acc_k = Sᵀk and acc_q = Sᵀq, each summed over i = 0..dk−1 in order; with S the state before
// the token, kv = e^g·acc_k, δ = (v − kv)·β and o = e^g·acc_q + (k·q)·δ (the rule rearranged).
// After the block's last token its update is applied too, so the state between blocks (and
// between calls) is the rule's state after each token: the bits do not depend on the blocking.
static void strip8(float *state, int j, int dv, int dk, int n, const float *qn, const float *kn, const float *decay,
                   const float *beta, const float *kq, const float *const *v, float *const *o) {
  f32x4 e0 = wasm_f32x4_splat(0.0f), e1 = e0;
  f32x4 dp = e0;
  const float *kp = kn;
  for (int t = 0; t < n; t++) {
    const float *k = kn + t * dk, *q = qn + t * dk;
    f32x4 ak0 = wasm_f32x4_splat(0.0f), ak1 = ak0, aq0 = ak0, aq1 = ak0;
    if (t > 0) {
      for (int i = 0; i < dk; i++) {
        float *row = state + (int64_t)i * dv + j;
        const f32x4 kpi = wasm_f32x4_splat(kp[i]);
        f32x4 s0 = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(row), dp), wasm_f32x4_mul(kpi, e0));
        f32x4 s1 = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(row + 4), dp), wasm_f32x4_mul(kpi, e1));
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
    const f32x4 g = wasm_f32x4_splat(decay[t]), b = wasm_f32x4_splat(beta[t]), c = wasm_f32x4_splat(kq[t]);
    e0 = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(v[t] + j), wasm_f32x4_mul(g, ak0)), b);
    e1 = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(v[t] + j + 4), wasm_f32x4_mul(g, ak1)), b);
    wasm_v128_store(o[t] + j, wasm_f32x4_add(wasm_f32x4_mul(g, aq0), wasm_f32x4_mul(c, e0)));
    wasm_v128_store(o[t] + j + 4, wasm_f32x4_add(wasm_f32x4_mul(g, aq1), wasm_f32x4_mul(c, e1)));
    dp = g;
    kp = k;
  }
  for (int i = 0; i < dk; i++) {
    float *row = state + (int64_t)i * dv + j;
    const f32x4 kpi = wasm_f32x4_splat(kp[i]);
    wasm_v128_store(row, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(row), dp), wasm_f32x4_mul(kpi, e0)));
    wasm_v128_store(row + 4, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(row + 4), dp), wasm_f32x4_mul(kpi, e1)));
  }
}

// strip8 for one column (the dv % 8 tail), in scalar code with the same operations.
static void strip1(float *state, int j, int dv, int dk, int n, const float *qn, const float *kn, const float *decay,
                   const float *beta, const float *kq, const float *const *v, float *const *o) {
  float e = 0.0f, dp = 0.0f;
  const float *kp = kn;
  for (int t = 0; t < n; t++) {
    const float *k = kn + t * dk, *q = qn + t * dk;
    float ak = 0.0f, aq = 0.0f;
    for (int i = 0; i < dk; i++) {
      float s = state[(int64_t)i * dv + j];
      if (t > 0) {
        s = s * dp + kp[i] * e;
        state[(int64_t)i * dv + j] = s;
      }
      ak = ak + s * k[i];
      aq = aq + s * q[i];
    }
    e = (v[t][j] - decay[t] * ak) * beta[t];
    o[t][j] = decay[t] * aq + kq[t] * e;
    dp = decay[t];
    kp = k;
  }
  for (int i = 0; i < dk; i++) state[(int64_t)i * dv + j] = state[(int64_t)i * dv + j] * dp + kp[i] * e;
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
  float decay[TOKEN_BLOCK], beta[TOKEN_BLOCK], kq[TOKEN_BLOCK];
  const float *v[TOKEN_BLOCK];
  float *o[TOKEN_BLOCK];
  // Each value head has its own slot of scratch (q and k of a block of tokens), so threads that
  // split the heads never share one.
  for (int h = h_begin; h < h_end; h++) {
    const int kh = h / repeat;
    float *qn = scratch + (int64_t)h * 2 * TOKEN_BLOCK * dk;
    float *kn = qn + TOKEN_BLOCK * dk;
    float *s = state + (int64_t)h * dk * dv;
    for (int t0 = 0; t0 < tokens; t0 += TOKEN_BLOCK) {
      const int n = tokens - t0 < TOKEN_BLOCK ? tokens - t0 : TOKEN_BLOCK;
      for (int i = 0; i < n; i++) {
        const int t = t0 + i;
        const float *row = qkv + (int64_t)t * qkv_stride;
        l2_normalise(row + kh * dk, qn + i * dk, dk, q_scale);
        l2_normalise(row + key_dim + kh * dk, kn + i * dk, dk, 1.0f);
        v[i] = row + 2 * key_dim + (int64_t)h * dv;
        o[i] = out + (int64_t)t * out_stride + (int64_t)h * dv;
        beta[i] = q35_sigmoidf(b[(int64_t)t * ab_stride + h]);
        const float g = neg_exp_a_log[h] * q35_softplusf(a[(int64_t)t * ab_stride + h] + dt_bias[h]);
        decay[i] = q35_expf(g);
        kq[i] = dot(kn + i * dk, qn + i * dk, dk);
      }
      int j = 0;
      for (; j + 8 <= dv; j += 8) strip8(s, j, dv, dk, n, qn, kn, decay, beta, kq, v, o);
      for (; j < dv; j++) strip1(s, j, dv, dk, n, qn, kn, decay, beta, kq, v, o);
      for (int i = 0; i < n; i++)
        gated_norm(o[i], z + (int64_t)(t0 + i) * z_stride + (int64_t)h * dv, norm_weight, dv, eps);
    }
  }
}
