// Hugging Face Llama / Qwen3 checkpoints (a folder with config.json, model.safetensors or the
// shards listed in model.safetensors.index.json, and the tokenizer files) → DecoderWeights →
// an ondevice package. Parameter names are the standard transformers ones.

import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ModelError } from '../../core/errors.ts'
import { type ModelConfig, type PackageManifest, parseModelConfig } from '../../core/model-package.ts'
import type { BuilderDtype } from '../architectures/decoder-graph.ts'
import {
  type DecoderLayerWeights,
  type DecoderWeights,
  type Matrix,
  validateDecoderWeights,
} from '../architectures/weights.ts'
import { writeModelPackage } from '../package/package-writer.ts'
import { SafetensorsFile } from './safetensors.ts'

export interface HfCheckpointFiles {
  readonly config: ModelConfig
  /** Tensor name → the open file that holds it. */
  readonly tensors: ReadonlyMap<string, SafetensorsFile>
  readonly files: readonly SafetensorsFile[]
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new ModelError('model_invalid', `${path}: ${(error as Error).message}`, { cause: error })
  }
}

/** Opens the checkpoint's safetensors file(s) and validates config.json. */
export function openHfCheckpoint(folder: string): HfCheckpointFiles {
  const configPath = join(folder, 'config.json')
  if (!existsSync(configPath))
    throw new ModelError(
      'model_not_found',
      `${configPath} is missing: point --in at a Hugging Face model folder.`,
    )
  const config = parseModelConfig(readJson(configPath))
  if (config.modelType !== 'llama' && config.modelType !== 'qwen3')
    throw new ModelError(
      'unsupported',
      `${configPath}: model_type ${config.modelType} is converted by the Qwen3.5 importer, not this one.`,
    )
  if (config.raw.attention_bias === true || config.raw.mlp_bias === true)
    throw new ModelError(
      'unsupported',
      `${configPath}: attention_bias / mlp_bias checkpoints are not supported by the Llama/Qwen3 graph.`,
    )
  const indexPath = join(folder, 'model.safetensors.index.json')
  const shardNames = existsSync(indexPath)
    ? [
        ...new Set(
          Object.values(
            ((readJson(indexPath) as { weight_map?: Record<string, string> }).weight_map ?? {}) as Record<
              string,
              string
            >,
          ),
        ),
      ]
    : ['model.safetensors']
  const files: SafetensorsFile[] = []
  const tensors = new Map<string, SafetensorsFile>()
  try {
    for (const shard of shardNames) {
      const path = join(folder, shard)
      if (!existsSync(path))
        throw new ModelError('model_not_found', `${path} is missing (named by the checkpoint).`)
      const file = new SafetensorsFile(path)
      files.push(file)
      for (const name of file.tensors.keys()) tensors.set(name, file)
    }
  } catch (error) {
    for (const file of files) file.close()
    throw error
  }
  return { config, tensors, files }
}

/** Reads every parameter into DecoderWeights, checking names and shapes. */
export function readHfDecoderWeights(checkpoint: HfCheckpointFiles): DecoderWeights {
  const c = checkpoint.config
  const read = (name: string, shape: readonly number[]): Float32Array => {
    const file = checkpoint.tensors.get(name)
    if (!file)
      throw new ModelError(
        'model_invalid',
        `checkpoint: tensor ${name} is missing (looked in ${checkpoint.files.map((f) => f.path).join(', ')}).`,
      )
    const info = file.tensors.get(name)!
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i]))
      throw new ModelError(
        'model_invalid',
        `${file.path}: tensor ${name} has shape [${info.shape.join(', ')}], config.json implies [${shape.join(', ')}].`,
      )
    return file.readFloat32(name)
  }
  const linear = (name: string, rows: number, cols: number): Matrix => ({
    rows,
    cols,
    data: read(name, [rows, cols]),
  })
  const h = c.hiddenSize
  const q = c.numAttentionHeads * c.headDim
  const kv = c.numKeyValueHeads * c.headDim
  const layers: DecoderLayerWeights[] = []
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const p = `model.layers.${i}`
    layers.push({
      inputLayernorm: read(`${p}.input_layernorm.weight`, [h]),
      qProj: linear(`${p}.self_attn.q_proj.weight`, q, h),
      kProj: linear(`${p}.self_attn.k_proj.weight`, kv, h),
      vProj: linear(`${p}.self_attn.v_proj.weight`, kv, h),
      oProj: linear(`${p}.self_attn.o_proj.weight`, h, q),
      ...(c.modelType === 'qwen3'
        ? {
            qNorm: read(`${p}.self_attn.q_norm.weight`, [c.headDim]),
            kNorm: read(`${p}.self_attn.k_norm.weight`, [c.headDim]),
          }
        : {}),
      postAttentionLayernorm: read(`${p}.post_attention_layernorm.weight`, [h]),
      gateProj: linear(`${p}.mlp.gate_proj.weight`, c.intermediateSize, h),
      upProj: linear(`${p}.mlp.up_proj.weight`, c.intermediateSize, h),
      downProj: linear(`${p}.mlp.down_proj.weight`, h, c.intermediateSize),
    })
  }
  const weights: DecoderWeights = {
    config: c,
    embedTokens: linear('model.embed_tokens.weight', c.vocabSize, h),
    layers,
    norm: read('model.norm.weight', [h]),
    ...(c.tieWordEmbeddings ? {} : { lmHead: linear('lm_head.weight', c.vocabSize, h) }),
  }
  validateDecoderWeights(weights)
  return weights
}

export interface ConvertHfOptions {
  readonly inDir: string
  readonly outDir: string
  readonly dtypes?: readonly BuilderDtype[]
  readonly overwrite?: boolean
  /** 'gqa' writes com.microsoft GroupQueryAttention (see DecoderGraphOptions.attention). */
  readonly attention?: 'plain' | 'gqa'
  readonly onProgress?: (event: { step: string; done: number; total: number }) => void
}

/** Converts a Hugging Face Llama/Qwen3 folder into a package; returns the manifest. */
export async function convertHfCheckpoint(options: ConvertHfOptions): Promise<PackageManifest> {
  const tokenizerPath = join(options.inDir, 'tokenizer.json')
  if (!existsSync(tokenizerPath))
    throw new ModelError(
      'model_not_found',
      `${tokenizerPath} is missing: the package needs the model's tokenizer.`,
    )
  const checkpoint = openHfCheckpoint(options.inDir)
  let weights: DecoderWeights
  try {
    options.onProgress?.({ step: 'reading weights', done: 0, total: 1 })
    weights = readHfDecoderWeights(checkpoint)
  } finally {
    for (const file of checkpoint.files) file.close()
  }
  const tokenizerConfigPath = join(options.inDir, 'tokenizer_config.json')
  const tokenizerConfig = (existsSync(tokenizerConfigPath) ? readJson(tokenizerConfigPath) : {}) as Record<
    string,
    unknown
  >
  const templatePath = join(options.inDir, 'chat_template.jinja')
  if (tokenizerConfig.chat_template === undefined && existsSync(templatePath))
    tokenizerConfig.chat_template = readFileSync(templatePath, 'utf8')
  const generationPath = join(options.inDir, 'generation_config.json')
  const generationConfig = existsSync(generationPath)
    ? (readJson(generationPath) as Record<string, unknown>)
    : {}
  return writeModelPackage({
    outDir: options.outDir,
    weights,
    tokenizer: { tokenizerJson: readFileSync(tokenizerPath, 'utf8'), tokenizerConfigJson: tokenizerConfig },
    dtypes: options.dtypes ?? ['fp32'],
    generationConfig,
    ...(options.overwrite === undefined ? {} : { overwrite: options.overwrite }),
    ...(options.attention ? { graph: { attention: options.attention } } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  })
}
