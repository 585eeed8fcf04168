// Writes a complete model package folder in the onnx-community layout (docs/builder.md, "The package format"): config.json,
// generation_config.json, tokenizer.json, tokenizer_config.json, onnx/model*.onnx (+ _data) per
// dtype and manifest.json (every file's bytes and sha256, dtypes, estimated memory). Everything is
// written to a temporary sibling folder first and renamed into place at the end, so a failure never
// leaves a half-written package behind.

import { createHash } from 'node:crypto'
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { basename, dirname, join, relative, resolve, sep } from 'node:path'
import { InvalidArgumentError } from '../../core/errors.ts'
import {
  externalDataFileName,
  hasBlockDigests,
  type ModelConfig,
  type ModelDtype,
  onnxFileNames,
  type PackageManifest,
} from '../../core/model-package.ts'
import { manifestMemoryFields } from '../../core/package-memory.ts'
import {
  architectureFor,
  type BuilderDtype,
  builderDtypes,
  type DecoderGraphOptions,
} from '../architectures/decoder-graph.ts'
import type { DecoderWeights } from '../architectures/weights.ts'
import { writeModelFile } from '../onnx/model-file.ts'
import { writeBlockDigests } from './block-digests.ts'

export interface PackageTokenizer {
  readonly tokenizerJson: string | object
  readonly tokenizerConfigJson: string | object
}

export interface WritePackageOptions {
  readonly outDir: string
  readonly weights: DecoderWeights
  readonly tokenizer: PackageTokenizer
  /** Weight formats to write (default ['fp32']). */
  readonly dtypes?: readonly BuilderDtype[]
  /** Package name recorded in the manifest. */
  readonly name?: string
  /** Extra/overriding generation_config.json fields (e.g. eos_token_id lists). */
  readonly generationConfig?: Readonly<Record<string, unknown>>
  /** Replace an existing folder at outDir (default false: refuse). */
  readonly overwrite?: boolean
  /** Context length the memory estimate assumes (default min(max_position_embeddings, 4096)). */
  readonly contextLength?: number
  /** Graph choices (attention kind, embedding format); defaults suit every backend. */
  readonly graph?: DecoderGraphOptions
  /** Called as each file is written (for progress bars). */
  readonly onProgress?: (event: { step: string; done: number; total: number }) => void
}

/** The Hugging Face config.json for these weights (HF field names). */
export function hfConfigJson(
  config: ModelConfig,
  dtypesWithExternalData: readonly string[] = [],
): Record<string, unknown> {
  const architecture = config.modelType === 'qwen3' ? 'Qwen3ForCausalLM' : 'LlamaForCausalLM'
  const json: Record<string, unknown> = {
    ...config.raw,
    architectures: [architecture],
    model_type: config.modelType,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numHiddenLayers,
    num_attention_heads: config.numAttentionHeads,
    num_key_value_heads: config.numKeyValueHeads,
    head_dim: config.headDim,
    vocab_size: config.vocabSize,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    max_position_embeddings: config.maxPositionEmbeddings,
    tie_word_embeddings: config.tieWordEmbeddings,
    hidden_act: 'silu',
    attention_bias: false,
    torch_dtype: 'float32',
    use_cache: true,
  }
  if (config.bosTokenId !== undefined) json.bos_token_id = config.bosTokenId
  if (config.eosTokenIds.length > 0)
    json.eos_token_id = config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : [...config.eosTokenIds]
  // transformers.js reads this to know which files have external data.
  json['transformers.js_config'] = {
    use_external_data_format: Object.fromEntries(dtypesWithExternalData.map((file) => [file, true])),
  }
  return json
}

/**
 * The largest of the backends' memory estimates to run one dtype of a package this builder writes
 * at `contextLength` (core's memory model, core/memory-estimate.ts); `tokenizerBytes` is
 * tokenizer.json's size.
 */
export function estimateMemoryBytes(
  config: ModelConfig,
  dtype: ModelDtype,
  storedWeightBytes: number,
  contextLength: number,
  tokenizerBytes = 0,
): number {
  const files = [
    { path: onnxFileNames(config.modelType, dtype).model, bytes: storedWeightBytes },
    { path: 'tokenizer.json', bytes: tokenizerBytes },
  ]
  // The builder's graphs all take num_logits_to_keep: a prefill computes the last position's logits only.
  return manifestMemoryFields(config, [dtype], files, contextLength, { allPositionLogits: false })
    .estimatedMemoryBytes[dtype] as number
}

/** Streams the file through sha256 in 16 MiB pieces (data files can exceed a Buffer's limit). */
export function sha256File(path: string): string {
  const hash = createHash('sha256')
  const buffer = Buffer.allocUnsafe(16 * 1024 * 1024)
  const fd = openSync(path, 'r')
  try {
    for (;;) {
      const read = readSync(fd, buffer, 0, buffer.length, null)
      if (read === 0) break
      hash.update(buffer.subarray(0, read))
    }
  } finally {
    closeSync(fd)
  }
  return hash.digest('hex')
}

function listFiles(root: string): string[] {
  const out: string[] = []
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const full = join(folder, entry.name)
      if (entry.isDirectory()) walk(full)
      else out.push(relative(root, full).split(sep).join('/'))
    }
  }
  walk(root)
  return out.sort()
}

function asJsonText(value: string | object): string {
  return typeof value === 'string' ? value : `${JSON.stringify(value, null, 2)}\n`
}

/** Writes the package; returns its manifest. */
export async function writeModelPackage(options: WritePackageOptions): Promise<PackageManifest> {
  const outDir = resolve(options.outDir)
  const dtypes: BuilderDtype[] = [...new Set<BuilderDtype>(options.dtypes ?? ['fp32'])]
  for (const dtype of dtypes)
    if (!(builderDtypes as readonly string[]).includes(dtype))
      throw new InvalidArgumentError(
        'dtype',
        `dtype "${dtype}" is not one the builder writes: use ${builderDtypes.join(', ')}.`,
      )
  if (existsSync(outDir) && !options.overwrite)
    throw new InvalidArgumentError(
      'outDir',
      `${outDir} already exists: remove it or pass overwrite (--force).`,
    )
  const config = options.weights.config
  const architecture = architectureFor(options.weights)
  mkdirSync(dirname(outDir), { recursive: true })
  const temporary = join(dirname(outDir), `.${basename(outDir)}.partial-${process.pid}-${Date.now()}`)
  mkdirSync(join(temporary, 'onnx'), { recursive: true })
  const total = dtypes.length + 2
  let done = 0
  const progress = (step: string) => options.onProgress?.({ step, done, total })
  try {
    const storedBytes: Partial<Record<ModelDtype, number>> = {}
    const externalFiles: string[] = []
    for (const dtype of dtypes) {
      const file = onnxFileNames(config.modelType, dtype).model
      progress(`writing ${file}`)
      // Graphs are built per dtype and dropped after writing, so only one is alive at a time.
      const written = writeModelFile(architecture.buildGraph(dtype, options.graph), join(temporary, file), {
        producerVersion: '0.1.0',
        metadata: {
          'ondevice.dtype': dtype,
          'ondevice.model_type': config.modelType,
          'ondevice.attention': options.graph?.attention ?? 'plain',
        },
      })
      if (written.dataPath) externalFiles.push(basename(file))
      storedBytes[dtype] = written.modelBytes + written.dataBytes
      done++
    }
    progress('writing config and tokenizer')
    writeFileSync(
      join(temporary, 'config.json'),
      `${JSON.stringify(hfConfigJson(config, externalFiles), null, 2)}\n`,
    )
    const generationConfig = {
      ...(config.bosTokenId === undefined ? {} : { bos_token_id: config.bosTokenId }),
      ...(config.eosTokenIds.length === 0 ? {} : { eos_token_id: [...config.eosTokenIds] }),
      ...options.generationConfig,
    }
    writeFileSync(join(temporary, 'generation_config.json'), `${JSON.stringify(generationConfig, null, 2)}\n`)
    writeFileSync(join(temporary, 'tokenizer.json'), asJsonText(options.tokenizer.tokenizerJson))
    writeFileSync(join(temporary, 'tokenizer_config.json'), asJsonText(options.tokenizer.tokenizerConfigJson))
    done++

    progress('hashing files')
    // The large ONNX files are hashed whole in the same read as their block digests.
    const hashed = new Map<string, string>()
    for (const path of listFiles(temporary)) {
      const bytes = statSync(join(temporary, path)).size
      if (hasBlockDigests({ path, bytes })) hashed.set(path, writeBlockDigests(temporary, path, bytes).sha256)
    }
    const contextLength = options.contextLength ?? Math.min(config.maxPositionEmbeddings, 4096)
    const files = listFiles(temporary).map((path) => ({
      path,
      bytes: statSync(join(temporary, path)).size,
      sha256: hashed.get(path) ?? sha256File(join(temporary, path)),
    }))
    const manifest: PackageManifest = {
      format: 'ondevice-package/1',
      modelType: config.modelType,
      ...(options.name ? { name: options.name } : {}),
      files,
      dtypes,
      ...manifestMemoryFields(config, dtypes, files, contextLength, {
        allPositionLogits: options.graph?.logitsToKeep === false,
      }),
    }
    writeFileSync(join(temporary, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
    if (existsSync(outDir)) rmSync(outDir, { recursive: true, force: true })
    renameSync(temporary, outDir)
    done++
    progress('done')
    return manifest
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true })
    throw error
  }
}

/** The files a dtype needs inside a package (the .onnx and, if present, its _data file). */
export function dtypeFiles(manifest: PackageManifest, dtype: ModelDtype): string[] {
  const model = onnxFileNames(manifest.modelType, dtype).model
  return manifest.files.map((f) => f.path).filter((p) => p === model || p === externalDataFileName(model))
}
