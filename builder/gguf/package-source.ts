// Reads back what a package was built from, for GGUF export: the decoder weights from its fp32
// (or fp16) ONNX file, in the builder's Hugging Face layout, and its tokenizer as GGUF metadata.
// Quantized-only packages are refused: re-quantizing q4/q8 codes into ggml's blocks would stack
// two roundings, so the export starts from float weights as llama.cpp's converter does.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { InvalidArgumentError, ModelError } from '../../core/errors.ts'
import { type ModelConfig, onnxFileNames, parseModelConfig } from '../../core/model-package.ts'
import { convDim, parseQwen35Config, type Qwen35Config } from '../architectures/qwen3-5-config.ts'
import {
  type Qwen35Model,
  type Qwen35Tensor,
  qwen35WeightShapes,
} from '../architectures/qwen3-5-reference.ts'
import {
  type DecoderLayerWeights,
  type DecoderWeights,
  type Matrix,
  matrix,
} from '../architectures/weights.ts'
import { type ModelSummary, readModelSummary } from '../onnx/model-reader.ts'
import { byteLengthOf, fromFloat16 } from '../onnx/tensor.ts'
import { type GgufSourceWeights, isQwen35Model } from './gguf-export.ts'
import type { GgufValue } from './gguf-file.ts'
import { ggufTokenizerMetadata } from './gguf-tokenizer.ts'

/** A package's float weights and tokenizer; `Weights` is DecoderWeights for llama / qwen3 packages. */
export interface PackageSource<Weights extends GgufSourceWeights = DecoderWeights> {
  /** llama / qwen3: the builder's decoder weights; Qwen3.5: its config and HF-named weights. */
  readonly weights: Weights
  readonly tokenizer: Map<string, GgufValue>
  /** The package's name (manifest.json), for general.name. */
  readonly name: string
  /** The ONNX file the weights came from. */
  readonly onnxFile: string
}

function readJson(folder: string, file: string): Record<string, unknown> | undefined {
  const path = join(folder, file)
  if (!existsSync(path)) return undefined
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
  } catch (cause) {
    throw new ModelError('model_invalid', `${path} is not valid JSON.`, { cause })
  }
}

const firstId = (value: unknown): number | undefined =>
  typeof value === 'number'
    ? value
    : Array.isArray(value) && typeof value[0] === 'number'
      ? value[0]
      : undefined

/** Reads a llama or qwen3 package folder's float weights and tokenizer (see the top of this file). */
export async function readPackageSource(folder: string): Promise<PackageSource> {
  const source = await readGgufSource(folder)
  const { weights } = source
  if (isQwen35Model(weights))
    throw new InvalidArgumentError(
      'package',
      `${folder} is a Qwen3.5 package: read it with readGgufSource, which returns its weights in the Qwen3.5 builder's form ({ config, weights }).`,
    )
  return { ...source, weights }
}

/** Reads any package GGUF export writes (llama, qwen3, Qwen3.5): float weights and tokenizer. */
export async function readGgufSource(folder: string): Promise<PackageSource<GgufSourceWeights>> {
  if (!existsSync(join(folder, 'config.json')))
    throw new InvalidArgumentError(
      'package',
      `${folder} is not a model package (no config.json): pass a folder written by ondevice convert or ondevice fixture.`,
    )
  const config = parseModelConfig(readFileSync(join(folder, 'config.json'), 'utf8'))
  const qwen35 = config.modelType === 'qwen3_5' || config.modelType === 'qwen3_5_text'
  if (config.modelType !== 'llama' && config.modelType !== 'qwen3' && !qwen35)
    throw new InvalidArgumentError(
      'package',
      `GGUF export writes llama, qwen3 and Qwen3.5 packages; ${folder} is ${config.modelType}.`,
    )
  const dtype = (['fp32', 'fp16'] as const).find((candidate) =>
    existsSync(join(folder, onnxFileNames(config.modelType, candidate).model)),
  )
  if (!dtype)
    throw new InvalidArgumentError(
      'package',
      `${folder} has no fp32 or fp16 ONNX file; GGUF export quantizes from float weights. Write the package with --dtype fp32 as well (ondevice convert / ondevice fixture).`,
    )
  const files = onnxFileNames(config.modelType, dtype)
  const onnxFile = files.model
  const onnx = new OnnxInitializers(join(folder, onnxFile))
  const embedding = files.embedTokens ? new OnnxInitializers(join(folder, files.embedTokens)) : undefined
  try {
    const weights = qwen35
      ? readQwen35Weights(onnx, embedding ?? onnx, readQwen35Config(folder))
      : readDecoderWeights(onnx, config)
    const tokenizer = readPackageTokenizer(folder, config)
    const manifest = readJson(folder, 'manifest.json')
    const name = typeof manifest?.['name'] === 'string' ? manifest['name'] : config.modelType
    return { weights, tokenizer, name, onnxFile }
  } finally {
    onnx.close()
    embedding?.close()
  }
}

function readQwen35Config(folder: string): Qwen35Config {
  try {
    return parseQwen35Config(readJson(folder, 'config.json'))
  } catch (cause) {
    throw new ModelError('model_invalid', `${folder}/config.json: ${(cause as Error).message}.`, { cause })
  }
}

/** A package's tokenizer files as GGUF metadata (ids from generation_config.json when present). */
export function readPackageTokenizer(folder: string, config: ModelConfig): Map<string, GgufValue> {
  const tokenizerJson = readJson(folder, 'tokenizer.json')
  if (!tokenizerJson)
    throw new InvalidArgumentError(
      'package',
      `${folder} has no tokenizer.json; GGUF files carry the tokenizer.`,
    )
  const tokenizerConfigJson = readJson(folder, 'tokenizer_config.json')
  const generation = readJson(folder, 'generation_config.json') ?? {}
  const bos = firstId(generation['bos_token_id'])
  const eos = firstId(generation['eos_token_id'])
  const pad = firstId(generation['pad_token_id'])
  return ggufTokenizerMetadata({
    tokenizerJson,
    ...(tokenizerConfigJson ? { tokenizerConfigJson } : {}),
    config,
    ...(bos === undefined ? {} : { bosTokenId: bos }),
    ...(eos === undefined ? {} : { eosTokenId: eos }),
    ...(pad === undefined ? {} : { padTokenId: pad }),
  })
}

/** An ONNX file's initializers by name, their bytes read from inline data or external files. */
class OnnxInitializers {
  readonly path: string
  readonly #entries: Map<string, ModelSummary['initializers'][number]>
  readonly #files = new Map<string, { descriptor: number; size: number }>()

  constructor(path: string) {
    this.path = path
    let summary: ModelSummary
    try {
      summary = readModelSummary(new Uint8Array(readFileSync(path)))
    } catch (cause) {
      throw new ModelError('model_invalid', `${path} is not a readable ONNX file.`, { cause })
    }
    this.#entries = new Map(summary.initializers.map((entry) => [entry.name, entry]))
  }

  /** The float values of `name`, checked against the dims config.json implies. */
  floats(name: string, dims: readonly number[]): Float32Array {
    const entry = this.#entries.get(name)
    if (!entry) throw new ModelError('model_invalid', `${this.path} has no initializer "${name}".`)
    const ok =
      (entry.type === 'float32' || entry.type === 'float16') &&
      entry.dims.length === dims.length &&
      entry.dims.every((d, i) => d === dims[i])
    if (!ok)
      throw new ModelError(
        'model_invalid',
        `${this.path}: "${name}" is ${entry.type}[${entry.dims.join(', ')}], expected float[${dims.join(', ')}] from config.json.`,
      )
    const length = byteLengthOf(entry.type!, entry.dims)
    const bytes = new Uint8Array(length)
    if (entry.external) {
      const file = join(dirname(this.path), entry.external.location)
      let opened = this.#files.get(file)
      if (!opened) {
        if (!existsSync(file))
          throw new ModelError('model_invalid', `${this.path} keeps "${name}" in ${file}, which is missing.`)
        const descriptor = openSync(file, 'r')
        opened = { descriptor, size: fstatSync(descriptor).size }
        this.#files.set(file, opened)
      }
      if (entry.external.offset + length > opened.size)
        throw new ModelError(
          'model_invalid',
          `${file} is too short for "${name}" (needs bytes up to ${entry.external.offset + length}, has ${opened.size}): the package is incomplete.`,
        )
      let read = 0
      while (read < length) {
        const got = readSync(opened.descriptor, bytes, read, length - read, entry.external.offset + read)
        if (got === 0) throw new ModelError('model_invalid', `${file} ended while reading "${name}".`)
        read += got
      }
    } else if (entry.inlineData && entry.inlineData.length === length) bytes.set(entry.inlineData)
    else
      throw new ModelError(
        'model_invalid',
        `${this.path}: "${name}" has ${entry.inlineBytes} inline bytes, expected ${length}.`,
      )
    return entry.type === 'float32'
      ? new Float32Array(bytes.buffer)
      : fromFloat16(new Uint16Array(bytes.buffer))
  }

  close(): void {
    for (const { descriptor } of this.#files.values()) closeSync(descriptor)
    this.#files.clear()
  }
}

function readDecoderWeights(onnx: OnnxInitializers, config: ModelConfig): DecoderWeights {
  const floats = (name: string, dims: readonly number[]) => onnx.floats(name, dims)
  // MatMul weights are stored (in, out); the builder's layout is nn.Linear's (out, in).
  const linear = (name: string, rows: number, cols: number): Matrix => {
    const stored = floats(`${name}.weight`, [cols, rows])
    const data = new Float32Array(rows * cols)
    for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) data[r * cols + c] = stored[c * rows + r]!
    return matrix(rows, cols, data)
  }
  const hidden = config.hiddenSize
  const q = config.numAttentionHeads * config.headDim
  const kv = config.numKeyValueHeads * config.headDim
  const layers: DecoderLayerWeights[] = []
  for (let i = 0; i < config.numHiddenLayers; i++) {
    const p = `model.layers.${i}`
    const qwen3 = config.modelType === 'qwen3'
    layers.push({
      inputLayernorm: floats(`${p}.input_layernorm.weight`, [hidden]),
      qProj: linear(`${p}.self_attn.q_proj`, q, hidden),
      kProj: linear(`${p}.self_attn.k_proj`, kv, hidden),
      vProj: linear(`${p}.self_attn.v_proj`, kv, hidden),
      oProj: linear(`${p}.self_attn.o_proj`, hidden, q),
      ...(qwen3
        ? {
            qNorm: floats(`${p}.self_attn.q_norm.weight`, [config.headDim]),
            kNorm: floats(`${p}.self_attn.k_norm.weight`, [config.headDim]),
          }
        : {}),
      postAttentionLayernorm: floats(`${p}.post_attention_layernorm.weight`, [hidden]),
      gateProj: linear(`${p}.mlp.gate_proj`, config.intermediateSize, hidden),
      upProj: linear(`${p}.mlp.up_proj`, config.intermediateSize, hidden),
      downProj: linear(`${p}.mlp.down_proj`, hidden, config.intermediateSize),
    })
  }
  const embedTokens = matrix(
    config.vocabSize,
    hidden,
    floats('model.embed_tokens.weight', [config.vocabSize, hidden]),
  )
  const norm = floats('model.norm.weight', [hidden])
  const lmHead = config.tieWordEmbeddings ? undefined : linear('lm_head', config.vocabSize, hidden)
  return { config, embedTokens, layers, norm, ...(lmHead ? { lmHead } : {}) }
}

/**
 * Qwen3.5's weights back in their Hugging Face names and form, from the graphs the Qwen3.5 builder
 * writes (builder/architectures/qwen3-5-graph.ts): linear layers stored (in, out) are transposed
 * back, the zero-centred norms (stored as `<name>.weight.scale` = 1 + w) get w back, the gated
 * norm (`linear_attn.norm.scale`) is the plain weight, and A_log comes from `neg_exp_A_log` = -exp(A_log).
 * The embedding table is the embed_tokens graph's.
 */
function readQwen35Weights(
  decoder: OnnxInitializers,
  embedding: OnnxInitializers,
  config: Qwen35Config,
): Qwen35Model {
  const weights = new Map<string, Qwen35Tensor>()
  for (const [name, shape] of qwen35WeightShapes(config)) {
    let data: Float32Array
    if (name === 'model.embed_tokens.weight') data = embedding.floats(name, shape)
    else if (name.endsWith('linear_attn.norm.weight'))
      data = decoder.floats(name.replace(/\.weight$/, '.scale'), shape)
    else if (name.endsWith('norm.weight'))
      // The graph holds 1 + w rounded to float32; s - 1 is exact for s in [0.5, 2] (Sterbenz), so
      // 1 + (s - 1), what the GGUF stores, is the graph's scale bit for bit.
      data = Float32Array.from(decoder.floats(`${name}.scale`, shape), (s) => s - 1)
    else if (name.endsWith('.A_log'))
      data = Float32Array.from(decoder.floats(name.replace(/A_log$/, 'neg_exp_A_log'), shape), (a) =>
        Math.log(-a),
      )
    else if (name.endsWith('conv1d.weight'))
      data = decoder.floats(name, [convDim(config), 1, config.linearConvKernelDim])
    else if (name.endsWith('.dt_bias')) data = decoder.floats(name, shape)
    else {
      const [rows, cols] = shape as [number, number]
      const stored = decoder.floats(name, [cols, rows])
      data = new Float32Array(rows * cols)
      for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) data[r * cols + c] = stored[c * rows + r]!
    }
    weights.set(name, { shape, data })
  }
  return { config, weights }
}
