// How much memory running a package takes, per backend and weight format: a model of the costs
// (the weights as the backend holds them, the KV cache and recurrent state for the context, the
// prefill's scratch, the runtime and tokenizer) whose constants come from measuring the peak
// resident memory of fresh processes (`npm run bench:memory` prints the estimate beside the
// measured peak, and test/memory/ checks it within 15 %). The builder writes these figures into
// manifest.json; the router compares the one of the backend it is about to choose with the
// device's memory. Platform-free: it reads only the config and byte counts.
import { InvalidArgumentError } from './errors.ts'
import { graphLayoutFor, type ModelConfig } from './model-package.ts'

/**
 * The runtimes that hold a model: 'wasm' ondevice's WebAssembly engine, 'ort-wasm'
 * onnxruntime-web's WASM, 'webgpu' onnxruntime-web on WebGPU, 'native' onnxruntime-node.
 */
export const memoryBackends = ['wasm', 'ort-wasm', 'webgpu', 'native'] as const
export type MemoryBackend = (typeof memoryBackends)[number]

/** One backend's figure for one dtype, as manifest.json stores it. */
export interface BackendMemoryEstimate {
  /**
   * Peak bytes a load plus a conversation that fills the context adds to the process (for
   * 'webgpu': host and GPU memory together, which is what a device with unified memory, every
   * phone, spends).
   */
  readonly bytes: number
  /** Of `bytes`, what each position of context costs: a shorter context needs this much less per token. */
  readonly perTokenBytes: number
  /**
   * Of `bytes`, what the model itself takes (weights, cache, activations), without the runtime's
   * own memory and the parsed tokenizer: what a budget for the model alone (a Worker isolate's)
   * compares with.
   */
  readonly modelBytes: number
  /** 'webgpu' only: the part in GPU buffers (weights, cache, activations). */
  readonly gpuBytes?: number
}

/** What the estimate is made of, for reports and the bench. */
export interface MemoryEstimate extends BackendMemoryEstimate {
  readonly parts: {
    /** The weights as the backend holds them (copies and widening included). */
    readonly weights: number
    /** KV cache at the context length and recurrent state, with the copies the backend keeps. */
    readonly cache: number
    /** Activations of one prompt append. */
    readonly scratch: number
    /** The runtime's own memory and the parsed tokenizer. */
    readonly runtime: number
  }
}

export interface MemoryInputs {
  readonly config: ModelConfig
  /** The weight format ('q4', 'q8', 'fp32', 'fp16', ...). */
  readonly dtype: string
  /** Bytes of the dtype's ONNX files (graphs and their external data). */
  readonly weightFileBytes: number
  /**
   * Of those, bytes stored in two files that a loader able to see it keeps once (Qwen3.5 q4: the
   * embedding graph's table is the tied LM head's 4-bit bytes; the engine loads them once).
   */
  readonly duplicateWeightBytes?: number
  /**
   * Of those, bytes of an embedding table in a graph of its own that only a lookup reads
   * (Qwen3.5's embed_tokens file): onnxruntime-node leaves most of such a table in the mapped
   * file, reading a row per token.
   */
  readonly lookupOnlyBytes?: number
  /**
   * The graph computes logits for every prompt position (no num_logits_to_keep input: the
   * builder's Llama / Qwen3 graphs before they had it, and other exporters' one-graph models), so
   * an ONNX Runtime prefill allocates prompt × vocabulary floats; with the input the runtimes feed
   * 1 and a prefill computes one row. Default, for a graph nobody has looked at: true for
   * one-graph architectures, false for Qwen3.5 (whose published exports have the input). The
   * builder passes false for what it writes now (core/package-memory.ts).
   */
  readonly allPositionLogits?: boolean
  /** Bytes of tokenizer.json: its parsed form is most of the fixed cost. */
  readonly tokenizerBytes: number
  /** Positions the cache holds at most. */
  readonly contextLength: number
  /** Longest prompt fed in one append (default 512, or the context when shorter). */
  readonly promptTokens?: number
}

interface BackendCalibration {
  /** The runtime's own resident bytes once a session exists (compiled code, allocator, threads). */
  readonly runtimeBytes: number
  /** Resident bytes per stored weight byte, by dtype (copies made while loading that stay resident, repacks, widening). */
  readonly weightFactor: Readonly<Record<string, number>>
  /** The same for lookup-only embedding tables (default: weightFactor). */
  readonly lookupFactor?: Readonly<Record<string, number>>
  /** Resident bytes per byte of fp32 K/V: the cache itself plus the copies a step keeps (past in, present out). */
  readonly cacheFactor: number
  /** Resident bytes per byte of a prompt append's activations, by dtype. */
  readonly scratchFactor: Readonly<Record<string, number>>
  /** Loads bytes stored twice once (the engine compares them at load). */
  readonly sharesDuplicates: boolean
  /**
   * One-graph packages (Llama, Qwen3): resident bytes per stored byte of the vocabulary × hidden
   * table that only the graph's embedding lookup reads (an untied model's embed_tokens), in place
   * of weightFactor (default: weightFactor).
   */
  readonly inGraphLookupFactor?: Readonly<Record<string, number>>
  /**
   * One-graph packages: resident bytes per stored byte of the LM head's matrix (the embedding
   * table itself when tied) added to weightFactor's: a copy the runtime builds for its matrix
   * product (default 0).
   */
  readonly headExtraFactor?: Readonly<Record<string, number>>
  /**
   * One-graph packages whose head and lookup share the table (tied, not q8): resident bytes per
   * stored byte of it on top of the others, for a runtime that keeps it twice in two forms
   * (default 0).
   */
  readonly sharedTableExtraFactor?: Readonly<Record<string, number>>
  /**
   * Bytes per fp32 byte of the LM head's matrix dequantized while it runs, by dtype (default 0):
   * a runtime that widens whole 4-bit matrices holds the largest, the head, at once.
   */
  readonly headDequantizedFactor?: Readonly<Record<string, number>>
  /** The least bytes that dequantization holds during a prompt, whatever the head's size (with headDequantizedFactor). */
  readonly dequantizedFloorBytes?: number
}

/**
 * Calibration, from `npm run bench:memory` (peak VmHWM of a fresh Node process over its
 * resident memory before the load; load + a prompt + 8 tokens), 6 December 2026, on graphs that
 * take num_logits_to_keep: the Qwen3.5-0.8B and Qwen3-0.6B shapes (32-token prompt), the Qwen3.5
 * tiny fixture, and the mid-size Qwen3 package of test/memory (Qwen3 vocabulary, 2 layers of
 * hidden 512: its vocabulary tables are nearly all its bytes, 500-token prompt) tied and untied,
 * q4 / q8 / fp32 / fp16; docs/benchmarks.md has the table and core/memory-estimate.test.ts
 * replays it. The vocabulary × hidden tables of a one-graph package (Llama, Qwen3) are modelled
 * apart from the other weights, because the runtimes treat them differently and on a small model
 * they are most of the file: the LM head's matrix (the embedding table itself when tied, except
 * q8, whose head is a separate int8 matrix) and, untied, a table that only the lookup reads.
 * 'webgpu' cannot be measured here (no GPU): it is derived from 'ort-wasm' (the same
 * onnxruntime-web on the host, which reads the model into its heap before uploading it) and the
 * weights, cache and activations in GPU buffers.
 */
export const memoryCalibration: Readonly<Record<Exclude<MemoryBackend, 'webgpu'>, BackendCalibration>> = {
  // The engine holds what it reads, as stored (q8 / fp32 repacked in place of the original);
  // fp16 is widened, except an untied lookup table (rows widened as read: mid-size untied fp16
  // 522 MiB measured). Its cache grows as positions are written; prompts go in 64-row passes.
  wasm: {
    runtimeBytes: 25 * 2 ** 20,
    weightFactor: { q4: 1, q8: 1, fp32: 1, fp16: 2 },
    cacheFactor: 1,
    scratchFactor: { q4: 1, q8: 1, fp32: 1, fp16: 1 },
    sharesDuplicates: true,
    inGraphLookupFactor: { fp16: 1 },
    // Fitted, not traced: one-graph q4 peaks ran 7-16 % above the weights as stored (Qwen3-0.6B
    // shape 470 MiB for 435 estimated, mid-size tied 123 for 103), about half the head's 4-bit
    // matrix more.
    headExtraFactor: { q4: 0.5 },
    // A tied fp16 table is kept as stored for the lookup and widened to fp32 for the head's
    // product: three bytes per stored byte where weightFactor counts two (small Qwen3 fixture,
    // tied fp16, 32-token prompt: 261 MiB measured, 198 estimated without this term).
    sharedTableExtraFactor: { fp16: 1 },
  },
  // onnxruntime-web: the model bytes are read into JavaScript, copied into the WASM heap and
  // turned into initializers there (2.15x; fp16 is also widened to fp32 on the CPU, 4.3x). Its
  // fp32 matrix product prepacks the head's matrix (one more fp32 copy: mid-size fp32 1,069 MiB
  // tied, 1,673 untied); 4-bit MatMulNBits dequantizes a whole matrix to fp32 while it runs, and
  // the largest is the head (mid-size q4 tied 715 MiB for 60 MiB of file; without this term the
  // estimate was 0.59 of it). An 8-bit lookup-only table is held once (mid-size q8 478 MiB, 1.20
  // with it counted at 2.15x).
  'ort-wasm': {
    runtimeBytes: 150 * 2 ** 20,
    weightFactor: { q4: 2.15, q8: 2.15, fp32: 2.15, fp16: 4.3 },
    cacheFactor: 3,
    scratchFactor: { q4: 2, q8: 2, fp32: 2, fp16: 2 },
    sharesDuplicates: false,
    inGraphLookupFactor: { q8: 1, fp16: 2.15 },
    headExtraFactor: { fp32: 1, fp16: 2 },
    headDequantizedFactor: { q4: 1 },
    // Fitted on the Qwen3.5 tiny fixture (hidden 64: a 37 MiB head in fp32), whose q4 peak is
    // 229 MiB with a 1-token prompt and 400-440 MiB with 32-200 tokens (q8: 185-210): a prompt
    // of more than one row costs onnxruntime-web's 4-bit path ~200 MiB even on a tiny model.
    // The floor changes no package whose fp32 head is larger (every shape measured but tiny).
    dequantizedFloorBytes: 200 * 2 ** 20,
  },
  // onnxruntime-node: 4-bit weights are prepacked beside the originals (1.4x); fp32 initializers
  // are copied out of the mapped file (1.1x: Qwen3-0.6B shape fp32 2,952 MiB), fp16 ones widened
  // to fp32 (2.2x). The head's fp32 / fp16 matrix gets a second, prepacked fp32 copy for its
  // Gemm / MatMul (mid-size fp32 tied: 706 MiB for a 321 MiB file, 1.85x for the table; the old
  // single 1.3 estimated 0.78 of it). A lookup-only table, in its own graph (Qwen3.5's fp16
  // embed_tokens) or untied in the one graph, stays mostly in the mapped file: the untied
  // mid-size fp32 package (618 MiB of file) peaked at 692 MiB, below the tied one. A prompt's
  // all-position fp32 logits (graphs without num_logits_to_keep) go through more intermediate
  // tensors in the fp32 graph (3.3x) than in the quantized ones.
  native: {
    runtimeBytes: 40 * 2 ** 20,
    weightFactor: { q4: 1.4, q8: 0.95, fp32: 1.1, fp16: 2.2 },
    lookupFactor: { q4: 1.4, q8: 0.5, fp32: 0.5, fp16: 0.5 },
    cacheFactor: 2,
    scratchFactor: { q4: 2, q8: 2, fp32: 3.3, fp16: 3.3 },
    sharesDuplicates: false,
    inGraphLookupFactor: { q4: 0.3, fp32: 0.1, fp16: 0.1 },
    headExtraFactor: { fp32: 0.75, fp16: 1.7 },
  },
}

/**
 * Resident bytes of the built tokenizer per byte of tokenizer.json. core/bpe keeps Qwen3's 11.4 MB
 * file in 6.9 MiB of typed arrays and holds the file's bytes only while building them (15.6 MiB
 * of peak resident memory besides the file, before the weights load; `npm run
 * bench:memory:tokenizer`); with the library's objects it was 12 (117 MB resident). Calibrated
 * with test/memory's mid-size Qwen3 package, whose peak fell by 129 MiB with that change.
 */
export const tokenizerResidentFactor = 1

/** Copies of the recurrent state alive at once: the current one and the two checkpoints kept for rewind. */
const stateCopies = 3

/**
 * Stored bytes of one vocabulary × hidden matrix in the builder's layout for `dtype` (fp32, fp16;
 * q8 and q4 with their per-32 block scales and zero points); 0 for a dtype without a known
 * layout, which then gets no table-specific term.
 */
export function storedTableBytes(config: ModelConfig, dtype: string): number {
  const weightsCount = config.vocabSize * config.hiddenSize
  const blockExtras = (weightsCount / 32) * 5
  switch (dtype) {
    case 'fp32':
      return weightsCount * 4
    case 'fp16':
      return weightsCount * 2
    case 'q8':
      return weightsCount + blockExtras
    case 'q4':
      return weightsCount / 2 + blockExtras
    default:
      return 0
  }
}

/** Bytes of fp32 K and V per cached position, and of fixed recurrent state (Qwen3.5's linear layers). */
export function cacheBytes(config: ModelConfig): { perToken: number; state: number } {
  const types = config.layerTypes ?? Array.from({ length: config.numHiddenLayers }, () => 'full_attention')
  const kv = 2 * config.numKeyValueHeads * config.headDim * 4
  let perToken = 0
  let state = 0
  for (const type of types) {
    if (type !== 'linear_attention' || config.linearAttention === undefined) perToken += kv
    else {
      const { convKernelDim, keyHeadDim, valueHeadDim, numKeyHeads, numValueHeads } = config.linearAttention
      const convChannels = 2 * numKeyHeads * keyHeadDim + numValueHeads * valueHeadDim
      state += (convChannels * (convKernelDim - 1) + numValueHeads * keyHeadDim * valueHeadDim) * 4
    }
  }
  return { perToken, state }
}

/**
 * fp32 activations one prompt append of `tokens` creates: a layer's hidden, attention and MLP rows
 * (runtimes free each layer's before the next) and, for a runtime that computes attention whole,
 * the scores of every head.
 */
function activationBytes(
  config: ModelConfig,
  tokens: number,
  wholeScores: boolean,
  allPositionLogits: boolean,
): number {
  const attentionWidth = (config.numAttentionHeads * 2 + config.numKeyValueHeads * 2) * config.headDim
  const row = (4 * config.hiddenSize + attentionWidth + 3 * config.intermediateSize) * 4
  const scores = wholeScores ? config.numAttentionHeads * tokens * tokens * 4 : 0
  const logits = (allPositionLogits ? tokens : 1) * config.vocabSize * 4
  return tokens * row + scores + logits
}

function checkInputs(inputs: MemoryInputs): void {
  const count = (value: unknown, name: string, positive = false): void => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < (positive ? 1 : 0))
      throw new InvalidArgumentError(
        name,
        `${name} must be a ${positive ? 'positive' : 'non-negative'} number (got ${JSON.stringify(value)}).`,
      )
  }
  count(inputs.weightFileBytes, 'weightFileBytes')
  count(inputs.duplicateWeightBytes ?? 0, 'duplicateWeightBytes')
  count(inputs.lookupOnlyBytes ?? 0, 'lookupOnlyBytes')
  count(inputs.tokenizerBytes, 'tokenizerBytes')
  count(inputs.contextLength, 'contextLength', true)
  if (inputs.promptTokens !== undefined) count(inputs.promptTokens, 'promptTokens', true)
  if ((inputs.duplicateWeightBytes ?? 0) + (inputs.lookupOnlyBytes ?? 0) > inputs.weightFileBytes)
    throw new InvalidArgumentError(
      'duplicateWeightBytes',
      'duplicateWeightBytes + lookupOnlyBytes cannot exceed weightFileBytes (they are parts of the files).',
    )
}

/** The estimate for one backend (see MemoryEstimate). */
export function estimateMemory(backend: MemoryBackend, inputs: MemoryInputs): MemoryEstimate {
  if (!(memoryBackends as readonly string[]).includes(backend))
    throw new InvalidArgumentError(
      'backend',
      `backend must be one of ${memoryBackends.join(', ')} (got ${JSON.stringify(backend)}).`,
    )
  checkInputs(inputs)
  const { config, contextLength } = inputs
  const prompt = Math.min(inputs.promptTokens ?? 512, contextLength)
  const cache = cacheBytes(config)
  const allLogits =
    inputs.allPositionLogits ?? !(config.modelType === 'qwen3_5' || config.modelType === 'qwen3_5_text')
  const tokenizer = inputs.tokenizerBytes * tokenizerResidentFactor
  if (backend === 'webgpu') {
    // The host runs onnxruntime-web, which reads each graph into its heap before creating the
    // GPU session (the copies of loading a q8 file on 'ort-wasm', whatever the dtype: 4-bit
    // weights are not dequantized on the CPU here), and keeps no cache or activations there.
    const host = estimateMemory('ort-wasm', { ...inputs, dtype: 'q8', contextLength: 1, promptTokens: 1 })
    // GPU buffers: the weights once, the cache (past and present, kept on the GPU between steps)
    // and one append's activations.
    const weights = inputs.weightFileBytes
    const gpuCache = 2 * (cache.perToken * contextLength + cache.state * stateCopies)
    const scratch = activationBytes(config, prompt, true, allLogits)
    const gpuBytes = Math.ceil(weights + gpuCache + scratch)
    return {
      bytes: host.bytes + gpuBytes,
      perTokenBytes: 2 * cache.perToken,
      modelBytes: host.modelBytes + gpuBytes,
      gpuBytes,
      parts: {
        weights: host.parts.weights + weights,
        cache: gpuCache,
        scratch,
        runtime: host.parts.runtime,
      },
    }
  }
  const calibration = memoryCalibration[backend]
  const factorOf = (table: Readonly<Record<string, number>>): number =>
    table[inputs.dtype] ?? Math.max(...Object.values(table))
  const lookup = inputs.lookupOnlyBytes ?? 0
  const held =
    inputs.weightFileBytes - lookup - (calibration.sharesDuplicates ? (inputs.duplicateWeightBytes ?? 0) : 0)
  // A one-graph package holds its vocabulary × hidden tables in the decoder graph: the head's
  // matrix (the embedding table itself when tied) and, untied, a table only the lookup reads.
  const oneGraph = graphLayoutFor(config.modelType) === 'single'
  const table = oneGraph ? Math.min(storedTableBytes(config, inputs.dtype), held) : 0
  // The builder's tied fp32 / fp16 / q4 graphs read one table in both places; q8 always writes
  // an int8 head beside the 8-bit lookup table.
  const sharedTable = config.tieWordEmbeddings && inputs.dtype !== 'q8'
  const inGraphLookup = sharedTable ? 0 : Math.min(table, held - table)
  const optionalFactor = (values: Readonly<Record<string, number>> | undefined): number =>
    values?.[inputs.dtype] ?? 0
  const weightFactor = factorOf(calibration.weightFactor)
  const weights =
    (held - inGraphLookup) * weightFactor +
    inGraphLookup * (calibration.inGraphLookupFactor?.[inputs.dtype] ?? weightFactor) +
    table * optionalFactor(calibration.headExtraFactor) +
    (sharedTable ? table * optionalFactor(calibration.sharedTableExtraFactor) : 0) +
    lookup * factorOf(calibration.lookupFactor ?? calibration.weightFactor)
  const perTokenBytes = cache.perToken * calibration.cacheFactor
  const cacheTotal = perTokenBytes * contextLength + cache.state * stateCopies
  const dequantizedFactor = optionalFactor(calibration.headDequantizedFactor)
  const dequantizedHead =
    dequantizedFactor > 0
      ? Math.max(
          config.vocabSize * config.hiddenSize * 4 * dequantizedFactor,
          calibration.dequantizedFloorBytes ?? 0,
        )
      : 0
  // The engine feeds a prompt in passes of at most 64 rows and attends one row of scores per head.
  const scratch =
    factorOf(calibration.scratchFactor) *
      (backend === 'wasm'
        ? activationBytes(config, Math.min(prompt, 64), false, false)
        : activationBytes(config, prompt, true, allLogits)) +
    dequantizedHead
  const runtime = calibration.runtimeBytes + tokenizer
  return {
    bytes: Math.ceil(weights + cacheTotal + scratch + runtime),
    perTokenBytes: Math.ceil(perTokenBytes),
    modelBytes: Math.ceil(weights + cacheTotal + scratch),
    parts: { weights, cache: cacheTotal, scratch, runtime },
  }
}

/** Every backend's figure for one dtype, as manifest.json stores them. */
export function estimateMemoryByBackend(inputs: MemoryInputs): Record<MemoryBackend, BackendMemoryEstimate> {
  const out = {} as Record<MemoryBackend, BackendMemoryEstimate>
  for (const backend of memoryBackends) {
    const { parts: _parts, ...figure } = estimateMemory(backend, inputs)
    out[backend] = figure
  }
  return out
}

/** A stored estimate at a shorter context: each position not used costs nothing. */
export function atContext(
  estimate: BackendMemoryEstimate,
  storedContext: number,
  contextLength: number,
): number {
  const unused = Math.max(0, storedContext - contextLength)
  return Math.max(0, estimate.bytes - estimate.perTokenBytes * unused)
}
