// Decoder weights (the builder's Hugging Face layout) → a GGUF file llama.cpp (and so wllama, its
// WebAssembly build) loads: llama.cpp's architecture names, metadata keys and tensor names
// (token_embd, blk.N.attn_q, ..., output_norm, output), one ggml type for the matrices and F32
// for the norms. llama and qwen3 are mapped here; Qwen3.5 (llama.cpp's qwen35) in gguf-qwen35.ts. The file is written under a temporary name and renamed when complete, so a
// failure never leaves a half-written .gguf behind.
import { closeSync, existsSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { InvalidArgumentError } from '../../core/errors.ts'
import type { ModelConfig } from '../../core/model-package.ts'
import type { Qwen35Model } from '../architectures/qwen3-5-reference.ts'
import type { DecoderWeights, Matrix } from '../architectures/weights.ts'
import { validateDecoderWeights } from '../architectures/weights.ts'
import {
  attentionShapeMetadata,
  type GgmlTypeName,
  type GgufTensorInfo,
  type GgufValue,
  ggmlTypeLayout,
  gguf,
  layoutGguf,
} from './gguf-file.ts'
import { encodeGgmlTensor } from './gguf-quantize.ts'
import {
  checkQwen35ForGguf,
  type GgufTensorPlan,
  planQwen35Tensors,
  qwen35Metadata,
  qwen35ModelTypes,
} from './gguf-qwen35.ts'

/** What `--dtype` takes: ggml's type names, lower case. */
export const ggufDtypes = ['f32', 'f16', 'q8_0', 'q4_0', 'q4_1'] as const
export type GgufDtype = (typeof ggufDtypes)[number]

/** The builder's dtype names, mapped to the nearest GGUF type (docs/builder.md, "GGUF export"). */
export const ggufDtypeAliases: Readonly<Record<string, GgufDtype>> = {
  fp32: 'f32',
  fp16: 'f16',
  q8: 'q8_0',
  q4: 'q4_1',
}

const ggmlTypeOf: Readonly<Record<GgufDtype, GgmlTypeName>> = {
  f32: 'F32',
  f16: 'F16',
  q8_0: 'Q8_0',
  q4_0: 'Q4_0',
  q4_1: 'Q4_1',
}

/** llama_ftype (general.file_type). */
const fileTypeOf: Readonly<Record<GgufDtype, number>> = { f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7 }

/** config.json model_type → llama.cpp's architecture name. */
const architectures: Readonly<Record<string, string>> = { llama: 'llama', qwen3: 'qwen3' }

/** Resolves a dtype or alias, or throws naming the choices. */
export function parseGgufDtype(value: string | undefined): GgufDtype {
  const name = (value ?? '').trim().toLowerCase()
  const resolved = (ggufDtypes as readonly string[]).includes(name)
    ? (name as GgufDtype)
    : ggufDtypeAliases[name]
  if (!resolved)
    throw new InvalidArgumentError(
      'dtype',
      `GGUF dtype "${value}" is not one the exporter writes: use ${ggufDtypes.join(', ')} (or the builder's ${Object.keys(ggufDtypeAliases).join(', ')}).`,
    )
  return resolved
}

/** What GGUF export takes: llama / qwen3 weights, or a Qwen3.5 text model (config + HF-named weights). */
export type GgufSourceWeights = DecoderWeights | Qwen35Model

/** Whether `weights` is a Qwen3.5 model (the Qwen3.5 builder's form) rather than llama / qwen3 weights. */
export function isQwen35Model(weights: GgufSourceWeights): weights is Qwen35Model {
  return 'weights' in weights && weights.weights instanceof Map
}

export interface GgufExportOptions {
  readonly weights: GgufSourceWeights
  /** `tokenizer.ggml.*` entries (ggufTokenizerMetadata). */
  readonly tokenizer: ReadonlyMap<string, GgufValue>
  readonly dtype: GgufDtype
  readonly outPath: string
  /** general.name (default: the architecture). */
  readonly name?: string
  /** Replace outPath when it exists (default: refuse). */
  readonly overwrite?: boolean
  readonly onProgress?: (event: { step: string; done: number; total: number }) => void
}

export interface GgufExportResult {
  readonly path: string
  readonly bytes: number
  readonly architecture: string
  readonly tensors: number
  /** Matrices whose rows are not whole 32-element blocks, written as F16 instead (llama.cpp's rule too). */
  readonly fallbacks: readonly string[]
}

interface PlannedTensor {
  readonly info: GgufTensorInfo
  /** Row-major float values in ggml order (the HF (out, in) layout is already that). */
  readonly values: () => Float32Array
}

/** Llama's q/k rows in llama.cpp's order: its LLAMA rope rotates adjacent pairs, HF's halves. */
function interleaveHeads(m: Matrix, heads: number): Float32Array {
  const headDim = m.rows / heads
  const half = headDim / 2
  const out = new Float32Array(m.data.length)
  for (let head = 0; head < heads; head++)
    for (let i = 0; i < half; i++)
      for (let pair = 0; pair < 2; pair++) {
        const from = (head * headDim + pair * half + i) * m.cols
        const to = (head * headDim + 2 * i + pair) * m.cols
        out.set(m.data.subarray(from, from + m.cols), to)
      }
  return out
}

function architectureMetadata(config: ModelConfig, arch: string): [string, GgufValue][] {
  return [
    ...attentionShapeMetadata(arch, config),
    [`${arch}.rope.dimension_count`, gguf.u32(config.headDim)],
    [`${arch}.rope.freq_base`, gguf.f32(config.ropeTheta)],
    [`${arch}.attention.layer_norm_rms_epsilon`, gguf.f32(config.rmsNormEps)],
    [`${arch}.vocab_size`, gguf.u32(config.vocabSize)],
  ]
}

/** llama / qwen3: checks the config, then the tensors in llama.cpp's names (see the top of the file). */
function planDecoderTensors(weights: DecoderWeights, arch: string): GgufTensorPlan[] {
  const config = weights.config
  if (config.ropeScaling)
    throw new InvalidArgumentError(
      'weights',
      'GGUF export does not write Llama 3 rope scaling (rope_freqs) yet; this model uses it.',
    )
  if (config.partialRotaryFactor !== 1)
    throw new InvalidArgumentError(
      'weights',
      'GGUF export needs full rotary embeddings (partial_rotary_factor 1).',
    )
  validateDecoderWeights(weights)
  const planned: GgufTensorPlan[] = []
  const addMatrix = (name: string, m: Matrix, values: () => Float32Array = () => m.data) =>
    planned.push({ name, dims: [m.cols, m.rows], kind: 'matrix', values })
  const addVector = (name: string, v: Float32Array) =>
    planned.push({ name, dims: [v.length], kind: 'float', values: () => v })

  addMatrix('token_embd.weight', weights.embedTokens)
  weights.layers.forEach((layer, i) => {
    const p = `blk.${i}`
    addVector(`${p}.attn_norm.weight`, layer.inputLayernorm)
    if (arch === 'llama') {
      addMatrix(`${p}.attn_q.weight`, layer.qProj, () =>
        interleaveHeads(layer.qProj, config.numAttentionHeads),
      )
      addMatrix(`${p}.attn_k.weight`, layer.kProj, () =>
        interleaveHeads(layer.kProj, config.numKeyValueHeads),
      )
    } else {
      addMatrix(`${p}.attn_q.weight`, layer.qProj)
      addMatrix(`${p}.attn_k.weight`, layer.kProj)
    }
    addMatrix(`${p}.attn_v.weight`, layer.vProj)
    addMatrix(`${p}.attn_output.weight`, layer.oProj)
    if (layer.qNorm && layer.kNorm) {
      addVector(`${p}.attn_q_norm.weight`, layer.qNorm)
      addVector(`${p}.attn_k_norm.weight`, layer.kNorm)
    }
    addVector(`${p}.ffn_norm.weight`, layer.postAttentionLayernorm)
    addMatrix(`${p}.ffn_gate.weight`, layer.gateProj)
    addMatrix(`${p}.ffn_up.weight`, layer.upProj)
    addMatrix(`${p}.ffn_down.weight`, layer.downProj)
  })
  addVector('output_norm.weight', weights.norm)
  // Tied embeddings: llama.cpp reads token_embd for the output when `output` is absent.
  if (!config.tieWordEmbeddings && weights.lmHead) addMatrix('output.weight', weights.lmHead)
  return planned
}

/** Writes `weights` as a GGUF v3 file; see GgufExportOptions. */
export async function writeGguf(options: GgufExportOptions): Promise<GgufExportResult> {
  const { weights, dtype, outPath } = options
  if (!(ggufDtypes as readonly string[]).includes(dtype)) parseGgufDtype(dtype)
  let arch: string
  let tensorPlans: GgufTensorPlan[]
  let architectureEntries: [string, GgufValue][]
  if (isQwen35Model(weights)) {
    arch = 'qwen35'
    checkQwen35ForGguf(weights)
    tensorPlans = planQwen35Tensors(weights)
    architectureEntries = qwen35Metadata(weights.config)
  } else {
    const modelType = weights.config.modelType
    const found = architectures[modelType]
    if (!found)
      throw new InvalidArgumentError(
        'weights',
        (qwen35ModelTypes as readonly string[]).includes(modelType)
          ? `GGUF export takes a ${modelType} model as the Qwen3.5 builder's model ({ config, weights } with Hugging Face names, what readPackageSource returns for it), not as llama-style decoder weights.`
          : `GGUF export writes llama, qwen3 and Qwen3.5 models; this one is ${modelType}.`,
      )
    arch = found
    tensorPlans = planDecoderTensors(weights, arch)
    architectureEntries = architectureMetadata(weights.config, arch)
  }
  if (existsSync(outPath) && !options.overwrite)
    throw new InvalidArgumentError(
      'outPath',
      `${outPath} exists: choose another file or pass overwrite (--force).`,
    )

  const matrixType = ggmlTypeOf[dtype]
  const fallbacks: string[] = []
  const planned: PlannedTensor[] = tensorPlans.map((plan) => {
    let type: GgmlTypeName = plan.kind === 'float' ? 'F32' : matrixType
    if ((plan.dims[0] ?? 1) % ggmlTypeLayout[type].blockSize !== 0) {
      type = 'F16'
      fallbacks.push(plan.name)
    }
    return { info: { name: plan.name, dims: plan.dims, type }, values: plan.values }
  })

  const metadata = new Map<string, GgufValue>([
    ['general.architecture', gguf.str(arch)],
    ['general.name', gguf.str(options.name ?? arch)],
    ['general.file_type', gguf.u32(fileTypeOf[dtype])],
    ['general.quantization_version', gguf.u32(2)],
    ['general.alignment', gguf.u32(32)],
    ...architectureEntries,
    ...options.tokenizer,
  ])
  const layout = layoutGguf(
    metadata,
    planned.map((tensor) => tensor.info),
  )

  const partial = `${outPath}.partial-${process.pid}`
  let descriptor: number | undefined
  try {
    descriptor = openSync(partial, 'w')
    let position = 0
    const write = (bytes: Uint8Array) => {
      let written = 0
      while (written < bytes.length)
        written += writeSync(descriptor!, bytes, written, bytes.length - written, position + written)
      position += bytes.length
    }
    write(layout.header)
    const dataStart = position
    for (const [index, tensor] of planned.entries()) {
      const placed = layout.tensors[index]!
      options.onProgress?.({ step: tensor.info.name, done: index, total: planned.length })
      const padding = dataStart + placed.offset - position
      if (padding > 0) write(new Uint8Array(padding))
      const bytes = encodeGgmlTensor(tensor.values(), tensor.info.type)
      if (bytes.length !== placed.bytes)
        throw new Error(
          `GGUF tensor ${tensor.info.name}: encoded ${bytes.length} bytes, laid out ${placed.bytes}.`,
        )
      write(bytes)
      // Yield so a progress bar (and anything else on the event loop) keeps moving.
      await new Promise((resolve) => setImmediate(resolve))
    }
    const tail = dataStart + layout.dataBytes - position
    if (tail > 0) write(new Uint8Array(tail))
    closeSync(descriptor)
    descriptor = undefined
    if (options.overwrite) rmSync(outPath, { force: true })
    renameSync(partial, outPath)
    options.onProgress?.({ step: 'done', done: planned.length, total: planned.length })
    return { path: outPath, bytes: position, architecture: arch, tensors: planned.length, fallbacks }
  } catch (error) {
    if (descriptor !== undefined) closeSync(descriptor)
    rmSync(partial, { force: true })
    throw error
  }
}
