// A plain TypeScript forward pass of the Qwen3.5 text model in recurrent form (one position at a
// time, with a cache/state object so prefill and decode are the same call). It is independent of
// the ONNX graph on purpose: the graph (chunked/fused prefill, com.microsoft ops) is tested against
// this, so nothing here is shared with the graph writer but the config and the weight names.
//
// Every detail below was checked against Hugging Face transformers
// `models/qwen3_5/modeling_qwen3_5.py` + `configuration_qwen3_5.py` (read through the search tool,
// commit 009e78d6 of huggingface/transformers; Qwen3.5 derives from qwen3_next's modular file):
// - Qwen3_5RMSNorm (input/post-attention/final norms, q_norm, k_norm) is zero-centred:
//   x · rsqrt(mean(x²) + eps) · (1 + w), weights initialised to 0, computed in fp32.
// - Qwen3_5Attention: q_proj has 2·heads·head_dim outputs, viewed as [..., heads, 2·head_dim] and
//   chunked on the last axis: per head [query (head_dim) | gate (head_dim)]. The gate is flattened
//   back to heads·head_dim in head order. q_norm / k_norm are applied per head (on head_dim) before
//   RoPE; v has no norm. scaling = head_dim^-0.5; GQA: each KV head serves heads/kv_heads
//   consecutive query heads (repeat_kv). attn_output · sigmoid(gate) then o_proj. No biases.
// - RoPE: inv_freq = 1 / theta^(2i/d) with d = head_dim · partial_rotary_factor (64 of 256,
//   theta 1e7 on the published sizes); cos/sin = cat(freqs, freqs); only q[..., :d], k[..., :d] are
//   rotated with rotate_half (cat(-x2, x1) over the rotated part), the rest passes through.
// - M-RoPE: position_ids are [3, B, S] (T, H, W; for text all three rows are equal). Frequencies
//   are recomposed interleaved: index j reads row H when j % 3 == 1 and j < 3·mrope_section[1],
//   row W when j % 3 == 2 and j < 3·mrope_section[2], else row T (mrope_section [11, 11, 10]).
//   A 2D position_ids input is broadcast to all rows; a 4-row one carries text positions first.
// - Qwen3_5GatedDeltaNet: in_proj_qkv (2·key_dim + value_dim outputs), in_proj_z (value_dim),
//   in_proj_b and in_proj_a (one per V head). mixed_qkv goes through a depthwise causal conv1d
//   (kernel linear_conv_kernel_dim = 4, no bias, groups = conv_dim) then SiLU, then is split in
//   the order q (key_dim), k (key_dim), v (value_dim); q, k reshaped to [key heads, head_k_dim],
//   v to [value heads, head_v_dim].
//   beta = sigmoid(b); g = -exp(A_log) · softplus(a + dt_bias) (in fp32).
//   q and k are L2-normalised per head: x · rsqrt(sum(x²) + 1e-6) (use_qk_l2norm_in_kernel), and
//   q is scaled by head_k_dim^-0.5.
//   When value heads > key heads, q and k are repeat_interleave'd: key head h serves value heads
//   h·r .. h·r + r - 1 (r = value heads / key heads).
//   Recurrent step per value head (state S [head_k_dim, head_v_dim], zero at start):
//     S ← S · exp(g); kv = Sᵀ k; δ = (v − kv) · β; S ← S + k ⊗ δ; o = Sᵀ q.
//   The chunked form HF runs for prefill computes the same thing.
//   Output: Qwen3_5RMSNormGated per value head on head_v_dim with a PLAIN weight (initialised to
//   ones): rmsnorm(o) · w · silu(z), then out_proj. The conv cache holds the last inputs of the
//   conv (HF keeps kernel-size of them; only the last kernel − 1 ever reach an output, so this
//   reference, like com.microsoft CausalConvWithState, keeps kernel − 1).
//   Padding tokens (attention_mask 0) are zeroed before a linear layer (apply_mask_to_padding_states).
// - Decoder layer: x + mixer(input_layernorm(x)); then x + mlp(post_attention_layernorm(x)),
//   MLP = down(silu(gate(x)) · up(x)). layer_types: layer i is full attention when (i + 1) is a
//   multiple of full_attention_interval (4): layers 3, 7, 11, ...
// - Final norm (zero-centred), then lm_head; tie_word_embeddings (true on 0.8B/2B) reuses
//   embed_tokens. Checkpoint keys of the multimodal model sit under `model.language_model.`;
//   `model.visual.*` and `mtp.*` are not part of the text model.

import { convDim, mropeRowPerFrequency, type Qwen35Config, rotaryDim } from './qwen3-5-config.ts'

export interface Qwen35Tensor {
  readonly shape: readonly number[]
  readonly data: Float32Array
}

/** Weights by their HF text-model names (`model.embed_tokens.weight`, `model.layers.0.…`, `lm_head.weight`). */
export type Qwen35Weights = ReadonlyMap<string, Qwen35Tensor>

export interface Qwen35Model {
  readonly config: Qwen35Config
  readonly weights: Qwen35Weights
}

interface LinearLayerState {
  readonly kind: 'linear'
  /** The last kernel − 1 conv inputs per channel: [conv_dim, kernel − 1], oldest first. */
  readonly conv: Float32Array
  /** Per value head the [head_k_dim, head_v_dim] delta-rule state. */
  readonly recurrent: Float32Array
}

interface FullLayerState {
  readonly kind: 'full'
  /** Per cached position: keys after k_norm and RoPE, [kv_heads · head_dim]. */
  readonly keys: Float32Array[]
  readonly values: Float32Array[]
}

export interface Qwen35State {
  /** Positions consumed so far (the next text position). */
  position: number
  readonly layers: (LinearLayerState | FullLayerState)[]
}

/** Names and shapes ([out, in] for linear layers, as HF stores them) of every text-model weight. */
export function qwen35WeightShapes(config: Qwen35Config): Map<string, number[]> {
  const shapes = new Map<string, number[]>()
  const hidden = config.hiddenSize
  shapes.set('model.embed_tokens.weight', [config.vocabSize, hidden])
  const keyDim = config.linearNumKeyHeads * config.linearKeyHeadDim
  const valueDim = config.linearNumValueHeads * config.linearValueHeadDim
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = `model.layers.${i}`
    shapes.set(`${p}.input_layernorm.weight`, [hidden])
    shapes.set(`${p}.post_attention_layernorm.weight`, [hidden])
    shapes.set(`${p}.mlp.gate_proj.weight`, [config.intermediateSize, hidden])
    shapes.set(`${p}.mlp.up_proj.weight`, [config.intermediateSize, hidden])
    shapes.set(`${p}.mlp.down_proj.weight`, [hidden, config.intermediateSize])
    if (config.layerTypes[i] === 'full_attention') {
      const a = `${p}.self_attn`
      shapes.set(`${a}.q_proj.weight`, [2 * config.numAttentionHeads * config.headDim, hidden])
      shapes.set(`${a}.k_proj.weight`, [config.numKeyValueHeads * config.headDim, hidden])
      shapes.set(`${a}.v_proj.weight`, [config.numKeyValueHeads * config.headDim, hidden])
      shapes.set(`${a}.o_proj.weight`, [hidden, config.numAttentionHeads * config.headDim])
      shapes.set(`${a}.q_norm.weight`, [config.headDim])
      shapes.set(`${a}.k_norm.weight`, [config.headDim])
    } else {
      const l = `${p}.linear_attn`
      shapes.set(`${l}.in_proj_qkv.weight`, [2 * keyDim + valueDim, hidden])
      shapes.set(`${l}.in_proj_z.weight`, [valueDim, hidden])
      shapes.set(`${l}.in_proj_b.weight`, [config.linearNumValueHeads, hidden])
      shapes.set(`${l}.in_proj_a.weight`, [config.linearNumValueHeads, hidden])
      shapes.set(`${l}.conv1d.weight`, [convDim(config), 1, config.linearConvKernelDim])
      shapes.set(`${l}.dt_bias`, [config.linearNumValueHeads])
      shapes.set(`${l}.A_log`, [config.linearNumValueHeads])
      shapes.set(`${l}.norm.weight`, [config.linearValueHeadDim])
      shapes.set(`${l}.out_proj.weight`, [hidden, valueDim])
    }
  }
  shapes.set('model.norm.weight', [hidden])
  if (!config.tieWordEmbeddings) shapes.set('lm_head.weight', [config.vocabSize, hidden])
  return shapes
}

/** Checks that every weight the config needs is present with the right shape. */
export function validateQwen35Weights(config: Qwen35Config, weights: Qwen35Weights): void {
  for (const [name, shape] of qwen35WeightShapes(config)) {
    const tensor = weights.get(name)
    if (!tensor)
      throw new Error(`Qwen3.5 weights: "${name}" is missing (expected shape [${shape.join(', ')}])`)
    const size = shape.reduce((a, b) => a * b, 1)
    if (tensor.data.length !== size || tensor.shape.join(',') !== shape.join(',')) {
      throw new Error(
        `Qwen3.5 weights: "${name}" has shape [${tensor.shape.join(', ')}], expected [${shape.join(', ')}]`,
      )
    }
  }
}

export function createQwen35State(config: Qwen35Config): Qwen35State {
  return {
    position: 0,
    layers: config.layerTypes.map((type) =>
      type === 'full_attention'
        ? { kind: 'full' as const, keys: [], values: [] }
        : {
            kind: 'linear' as const,
            conv: new Float32Array(convDim(config) * (config.linearConvKernelDim - 1)),
            recurrent: new Float32Array(
              config.linearNumValueHeads * config.linearKeyHeadDim * config.linearValueHeadDim,
            ),
          },
    ),
  }
}

export function cloneQwen35State(state: Qwen35State): Qwen35State {
  return {
    position: state.position,
    layers: state.layers.map((layer) =>
      layer.kind === 'full'
        ? {
            kind: 'full' as const,
            keys: layer.keys.map((k) => k.slice()),
            values: layer.values.map((v) => v.slice()),
          }
        : { kind: 'linear' as const, conv: layer.conv.slice(), recurrent: layer.recurrent.slice() },
    ),
  }
}

export interface Qwen35ForwardOptions {
  /** [3][S] position rows (T, H, W); default: state.position + i on all rows. */
  readonly positionIds?: readonly (readonly number[])[]
  /** Which positions get logits: all (default) or only the last. */
  readonly logits?: 'all' | 'last'
}

/**
 * Runs `tokenIds` through the model one position at a time, updating `state` in place, and
 * returns the logits of each position (or only the last one).
 */
export function qwen35Forward(
  model: Qwen35Model,
  tokenIds: readonly number[],
  state: Qwen35State,
  options: Qwen35ForwardOptions = {},
): Float32Array[] {
  const { config } = model
  const embed = tensor(model, 'model.embed_tokens.weight')
  const hidden = config.hiddenSize
  const out: Float32Array[] = []
  tokenIds.forEach((tokenId, t) => {
    if (!Number.isInteger(tokenId) || tokenId < 0 || tokenId >= config.vocabSize) {
      throw new RangeError(`token id ${tokenId} is outside the vocabulary (0..${config.vocabSize - 1})`)
    }
    const x = embed.subarray(tokenId * hidden, (tokenId + 1) * hidden).slice()
    const textPosition = state.position
    const rows = options.positionIds
    const positions: [number, number, number] = rows
      ? [rows[0]?.[t] ?? textPosition, rows[1]?.[t] ?? textPosition, rows[2]?.[t] ?? textPosition]
      : [textPosition, textPosition, textPosition]
    const logits = qwen35Step(
      model,
      x,
      state,
      positions,
      options.logits !== 'last' || t === tokenIds.length - 1,
    )
    if (logits) out.push(logits)
    state.position++
  })
  return out
}

/** One position: the embedding `x` in, logits out (when asked). Updates the state. */
function qwen35Step(
  model: Qwen35Model,
  x: Float32Array,
  state: Qwen35State,
  positions: [number, number, number],
  wantLogits: boolean,
): Float32Array | undefined {
  const { config } = model
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = `model.layers.${i}`
    const normed = rmsNormZeroCentred(x, tensor(model, `${p}.input_layernorm.weight`), config.rmsNormEps)
    const layer = state.layers[i]
    if (!layer) throw new Error(`state has no layer ${i}`)
    const mixed =
      layer.kind === 'full'
        ? gatedAttention(model, i, normed, layer, positions)
        : gatedDeltaNet(model, i, normed, layer)
    addInPlace(x, mixed)
    const normed2 = rmsNormZeroCentred(
      x,
      tensor(model, `${p}.post_attention_layernorm.weight`),
      config.rmsNormEps,
    )
    const gate = matVec(
      tensor(model, `${p}.mlp.gate_proj.weight`),
      normed2,
      config.intermediateSize,
      config.hiddenSize,
    )
    const up = matVec(
      tensor(model, `${p}.mlp.up_proj.weight`),
      normed2,
      config.intermediateSize,
      config.hiddenSize,
    )
    for (let j = 0; j < gate.length; j++) gate[j] = silu(gate[j] as number) * (up[j] as number)
    addInPlace(
      x,
      matVec(tensor(model, `${p}.mlp.down_proj.weight`), gate, config.hiddenSize, config.intermediateSize),
    )
  }
  if (!wantLogits) return undefined
  const final = rmsNormZeroCentred(x, tensor(model, 'model.norm.weight'), config.rmsNormEps)
  const head = config.tieWordEmbeddings
    ? tensor(model, 'model.embed_tokens.weight')
    : tensor(model, 'lm_head.weight')
  return matVec(head, final, config.vocabSize, config.hiddenSize)
}

function gatedAttention(
  model: Qwen35Model,
  layerIndex: number,
  x: Float32Array,
  cache: FullLayerState,
  positions: [number, number, number],
): Float32Array {
  const { config } = model
  const a = `model.layers.${layerIndex}.self_attn`
  const heads = config.numAttentionHeads
  const kvHeads = config.numKeyValueHeads
  const d = config.headDim
  const projected = matVec(tensor(model, `${a}.q_proj.weight`), x, 2 * heads * d, config.hiddenSize)
  const query = new Float32Array(heads * d)
  const gate = new Float32Array(heads * d)
  for (let h = 0; h < heads; h++) {
    query.set(projected.subarray(h * 2 * d, h * 2 * d + d), h * d)
    gate.set(projected.subarray(h * 2 * d + d, (h + 1) * 2 * d), h * d)
  }
  const key = matVec(tensor(model, `${a}.k_proj.weight`), x, kvHeads * d, config.hiddenSize)
  const value = matVec(tensor(model, `${a}.v_proj.weight`), x, kvHeads * d, config.hiddenSize)
  const qNorm = tensor(model, `${a}.q_norm.weight`)
  const kNorm = tensor(model, `${a}.k_norm.weight`)
  const [cos, sin] = ropeCosSin(config, positions)
  for (let h = 0; h < heads; h++) {
    const head = query.subarray(h * d, (h + 1) * d)
    head.set(rmsNormZeroCentred(head, qNorm, config.rmsNormEps))
    applyRope(head, cos, sin)
  }
  for (let h = 0; h < kvHeads; h++) {
    const head = key.subarray(h * d, (h + 1) * d)
    head.set(rmsNormZeroCentred(head, kNorm, config.rmsNormEps))
    applyRope(head, cos, sin)
  }
  cache.keys.push(key)
  cache.values.push(value)
  const length = cache.keys.length
  const group = heads / kvHeads
  const scale = 1 / Math.sqrt(d)
  const output = new Float32Array(heads * d)
  const scores = new Float64Array(length)
  for (let h = 0; h < heads; h++) {
    const kvHead = Math.floor(h / group)
    const q = query.subarray(h * d, (h + 1) * d)
    let max = -Infinity
    for (let j = 0; j < length; j++) {
      const k = (cache.keys[j] as Float32Array).subarray(kvHead * d, (kvHead + 1) * d)
      let s = 0
      for (let c = 0; c < d; c++) s += (q[c] as number) * (k[c] as number)
      scores[j] = s * scale
      if ((scores[j] as number) > max) max = scores[j] as number
    }
    let sum = 0
    for (let j = 0; j < length; j++) {
      scores[j] = Math.exp((scores[j] as number) - max)
      sum += scores[j] as number
    }
    for (let j = 0; j < length; j++) {
      const w = (scores[j] as number) / sum
      const v = (cache.values[j] as Float32Array).subarray(kvHead * d, (kvHead + 1) * d)
      for (let c = 0; c < d; c++) output[h * d + c] = (output[h * d + c] as number) + w * (v[c] as number)
    }
  }
  for (let j = 0; j < output.length; j++) output[j] = (output[j] as number) * sigmoid(gate[j] as number)
  return matVec(tensor(model, `${a}.o_proj.weight`), output, config.hiddenSize, heads * d)
}

function gatedDeltaNet(
  model: Qwen35Model,
  layerIndex: number,
  x: Float32Array,
  cache: LinearLayerState,
): Float32Array {
  const { config } = model
  const l = `model.layers.${layerIndex}.linear_attn`
  const keyHeads = config.linearNumKeyHeads
  const valueHeads = config.linearNumValueHeads
  const dk = config.linearKeyHeadDim
  const dv = config.linearValueHeadDim
  const keyDim = keyHeads * dk
  const valueDim = valueHeads * dv
  const channels = convDim(config)
  const kernel = config.linearConvKernelDim
  const mixed = matVec(tensor(model, `${l}.in_proj_qkv.weight`), x, channels, config.hiddenSize)
  const z = matVec(tensor(model, `${l}.in_proj_z.weight`), x, valueDim, config.hiddenSize)
  const b = matVec(tensor(model, `${l}.in_proj_b.weight`), x, valueHeads, config.hiddenSize)
  const a = matVec(tensor(model, `${l}.in_proj_a.weight`), x, valueHeads, config.hiddenSize)
  // Depthwise causal conv over [previous kernel − 1 inputs, this input], then SiLU.
  const convWeight = tensor(model, `${l}.conv1d.weight`)
  const past = kernel - 1
  const convolved = new Float32Array(channels)
  for (let c = 0; c < channels; c++) {
    let s = (convWeight[c * kernel + past] as number) * (mixed[c] as number)
    for (let j = 0; j < past; j++)
      s += (convWeight[c * kernel + j] as number) * (cache.conv[c * past + j] as number)
    convolved[c] = silu(s)
    for (let j = 0; j + 1 < past; j++) cache.conv[c * past + j] = cache.conv[c * past + j + 1] as number
    if (past > 0) cache.conv[c * past + past - 1] = mixed[c] as number
  }
  const q = convolved.subarray(0, keyDim)
  const k = convolved.subarray(keyDim, 2 * keyDim)
  const v = convolved.subarray(2 * keyDim, 2 * keyDim + valueDim)
  const aLog = tensor(model, `${l}.A_log`)
  const dtBias = tensor(model, `${l}.dt_bias`)
  const queryScale = 1 / Math.sqrt(dk)
  const normalizedQ = new Float64Array(keyDim)
  const normalizedK = new Float64Array(keyDim)
  for (let h = 0; h < keyHeads; h++) {
    let sq = 0
    let sk = 0
    for (let c = 0; c < dk; c++) {
      sq += (q[h * dk + c] as number) ** 2
      sk += (k[h * dk + c] as number) ** 2
    }
    const iq = 1 / Math.sqrt(sq + 1e-6)
    const ik = 1 / Math.sqrt(sk + 1e-6)
    for (let c = 0; c < dk; c++) {
      normalizedQ[h * dk + c] = (q[h * dk + c] as number) * iq * queryScale
      normalizedK[h * dk + c] = (k[h * dk + c] as number) * ik
    }
  }
  const repeat = valueHeads / keyHeads
  const core = new Float32Array(valueDim)
  const kv = new Float64Array(dv)
  for (let h = 0; h < valueHeads; h++) {
    const keyHead = Math.floor(h / repeat)
    const beta = sigmoid(b[h] as number)
    const g = -Math.exp(aLog[h] as number) * softplus((a[h] as number) + (dtBias[h] as number))
    const decay = Math.exp(g)
    const state = cache.recurrent.subarray(h * dk * dv, (h + 1) * dk * dv)
    for (let i = 0; i < state.length; i++) state[i] = (state[i] as number) * decay
    kv.fill(0)
    for (let i = 0; i < dk; i++) {
      const ki = normalizedK[keyHead * dk + i] as number
      for (let j = 0; j < dv; j++) kv[j] = (kv[j] as number) + (state[i * dv + j] as number) * ki
    }
    for (let j = 0; j < dv; j++) kv[j] = ((v[h * dv + j] as number) - (kv[j] as number)) * beta
    for (let i = 0; i < dk; i++) {
      const ki = normalizedK[keyHead * dk + i] as number
      for (let j = 0; j < dv; j++) state[i * dv + j] = (state[i * dv + j] as number) + ki * (kv[j] as number)
    }
    for (let j = 0; j < dv; j++) {
      let s = 0
      for (let i = 0; i < dk; i++)
        s += (state[i * dv + j] as number) * (normalizedQ[keyHead * dk + i] as number)
      core[h * dv + j] = s
    }
  }
  // Gated RMSNorm per value head: plain weight, times silu(z).
  const normWeight = tensor(model, `${l}.norm.weight`)
  for (let h = 0; h < valueHeads; h++) {
    let sum = 0
    for (let j = 0; j < dv; j++) sum += (core[h * dv + j] as number) ** 2
    const inv = 1 / Math.sqrt(sum / dv + config.rmsNormEps)
    for (let j = 0; j < dv; j++) {
      const index = h * dv + j
      core[index] = (core[index] as number) * inv * (normWeight[j] as number) * silu(z[index] as number)
    }
  }
  return matVec(tensor(model, `${l}.out_proj.weight`), core, config.hiddenSize, valueDim)
}

/** cos and sin over the rotary width (cat(freqs, freqs)), frequencies recomposed from the T/H/W rows. */
function ropeCosSin(config: Qwen35Config, positions: [number, number, number]): [Float64Array, Float64Array] {
  const dim = rotaryDim(config)
  const half = dim / 2
  const rows = mropeRowPerFrequency(config)
  const cos = new Float64Array(dim)
  const sin = new Float64Array(dim)
  for (let j = 0; j < half; j++) {
    // Math.fround: HF computes inv_freq in fp32; positions · inv_freq in fp32 as well.
    const inverseFrequency = Math.fround(1 / config.ropeTheta ** ((2 * j) / dim))
    const angle = Math.fround(positions[rows[j] as 0 | 1 | 2] * inverseFrequency)
    cos[j] = cos[j + half] = Math.cos(angle)
    sin[j] = sin[j + half] = Math.sin(angle)
  }
  return [cos, sin]
}

function applyRope(head: Float32Array, cos: Float64Array, sin: Float64Array): void {
  const half = cos.length / 2
  for (let j = 0; j < half; j++) {
    const x1 = head[j] as number
    const x2 = head[j + half] as number
    head[j] = x1 * (cos[j] as number) - x2 * (sin[j] as number)
    head[j + half] = x2 * (cos[j + half] as number) + x1 * (sin[j + half] as number)
  }
}

function tensor(model: Qwen35Model, name: string): Float32Array {
  const found = model.weights.get(name)
  if (!found) throw new Error(`Qwen3.5 weights: "${name}" is missing`)
  return found.data
}

function matVec(weight: Float32Array, x: ArrayLike<number>, rows: number, columns: number): Float32Array {
  const y = new Float32Array(rows)
  for (let r = 0; r < rows; r++) {
    let s = 0
    const offset = r * columns
    for (let c = 0; c < columns; c++) s += (weight[offset + c] as number) * (x[c] as number)
    y[r] = s
  }
  return y
}

function rmsNormZeroCentred(x: ArrayLike<number>, weight: Float32Array, eps: number): Float32Array {
  let sum = 0
  for (let i = 0; i < x.length; i++) sum += (x[i] as number) ** 2
  const inv = 1 / Math.sqrt(sum / x.length + eps)
  const y = new Float32Array(x.length)
  for (let i = 0; i < x.length; i++) y[i] = (x[i] as number) * inv * (1 + (weight[i] as number))
  return y
}

function addInPlace(x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) + (y[i] as number)
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x))
}

function silu(x: number): number {
  return x * sigmoid(x)
}

function softplus(x: number): number {
  // torch.nn.functional.softplus: linear above 20 for stability.
  return x > 20 ? x : Math.log1p(Math.exp(x))
}
