// The model package contract: what a package folder (or URL prefix) holds, how the ONNX files for
// each weight format are named (the onnx-community / transformers.js convention, so published
// models load as they are), and a validated reading of the Hugging Face `config.json`.

import { InvalidArgumentError, ModelError } from './errors.ts'
import { type MemoryBackend, memoryBackends } from './memory-backends.ts'
import type { BackendMemoryEstimate } from './memory-estimate.ts'
import { JavaScriptSha256 } from './sha256.ts'
import { onnxSuffixByDtype } from './weight-format.ts'

/** Architectures the runtime and builder know. Qwen3.5's config nests the text part as qwen3_5_text. */
export const modelTypes = ['llama', 'qwen3', 'qwen3_5', 'qwen3_5_text'] as const
export type ModelType = (typeof modelTypes)[number]

/** Weight formats, as transformers.js names them. */
export const modelDtypes = ['fp32', 'fp16', 'q4', 'q4f16', 'q8'] as const
export type ModelDtype = (typeof modelDtypes)[number]

export interface PackageFileEntry {
  /** Path inside the package, with forward slashes (e.g. `onnx/model_q4.onnx`). */
  readonly path: string
  readonly bytes: number
  /** Lower-case hex. */
  readonly sha256: string
}

/**
 * Block digests. Beside each ONNX file larger than one block the builder writes the SHA-256 of
 * every `digestBlockBytes` block of it, in order, 32 bytes each, at `blockDigestsPath(path)`, and
 * lists that file in manifest.json like any other. A reader that fetches a file in ranges, in its
 * own order (the edge's streamed engine load), checks each block against them as it arrives
 * instead of streaming the whole file past once first. Packages without them still load: that
 * reader then makes the digests itself from such a pass.
 */
/** Bytes per digested block: small enough to waste little on a small read, few digests per file. */
export const digestBlockBytes = 256 * 1024

/** Where the block digests of the package file `path` are (a folder of their own, so nothing that lists `onnx/` meets them). */
export function blockDigestsPath(path: string): string {
  return `block-sha256/${path}`
}

/** Whether the builder writes block digests for this file: ONNX graphs and weights over one block. */
export function hasBlockDigests(file: Pick<PackageFileEntry, 'path' | 'bytes'>): boolean {
  return file.path.startsWith('onnx/') && file.bytes > digestBlockBytes
}

/** The size of the block digests of a file of `bytes` bytes. */
export function blockDigestsBytes(bytes: number): number {
  return Math.ceil(bytes / digestBlockBytes) * 32
}

/** `manifest.json`, written by our builder; optional for packages from elsewhere. */
export interface PackageManifest {
  readonly format: 'ondevice-package/1'
  readonly modelType: ModelType
  /** Package name, e.g. `stories260K` or `qwen3-tiny-seed1`. */
  readonly name?: string
  readonly files: readonly PackageFileEntry[]
  /** Weight formats present in this package. */
  readonly dtypes: readonly ModelDtype[]
  /**
   * Estimated bytes of memory to run each dtype at `contextLength`. Since `estimatedMemory`
   * exists, the largest of the backends' figures (so a reader that knows only this field never
   * sends a device into running out of memory); older packages have only this.
   */
  readonly estimatedMemoryBytes: Readonly<Partial<Record<ModelDtype, number>>>
  /**
   * Per dtype and backend: the peak a load plus a conversation filling `contextLength` adds to
   * the process, from core's memory model (core/memory-estimate.ts), calibrated by measurement.
   */
  readonly estimatedMemory?: Readonly<
    Partial<Record<ModelDtype, Readonly<Partial<Record<MemoryBackend, BackendMemoryEstimate>>>>>
  >
  /** Context length the memory estimates assume. */
  readonly contextLength?: number
}

/**
 * The manifest's memory figure for running `dtype` on `backend` at `contextLength` (default: the
 * manifest's): the backend's own estimate when the manifest has one, else the per-dtype number
 * older packages carry (`backend: undefined` in the result says it is not the backend's own).
 */
export function manifestMemoryEstimate(
  manifest: Pick<PackageManifest, 'estimatedMemoryBytes' | 'estimatedMemory' | 'contextLength'>,
  dtype: string,
  backend: MemoryBackend,
  contextLength?: number,
):
  | {
      readonly bytes: number
      readonly gpuBytes?: number
      readonly modelBytes?: number
      readonly backend?: MemoryBackend
    }
  | undefined {
  const own = manifest.estimatedMemory?.[dtype as ModelDtype]?.[backend]
  if (own) {
    const stored = manifest.contextLength
    const shorter = stored !== undefined && contextLength !== undefined && contextLength < stored
    const saved = shorter ? own.perTokenBytes * (stored - contextLength) : 0
    return {
      bytes: Math.max(0, own.bytes - saved),
      ...(own.gpuBytes === undefined ? {} : { gpuBytes: Math.max(0, own.gpuBytes - saved) }),
      ...(own.modelBytes === undefined ? {} : { modelBytes: Math.max(0, own.modelBytes - saved) }),
      backend,
    }
  }
  const bytes = manifest.estimatedMemoryBytes?.[dtype as ModelDtype]
  return typeof bytes === 'number' ? { bytes } : undefined
}

/** Which graphs a package holds: one `model*.onnx` (Llama, Qwen3) or embed + decoder (Qwen3.5). */
export type GraphLayout = 'single' | 'embed-decoder'

export function graphLayoutFor(modelType: ModelType): GraphLayout {
  return modelType === 'qwen3_5' || modelType === 'qwen3_5_text' ? 'embed-decoder' : 'single'
}

export interface OnnxFileNames {
  /** `onnx/model_q4.onnx`; for Qwen3.5, the decoder (`onnx/decoder_model_merged_q4.onnx`). */
  readonly model: string
  /** Qwen3.5 only: `onnx/embed_tokens_q4.onnx`. */
  readonly embedTokens?: string
}

/** The ONNX file names for a dtype (external data, if any, is `<file>_data`). */
export function onnxFileNames(modelType: ModelType, dtype: ModelDtype): OnnxFileNames {
  if (!(modelDtypes as readonly string[]).includes(dtype))
    throw new InvalidArgumentError('dtype', `Unknown dtype "${dtype}": use one of ${modelDtypes.join(', ')}.`)
  const suffix = onnxSuffixByDtype[dtype] as string
  if (graphLayoutFor(modelType) === 'embed-decoder')
    return {
      model: `onnx/decoder_model_merged${suffix}.onnx`,
      embedTokens: `onnx/embed_tokens${suffix}.onnx`,
    }
  return { model: `onnx/model${suffix}.onnx` }
}

/** The external-data file that goes with an ONNX file (`onnx/model.onnx` → `onnx/model.onnx_data`). */
export function externalDataFileName(onnxFile: string): string {
  return `${onnxFile}_data`
}

/** The dtype a file name stands for, or undefined (e.g. `onnx/model_q4.onnx` → 'q4'). */
export function dtypeOfOnnxFile(path: string): ModelDtype | undefined {
  const match =
    /(?:^|\/)(?:model|decoder_model_merged|embed_tokens)(_fp16|_q4f16|_q4|_quantized)?\.onnx$/.exec(path)
  if (!match) return undefined
  const suffix = match[1] ?? ''
  return modelDtypes.find((dtype) => onnxSuffixByDtype[dtype] === suffix)
}

/**
 * The package files besides the weights that decide an answer's tokens: the tokenizer, its chat
 * template and special tokens, the model's config and EOS ids (the files every host builds the
 * tokenizer from, client-runtime/package-tokenizer.ts).
 */
const tokenDecidingFiles: ReadonlySet<string> = new Set([
  'tokenizer.json',
  'tokenizer_config.json',
  'config.json',
  'generation_config.json',
  'chat_template.jinja',
])

/**
 * What identifies the model that answers in `dtype`: 32 hex digits of a SHA-256 over the manifest's
 * sha256 of every file that decides its tokens (the tokenizer's files, the config, that dtype's
 * ONNX graphs and their external data), in path order. Two sides with the same fingerprint run
 * the same bytes; a handoff between different ones would continue the answer with another
 * model's tokens. Other dtypes' files and anything else in the package do not count, so a
 * package with more dtypes or a README still matches. Undefined without a manifest entry for
 * those files (a package from elsewhere): nothing to compare.
 */
export function packageFingerprint(
  files: readonly Pick<PackageFileEntry, 'path' | 'sha256'>[] | undefined,
  dtype: string,
): string | undefined {
  if (files === undefined) return undefined
  const counted = files
    .filter((file) => {
      // A graph's external data: `x.onnx_data`, `x.onnx_data_1`, ... belong to `x.onnx`.
      const graph = file.path.replace(/\.onnx_data(?:_\d+)?$/, '.onnx')
      return tokenDecidingFiles.has(file.path) || dtypeOfOnnxFile(graph) === dtype
    })
    .map((file) => `${file.path} ${file.sha256}\n`)
    .sort()
  if (!counted.some((line) => line.startsWith('onnx/'))) return undefined
  const hash = new JavaScriptSha256()
  hash.update(new TextEncoder().encode(counted.join('')))
  let hex = ''
  for (const byte of hash.digest().subarray(0, 16)) hex += byte.toString(16).padStart(2, '0')
  return hex
}

/** Qwen3.5 linear-attention (Gated DeltaNet) dimensions; absent for other architectures. */
export interface LinearAttentionConfig {
  readonly convKernelDim: number
  readonly keyHeadDim: number
  readonly valueHeadDim: number
  readonly numKeyHeads: number
  readonly numValueHeads: number
}

/** The fields of `config.json` the builder and runtime use, validated, in camelCase. */
export interface ModelConfig {
  readonly modelType: ModelType
  readonly hiddenSize: number
  readonly intermediateSize: number
  readonly numHiddenLayers: number
  readonly numAttentionHeads: number
  readonly numKeyValueHeads: number
  /** Per-head size (Qwen3 decouples it from hidden / heads). */
  readonly headDim: number
  readonly vocabSize: number
  readonly rmsNormEps: number
  readonly ropeTheta: number
  /** Fraction of head dims that RoPE rotates (1 except Qwen3.5's 0.25). */
  readonly partialRotaryFactor: number
  /** Llama 3 style RoPE frequency scaling, when the checkpoint uses it. */
  readonly ropeScaling?: {
    readonly ropeType: 'llama3'
    readonly factor: number
    readonly lowFreqFactor: number
    readonly highFreqFactor: number
    readonly originalMaxPositionEmbeddings: number
  }
  readonly maxPositionEmbeddings: number
  readonly tieWordEmbeddings: boolean
  readonly bosTokenId?: number
  readonly eosTokenIds: readonly number[]
  /** Qwen3.5: 'linear_attention' | 'full_attention' per layer. */
  readonly layerTypes?: readonly string[]
  readonly linearAttention?: LinearAttentionConfig
  /** The parsed JSON as given (the text part for Qwen3.5), for fields not mirrored here. */
  readonly raw: Readonly<Record<string, unknown>>
}

type JsonObject = Record<string, unknown>

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

const limits = {
  hidden_size: 65536,
  intermediate_size: 262144,
  num_hidden_layers: 512,
  num_attention_heads: 1024,
  num_key_value_heads: 1024,
  head_dim: 1024,
  vocab_size: 4_194_304,
  max_position_embeddings: 16_777_216,
} as const

function fail(field: string, message: string): never {
  throw new ModelError('model_invalid', `config.json: "${field}" ${message}`, { param: field })
}

function positiveInteger(json: JsonObject, field: keyof typeof limits, fallback?: number): number {
  const value = json[field] ?? fallback
  if (value === undefined) fail(field, 'is missing: a config.json for this architecture must set it.')
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0)
    fail(field, `must be a positive integer (got ${JSON.stringify(value)}).`)
  if (value > limits[field])
    fail(field, `is ${value}, above the sane limit ${limits[field]}: check the file.`)
  return value
}

function positiveNumber(json: JsonObject, field: string, fallback: number): number {
  const value = json[field] ?? fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    fail(field, `must be a positive number (got ${JSON.stringify(value)}).`)
  return value
}

function tokenIds(value: unknown, field: string): number[] {
  if (value === undefined || value === null) return []
  const list = Array.isArray(value) ? value : [value]
  for (const id of list)
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0)
      fail(field, `must be a token id or a list of them (got ${JSON.stringify(value)}).`)
  return list as number[]
}

/**
 * Reads and validates a Hugging Face `config.json` (a JSON string or parsed object). Unknown
 * `model_type`, missing or absurd dimensions, and inconsistent head counts are ModelErrors that
 * name the field.
 */
export function parseModelConfig(input: unknown): ModelConfig {
  let json: unknown = input
  if (typeof input === 'string') {
    try {
      json = JSON.parse(input)
    } catch (error) {
      throw new ModelError('model_invalid', `config.json is not valid JSON: ${(error as Error).message}`, {
        cause: error,
      })
    }
  }
  if (!isObject(json)) throw new ModelError('model_invalid', 'config.json must hold a JSON object.')
  // Qwen3.5 (a vision-language config) keeps the language model's fields under text_config.
  const outerType = json.model_type
  const text: JsonObject = outerType === 'qwen3_5' && isObject(json.text_config) ? json.text_config : json
  const modelType = outerType === 'qwen3_5' ? 'qwen3_5' : text.model_type
  if (typeof modelType !== 'string' || !(modelTypes as readonly string[]).includes(modelType))
    fail(
      'model_type',
      `is ${JSON.stringify(modelType)}; ondevice supports ${modelTypes.join(', ')}. Convert another architecture to one of these or pick a supported model.`,
    )
  const type = modelType as ModelType

  const hiddenSize = positiveInteger(text, 'hidden_size')
  const numAttentionHeads = positiveInteger(text, 'num_attention_heads')
  const numKeyValueHeads = positiveInteger(text, 'num_key_value_heads', numAttentionHeads)
  if (numAttentionHeads % numKeyValueHeads !== 0)
    fail(
      'num_key_value_heads',
      `(${numKeyValueHeads}) must divide num_attention_heads (${numAttentionHeads}) for grouped-query attention.`,
    )
  const defaultHeadDim = hiddenSize % numAttentionHeads === 0 ? hiddenSize / numAttentionHeads : undefined
  const headDim = positiveInteger(text, 'head_dim', defaultHeadDim)
  if (headDim % 2 !== 0) fail('head_dim', `(${headDim}) must be even for rotary embeddings.`)

  let ropeScaling: ModelConfig['ropeScaling']
  const scaling = text.rope_scaling
  if (isObject(scaling)) {
    const ropeType = scaling.rope_type ?? scaling.type
    if (ropeType === 'llama3') {
      ropeScaling = {
        ropeType: 'llama3',
        factor: positiveNumber(scaling, 'factor', 8),
        lowFreqFactor: positiveNumber(scaling, 'low_freq_factor', 1),
        highFreqFactor: positiveNumber(scaling, 'high_freq_factor', 4),
        originalMaxPositionEmbeddings: positiveNumber(scaling, 'original_max_position_embeddings', 8192),
      }
    } else if (ropeType !== 'default' && ropeType !== undefined)
      fail('rope_scaling', `type ${JSON.stringify(ropeType)} is not supported (only "llama3" and "default").`)
  }
  const ropeParameters = isObject(text.rope_parameters) ? text.rope_parameters : {}
  const ropeTheta = positiveNumber(
    { rope_theta: text.rope_theta ?? ropeParameters.rope_theta },
    'rope_theta',
    type === 'llama' ? 10000 : type === 'qwen3' ? 1_000_000 : 10_000_000,
  )
  const partialRotaryFactor = positiveNumber(
    { partial_rotary_factor: text.partial_rotary_factor ?? ropeParameters.partial_rotary_factor },
    'partial_rotary_factor',
    1,
  )
  if (partialRotaryFactor > 1) fail('partial_rotary_factor', `(${partialRotaryFactor}) must be at most 1.`)

  const numHiddenLayers = positiveInteger(text, 'num_hidden_layers')
  let layerTypes: string[] | undefined
  if (Array.isArray(text.layer_types)) {
    layerTypes = text.layer_types.map(String)
    if (layerTypes.length !== numHiddenLayers)
      fail('layer_types', `has ${layerTypes.length} entries for ${numHiddenLayers} layers.`)
  }
  let linearAttention: LinearAttentionConfig | undefined
  if (text.linear_num_value_heads !== undefined) {
    const get = (field: string, fallback?: number) => {
      const value = text[field] ?? fallback
      if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > 65536)
        fail(field, `must be a positive integer (got ${JSON.stringify(value)}).`)
      return value
    }
    linearAttention = {
      convKernelDim: get('linear_conv_kernel_dim', 4),
      keyHeadDim: get('linear_key_head_dim', 128),
      valueHeadDim: get('linear_value_head_dim', 128),
      numKeyHeads: get('linear_num_key_heads'),
      numValueHeads: get('linear_num_value_heads'),
    }
  }

  const tie = text.tie_word_embeddings ?? json.tie_word_embeddings ?? type !== 'llama'
  if (typeof tie !== 'boolean') fail('tie_word_embeddings', 'must be true or false.')
  const bos = tokenIds(text.bos_token_id ?? json.bos_token_id, 'bos_token_id')
  const config: ModelConfig = {
    modelType: type,
    hiddenSize,
    intermediateSize: positiveInteger(text, 'intermediate_size'),
    numHiddenLayers,
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    vocabSize: positiveInteger(text, 'vocab_size'),
    rmsNormEps: positiveNumber(text, 'rms_norm_eps', 1e-6),
    ropeTheta,
    partialRotaryFactor,
    maxPositionEmbeddings: positiveInteger(text, 'max_position_embeddings', 2048),
    tieWordEmbeddings: tie,
    eosTokenIds: tokenIds(text.eos_token_id ?? json.eos_token_id, 'eos_token_id'),
    raw: text,
    ...(bos.length > 0 ? { bosTokenId: bos[0]! } : {}),
    ...(ropeScaling ? { ropeScaling } : {}),
    ...(layerTypes ? { layerTypes } : {}),
    ...(linearAttention ? { linearAttention } : {}),
  }
  return config
}

/** Validates a parsed `manifest.json`; throws a ModelError naming the field. */
export function parsePackageManifest(input: unknown): PackageManifest {
  const json = typeof input === 'string' ? (JSON.parse(input) as unknown) : input
  const bad = (field: string, message: string): never => {
    throw new ModelError('model_invalid', `manifest.json: "${field}" ${message}`, { param: field })
  }
  if (!isObject(json)) return bad('(root)', 'must be a JSON object.')
  if (json.format !== 'ondevice-package/1')
    bad('format', `is ${JSON.stringify(json.format)}; expected "ondevice-package/1".`)
  if (typeof json.modelType !== 'string' || !(modelTypes as readonly string[]).includes(json.modelType))
    bad('modelType', `is ${JSON.stringify(json.modelType)}; expected one of ${modelTypes.join(', ')}.`)
  if (!Array.isArray(json.files)) return bad('files', 'must be a list.')
  json.files.forEach((file, i) => {
    if (!isObject(file) || typeof file.path !== 'string' || file.path === '' || file.path.includes('..'))
      bad(`files.${i}.path`, 'must be a relative path inside the package.')
    const entry = file as JsonObject
    if (typeof entry.bytes !== 'number' || !Number.isInteger(entry.bytes) || entry.bytes < 0)
      bad(`files.${i}.bytes`, 'must be a byte count.')
    if (typeof entry.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256))
      bad(`files.${i}.sha256`, 'must be 64 lower-case hex digits.')
  })
  if (
    !Array.isArray(json.dtypes) ||
    !json.dtypes.every((d) => (modelDtypes as readonly unknown[]).includes(d))
  )
    bad('dtypes', `must list dtypes among ${modelDtypes.join(', ')}.`)
  parseMemoryFields(json)
  return json as unknown as PackageManifest
}

/**
 * Validates a manifest's memory fields (estimatedMemoryBytes, estimatedMemory, contextLength);
 * throws a ModelError naming the field. Returns them typed.
 */
export function parseMemoryFields(
  json: Readonly<Record<string, unknown>>,
): Pick<PackageManifest, 'estimatedMemoryBytes' | 'estimatedMemory' | 'contextLength'> {
  const bad = (field: string, message: string): never => {
    throw new ModelError('model_invalid', `manifest.json: "${field}" ${message}`, { param: field })
  }
  if (!isObject(json.estimatedMemoryBytes)) bad('estimatedMemoryBytes', 'must map dtype to bytes.')
  const byteCount = (value: unknown): boolean =>
    typeof value === 'number' && Number.isFinite(value) && value >= 0
  for (const [dtype, bytes] of Object.entries(json.estimatedMemoryBytes as JsonObject))
    if (!byteCount(bytes)) bad(`estimatedMemoryBytes.${dtype}`, 'must be a byte count.')
  if (json.estimatedMemory !== undefined) {
    if (!isObject(json.estimatedMemory))
      bad('estimatedMemory', 'must map dtype to { backend: { bytes, perTokenBytes } }.')
    for (const [dtype, byBackend] of Object.entries(json.estimatedMemory as JsonObject)) {
      if (!(modelDtypes as readonly string[]).includes(dtype))
        bad(`estimatedMemory.${dtype}`, `is not a dtype: use ${modelDtypes.join(', ')}.`)
      if (!isObject(byBackend))
        bad(`estimatedMemory.${dtype}`, 'must map backend to { bytes, perTokenBytes }.')
      for (const [backend, figure] of Object.entries(byBackend as JsonObject)) {
        const field = `estimatedMemory.${dtype}.${backend}`
        if (!(memoryBackends as readonly string[]).includes(backend))
          bad(field, `is not a backend: use ${memoryBackends.join(', ')}.`)
        if (!isObject(figure) || !byteCount(figure.bytes) || !byteCount(figure.perTokenBytes))
          bad(field, 'must be { bytes, perTokenBytes } with byte counts.')
        const entry = figure as JsonObject
        for (const optional of ['gpuBytes', 'modelBytes'])
          if (entry[optional] !== undefined && !byteCount(entry[optional]))
            bad(`${field}.${optional}`, 'must be a byte count.')
      }
    }
  }
  if (
    json.contextLength !== undefined &&
    (typeof json.contextLength !== 'number' ||
      !Number.isInteger(json.contextLength) ||
      json.contextLength < 1)
  )
    bad('contextLength', 'must be a positive integer.')
  return json as unknown as Pick<
    PackageManifest,
    'estimatedMemoryBytes' | 'estimatedMemory' | 'contextLength'
  >
}
