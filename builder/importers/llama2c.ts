// llama2.c importer: the legacy checkpoint format (7 int32 header + float32 tensors) and the
// tokenizer.bin vocabulary, turned into DecoderWeights (Hugging Face layout) and an equivalent
// Hugging Face tokenizer.json. Format: ../shared/models/stories260K/README.md.

import { ModelError } from '../../core/errors.ts'
import { type ModelConfig, parseModelConfig } from '../../core/model-package.ts'
import { type DecoderLayerWeights, type DecoderWeights, matrix } from '../architectures/weights.ts'

export interface Llama2cHeader {
  readonly dim: number
  readonly hiddenDim: number
  readonly layers: number
  readonly heads: number
  readonly kvHeads: number
  /** Absolute vocabulary size (the file stores it negative when the classifier is untied). */
  readonly vocabSize: number
  readonly tiedClassifier: boolean
  readonly seqLen: number
}

function invalid(file: string, message: string): never {
  throw new ModelError('model_invalid', `${file}: ${message}`)
}

export function readLlama2cHeader(bytes: Uint8Array, file = 'checkpoint'): Llama2cHeader {
  if (bytes.byteLength < 28)
    invalid(file, `is ${bytes.byteLength} bytes, too short for the 28-byte llama2.c header.`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, 28)
  const [dim, hiddenDim, layers, heads, kvHeads, vocab, seqLen] = Array.from({ length: 7 }, (_, i) =>
    view.getInt32(i * 4, true),
  ) as [number, number, number, number, number, number, number]
  const check = (name: string, value: number, max: number) => {
    if (!(value > 0 && value <= max))
      invalid(
        file,
        `header field ${name} = ${value} is not plausible (1..${max}): this is not a llama2.c legacy checkpoint.`,
      )
  }
  check('dim', dim, 65536)
  check('hidden_dim', hiddenDim, 262144)
  check('n_layers', layers, 512)
  check('n_heads', heads, 1024)
  check('n_kv_heads', kvHeads, heads)
  check('vocab_size', Math.abs(vocab), 4_194_304)
  check('seq_len', seqLen, 16_777_216)
  if (dim % heads !== 0) invalid(file, `header dim ${dim} is not a multiple of n_heads ${heads}.`)
  if (heads % kvHeads !== 0)
    invalid(file, `header n_heads ${heads} is not a multiple of n_kv_heads ${kvHeads}.`)
  return {
    dim,
    hiddenDim,
    layers,
    heads,
    kvHeads,
    vocabSize: Math.abs(vocab),
    tiedClassifier: vocab > 0,
    seqLen,
  }
}

export function llama2cConfig(header: Llama2cHeader): ModelConfig {
  return parseModelConfig({
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: header.dim,
    intermediate_size: header.hiddenDim,
    num_hidden_layers: header.layers,
    num_attention_heads: header.heads,
    num_key_value_heads: header.kvHeads,
    head_dim: header.dim / header.heads,
    vocab_size: header.vocabSize,
    max_position_embeddings: header.seqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: header.tiedClassifier,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: 'float32',
  })
}

/**
 * llama2.c rotates interleaved pairs (x[2i], x[2i+1]); Hugging Face's rotate_half pairs x[i] with
 * x[i + d/2]. Reordering each head's rows (2i → i, 2i+1 → i + d/2) makes the two the same model.
 */
export function permuteInterleavedRows(
  data: Float32Array,
  heads: number,
  headDim: number,
  cols: number,
): Float32Array {
  const out = new Float32Array(data.length)
  const half = headDim / 2
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < half; i++)
      for (const [from, to] of [
        [2 * i, i],
        [2 * i + 1, i + half],
      ] as const) {
        const source = (h * headDim + from) * cols
        out.set(data.subarray(source, source + cols), (h * headDim + to) * cols)
      }
  return out
}

/** Reads a legacy llama2.c checkpoint into Hugging Face-layout weights. */
export function readLlama2cCheckpoint(bytes: Uint8Array, file = 'checkpoint'): DecoderWeights {
  const header = readLlama2cHeader(bytes, file)
  const config = llama2cConfig(header)
  const { dim, hiddenDim, layers, heads, kvHeads, vocabSize } = header
  const headDim = dim / heads
  const kvDim = kvHeads * headDim
  const floatsAvailable = Math.floor((bytes.byteLength - 28) / 4)
  const sizes: [string, number][] = [
    ['token_embedding_table', vocabSize * dim],
    ['rms_att_weight', layers * dim],
    ['wq', layers * dim * dim],
    ['wk', layers * dim * kvDim],
    ['wv', layers * dim * kvDim],
    ['wo', layers * dim * dim],
    ['rms_ffn_weight', layers * dim],
    ['w1', layers * hiddenDim * dim],
    ['w2', layers * dim * hiddenDim],
    ['w3', layers * hiddenDim * dim],
    ['rms_final_weight', dim],
    ['freq_cis (skipped)', header.seqLen * headDim],
  ]
  if (!header.tiedClassifier) sizes.push(['wcls', vocabSize * dim])
  const needed = sizes.reduce((sum, [, n]) => sum + n, 0)
  if (floatsAvailable < needed) {
    let offset = 0
    for (const [name, n] of sizes) {
      if (offset + n > floatsAvailable)
        invalid(
          file,
          `is truncated: tensor ${name} needs floats ${offset}..${offset + n} but the file holds ${floatsAvailable} after the header (${bytes.byteLength} bytes; expected ${28 + needed * 4}).`,
        )
      offset += n
    }
  }
  // Copy so the weights are aligned and independent of the input buffer.
  const floats = new Float32Array(bytes.slice(28, 28 + needed * 4).buffer)
  let offset = 0
  const take = (n: number) => {
    const out = floats.subarray(offset, offset + n)
    offset += n
    return out
  }
  const embedding = take(vocabSize * dim)
  const rmsAtt = take(layers * dim)
  const wq = take(layers * dim * dim)
  const wk = take(layers * dim * kvDim)
  const wv = take(layers * dim * kvDim)
  const wo = take(layers * dim * dim)
  const rmsFfn = take(layers * dim)
  const w1 = take(layers * hiddenDim * dim)
  const w2 = take(layers * dim * hiddenDim)
  const w3 = take(layers * hiddenDim * dim)
  const rmsFinal = take(dim)
  take(header.seqLen * headDim)
  const wcls = header.tiedClassifier ? undefined : take(vocabSize * dim)
  for (const value of [embedding[0]!, rmsFinal[0]!])
    if (!Number.isFinite(value))
      invalid(file, 'holds non-finite weights: the header does not match the data.')

  const layerWeights: DecoderLayerWeights[] = []
  for (let l = 0; l < layers; l++) {
    const slice = (all: Float32Array, n: number) => all.slice(l * n, (l + 1) * n)
    layerWeights.push({
      inputLayernorm: slice(rmsAtt, dim),
      qProj: matrix(dim, dim, permuteInterleavedRows(slice(wq, dim * dim), heads, headDim, dim)),
      kProj: matrix(kvDim, dim, permuteInterleavedRows(slice(wk, kvDim * dim), kvHeads, headDim, dim)),
      vProj: matrix(kvDim, dim, slice(wv, kvDim * dim)),
      oProj: matrix(dim, dim, slice(wo, dim * dim)),
      postAttentionLayernorm: slice(rmsFfn, dim),
      gateProj: matrix(hiddenDim, dim, slice(w1, hiddenDim * dim)),
      upProj: matrix(hiddenDim, dim, slice(w3, hiddenDim * dim)),
      downProj: matrix(dim, hiddenDim, slice(w2, dim * hiddenDim)),
    })
  }
  return {
    config,
    embedTokens: matrix(vocabSize, dim, embedding.slice()),
    layers: layerWeights,
    norm: rmsFinal.slice(),
    ...(wcls ? { lmHead: matrix(vocabSize, dim, wcls.slice()) } : {}),
  }
}

export interface Llama2cVocabulary {
  readonly maxTokenLength: number
  /** Pieces as llama2.c stores them (spaces as ' ', byte tokens as '<0xNN>'). */
  readonly pieces: readonly Uint8Array[]
  readonly scores: Float32Array
}

export function readLlama2cTokenizer(
  bytes: Uint8Array,
  vocabSize: number,
  file = 'tokenizer',
): Llama2cVocabulary {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (bytes.byteLength < 4) invalid(file, 'is too short to be a llama2.c tokenizer.')
  const maxTokenLength = view.getInt32(0, true)
  if (maxTokenLength <= 0 || maxTokenLength > 1024)
    invalid(file, `max_token_length ${maxTokenLength} is not plausible.`)
  const pieces: Uint8Array[] = []
  const scores = new Float32Array(vocabSize)
  let offset = 4
  for (let i = 0; i < vocabSize; i++) {
    if (offset + 8 > bytes.byteLength)
      invalid(
        file,
        `is truncated at token ${i} of ${vocabSize} (offset ${offset} of ${bytes.byteLength} bytes).`,
      )
    scores[i] = view.getFloat32(offset, true)
    const length = view.getInt32(offset + 4, true)
    offset += 8
    if (length < 0 || length > maxTokenLength || offset + length > bytes.byteLength)
      invalid(
        file,
        `token ${i} has length ${length} (max ${maxTokenLength}), past the end of the file or the header's limit.`,
      )
    pieces.push(bytes.slice(offset, offset + length))
    offset += length
  }
  return { maxTokenLength, pieces, scores }
}
