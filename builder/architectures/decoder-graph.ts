// ONNX graphs for the Llama and Qwen3 decoders, with the onnx-community I/O contract (docs/builder.md,
// "The package format"): input_ids, attention_mask, position_ids, past_key_values.{i}.key|value,
// num_logits_to_keep → logits (the last num_logits_to_keep positions), present.{i}.key|value. One graph serves prefill (many tokens, empty past) and decode (one
// token, past of any length): every sequence dimension is symbolic.
//
// Attention is written with plain ONNX ops (MatMul / Softmax with a causal + padding bias) so it
// runs on every backend and every head size; the weight format of the linear layers is chosen
// per dtype (see ../quantize/quantize.ts for why each one).

import type { ModelConfig, ModelDtype } from '../../core/model-package.ts'
import { attribute, GraphBuilder } from '../onnx/graph.ts'
import { bytesOf, type TensorData, tensor, toFloat16 } from '../onnx/tensor.ts'
import {
  type Blockwise4Bit,
  quantizeBlockwise4,
  quantizeBlockwise8,
  quantizeColumnwiseInt8,
} from '../quantize/quantize.ts'
import {
  type DecoderLayerWeights,
  type DecoderWeights,
  type Matrix,
  validateDecoderWeights,
} from './weights.ts'

export const builderDtypes = ['fp32', 'fp16', 'q4', 'q8'] as const satisfies readonly ModelDtype[]
export type BuilderDtype = (typeof builderDtypes)[number]

const FLOAT = 1
const BOOL = 9
const INT32 = 6
/** torch.finfo(float32).min, what transformers uses for masked positions (avoids NaN on empty rows). */
const MASKED = -3.4028234663852886e38

/** RoPE inverse frequencies as float32, with Llama 3 scaling when the config has it. */
export function ropeInverseFrequencies(config: ModelConfig): Float32Array {
  const rotary = Math.round(config.headDim * config.partialRotaryFactor)
  const out = new Float32Array(rotary / 2)
  for (let i = 0; i < rotary / 2; i++) {
    let f = Math.fround(1 / Math.fround(config.ropeTheta ** Math.fround((2 * i) / rotary)))
    const s = config.ropeScaling
    if (s) {
      const wavelength = (2 * Math.PI) / f
      const low = s.originalMaxPositionEmbeddings / s.lowFreqFactor
      const high = s.originalMaxPositionEmbeddings / s.highFreqFactor
      if (wavelength > low) f /= s.factor
      else if (wavelength >= high) {
        const smooth =
          (s.originalMaxPositionEmbeddings / wavelength - s.lowFreqFactor) /
          (s.highFreqFactor - s.lowFreqFactor)
        f = (1 - smooth) * (f / s.factor) + smooth * f
      }
    }
    out[i] = f
  }
  return out
}

function transposed(m: Matrix): () => Uint8Array {
  return () => {
    const out = new Float32Array(m.rows * m.cols)
    for (let r = 0; r < m.rows; r++)
      for (let c = 0; c < m.cols; c++) out[c * m.rows + r] = m.data[r * m.cols + c]!
    return bytesOf(out)
  }
}

function once<T>(make: () => T): () => T {
  let value: T | undefined
  return () => {
    value ??= make()
    return value
  }
}

export interface DecoderGraphOptions {
  /**
   * Token embeddings for q4 / q8: 'quantized' (default) stores them block-quantized and reads them
   * with com.microsoft GatherBlockQuantized (q4: the same 4-bit bytes as the tied lm_head's
   * MatMulNBits weight, stored once; q8: 8-bit blocks); 'fp16' keeps an fp16 table + Cast.
   */
  readonly embeddings?: 'quantized' | 'fp16'
  /**
   * 'plain' (default): attention from standard ops (MatMul, Softmax, a causal + padding bias);
   * runs on every backend and head size and honours left padding. 'gqa': com.microsoft
   * GroupQueryAttention (one fused node per layer, as onnx-community exports do; fewer kernel
   * launches on WebGPU). GQA derives causality from the mask's row sums, so rows must be
   * right-aligned (no left padding); single-sequence generation is unaffected.
   */
  readonly attention?: 'plain' | 'gqa'
  /**
   * MatMulNBits `accuracy_level` for q4: 4 (default) lets ONNX Runtime's CPU kernel quantize each
   * row of activations to int8 per block and multiply in int8, ~1.5× faster decode on
   * onnxruntime-node (Qwen3-0.6B shape: 148 → 90 ms a step, docs/benchmarks.md), as
   * onnxruntime-genai's CPU int4 models do; 0 computes in fp32 on the dequantized weights, exactly
   * what the 4-bit weights mean (the parity tests use it). Rows are quantized independently, so
   * logits don't depend on how a prompt is chunked.
   */
  readonly int4AccuracyLevel?: 0 | 1 | 2 | 3 | 4
  /**
   * true (default): an int64 scalar input `num_logits_to_keep` picks how many final positions get
   * logits (the runtimes feed 1 to a prefill). false writes, byte for byte, the graph builders
   * wrote before the input existed: logits for every position, a package as old caches hold them
   * (to check that runtimes still take those, and to measure against).
   */
  readonly logitsToKeep?: boolean
}

/** Graph writer for Llama; Qwen3Architecture overrides the per-head normalization. */
export class LlamaArchitecture {
  readonly modelType: string = 'llama'
  readonly weights: DecoderWeights
  readonly config: ModelConfig

  constructor(weights: DecoderWeights) {
    validateDecoderWeights(weights)
    this.weights = weights
    this.config = weights.config
  }

  /** Builds the whole decoder graph for one weight format. */
  buildGraph(dtype: BuilderDtype, options: DecoderGraphOptions = {}): GraphBuilder {
    if (!(builderDtypes as readonly string[]).includes(dtype))
      throw new Error(`dtype "${dtype}" is not one the builder writes (${builderDtypes.join(', ')})`)
    return new DecoderGraph(this, dtype, options).build()
  }

  /** Per-head q/k normalization before RoPE: none for Llama. q, k are [B, S, heads, head_dim]. */
  normalizeHeads(
    _graph: DecoderGraph,
    q: string,
    k: string,
    _layer: DecoderLayerWeights,
    _prefix: string,
  ): { q: string; k: string } {
    return { q, k }
  }
}

export class Qwen3Architecture extends LlamaArchitecture {
  override readonly modelType: string = 'qwen3'

  override normalizeHeads(
    graph: DecoderGraph,
    q: string,
    k: string,
    layer: DecoderLayerWeights,
    prefix: string,
  ): { q: string; k: string } {
    return {
      q: graph.rmsNorm(q, layer.qNorm!, `${prefix}.self_attn.q_norm`),
      k: graph.rmsNorm(k, layer.kNorm!, `${prefix}.self_attn.k_norm`),
    }
  }
}

export function architectureFor(weights: DecoderWeights): LlamaArchitecture {
  if (weights.config.modelType === 'llama') return new LlamaArchitecture(weights)
  if (weights.config.modelType === 'qwen3') return new Qwen3Architecture(weights)
  throw new Error(
    `model_type "${weights.config.modelType}" has no Llama-style graph writer (use the Qwen3.5 builder)`,
  )
}

/** One graph under construction (helpers shared by the layer code). */
export class DecoderGraph {
  readonly g = new GraphBuilder('main_graph')
  readonly architecture: LlamaArchitecture
  readonly dtype: BuilderDtype
  readonly config: ModelConfig
  readonly #constants = new Map<string, string>()

  readonly options: DecoderGraphOptions
  /** The tied q4 weight shared by the embedding gather and the lm_head (when shared). */
  #sharedQ4: { data: string; quantized: () => Blockwise4Bit } | undefined

  constructor(architecture: LlamaArchitecture, dtype: BuilderDtype, options: DecoderGraphOptions = {}) {
    this.architecture = architecture
    this.dtype = dtype
    this.config = architecture.config
    this.options = options
  }

  int64(values: readonly number[]): string {
    const key = `i64:${values.join(',')}`
    let name = this.#constants.get(key)
    if (!name) {
      name = this.g.initializer(`/const/int64_${values.join('_').replaceAll('-', 'm')}`, tensor.int64(values))
      this.#constants.set(key, name)
    }
    return name
  }

  float(value: number): string {
    const key = `f32:${value}`
    let name = this.#constants.get(key)
    if (!name) {
      name = this.g.initializer('/const/float', tensor.float32([value], []))
      this.#constants.set(key, name)
    }
    return name
  }

  rmsNorm(x: string, weight: Float32Array, name: string): string {
    const w = this.g.initializer(`${name}.weight`, tensor.float32(weight, [weight.length]))
    return this.g.node(
      'SimplifiedLayerNormalization',
      [x, w],
      { axis: -1, epsilon: attribute.float(this.config.rmsNormEps), stash_type: 1 },
      { name: `${name}/SimplifiedLayerNormalization` },
    )
  }

  /** y = x Wᵀ in the graph's weight format; W is (out, in). */
  linear(x: string, m: Matrix, name: string): string {
    const g = this.g
    switch (this.dtype) {
      case 'fp32': {
        const w = g.initializer(`${name}.weight`, {
          type: 'float32',
          dims: [m.cols, m.rows],
          data: transposed(m),
        })
        return g.node('MatMul', [x, w], {}, { name: `${name}/MatMul` })
      }
      case 'fp16': {
        const data = () => {
          const t = new Float32Array(transposed(m)().buffer)
          return bytesOf(toFloat16(t))
        }
        const w = g.initializer(`${name}.weight`, { type: 'float16', dims: [m.cols, m.rows], data })
        const cast = g.node('Cast', [w], { to: FLOAT }, { name: `${name}/Cast` })
        return g.node('MatMul', [x, cast], {}, { name: `${name}/MatMul` })
      }
      case 'q4': {
        const q = once(() => quantizeBlockwise4(m, 32))
        const blocks = Math.ceil(m.cols / 32)
        const b = g.initializer(`${name}.weight_Q4`, {
          type: 'uint8',
          dims: [m.rows, blocks, 16],
          data: () => q().data,
        })
        const scales = g.initializer(`${name}.weight_scales`, {
          type: 'float32',
          dims: [m.rows, blocks],
          data: () => bytesOf(q().scales),
        })
        const zeroPoints = g.initializer(`${name}.weight_zp`, {
          type: 'uint8',
          dims: [m.rows, Math.ceil(blocks / 2)],
          data: () => q().zeroPoints,
        })
        return g.node(
          'MatMulNBits',
          [x, b, scales, zeroPoints],
          {
            K: m.cols,
            N: m.rows,
            bits: 4,
            block_size: 32,
            accuracy_level: this.options.int4AccuracyLevel ?? 4,
          },
          { domain: 'com.microsoft', name: `${name}/MatMulNBits` },
        )
      }
      case 'q8': {
        const q = once(() => quantizeColumnwiseInt8(m))
        const b = g.initializer(`${name}.weight_quantized`, {
          type: 'int8',
          dims: [m.cols, m.rows],
          data: () => bytesOf(q().data),
        })
        const scales = g.initializer(`${name}.weight_scale`, {
          type: 'float32',
          dims: [m.rows],
          data: () => bytesOf(q().scales),
        })
        return g.node(
          'DynamicQuantizeMatMul',
          [x, b, scales],
          {},
          { domain: 'com.microsoft', name: `${name}/DynamicQuantizeMatMul` },
        )
      }
    }
  }

  /**
   * Token embeddings → [B, S, hidden] float32. fp32 graphs gather fp32 rows; fp16 an fp16 table
   * widened after the Gather; q4 / q8 (by default) block-quantized rows through GatherBlockQuantized,
   * which docs/builder.md ("ONNX Runtime facts the graphs rely on") lists as checked on every backend (onnxruntime-node, WASM in Node and Chromium).
   */
  #embed(inputIds: string): { hidden: string; fpTable?: string } {
    const g = this.g
    const e = this.architecture.weights.embedTokens
    const c = this.config
    if (this.dtype === 'fp32') {
      const table = g.initializer('model.embed_tokens.weight', tensor.float32(e.data, [e.rows, e.cols]))
      return {
        hidden: g.node('Gather', [table, inputIds], { axis: 0 }, { name: '/model/embed_tokens/Gather' }),
        fpTable: table,
      }
    }
    const quantizable = c.hiddenSize % 32 === 0 && this.options.embeddings !== 'fp16'
    if (this.dtype === 'q4' && quantizable) {
      // One copy of the 4-bit bytes, shaped [V, blocks, 16] as MatMulNBits wants; the gather reads
      // it with per-block scales / zero points of shape [V, blocks, 1] and returns [B, S, blocks, 32].
      const quantized = once(() => quantizeBlockwise4(e, 32))
      const blocks = c.hiddenSize / 32
      const data = g.initializer('model.embed_tokens.weight_Q4', {
        type: 'uint8',
        dims: [e.rows, blocks, 16],
        data: () => quantized().data,
      })
      const scales = g.initializer('model.embed_tokens.weight_scales_gather', {
        type: 'float32',
        dims: [e.rows, blocks, 1],
        data: () => bytesOf(quantized().scales),
      })
      const zeroPoints = g.initializer('model.embed_tokens.weight_zp_gather', {
        type: 'uint8',
        dims: [e.rows, blocks, 1],
        data: () => {
          const q = quantized()
          const packedPerRow = Math.ceil(blocks / 2)
          const out = new Uint8Array(e.rows * blocks)
          for (let r = 0; r < e.rows; r++)
            for (let b = 0; b < blocks; b++) {
              const byte = q.zeroPoints[r * packedPerRow + (b >> 1)]!
              out[r * blocks + b] = b & 1 ? byte >> 4 : byte & 15
            }
          return out
        },
      })
      if (!this.architecture.weights.lmHead) this.#sharedQ4 = { data, quantized }
      const gathered = g.node(
        'GatherBlockQuantized',
        [data, inputIds, scales, zeroPoints],
        { gather_axis: 0, quantize_axis: 2, block_size: 32, bits: 4 },
        { domain: 'com.microsoft', name: '/model/embed_tokens/GatherBlockQuantized' },
      )
      return { hidden: g.node('Reshape', [gathered, this.int64([0, 0, c.hiddenSize])]) }
    }
    if (this.dtype === 'q8' && quantizable) {
      const quantized = once(() => quantizeBlockwise8(e, 32))
      const blocks = c.hiddenSize / 32
      const data = g.initializer('model.embed_tokens.weight_quantized', {
        type: 'uint8',
        dims: [e.rows, e.cols],
        data: () => quantized().data,
      })
      const scales = g.initializer('model.embed_tokens.weight_scales', {
        type: 'float32',
        dims: [e.rows, blocks],
        data: () => bytesOf(quantized().scales),
      })
      const zeroPoints = g.initializer('model.embed_tokens.weight_zp', {
        type: 'uint8',
        dims: [e.rows, blocks],
        data: () => quantized().zeroPoints,
      })
      return {
        hidden: g.node(
          'GatherBlockQuantized',
          [data, inputIds, scales, zeroPoints],
          { gather_axis: 0, quantize_axis: 1, block_size: 32, bits: 8 },
          { domain: 'com.microsoft', name: '/model/embed_tokens/GatherBlockQuantized' },
        ),
      }
    }
    const data: TensorData = {
      type: 'float16',
      dims: [e.rows, e.cols],
      data: () => bytesOf(toFloat16(e.data)),
    }
    const table = g.initializer('model.embed_tokens.weight', data)
    const gathered = g.node('Gather', [table, inputIds], { axis: 0 }, { name: '/model/embed_tokens/Gather' })
    return {
      hidden: g.node('Cast', [gathered], { to: FLOAT }, { name: '/model/embed_tokens/Cast' }),
      fpTable: table,
    }
  }

  /** lm_head for q4 when tied: MatMulNBits over the embedding's own 4-bit bytes. */
  #sharedQ4LmHead(x: string): string | undefined {
    const shared = this.#sharedQ4
    if (!shared) return undefined
    const g = this.g
    const e = this.architecture.weights.embedTokens
    const blocks = Math.ceil(e.cols / 32)
    const scales = g.initializer('lm_head.weight_scales', {
      type: 'float32',
      dims: [e.rows, blocks],
      data: () => bytesOf(shared.quantized().scales),
    })
    const zeroPoints = g.initializer('lm_head.weight_zp', {
      type: 'uint8',
      dims: [e.rows, Math.ceil(blocks / 2)],
      data: () => shared.quantized().zeroPoints,
    })
    return g.node(
      'MatMulNBits',
      [x, shared.data, scales, zeroPoints],
      { K: e.cols, N: e.rows, bits: 4, block_size: 32 },
      { domain: 'com.microsoft', name: 'lm_head/MatMulNBits' },
    )
  }

  /** Post-attention RMSNorm, SwiGLU MLP and the residual add. */
  #mlp(hidden: string, layer: DecoderLayerWeights, prefix: string): string {
    const g = this.g
    const mlpIn = this.rmsNorm(hidden, layer.postAttentionLayernorm, `${prefix}.post_attention_layernorm`)
    const gate = this.linear(mlpIn, layer.gateProj, `${prefix}.mlp.gate_proj`)
    const up = this.linear(mlpIn, layer.upProj, `${prefix}.mlp.up_proj`)
    const activated = g.node('Mul', [g.node('Mul', [gate, g.node('Sigmoid', [gate])]), up])
    return g.node('Add', [hidden, this.linear(activated, layer.downProj, `${prefix}.mlp.down_proj`)])
  }

  build(): GraphBuilder {
    const g = this.g
    const c = this.config
    const w = this.architecture.weights
    const D = c.headDim
    const batch = 'batch_size'
    const inputIds = g.input('input_ids', 'int64', [batch, 'sequence_length'])
    const attentionMask = g.input('attention_mask', 'int64', [batch, 'total_sequence_length'])
    const positionIds = g.input('position_ids', 'int64', [batch, 'sequence_length'])
    const pasts = w.layers.map((_, i) => ({
      key: g.input(`past_key_values.${i}.key`, 'float32', [
        batch,
        c.numKeyValueHeads,
        'past_sequence_length',
        D,
      ]),
      value: g.input(`past_key_values.${i}.value`, 'float32', [
        batch,
        c.numKeyValueHeads,
        'past_sequence_length',
        D,
      ]),
    }))

    // Embeddings.
    const embedded = this.#embed(inputIds)
    let hidden = embedded.hidden

    const useGqa = this.options.attention === 'gqa'
    const zero = this.int64([0])
    // Attention bias [B, 1, S, T]: causal over absolute positions (past + new) and the padding mask.
    const plainBias = once(() => {
      const total = g.node('Shape', [attentionMask], { start: 1, end: 2 }, { name: '/model/mask/total' })
      const sequence = g.node('Shape', [inputIds], { start: 1, end: 2 }, { name: '/model/mask/sequence' })
      const past = g.node('Sub', [total, sequence])
      const totalScalar = g.node('Squeeze', [total, zero])
      const pastScalar = g.node('Squeeze', [past, zero])
      const oneScalar = g.initializer('/const/one_scalar', tensor.int64([1], []))
      const zeroScalar = g.initializer('/const/zero_scalar', tensor.int64([0], []))
      const keyIndex = g.node('Range', [zeroScalar, totalScalar, oneScalar])
      const queryIndex = g.node('Range', [pastScalar, totalScalar, oneScalar])
      const causal = g.node('LessOrEqual', [
        g.node('Unsqueeze', [keyIndex, zero]),
        g.node('Unsqueeze', [queryIndex, this.int64([1])]),
      ])
      const padding = g.node('Unsqueeze', [g.node('Cast', [attentionMask], { to: BOOL }), this.int64([1, 2])])
      const allowed = g.node('And', [causal, padding])
      const bias = g.node(
        'Where',
        [allowed, this.float(0), this.float(MASKED)],
        {},
        { name: '/model/mask/bias' },
      )
      return bias
    })
    // GroupQueryAttention's inputs: per-row valid length - 1 (int32 [B]) and the total length (int32 scalar).
    const gqaLengths = once(() => {
      const summed = g.node('ReduceSum', [attentionMask, this.int64([1])], { keepdims: 0 })
      const seqlensK = g.node('Cast', [g.node('Sub', [summed, this.int64([1])])], { to: INT32 })
      const totalLength = g.node(
        'Cast',
        [g.node('Squeeze', [g.node('Shape', [attentionMask], { start: 1, end: 2 }), zero])],
        { to: INT32 },
      )
      return { seqlensK, totalLength }
    })

    // RoPE tables from position_ids: cos/sin [B, 1, S, D] (rotate_half layout: freqs repeated twice).
    const inverse = g.initializer(
      '/model/rotary_emb/inv_freq',
      tensor.float32(ropeInverseFrequencies(c), [D / 2]),
    )
    const positions = g.node('Unsqueeze', [g.node('Cast', [positionIds], { to: FLOAT }), this.int64([2])])
    const freqs = g.node('Mul', [positions, inverse])
    const angles = g.node('Concat', [freqs, freqs], { axis: -1 })
    // [B, 1, S, D] for heads-first tensors (plain attention), [B, S, 1, D] for GQA's [B, S, H, D].
    const ropeAxis = useGqa ? 2 : 1
    const cos = g.node(
      'Unsqueeze',
      [g.node('Cos', [angles]), this.int64([ropeAxis])],
      {},
      { name: '/model/rotary_emb/cos' },
    )
    const sin = g.node(
      'Unsqueeze',
      [g.node('Sin', [angles]), this.int64([ropeAxis])],
      {},
      { name: '/model/rotary_emb/sin' },
    )
    const halves = this.int64([D / 2, D / 2])
    const rope = (x: string): string => {
      const [x1, x2] = g.nodeOutputs('Split', [x, halves], 2, { axis: -1 })
      const rotated = g.node('Concat', [g.node('Neg', [x2!]), x1!], { axis: -1 })
      return g.node('Add', [g.node('Mul', [x, cos]), g.node('Mul', [rotated, sin])])
    }

    const heads = c.numAttentionHeads
    const kvHeads = c.numKeyValueHeads
    w.layers.forEach((layer, i) => {
      const prefix = `model.layers.${i}`
      const normed = this.rmsNorm(hidden, layer.inputLayernorm, `${prefix}.input_layernorm`)
      const q = g.node('Reshape', [
        this.linear(normed, layer.qProj, `${prefix}.self_attn.q_proj`),
        this.int64([0, 0, heads, D]),
      ])
      const k = g.node('Reshape', [
        this.linear(normed, layer.kProj, `${prefix}.self_attn.k_proj`),
        this.int64([0, 0, kvHeads, D]),
      ])
      const v = g.node('Reshape', [
        this.linear(normed, layer.vProj, `${prefix}.self_attn.v_proj`),
        this.int64([0, 0, kvHeads, D]),
      ])
      const normedHeads = this.architecture.normalizeHeads(this, q, k, layer, prefix)
      if (useGqa) {
        const { seqlensK, totalLength } = gqaLengths()
        const [attention] = g.nodeOutputs(
          'GroupQueryAttention',
          [
            g.node('Reshape', [rope(normedHeads.q), this.int64([0, 0, heads * D])]),
            g.node('Reshape', [rope(normedHeads.k), this.int64([0, 0, kvHeads * D])]),
            g.node('Reshape', [v, this.int64([0, 0, kvHeads * D])]),
            pasts[i]!.key,
            pasts[i]!.value,
            seqlensK,
            totalLength,
          ],
          3,
          { num_heads: heads, kv_num_heads: kvHeads, scale: attribute.float(1 / Math.sqrt(D)) },
          {
            domain: 'com.microsoft',
            name: `${prefix}/attn/GroupQueryAttention`,
            outputs: [g.uniqueName(`/${prefix}/attn/output`), `present.${i}.key`, `present.${i}.value`],
          },
        )
        hidden = g.node('Add', [hidden, this.linear(attention!, layer.oProj, `${prefix}.self_attn.o_proj`)])
        hidden = this.#mlp(hidden, layer, prefix)
        return
      }
      const toHeads = (x: string) => g.node('Transpose', [x], { perm: [0, 2, 1, 3] })
      const qRotated = rope(toHeads(normedHeads.q))
      const kRotated = rope(toHeads(normedHeads.k))
      const presentKey = g.node(
        'Concat',
        [pasts[i]!.key, kRotated],
        { axis: 2 },
        { outputs: [`present.${i}.key`] },
      )
      const presentValue = g.node(
        'Concat',
        [pasts[i]!.value, toHeads(v)],
        { axis: 2 },
        { outputs: [`present.${i}.value`] },
      )
      // Grouped-query attention without repeating K/V: fold each group's query heads into the
      // sequence axis ([B, kv, groups·S, D]), so one MatMul serves all heads that share a KV head.
      const qGrouped = g.node('Reshape', [qRotated, this.int64([0, kvHeads, -1, D])])
      const scale = this.float(1 / Math.sqrt(D))
      const scores = g.node('Mul', [
        g.node('MatMul', [qGrouped, g.node('Transpose', [presentKey], { perm: [0, 1, 3, 2] })]),
        scale,
      ])
      const scoresPerHead = g.node('Add', [
        g.node('Reshape', [scores, this.int64([0, heads, -1, 0])]),
        plainBias(),
      ])
      const probabilities = g.node('Softmax', [scoresPerHead], { axis: -1 })
      const context = g.node('MatMul', [
        g.node('Reshape', [probabilities, this.int64([0, kvHeads, -1, 0])]),
        presentValue,
      ])
      const merged = g.node('Reshape', [
        g.node('Transpose', [g.node('Reshape', [context, this.int64([0, heads, -1, D])])], {
          perm: [0, 2, 1, 3],
        }),
        this.int64([0, 0, heads * D]),
      ])
      const attentionOut = this.linear(merged, layer.oProj, `${prefix}.self_attn.o_proj`)
      hidden = g.node('Add', [hidden, attentionOut])
      hidden = this.#mlp(hidden, layer, prefix)
    })

    // num_logits_to_keep (int64 scalar, as the published exports and the Qwen3.5 graph declare
    // it): the final norm and the LM head see only the last N positions, so a prefill that feeds
    // 1 never builds the [S, vocab] logits it would throw away (512 × 151,936 floats, 311 MB, and
    // 80 G multiply-adds at the Qwen3-0.6B shape). Slice semantics, as Python's x[:, -N:]: 0
    // keeps every position, N past the sequence keeps them all too.
    const logitsToKeep = this.options.logitsToKeep ?? true
    const kept = logitsToKeep
      ? g.node(
          'Slice',
          [
            hidden,
            g.node('Neg', [g.node('Reshape', [g.input('num_logits_to_keep', 'int64', []), this.int64([1])])]),
            this.int64([Number.MAX_SAFE_INTEGER]),
            this.int64([1]),
          ],
          {},
          { name: '/model/logits_to_keep/Slice' },
        )
      : hidden
    const finalNorm = this.rmsNorm(kept, w.norm, 'model.norm')
    const V = c.vocabSize
    const sharedLmHead = this.#sharedQ4LmHead(finalNorm)
    if (sharedLmHead) g.node('Identity', [sharedLmHead], {}, { outputs: ['logits'] })
    else if ((this.dtype === 'fp32' || this.dtype === 'fp16') && !w.lmHead && embedded.fpTable) {
      // Tied fp embeddings: Gemm with transB reads the (vocab, hidden) table as is, no second copy on disk.
      const table = embedded.fpTable
      const embedding = this.dtype === 'fp32' ? table : g.node('Cast', [table], { to: FLOAT })
      const flat = g.node('Reshape', [finalNorm, this.int64([-1, c.hiddenSize])])
      const product = g.node('Gemm', [flat, embedding], { transB: 1 }, { name: '/lm_head/Gemm' })
      const rows = logitsToKeep
        ? g.node('Shape', [finalNorm], { start: 0, end: 2 })
        : g.node('Shape', [inputIds])
      const shape = g.node('Concat', [rows, this.int64([V])], { axis: 0 })
      g.node('Reshape', [product, shape], {}, { outputs: ['logits'] })
    } else {
      const logits = this.linear(finalNorm, w.lmHead ?? w.embedTokens, 'lm_head')
      g.node('Identity', [logits], {}, { outputs: ['logits'] })
    }

    g.output('logits', 'float32', [batch, logitsToKeep ? 'logits_length' : 'sequence_length', V])
    w.layers.forEach((_, i) => {
      g.output(`present.${i}.key`, 'float32', [batch, kvHeads, 'total_sequence_length', D])
      g.output(`present.${i}.value`, 'float32', [batch, kvHeads, 'total_sequence_length', D])
    })
    return g
  }
}
