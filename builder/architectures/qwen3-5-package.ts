// Writes a Qwen3.5 model package in the onnx-community layout: config.json (qwen3_5_text, HF field
// names), generation_config.json, tokenizer files, onnx/embed_tokens{suffix}.onnx +
// onnx/decoder_model_merged{suffix}.onnx (with .onnx_data), and manifest.json.

import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { hasBlockDigests, type PackageManifest, parseModelConfig } from '../../core/model-package.ts'
import { manifestMemoryFields } from '../../core/package-memory.ts'
import { GraphBuilder, tensor, writeModelFile } from '../onnx/index.ts'
import { writeBlockDigests } from '../package/block-digests.ts'
import { quantizeBlockwise4 } from '../quantize/quantize.ts'
import { convDim, type Qwen35Config, qwen35ConfigJson } from './qwen3-5-config.ts'
import { buildQwen35Decoder, buildQwen35Embedding } from './qwen3-5-graph.ts'
import { type Qwen35Weights, validateQwen35Weights } from './qwen3-5-reference.ts'

/**
 * The dtypes this writer produces: fp32 everywhere; q4 = 4-bit MatMulNBits linear layers (fast on
 * onnxruntime-node and WebGPU) with a 4-bit GatherBlockQuantized embedding table; q8 (`_quantized`)
 * = int8 DynamicQuantizeMatMul (fast on WASM) with an fp16 embedding table.
 */
export type Qwen35PackageDtype = 'fp32' | 'q4' | 'q8'

export interface Qwen35TokenizerFiles {
  /** tokenizer.json contents. */
  readonly tokenizerJson: string
  /** tokenizer_config.json contents (carries the chat template). */
  readonly tokenizerConfigJson?: string
}

export interface WriteQwen35PackageOptions {
  readonly outDir: string
  readonly config: Qwen35Config
  readonly weights: Qwen35Weights
  /** Default ['fp32']. */
  readonly dtypes?: readonly Qwen35PackageDtype[]
  readonly tokenizer?: Qwen35TokenizerFiles
  /** Package name for the manifest. */
  readonly name?: string
  /** Extra generation_config.json fields (eos_token_id defaults to the config's). */
  readonly generationConfig?: Readonly<Record<string, unknown>>
  /** Context length the memory estimate assumes (default min(4096, max_position_embeddings)). */
  readonly contextLength?: number
  /** Other files to carry (e.g. `chat_template.jinja`), by package path. */
  readonly extraFiles?: Readonly<Record<string, string>>
  /** MatMulNBits accuracy_level of the q4 graphs (Qwen35GraphOptions.int4AccuracyLevel; default 4). */
  readonly int4AccuracyLevel?: 0 | 1 | 2 | 3 | 4
}

const suffixes: Record<Qwen35PackageDtype, string> = { fp32: '', q4: '_q4', q8: '_quantized' }
const opsets = { '': 17, 'com.microsoft': 1 }

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Embedding graph with an fp16 table (half the bytes; ORT widens the gathered rows). */
function buildHalfEmbedding(config: Qwen35Config, weights: Qwen35Weights): GraphBuilder {
  const g = new GraphBuilder('qwen3_5_embed_tokens')
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length'])
  const source = weights.get('model.embed_tokens.weight')
  if (!source) throw new Error('Qwen3.5 weights: "model.embed_tokens.weight" is missing')
  const table = g.initializer(
    'model.embed_tokens.weight',
    tensor.float16(source.data, [config.vocabSize, config.hiddenSize]),
  )
  const gathered = g.node('Gather', [table, ids], { axis: 0 })
  g.node('Cast', [gathered], { to: 1 }, { outputs: ['inputs_embeds'] })
  g.output('inputs_embeds', 'float32', ['batch_size', 'sequence_length', config.hiddenSize])
  return g
}

/**
 * Embedding graph with a block-wise 4-bit table (com.microsoft GatherBlockQuantized, block 32, the
 * MatMulNBits layout): a quarter of the fp16 bytes (0.8B: ~160 MB instead of 508 MB). Checked to
 * give exactly the dequantized rows on onnxruntime-node and onnxruntime-web WASM.
 */
function buildFourBitEmbedding(config: Qwen35Config, weights: Qwen35Weights): GraphBuilder {
  const g = new GraphBuilder('qwen3_5_embed_tokens')
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length'])
  const source = weights.get('model.embed_tokens.weight')
  if (!source) throw new Error('Qwen3.5 weights: "model.embed_tokens.weight" is missing')
  const rows = config.vocabSize
  const columns = config.hiddenSize
  const quantized = quantizeBlockwise4({ rows, cols: columns, data: source.data })
  const data = g.initializer('model.embed_tokens.weight.q4', {
    type: 'uint8',
    dims: [rows, columns / 2],
    data: quantized.data,
  })
  const scales = g.initializer(
    'model.embed_tokens.weight.scales',
    tensor.float32(quantized.scales, [rows, quantized.blocks]),
  )
  const zeroPoints = g.initializer('model.embed_tokens.weight.zero_points', {
    type: 'uint8',
    dims: [rows, Math.ceil(quantized.blocks / 2)],
    data: quantized.zeroPoints,
  })
  g.node(
    'GatherBlockQuantized',
    [data, ids, scales, zeroPoints],
    { gather_axis: 0, quantize_axis: 1, block_size: 32, bits: 4 },
    { domain: 'com.microsoft', outputs: ['inputs_embeds'] },
  )
  g.output('inputs_embeds', 'float32', ['batch_size', 'sequence_length', columns])
  return g
}

/** Bytes of cache per token (full-attention K and V) and of fixed state (conv + recurrent), fp32. */
export function qwen35CacheBytes(config: Qwen35Config): { perToken: number; fixed: number } {
  let perToken = 0
  let fixed = 0
  for (const type of config.layerTypes) {
    if (type === 'full_attention') perToken += 2 * config.numKeyValueHeads * config.headDim * 4
    else
      fixed +=
        (convDim(config) * (config.linearConvKernelDim - 1) +
          config.linearNumValueHeads * config.linearKeyHeadDim * config.linearValueHeadDim) *
        4
  }
  return { perToken, fixed }
}

/** Writes the package; returns its manifest. */
export async function writeQwen35Package(options: WriteQwen35PackageOptions): Promise<PackageManifest> {
  const { outDir, config, weights } = options
  const dtypes = options.dtypes ?? ['fp32']
  if (dtypes.length === 0)
    throw new Error('writeQwen35Package: "dtypes" must list at least one of fp32, q4, q8')
  for (const dtype of dtypes)
    if (!(dtype in suffixes))
      throw new Error(`writeQwen35Package: dtype "${dtype}" is not supported: use fp32, q4 or q8`)
  validateQwen35Weights(config, weights)
  await mkdir(join(outDir, 'onnx'), { recursive: true })
  const files: string[] = ['config.json', 'generation_config.json']
  await writeFile(
    join(outDir, 'generation_config.json'),
    `${JSON.stringify({ ...(config.eosTokenId !== undefined ? { eos_token_id: config.eosTokenId } : {}), ...(config.bosTokenId !== undefined ? { bos_token_id: config.bosTokenId } : {}), ...options.generationConfig }, null, 2)}\n`,
  )
  if (options.tokenizer) {
    await writeFile(join(outDir, 'tokenizer.json'), options.tokenizer.tokenizerJson)
    files.push('tokenizer.json')
    if (options.tokenizer.tokenizerConfigJson !== undefined) {
      await writeFile(join(outDir, 'tokenizer_config.json'), options.tokenizer.tokenizerConfigJson)
      files.push('tokenizer_config.json')
    }
  }
  for (const [path, contents] of Object.entries(options.extraFiles ?? {})) {
    if (path.includes('..') || path.startsWith('/'))
      throw new Error(`writeQwen35Package: extra file "${path}" must be a relative path inside the package`)
    await writeFile(join(outDir, path), contents)
    files.push(path)
  }
  const contextLength = options.contextLength ?? Math.min(4096, config.maxPositionEmbeddings)
  for (const dtype of dtypes) {
    const suffix = suffixes[dtype]
    const embedPath = `onnx/embed_tokens${suffix}.onnx`
    const embedGraph =
      dtype === 'fp32'
        ? buildQwen35Embedding(config, weights)
        : dtype === 'q4' && config.hiddenSize % 2 === 0
          ? buildFourBitEmbedding(config, weights)
          : buildHalfEmbedding(config, weights)
    const embed = writeModelFile(embedGraph, join(outDir, embedPath), { opsets })
    const decoderPath = `onnx/decoder_model_merged${suffix}.onnx`
    const decoder = writeModelFile(
      buildQwen35Decoder(config, weights, {
        weightFormat: dtype,
        ...(options.int4AccuracyLevel === undefined ? {} : { int4AccuracyLevel: options.int4AccuracyLevel }),
      }),
      join(outDir, decoderPath),
      { opsets },
    )
    files.push(embedPath, decoderPath)
    if (embed.dataPath) files.push(`${embedPath}_data`)
    if (decoder.dataPath) files.push(`${decoderPath}_data`)
  }
  // Written after the graphs: it names the ones that got external data.
  const externalDataFiles = files
    .filter((path) => path.endsWith('.onnx') && files.includes(`${path}_data`))
    .map((path) => path.slice('onnx/'.length))
  const configJson = qwen35ConfigJson(config, externalDataFiles)
  await writeFile(join(outDir, 'config.json'), `${JSON.stringify(configJson, null, 2)}\n`)
  // The large ONNX files are hashed whole in the same read as their block digests.
  const hashed = new Map<string, string>()
  for (const path of [...files]) {
    const bytes = (await stat(join(outDir, path))).size
    if (!hasBlockDigests({ path, bytes })) continue
    const written = writeBlockDigests(outDir, path, bytes)
    hashed.set(path, written.sha256)
    files.push(written.digestsPath)
  }
  const entries = []
  for (const path of files) {
    const full = join(outDir, path)
    entries.push({
      path,
      bytes: (await stat(full)).size,
      sha256: hashed.get(path) ?? (await sha256OfFile(full)),
    })
  }
  const manifest: PackageManifest = {
    format: 'ondevice-package/1',
    modelType: 'qwen3_5_text',
    ...(options.name !== undefined ? { name: options.name } : {}),
    files: entries,
    dtypes: [...dtypes],
    // The memory model reads the config as the runtime will (core's reading of config.json).
    ...manifestMemoryFields(parseModelConfig(configJson), dtypes, entries, contextLength),
  }
  await writeFile(join(outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  return manifest
}
