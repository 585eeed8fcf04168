// Hugging Face Qwen3.5 checkpoint → ondevice package. Reads `config.json` (the multimodal
// `qwen3_5` one with `text_config`, or a flat `qwen3_5_text`) and `model.safetensors` (or the
// shards named by `model.safetensors.index.json`); takes the language model's tensors with or
// without the `model.language_model.` prefix and leaves out the vision tower (`model.visual.*`)
// and the multi-token-prediction head (`mtp.*`). F32, F16 and BF16 tensors are widened to fp32.

import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ModelError } from '../../core/errors.ts'
import type { PackageManifest } from '../../core/model-package.ts'
import { parseQwen35Config, type Qwen35Config } from '../architectures/qwen3-5-config.ts'
import { type Qwen35PackageDtype, writeQwen35Package } from '../architectures/qwen3-5-package.ts'
import {
  type Qwen35Tensor,
  qwen35WeightShapes,
  validateQwen35Weights,
} from '../architectures/qwen3-5-reference.ts'
import { SafetensorsFile } from './safetensors.ts'

/** The text model's name for a checkpoint tensor, or undefined for tensors that are not part of it. */
export function qwen35TextTensorName(name: string): string | undefined {
  if (
    name.startsWith('model.visual.') ||
    name.startsWith('visual.') ||
    name.startsWith('mtp.') ||
    name.startsWith('model.mtp.')
  )
    return undefined
  if (name.startsWith('model.language_model.')) return `model.${name.slice('model.language_model.'.length)}`
  if (name.startsWith('language_model.model.')) return `model.${name.slice('language_model.model.'.length)}`
  if (name === 'language_model.lm_head.weight') return 'lm_head.weight'
  return name
}

export interface Qwen35Checkpoint {
  readonly config: Qwen35Config
  readonly weights: Map<string, Qwen35Tensor>
}

/** Reads a Hugging Face Qwen3.5 checkpoint folder into the config and fp32 weights by text-model name. */
export async function readQwen35Checkpoint(folder: string): Promise<Qwen35Checkpoint> {
  const config = parseQwen35Config(JSON.parse(await readFile(join(folder, 'config.json'), 'utf8')) as unknown)
  let files = ['model.safetensors']
  try {
    const index = JSON.parse(await readFile(join(folder, 'model.safetensors.index.json'), 'utf8')) as {
      weight_map?: Record<string, string>
    }
    if (index.weight_map) files = [...new Set(Object.values(index.weight_map))]
  } catch {
    // No index: a single model.safetensors.
  }
  const wanted = qwen35WeightShapes(config)
  const weights = new Map<string, Qwen35Tensor>()
  for (const file of files) {
    // One tensor at a time from disk: multi-GB shards never sit in memory whole.
    const shard = new SafetensorsFile(join(folder, file))
    try {
      for (const [name, info] of shard.tensors) {
        const textName = qwen35TextTensorName(name)
        if (!textName || !wanted.has(textName)) continue
        weights.set(textName, { shape: info.shape, data: shard.readFloat32(name) })
      }
    } finally {
      shard.close()
    }
  }
  validateQwen35Weights(config, weights)
  return { config, weights }
}

export interface ConvertQwen35Options {
  /** Folder with config.json and model.safetensors (or shards). */
  readonly checkpointDir: string
  readonly outDir: string
  /** Default ['q4']. */
  readonly dtypes?: readonly Qwen35PackageDtype[]
  readonly name?: string
}

/** Converts a checkpoint folder to a package; tokenizer files present in the checkpoint are carried over. */
export async function convertQwen35Checkpoint(options: ConvertQwen35Options): Promise<PackageManifest> {
  const { config, weights } = await readQwen35Checkpoint(options.checkpointDir)
  const exists = async (name: string) =>
    stat(join(options.checkpointDir, name)).then(
      () => true,
      () => false,
    )
  const tokenizerJson = (await exists('tokenizer.json'))
    ? await readFile(join(options.checkpointDir, 'tokenizer.json'), 'utf8')
    : undefined
  const chatTemplate = (await exists('chat_template.jinja'))
    ? await readFile(join(options.checkpointDir, 'chat_template.jinja'), 'utf8')
    : undefined
  const tokenizerConfigJson =
    tokenizerJson === undefined
      ? undefined
      : withChatTemplate(
          (await exists('tokenizer_config.json'))
            ? await readFile(join(options.checkpointDir, 'tokenizer_config.json'), 'utf8')
            : undefined,
          chatTemplate,
        )
  let generationConfig: Record<string, unknown> | undefined
  if (await exists('generation_config.json'))
    generationConfig = JSON.parse(
      await readFile(join(options.checkpointDir, 'generation_config.json'), 'utf8'),
    ) as Record<string, unknown>
  const manifest = await writeQwen35Package({
    outDir: options.outDir,
    config,
    weights,
    dtypes: options.dtypes ?? ['q4'],
    ...(tokenizerJson !== undefined
      ? {
          tokenizer: { tokenizerJson, ...(tokenizerConfigJson !== undefined ? { tokenizerConfigJson } : {}) },
        }
      : {}),
    ...(options.name !== undefined ? { name: options.name } : {}),
    ...(generationConfig ? { generationConfig } : {}),
    // A separate chat template file travels as is (newer checkpoints keep it out of tokenizer_config.json).
    ...(chatTemplate !== undefined ? { extraFiles: { 'chat_template.jinja': chatTemplate } } : {}),
  })
  return manifest
}

/**
 * The package's tokenizer_config.json, with chat_template.jinja's template in it. Newer
 * checkpoints keep the template only in the .jinja file, which transformers.js (v4) never reads:
 * it takes `chat_template` from tokenizer_config.json, and loads no tokenizer at all from a folder
 * without that file. The .jinja file wins over the config's own template, as in transformers
 * (Python) and in ondevice's loader.
 */
function withChatTemplate(
  tokenizerConfigJson: string | undefined,
  chatTemplate: string | undefined,
): string | undefined {
  if (chatTemplate === undefined && tokenizerConfigJson !== undefined) return tokenizerConfigJson
  let config: unknown = {}
  if (tokenizerConfigJson !== undefined) {
    try {
      config = JSON.parse(tokenizerConfigJson)
    } catch (error) {
      throw new ModelError(
        'model_invalid',
        `The checkpoint's tokenizer_config.json is not valid JSON (${error instanceof Error ? error.message : String(error)}); fix or remove it.`,
        { cause: error },
      )
    }
    if (typeof config !== 'object' || config === null || Array.isArray(config))
      throw new ModelError('model_invalid', "The checkpoint's tokenizer_config.json must hold a JSON object.")
    if ((config as Record<string, unknown>)['chat_template'] === chatTemplate) return tokenizerConfigJson
  }
  return JSON.stringify(
    { ...(config as object), ...(chatTemplate === undefined ? {} : { chat_template: chatTemplate }) },
    null,
    2,
  )
}
