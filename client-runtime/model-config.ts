// The few config.json facts the runtime needs, read from a Hugging Face config (flat, or the
// multimodal Qwen3.5 one with a nested `text_config`), validated with errors that name the field.
import { ModelError } from '../core/errors.ts'

export interface RuntimeModelConfig {
  readonly modelType: string
  readonly vocabularySize: number
  readonly contextLength: number
  readonly numHiddenLayers: number
  /** Per layer: 'full_attention' (KV cache) or 'linear_attention' (conv + recurrent state). */
  readonly layerTypes: readonly string[]
  readonly eosTokenIds: readonly number[]
  readonly bosTokenId: number | undefined
}

const supported = ['llama', 'qwen3', 'qwen3_5', 'qwen3_5_text']

/** Upper bounds for config sizes (far above any model ondevice can run). */
const sanityLimits: Readonly<Record<string, number>> = {
  num_hidden_layers: 1024,
  full_attention_interval: 1024,
  vocab_size: 16_777_216,
  max_position_embeddings: 16_777_216,
}

export function readRuntimeConfig(json: unknown, source: string): RuntimeModelConfig {
  if (typeof json !== 'object' || json === null)
    throw new ModelError('model_invalid', `config.json of ${source} must be a JSON object.`)
  const top = json as Record<string, unknown>
  const text = (
    typeof top.text_config === 'object' && top.text_config !== null ? top.text_config : top
  ) as Record<string, unknown>
  const modelType = top.model_type
  if (typeof modelType !== 'string' || !supported.includes(modelType)) {
    throw new ModelError(
      'model_invalid',
      `config.json of ${source} has model_type ${JSON.stringify(modelType)}; ondevice runs ${supported.join(', ')}.`,
    )
  }
  const integer = (field: string, fallback?: number): number => {
    const value = text[field] ?? top[field] ?? fallback
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      throw new ModelError(
        'model_invalid',
        `config.json of ${source}: "${field}" must be a positive integer, got ${JSON.stringify(value)}.`,
      )
    }
    // A hostile or corrupt config must not make us allocate per layer / per position before any
    // weight is read (1e9 layers would abort the process): refuse sizes no real model has.
    const maximum = sanityLimits[field] ?? 16_777_216
    if (value > maximum) {
      throw new ModelError(
        'model_invalid',
        `config.json of ${source}: "${field}" is ${value}, above the sane limit ${maximum}: the file is corrupt or not a supported model.`,
      )
    }
    return value
  }
  const numHiddenLayers = integer('num_hidden_layers')
  let layerTypes: string[]
  if (Array.isArray(text.layer_types)) {
    layerTypes = text.layer_types.map(String)
    if (layerTypes.length !== numHiddenLayers) {
      throw new ModelError(
        'model_invalid',
        `config.json of ${source}: layer_types has ${layerTypes.length} entries for ${numHiddenLayers} layers.`,
      )
    }
  } else if (modelType.startsWith('qwen3_5')) {
    const interval = integer('full_attention_interval', 4)
    layerTypes = Array.from({ length: numHiddenLayers }, (_, index) =>
      (index + 1) % interval === 0 ? 'full_attention' : 'linear_attention',
    )
  } else {
    layerTypes = Array.from({ length: numHiddenLayers }, () => 'full_attention')
  }
  const eos = text.eos_token_id ?? top.eos_token_id
  const eosTokenIds = (Array.isArray(eos) ? eos : eos === undefined || eos === null ? [] : [eos]).filter(
    (id): id is number => typeof id === 'number',
  )
  const bos = text.bos_token_id ?? top.bos_token_id
  return {
    modelType,
    vocabularySize: integer('vocab_size'),
    contextLength: integer('max_position_embeddings', 2048),
    numHiddenLayers,
    layerTypes,
    eosTokenIds,
    bosTokenId: typeof bos === 'number' ? bos : undefined,
  }
}
