// Qwen3.5 text configuration: the Hugging Face `config.json` fields (flat `qwen3_5_text`, or the
// multimodal `qwen3_5` one with a nested `text_config`) read into one validated, camel-cased
// object that the reference, the graph writer and the importer all share.

export type Qwen35LayerType = 'linear_attention' | 'full_attention'

export interface Qwen35Config {
  readonly vocabSize: number
  readonly hiddenSize: number
  readonly intermediateSize: number
  readonly numHiddenLayers: number
  /** Gated (full) attention: query heads, key/value heads and their width. */
  readonly numAttentionHeads: number
  readonly numKeyValueHeads: number
  readonly headDim: number
  /** Gated DeltaNet: key heads (q and k), value heads (v, z, state), and their widths. */
  readonly linearNumKeyHeads: number
  readonly linearNumValueHeads: number
  readonly linearKeyHeadDim: number
  readonly linearValueHeadDim: number
  readonly linearConvKernelDim: number
  readonly rmsNormEps: number
  readonly ropeTheta: number
  readonly partialRotaryFactor: number
  /** Multimodal RoPE: how many of the rotary frequencies follow rows T, H, W (interleaved). */
  readonly mropeSection: readonly [number, number, number]
  readonly layerTypes: readonly Qwen35LayerType[]
  readonly tieWordEmbeddings: boolean
  readonly maxPositionEmbeddings: number
  readonly eosTokenId?: number | readonly number[]
  readonly bosTokenId?: number
}

export class Qwen35ConfigError extends Error {
  readonly field: string
  constructor(field: string, message: string) {
    super(`Qwen3.5 config: "${field}" ${message}`)
    this.name = 'Qwen35ConfigError'
    this.field = field
  }
}

type JsonObject = Record<string, unknown>

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function positiveInteger(source: JsonObject, field: string, fallback?: number): number {
  const value = source[field] ?? fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new Qwen35ConfigError(field, `must be a positive integer, got ${JSON.stringify(value)}`)
  }
  return value
}

function positiveNumber(value: unknown, field: string): number {
  if (typeof value !== 'number' || !(value > 0)) {
    throw new Qwen35ConfigError(field, `must be a positive number, got ${JSON.stringify(value)}`)
  }
  return value
}

/** The camel-cased config from an HF `config.json` object (flat text config or nested `text_config`). */
export function parseQwen35Config(json: unknown): Qwen35Config {
  if (!isObject(json)) throw new Qwen35ConfigError('config', 'must be a JSON object')
  const nested = isObject(json.text_config) ? json.text_config : undefined
  const text: JsonObject = nested ? { ...nested } : json
  // The multimodal wrapper carries tie_word_embeddings at the top level too.
  const tie = text.tie_word_embeddings ?? json.tie_word_embeddings ?? false
  const rope: JsonObject = isObject(text.rope_parameters) ? text.rope_parameters : {}
  const numHiddenLayers = positiveInteger(text, 'num_hidden_layers')
  let layerTypes: Qwen35LayerType[]
  if (Array.isArray(text.layer_types)) {
    layerTypes = text.layer_types.map((type, index) => {
      if (type !== 'linear_attention' && type !== 'full_attention') {
        throw new Qwen35ConfigError(
          `layer_types[${index}]`,
          `must be "linear_attention" or "full_attention", got ${JSON.stringify(type)}`,
        )
      }
      return type
    })
    if (layerTypes.length !== numHiddenLayers) {
      throw new Qwen35ConfigError(
        'layer_types',
        `has ${layerTypes.length} entries for ${numHiddenLayers} layers`,
      )
    }
  } else {
    // HF's rule: layer i is full attention when (i + 1) is a multiple of the interval.
    const interval = positiveInteger(text, 'full_attention_interval', 4)
    layerTypes = Array.from({ length: numHiddenLayers }, (_, i) =>
      (i + 1) % interval === 0 ? 'full_attention' : 'linear_attention',
    )
  }
  const mrope = rope.mrope_section ?? [11, 11, 10]
  if (!Array.isArray(mrope) || mrope.length !== 3 || !mrope.every((n) => Number.isInteger(n) && n >= 0)) {
    throw new Qwen35ConfigError('rope_parameters.mrope_section', 'must be three non-negative integers')
  }
  const config: Qwen35Config = {
    vocabSize: positiveInteger(text, 'vocab_size'),
    hiddenSize: positiveInteger(text, 'hidden_size'),
    intermediateSize: positiveInteger(text, 'intermediate_size'),
    numHiddenLayers,
    numAttentionHeads: positiveInteger(text, 'num_attention_heads'),
    numKeyValueHeads: positiveInteger(text, 'num_key_value_heads'),
    headDim: positiveInteger(text, 'head_dim', 256),
    linearNumKeyHeads: positiveInteger(text, 'linear_num_key_heads', 16),
    linearNumValueHeads: positiveInteger(text, 'linear_num_value_heads', 32),
    linearKeyHeadDim: positiveInteger(text, 'linear_key_head_dim', 128),
    linearValueHeadDim: positiveInteger(text, 'linear_value_head_dim', 128),
    linearConvKernelDim: positiveInteger(text, 'linear_conv_kernel_dim', 4),
    rmsNormEps: positiveNumber(text.rms_norm_eps ?? 1e-6, 'rms_norm_eps'),
    ropeTheta: positiveNumber(rope.rope_theta ?? text.rope_theta ?? 10_000_000, 'rope_parameters.rope_theta'),
    partialRotaryFactor: positiveNumber(
      rope.partial_rotary_factor ?? text.partial_rotary_factor ?? 0.25,
      'rope_parameters.partial_rotary_factor',
    ),
    mropeSection: [mrope[0] as number, mrope[1] as number, mrope[2] as number],
    layerTypes,
    tieWordEmbeddings: tie === true,
    maxPositionEmbeddings: positiveInteger(text, 'max_position_embeddings', 262_144),
  }
  if (config.numAttentionHeads % config.numKeyValueHeads !== 0) {
    throw new Qwen35ConfigError(
      'num_key_value_heads',
      `(${config.numKeyValueHeads}) must divide num_attention_heads (${config.numAttentionHeads})`,
    )
  }
  if (config.linearNumValueHeads % config.linearNumKeyHeads !== 0) {
    throw new Qwen35ConfigError(
      'linear_num_key_heads',
      `(${config.linearNumKeyHeads}) must divide linear_num_value_heads (${config.linearNumValueHeads})`,
    )
  }
  const rotary = rotaryDim(config)
  if (rotary % 2 !== 0 || rotary > config.headDim) {
    throw new Qwen35ConfigError(
      'rope_parameters.partial_rotary_factor',
      `gives a rotary width of ${rotary}: it must be even and at most head_dim`,
    )
  }
  const eos = text.eos_token_id ?? json.eos_token_id
  const bos = text.bos_token_id ?? json.bos_token_id
  return {
    ...config,
    ...(typeof eos === 'number' || Array.isArray(eos) ? { eosTokenId: eos as number | number[] } : {}),
    ...(typeof bos === 'number' ? { bosTokenId: bos } : {}),
  }
}

/** Width of the rotated part of each attention head (64 of 256 on the published sizes). */
export function rotaryDim(config: Qwen35Config): number {
  return Math.trunc(config.headDim * config.partialRotaryFactor)
}

/** Channels of the depthwise conv: q, k (key heads) and v (value heads), in that order. */
export function convDim(config: Qwen35Config): number {
  return (
    2 * config.linearNumKeyHeads * config.linearKeyHeadDim +
    config.linearNumValueHeads * config.linearValueHeadDim
  )
}

/**
 * For each rotary frequency, the position row (0 = T, 1 = H, 2 = W) it reads: HF's interleaved
 * recomposition puts H at indices 1, 4, 7, ... < 3·section[1] and W at 2, 5, 8, ... < 3·section[2].
 * For text, all three rows are equal, so this is plain RoPE.
 */
export function mropeRowPerFrequency(config: Qwen35Config): number[] {
  const frequencies = rotaryDim(config) / 2
  return Array.from({ length: frequencies }, (_, j) => {
    if (j % 3 === 1 && j < 3 * config.mropeSection[1]) return 1
    if (j % 3 === 2 && j < 3 * config.mropeSection[2]) return 2
    return 0
  })
}

/**
 * The HF `config.json` (flat `qwen3_5_text`) for a config, readable by transformers.js as well:
 * `externalDataFiles` names the graphs that have an `.onnx_data` file (its browser build fetches
 * only those).
 */
export function qwen35ConfigJson(
  config: Qwen35Config,
  externalDataFiles: readonly string[] = [],
): Record<string, unknown> {
  return {
    // transformers.js loads the two-graph layout (embed_tokens + decoder_model_merged) only under
    // the name onnx-community's published Qwen3.5 exports carry; under Qwen3_5ForCausalLM it looks
    // for a single onnx/model.onnx.
    architectures: ['Qwen3_5ForConditionalGeneration'],
    model_type: 'qwen3_5_text',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numHiddenLayers,
    num_attention_heads: config.numAttentionHeads,
    num_key_value_heads: config.numKeyValueHeads,
    head_dim: config.headDim,
    hidden_act: 'silu',
    attention_bias: false,
    attn_output_gate: true,
    linear_num_key_heads: config.linearNumKeyHeads,
    linear_num_value_heads: config.linearNumValueHeads,
    linear_key_head_dim: config.linearKeyHeadDim,
    linear_value_head_dim: config.linearValueHeadDim,
    linear_conv_kernel_dim: config.linearConvKernelDim,
    rms_norm_eps: config.rmsNormEps,
    full_attention_interval: fullAttentionInterval(config),
    layer_types: [...config.layerTypes],
    max_position_embeddings: config.maxPositionEmbeddings,
    tie_word_embeddings: config.tieWordEmbeddings,
    rope_parameters: {
      rope_type: 'default',
      rope_theta: config.ropeTheta,
      partial_rotary_factor: config.partialRotaryFactor,
      mrope_interleaved: true,
      mrope_section: [...config.mropeSection],
    },
    ...(config.eosTokenId !== undefined ? { eos_token_id: config.eosTokenId } : {}),
    ...(config.bosTokenId !== undefined ? { bos_token_id: config.bosTokenId } : {}),
    // transformers.js's multimodal position-id code reads this even for text-only input; 2 is
    // every Qwen3.5 checkpoint's value. There is no vision tower in the package.
    vision_config: { spatial_merge_size: 2 },
    'transformers.js_config': {
      use_external_data_format: Object.fromEntries(externalDataFiles.map((file) => [file, true])),
    },
  }
}

function fullAttentionInterval(config: Qwen35Config): number {
  const first = config.layerTypes.indexOf('full_attention')
  return first >= 0 ? first + 1 : config.numHiddenLayers + 1
}
