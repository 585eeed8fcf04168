// Decoder weights in Hugging Face layout, shared by the importers, the seeded fixtures, the ONNX
// graph writers and the reference forward pass. Matrices are row-major (out, in), as nn.Linear
// keeps them; every tensor is float32 (importers widen fp16/bf16).

import type { ModelConfig } from '../../core/model-package.ts'

export interface Matrix {
  /** Output features. */
  readonly rows: number
  /** Input features. */
  readonly cols: number
  /** rows × cols, row-major. */
  readonly data: Float32Array
}

export interface DecoderLayerWeights {
  readonly inputLayernorm: Float32Array
  readonly qProj: Matrix
  readonly kProj: Matrix
  readonly vProj: Matrix
  readonly oProj: Matrix
  /** Qwen3 QK-norm weights (head_dim each); absent for Llama. */
  readonly qNorm?: Float32Array
  readonly kNorm?: Float32Array
  readonly postAttentionLayernorm: Float32Array
  readonly gateProj: Matrix
  readonly upProj: Matrix
  readonly downProj: Matrix
}

export interface DecoderWeights {
  readonly config: ModelConfig
  /** vocab × hidden. */
  readonly embedTokens: Matrix
  readonly layers: readonly DecoderLayerWeights[]
  readonly norm: Float32Array
  /** vocab × hidden; absent when tied to the embeddings. */
  readonly lmHead?: Matrix
}

export function matrix(
  rows: number,
  cols: number,
  data: Float32Array = new Float32Array(rows * cols),
): Matrix {
  if (data.length !== rows * cols)
    throw new Error(`matrix ${rows}x${cols} needs ${rows * cols} values, got ${data.length}`)
  return { rows, cols, data }
}

/** Checks every tensor's shape against the config; throws naming the HF parameter. */
export function validateDecoderWeights(weights: DecoderWeights): void {
  const c = weights.config
  const expectMatrix = (name: string, m: Matrix | undefined, rows: number, cols: number) => {
    if (!m) throw new Error(`weights: ${name} is missing`)
    if (m.rows !== rows || m.cols !== cols || m.data.length !== rows * cols)
      throw new Error(`weights: ${name} has shape [${m.rows}, ${m.cols}], expected [${rows}, ${cols}]`)
  }
  const expectVector = (name: string, v: Float32Array | undefined, length: number) => {
    if (!v) throw new Error(`weights: ${name} is missing`)
    if (v.length !== length) throw new Error(`weights: ${name} has ${v.length} values, expected ${length}`)
  }
  const q = c.numAttentionHeads * c.headDim
  const kv = c.numKeyValueHeads * c.headDim
  expectMatrix('model.embed_tokens.weight', weights.embedTokens, c.vocabSize, c.hiddenSize)
  if (weights.layers.length !== c.numHiddenLayers)
    throw new Error(`weights: ${weights.layers.length} layers, config says ${c.numHiddenLayers}`)
  weights.layers.forEach((layer, i) => {
    const p = `model.layers.${i}`
    expectVector(`${p}.input_layernorm.weight`, layer.inputLayernorm, c.hiddenSize)
    expectMatrix(`${p}.self_attn.q_proj.weight`, layer.qProj, q, c.hiddenSize)
    expectMatrix(`${p}.self_attn.k_proj.weight`, layer.kProj, kv, c.hiddenSize)
    expectMatrix(`${p}.self_attn.v_proj.weight`, layer.vProj, kv, c.hiddenSize)
    expectMatrix(`${p}.self_attn.o_proj.weight`, layer.oProj, c.hiddenSize, q)
    if (c.modelType === 'qwen3') {
      expectVector(`${p}.self_attn.q_norm.weight`, layer.qNorm, c.headDim)
      expectVector(`${p}.self_attn.k_norm.weight`, layer.kNorm, c.headDim)
    }
    expectVector(`${p}.post_attention_layernorm.weight`, layer.postAttentionLayernorm, c.hiddenSize)
    expectMatrix(`${p}.mlp.gate_proj.weight`, layer.gateProj, c.intermediateSize, c.hiddenSize)
    expectMatrix(`${p}.mlp.up_proj.weight`, layer.upProj, c.intermediateSize, c.hiddenSize)
    expectMatrix(`${p}.mlp.down_proj.weight`, layer.downProj, c.hiddenSize, c.intermediateSize)
  })
  expectVector('model.norm.weight', weights.norm, c.hiddenSize)
  if (!c.tieWordEmbeddings) expectMatrix('lm_head.weight', weights.lmHead, c.vocabSize, c.hiddenSize)
}
