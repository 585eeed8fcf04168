// The Qwen3.5 text model as two ONNX graphs in the onnx-community / transformers.js layout:
// `embed_tokens` (input_ids → inputs_embeds) and `decoder_model_merged` (inputs_embeds,
// attention_mask, position_ids [3,B,S], past_key_values.{i}.key|value on full-attention layers,
// past_conv.{i} / past_recurrent.{i} on Gated DeltaNet layers → logits, present.*, present_conv.*,
// present_recurrent.*).
//
// Prefill is one graph run for the whole prompt: the Gated DeltaNet layers use the com.microsoft
// fused ops `CausalConvWithState` (depthwise causal conv + SiLU with a carried state) and
// `LinearAttention` (update_rule gated_delta, chunked internally), which onnxruntime-node 1.30 and
// onnxruntime-web 1.30 (WASM) both run (docs/builder.md, "ONNX Runtime facts the graphs rely on", and qwen3-5-graph.test.ts).

import { GraphBuilder, type TensorData, tensor } from '../onnx/index.ts'
import { quantizeBlockwise4, quantizeColumnwiseInt8 } from '../quantize/quantize.ts'
import { convDim, mropeRowPerFrequency, type Qwen35Config, rotaryDim } from './qwen3-5-config.ts'
import type { Qwen35Weights } from './qwen3-5-reference.ts'

/** How linear-layer weights are stored in the graph. */
export type Qwen35WeightFormat = 'fp32' | 'q4' | 'q8'

export interface Qwen35GraphOptions {
  readonly weightFormat?: Qwen35WeightFormat
  /**
   * MatMulNBits `accuracy_level` for q4: 4 (default) lets ONNX Runtime's CPU kernel quantize each
   * row of activations to int8 per block and multiply in int8, ~1.5× faster decode on
   * onnxruntime-node (Qwen3-0.6B shape: 148 → 90 ms a step, docs/benchmarks.md), as
   * onnxruntime-genai's CPU int4 models do; 0 computes in fp32 on the dequantized weights, exactly
   * what the 4-bit weights mean (the parity tests use it). Rows are quantized independently, so
   * logits don't depend on how a prompt is chunked.
   */
  readonly int4AccuracyLevel?: 0 | 1 | 2 | 3 | 4
}

/** Graph input/output names, as transformers.js and the published Qwen3.5 ONNX exports use them. */
export const qwen35Names = {
  pastKey: (layer: number) => `past_key_values.${layer}.key`,
  pastValue: (layer: number) => `past_key_values.${layer}.value`,
  presentKey: (layer: number) => `present.${layer}.key`,
  presentValue: (layer: number) => `present.${layer}.value`,
  pastConv: (layer: number) => `past_conv.${layer}`,
  presentConv: (layer: number) => `present_conv.${layer}`,
  pastRecurrent: (layer: number) => `past_recurrent.${layer}`,
  presentRecurrent: (layer: number) => `present_recurrent.${layer}`,
}

const microsoft = { domain: 'com.microsoft' }

function weight(weights: Qwen35Weights, name: string): Float32Array {
  const found = weights.get(name)
  if (!found) throw new Error(`Qwen3.5 weights: "${name}" is missing`)
  return found.data
}

/** [rows, columns] row-major → [columns, rows]. */
function transpose(data: Float32Array, rows: number, columns: number): Float32Array {
  const out = new Float32Array(data.length)
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < columns; c++) out[c * rows + r] = data[r * columns + c] as number
  return out
}

function lazyFloat32(make: () => Float32Array, dims: readonly number[]): TensorData {
  return {
    type: 'float32',
    dims,
    data: () => {
      const values = make()
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
    },
  }
}

class DecoderWriter {
  readonly g = new GraphBuilder('qwen3_5_decoder')
  readonly config: Qwen35Config
  readonly weights: Qwen35Weights
  readonly format: Qwen35WeightFormat
  readonly int4AccuracyLevel: number
  readonly #constants = new Map<string, string>()

  constructor(
    config: Qwen35Config,
    weights: Qwen35Weights,
    format: Qwen35WeightFormat,
    int4AccuracyLevel: number,
  ) {
    this.config = config
    this.weights = weights
    this.format = format
    this.int4AccuracyLevel = int4AccuracyLevel
  }

  int64(values: readonly number[], scalar = false): string {
    const key = `i64:${scalar}:${values.join(',')}`
    let name = this.#constants.get(key)
    if (!name) {
      name = this.g.initializer('const_i64', tensor.int64(values, scalar ? [] : [values.length]))
      this.#constants.set(key, name)
    }
    return name
  }

  float(values: readonly number[], dims: readonly number[] = [values.length]): string {
    const key = `f32:${dims.join('x')}:${values.join(',')}`
    let name = this.#constants.get(key)
    if (!name) {
      name = this.g.initializer('const_f32', tensor.float32(values, dims))
      this.#constants.set(key, name)
    }
    return name
  }

  /** x [..., in] · Wᵀ for an HF weight [out, in]. */
  linear(x: string, name: string, out: number, inFeatures: number): string {
    const data = weight(this.weights, name)
    if (this.format === 'q4' && inFeatures % 32 === 0) {
      // Block-wise int4 (block 32) for com.microsoft MatMulNBits: fast on onnxruntime-node and WebGPU.
      const quantized = quantizeBlockwise4({ rows: out, cols: inFeatures, data })
      const b = this.g.initializer(`${name}.q4`, {
        type: 'uint8',
        dims: [out, quantized.blocks, 16],
        data: quantized.data,
      })
      const scales = this.g.initializer(
        `${name}.scales`,
        tensor.float32(quantized.scales, [out * quantized.blocks]),
      )
      const zeros = this.g.initializer(`${name}.zero_points`, {
        type: 'uint8',
        dims: [quantized.zeroPoints.length],
        data: quantized.zeroPoints,
      })
      return this.g.node(
        'MatMulNBits',
        [x, b, scales, zeros],
        { K: inFeatures, N: out, bits: 4, block_size: 32, accuracy_level: this.int4AccuracyLevel },
        { ...microsoft, name },
      )
    }
    if (this.format === 'q8') {
      // Symmetric int8 per output column for com.microsoft DynamicQuantizeMatMul: the fastest
      // measured WASM format under ~1.2 bytes per parameter (docs/builder.md, "Why q8 on WASM and q4 elsewhere").
      const quantized = quantizeColumnwiseInt8({ rows: out, cols: inFeatures, data })
      const b = this.g.initializer(`${name}.int8`, {
        type: 'int8',
        dims: [inFeatures, out],
        data: new Uint8Array(quantized.data.buffer, quantized.data.byteOffset, quantized.data.byteLength),
      })
      const scales = this.g.initializer(`${name}.scale`, tensor.float32(quantized.scales, [out]))
      return this.g.node('DynamicQuantizeMatMul', [x, b, scales], {}, { ...microsoft, name })
    }
    const w = this.g.initializer(
      name,
      lazyFloat32(() => transpose(data, out, inFeatures), [inFeatures, out]),
    )
    return this.g.node('MatMul', [x, w], {}, { name })
  }

  /** RMSNorm on the last axis with weight `scale` (already 1 + w for the zero-centred norms). */
  rmsNorm(x: string, scale: Float32Array, label: string): string {
    const w = this.g.initializer(`${label}.scale`, tensor.float32(scale, [scale.length]))
    return this.g.node(
      'SimplifiedLayerNormalization',
      [x, w],
      { axis: -1, epsilon: this.config.rmsNormEps, stash_type: 1 },
      { name: label },
    )
  }

  zeroCentredNorm(x: string, name: string): string {
    const w = weight(this.weights, name)
    return this.rmsNorm(
      x,
      Float32Array.from(w, (v) => 1 + v),
      name,
    )
  }

  silu(x: string): string {
    return this.g.node('Mul', [x, this.g.node('Sigmoid', [x])])
  }
}

/** Builds the decoder graph (`decoder_model_merged*.onnx`). */
export function buildQwen35Decoder(
  config: Qwen35Config,
  weights: Qwen35Weights,
  options: Qwen35GraphOptions = {},
): GraphBuilder {
  const w = new DecoderWriter(config, weights, options.weightFormat ?? 'fp32', options.int4AccuracyLevel ?? 4)
  const g = w.g
  const hidden = config.hiddenSize
  const inputsEmbeds = g.input('inputs_embeds', 'float32', ['batch_size', 'sequence_length', hidden])
  const attentionMask = g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length'])
  const positionIds = g.input('position_ids', 'int64', [3, 'batch_size', 'sequence_length'])
  const fullLayers = config.layerTypes.flatMap((type, i) => (type === 'full_attention' ? [i] : []))
  const d = config.headDim
  const kernelState = config.linearConvKernelDim - 1
  const channels = convDim(config)
  for (let i = 0; i < config.numHiddenLayers; i++) {
    if (config.layerTypes[i] === 'full_attention') {
      g.input(qwen35Names.pastKey(i), 'float32', [
        'batch_size',
        config.numKeyValueHeads,
        'past_sequence_length',
        d,
      ])
      g.input(qwen35Names.pastValue(i), 'float32', [
        'batch_size',
        config.numKeyValueHeads,
        'past_sequence_length',
        d,
      ])
    } else {
      g.input(qwen35Names.pastConv(i), 'float32', ['batch_size', channels, kernelState])
      g.input(qwen35Names.pastRecurrent(i), 'float32', [
        'batch_size',
        config.linearNumValueHeads,
        config.linearKeyHeadDim,
        config.linearValueHeadDim,
      ])
    }
  }

  // Sequence length S, and the current tokens' slice of the mask (linear layers zero padding).
  const embedsShape = g.node('Shape', [inputsEmbeds])
  const sequenceLength = g.node('Gather', [embedsShape, w.int64([1])], { axis: 0 }) // [1]
  const currentMask = g.node('Slice', [
    attentionMask,
    g.node('Neg', [sequenceLength]),
    w.int64([Number.MAX_SAFE_INTEGER]),
    w.int64([1]),
  ])
  const currentMaskFloat = g.node('Unsqueeze', [g.node('Cast', [currentMask], { to: 1 }), w.int64([2])]) // [B,S,1]

  // RoPE: per frequency j the angle uses position row T, H or W (interleaved M-RoPE).
  const rotary = rotaryDim(config)
  const half = rotary / 2
  const inverseFrequencies = Array.from({ length: half }, (_, j) =>
    Math.fround(1 / config.ropeTheta ** ((2 * j) / rotary)),
  )
  const rows = mropeRowPerFrequency(config)
  const rowSelect = new Float32Array(3 * half)
  rows.forEach((row, j) => {
    rowSelect[row * half + j] = 1
  })
  const positionsFloat = g.node('Unsqueeze', [g.node('Cast', [positionIds], { to: 1 }), w.int64([3])]) // [3,B,S,1]
  const angles3 = g.node('Mul', [positionsFloat, w.float(inverseFrequencies, [half])]) // [3,B,S,half]
  const angles = g.node(
    'ReduceSum',
    [g.node('Mul', [angles3, w.float(Array.from(rowSelect), [3, 1, 1, half])]), w.int64([0])],
    { keepdims: 0 },
  ) // [B,S,half]
  const cosHalf = g.node('Cos', [angles])
  const sinHalf = g.node('Sin', [angles])
  const cos = g.node('Unsqueeze', [g.node('Concat', [cosHalf, cosHalf], { axis: -1 }), w.int64([1])]) // [B,1,S,rot]
  const sin = g.node('Unsqueeze', [g.node('Concat', [sinHalf, sinHalf], { axis: -1 }), w.int64([1])])

  // Attention bias [B,1,1,S,T]: key j visible from query i (absolute P + i) when j <= P + i and unmasked.
  let attentionBias = ''
  if (fullLayers.length > 0) {
    const firstPast = qwen35Names.pastKey(fullLayers[0] as number)
    const pastLength = g.node('Gather', [g.node('Shape', [firstPast]), w.int64([2])], { axis: 0 }) // [1]
    const totalLength = g.node('Add', [pastLength, sequenceLength])
    const scalar = (x: string) => g.node('Squeeze', [x, w.int64([0])])
    const keyPositions = g.node('Range', [w.int64([0], true), scalar(totalLength), w.int64([1], true)]) // [T]
    const queryPositions = g.node('Unsqueeze', [
      g.node('Range', [scalar(pastLength), scalar(totalLength), w.int64([1], true)]),
      w.int64([1]),
    ]) // [S,1]
    const causal = g.node('LessOrEqual', [keyPositions, queryPositions]) // [S,T]
    const unpadded = g.node('Unsqueeze', [g.node('Cast', [attentionMask], { to: 9 }), w.int64([1, 2, 3])]) // [B,1,1,1,T]
    const visible = g.node('And', [causal, unpadded]) // [B,1,1,S,T]
    attentionBias = g.node('Where', [visible, w.float([0], []), w.float([-1e9], [])])
  }

  let x = inputsEmbeds
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = `model.layers.${i}`
    const normed = w.zeroCentredNorm(x, `${p}.input_layernorm.weight`)
    const mixed =
      config.layerTypes[i] === 'full_attention'
        ? gatedAttention(w, i, normed, cos, sin, attentionBias)
        : gatedDeltaNet(w, i, g.node('Mul', [normed, currentMaskFloat]))
    x = g.node('Add', [x, mixed])
    const normed2 = w.zeroCentredNorm(x, `${p}.post_attention_layernorm.weight`)
    const gate = w.linear(normed2, `${p}.mlp.gate_proj.weight`, config.intermediateSize, hidden)
    const up = w.linear(normed2, `${p}.mlp.up_proj.weight`, config.intermediateSize, hidden)
    const down = w.linear(
      g.node('Mul', [w.silu(gate), up]),
      `${p}.mlp.down_proj.weight`,
      hidden,
      config.intermediateSize,
    )
    x = g.node('Add', [x, down])
  }
  // num_logits_to_keep (int64 scalar, as in the published exports): logits for the last N
  // positions only, 0 = all. A prefill that feeds 1 skips the [S, vocab] head matmul it would
  // throw away (130 GFLOP for 512 tokens at the 0.8B shape).
  const keep = g.input('num_logits_to_keep', 'int64', [])
  const kept = g.node('Slice', [
    x,
    g.node('Neg', [g.node('Reshape', [keep, w.int64([1])])]),
    w.int64([Number.MAX_SAFE_INTEGER]),
    w.int64([1]),
  ])
  const final = w.zeroCentredNorm(kept, 'model.norm.weight')
  const headName = config.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'
  const logits = w.linear(final, headName, config.vocabSize, hidden)
  g.node('Identity', [logits], {}, { outputs: ['logits'] })
  g.output('logits', 'float32', ['batch_size', 'logits_length', config.vocabSize])
  for (let i = 0; i < config.numHiddenLayers; i++) {
    if (config.layerTypes[i] === 'full_attention') {
      g.output(qwen35Names.presentKey(i), 'float32', [
        'batch_size',
        config.numKeyValueHeads,
        'total_sequence_length',
        d,
      ])
      g.output(qwen35Names.presentValue(i), 'float32', [
        'batch_size',
        config.numKeyValueHeads,
        'total_sequence_length',
        d,
      ])
    } else {
      g.output(qwen35Names.presentConv(i), 'float32', ['batch_size', channels, 'conv_state_length'])
      g.output(qwen35Names.presentRecurrent(i), 'float32', [
        'batch_size',
        config.linearNumValueHeads,
        'key_head_dim',
        'value_head_dim',
      ])
    }
  }
  return g
}

function gatedAttention(
  w: DecoderWriter,
  layer: number,
  x: string,
  cos: string,
  sin: string,
  bias: string,
): string {
  const { g, config } = w
  const a = `model.layers.${layer}.self_attn`
  const heads = config.numAttentionHeads
  const kvHeads = config.numKeyValueHeads
  const d = config.headDim
  const hidden = config.hiddenSize
  // q_proj → per head [query | gate].
  const projected = g.node('Reshape', [
    w.linear(x, `${a}.q_proj.weight`, 2 * heads * d, hidden),
    w.int64([0, 0, heads, 2 * d]),
  ])
  const [queryHeads, gateHeads] = g.nodeOutputs('Split', [projected, w.int64([d, d])], 2, { axis: 3 })
  const gate = g.node('Reshape', [gateHeads as string, w.int64([0, 0, heads * d])])
  const query = g.node('Transpose', [w.zeroCentredNorm(queryHeads as string, `${a}.q_norm.weight`)], {
    perm: [0, 2, 1, 3],
  }) // [B,H,S,D]
  const keyHeads = g.node('Reshape', [
    w.linear(x, `${a}.k_proj.weight`, kvHeads * d, hidden),
    w.int64([0, 0, kvHeads, d]),
  ])
  const key = g.node('Transpose', [w.zeroCentredNorm(keyHeads, `${a}.k_norm.weight`)], { perm: [0, 2, 1, 3] })
  const valueHeads = g.node('Reshape', [
    w.linear(x, `${a}.v_proj.weight`, kvHeads * d, hidden),
    w.int64([0, 0, kvHeads, d]),
  ])
  const value = g.node('Transpose', [valueHeads], { perm: [0, 2, 1, 3] })
  const rotary = rotaryDim(config)
  const rope = (input: string): string => {
    const [rotated, passed] =
      rotary < d
        ? g.nodeOutputs('Split', [input, w.int64([rotary, d - rotary])], 2, { axis: -1 })
        : [input, '']
    const [x1, x2] = g.nodeOutputs('Split', [rotated as string, w.int64([rotary / 2, rotary / 2])], 2, {
      axis: -1,
    })
    const rotatedHalf = g.node('Concat', [g.node('Neg', [x2 as string]), x1 as string], { axis: -1 })
    const embedded = g.node('Add', [
      g.node('Mul', [rotated as string, cos]),
      g.node('Mul', [rotatedHalf, sin]),
    ])
    return passed ? g.node('Concat', [embedded, passed], { axis: -1 }) : embedded
  }
  const presentKey = g.node(
    'Concat',
    [qwen35Names.pastKey(layer), rope(key)],
    { axis: 2 },
    { outputs: [qwen35Names.presentKey(layer)] },
  )
  const presentValue = g.node(
    'Concat',
    [qwen35Names.pastValue(layer), value],
    { axis: 2 },
    { outputs: [qwen35Names.presentValue(layer)] },
  )
  // GQA without copies: queries grouped [B, kv, group, S, D] against keys [B, kv, 1, T, D].
  const group = heads / kvHeads
  const groupedQuery = g.node('Reshape', [rope(query), w.int64([0, kvHeads, group, -1, d])])
  const keys5 = g.node('Unsqueeze', [presentKey, w.int64([2])])
  const values5 = g.node('Unsqueeze', [presentValue, w.int64([2])])
  const scores = g.node('Mul', [
    g.node('MatMul', [groupedQuery, g.node('Transpose', [keys5], { perm: [0, 1, 2, 4, 3] })]),
    w.float([1 / Math.sqrt(d)], []),
  ])
  const probabilities = g.node('Softmax', [g.node('Add', [scores, bias])], { axis: -1 })
  const attended = g.node('Reshape', [g.node('MatMul', [probabilities, values5]), w.int64([0, heads, -1, d])]) // [B,H,S,D]
  const merged = g.node('Reshape', [
    g.node('Transpose', [attended], { perm: [0, 2, 1, 3] }),
    w.int64([0, 0, heads * d]),
  ])
  const gated = g.node('Mul', [merged, g.node('Sigmoid', [gate])])
  return w.linear(gated, `${a}.o_proj.weight`, hidden, heads * d)
}

function gatedDeltaNet(w: DecoderWriter, layer: number, x: string): string {
  const { g, config } = w
  const l = `model.layers.${layer}.linear_attn`
  const hidden = config.hiddenSize
  const keyHeads = config.linearNumKeyHeads
  const valueHeads = config.linearNumValueHeads
  const dk = config.linearKeyHeadDim
  const dv = config.linearValueHeadDim
  const keyDim = keyHeads * dk
  const valueDim = valueHeads * dv
  const channels = convDim(config)
  const mixed = w.linear(x, `${l}.in_proj_qkv.weight`, channels, hidden) // [B,S,C]
  const convWeight = g.initializer(
    `${l}.conv1d.weight`,
    tensor.float32(weight(w.weights, `${l}.conv1d.weight`), [channels, 1, config.linearConvKernelDim]),
  )
  const [convolved] = g.nodeOutputs(
    'CausalConvWithState',
    [g.node('Transpose', [mixed], { perm: [0, 2, 1] }), convWeight, '', qwen35Names.pastConv(layer)],
    2,
    { activation: 'silu' },
    {
      ...microsoft,
      name: `${l}.conv1d`,
      outputs: [g.uniqueName(`${l}.conv_out`), qwen35Names.presentConv(layer)],
    },
  )
  const activated = g.node('Transpose', [convolved as string], { perm: [0, 2, 1] }) // [B,S,C]
  const [q, k, v] = g.nodeOutputs('Split', [activated, w.int64([keyDim, keyDim, valueDim])], 3, { axis: 2 })
  const repeat = valueHeads / keyHeads
  // L2-normalise per key head, then give each value head its key head (consecutive grouping).
  const prepare = (input: string): string => {
    const heads = g.node('Reshape', [input, w.int64([0, 0, keyHeads, dk])])
    const sumSquares = g.node('ReduceSum', [g.node('Mul', [heads, heads]), w.int64([-1])], { keepdims: 1 })
    const normalized = g.node('Div', [
      heads,
      g.node('Sqrt', [g.node('Add', [sumSquares, w.float([1e-6], [])])]),
    ])
    const expanded =
      repeat > 1
        ? g.node('Expand', [g.node('Unsqueeze', [normalized, w.int64([3])]), w.int64([1, 1, 1, repeat, 1])])
        : normalized
    return g.node('Reshape', [expanded, w.int64([0, 0, valueHeads * dk])])
  }
  const beta = g.node('Sigmoid', [w.linear(x, `${l}.in_proj_b.weight`, valueHeads, hidden)])
  const negativeA = Float32Array.from(weight(w.weights, `${l}.A_log`), (v) => -Math.exp(v))
  const dtBias = g.initializer(
    `${l}.dt_bias`,
    tensor.float32(weight(w.weights, `${l}.dt_bias`), [valueHeads]),
  )
  const aProjected = w.linear(x, `${l}.in_proj_a.weight`, valueHeads, hidden)
  const decay = g.node('Mul', [
    g.node('Softplus', [g.node('Add', [aProjected, dtBias])]),
    g.initializer(`${l}.neg_exp_A_log`, tensor.float32(negativeA, [valueHeads])),
  ])
  const [attention] = g.nodeOutputs(
    'LinearAttention',
    [prepare(q as string), prepare(k as string), v as string, qwen35Names.pastRecurrent(layer), decay, beta],
    2,
    {
      update_rule: 'gated_delta',
      q_num_heads: valueHeads,
      kv_num_heads: valueHeads,
      scale: 1 / Math.sqrt(dk),
      chunk_size: 64,
    },
    {
      ...microsoft,
      name: `${l}.delta_rule`,
      outputs: [g.uniqueName(`${l}.core_out`), qwen35Names.presentRecurrent(layer)],
    },
  )
  const core = g.node('Reshape', [attention as string, w.int64([0, 0, valueHeads, dv])])
  const z = g.node('Reshape', [
    w.linear(x, `${l}.in_proj_z.weight`, valueDim, hidden),
    w.int64([0, 0, valueHeads, dv]),
  ])
  const normed = w.rmsNorm(core, weight(w.weights, `${l}.norm.weight`), `${l}.norm`)
  const gated = g.node('Reshape', [g.node('Mul', [normed, w.silu(z)]), w.int64([0, 0, valueDim])])
  return w.linear(gated, `${l}.out_proj.weight`, hidden, valueDim)
}

/** Builds the embedding graph (`embed_tokens*.onnx`): input_ids [B,S] → inputs_embeds [B,S,H]. */
export function buildQwen35Embedding(config: Qwen35Config, weights: Qwen35Weights): GraphBuilder {
  const g = new GraphBuilder('qwen3_5_embed_tokens')
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length'])
  const table = g.initializer(
    'model.embed_tokens.weight',
    tensor.float32(weight(weights, 'model.embed_tokens.weight'), [config.vocabSize, config.hiddenSize]),
  )
  g.node('Gather', [table, ids], { axis: 0 }, { outputs: ['inputs_embeds'] })
  g.output('inputs_embeds', 'float32', ['batch_size', 'sequence_length', config.hiddenSize])
  return g
}
