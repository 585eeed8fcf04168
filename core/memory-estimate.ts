// How much memory running a package takes, per backend and weight format: a model of the costs
// (the weights as the backend holds them, the KV cache and recurrent state for the context, the
// prefill's scratch, the runtime and tokenizer) whose constants come from measuring the peak
// resident memory of fresh processes (`npm run bench:memory` prints the estimate beside the
// measured peak, and test/memory/ checks it within 15 %). The builder writes these figures into
// manifest.json; the router compares the one of the backend it is about to choose with the
// device's memory. Platform-free: it reads only the config and byte counts.
import { InvalidArgumentError } from './errors.ts'
import { type MemoryBackend, memoryBackends } from './memory-backends.ts'
import { graphLayoutFor, type ModelConfig } from './model-package.ts'

export { type MemoryBackend, memoryBackends }

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
  /**
   * Resident bytes per byte of the prompt's logits, by dtype (default scratchFactor): with a
   * graph that computes every position's (no num_logits_to_keep), the copies of that
   * prompt × vocabulary tensor the graph's head and its consumers make.
   */
  readonly logitsFactor?: Readonly<Record<string, number>>
  /** The same where a one-graph package's head reads the embedding table (tied, not q8: a Gemm). */
  readonly sharedTableLogitsFactor?: Readonly<Record<string, number>>
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
  /** Fixed bytes a dtype's load or run adds to runtimeBytes, by dtype (default 0). */
  readonly dtypeRuntimeBytes?: Readonly<Record<string, number>>
  /**
   * Fixed bytes each ONNX session after the first costs (Qwen3.5's embedding graph is a session
   * of its own beside the decoder's; default 0).
   */
  readonly extraSessionBytes?: number
  /**
   * Bytes per fp32 byte of the LM head's matrix dequantized while it runs, by dtype (default 0):
   * a runtime that widens whole 4-bit matrices into a fresh buffer on every call holds the
   * largest, the head, at once.
   */
  readonly headDequantizedFactor?: Readonly<Record<string, number>>
  /**
   * With headDequantizedFactor: resident bytes per stored weight byte once the load's copies
   * are gone (the initializers alone). The run's peak is the larger of the load's
   * (weightFactor) and this plus the dequantized head: the load's copies are freed before the
   * head is first widened.
   */
  readonly steadyWeightFactor?: Readonly<Record<string, number>>
  /** With headDequantizedFactor: fixed bytes the dequantization adds to the head's, whatever the model's size. */
  readonly dequantizedFixedBytes?: number
  /** With headDequantizedFactor: the least bytes the dequantization holds during a multi-row prompt (tiny models). */
  readonly dequantizedFloorBytes?: number
}

/**
 * Calibration, from `npm run bench:memory` (peak VmHWM of a fresh Node process over its
 * resident memory before the load; load + a prompt + 8 tokens; 2-3 processes per row, which
 * agree within a few MiB since the store hashes files through one reused buffer), 6 December
 * 2026: the Qwen3.5 tiny fixture (32- and 500-token prompts) and 0.8B shape, the Qwen3-0.6B
 * shape (32 tokens), and the mid-size Qwen3 package of test/memory (Qwen3 vocabulary, 2 layers
 * of hidden 512: its vocabulary tables are nearly all its bytes, 500-token prompt) tied and
 * untied, with num_logits_to_keep and without it (packages built before the input), q4 / q8 /
 * fp32 / fp16; docs/benchmarks.md has the table and core/memory-estimate.test.ts replays it. The
 * model is fixed costs (the runtime, per dtype and per session, and the tokenizer) plus factors
 * on the stored bytes, the cache and the activations; the vocabulary × hidden tables of a
 * one-graph package (Llama, Qwen3) are modelled apart from the other weights, because the
 * runtimes treat them differently and on a small model they are most of the file: the LM head's
 * matrix (the embedding table itself when tied, except q8, whose head is a separate int8
 * matrix) and, untied, a table that only the lookup reads. 'webgpu' cannot be measured here (no
 * GPU): it is derived from 'ort-wasm' (the same onnxruntime-web on the host, which reads the
 * model into its heap before uploading it) and the weights, cache and activations in GPU
 * buffers.
 */
export const memoryCalibration: Readonly<Record<Exclude<MemoryBackend, 'webgpu'>, BackendCalibration>> = {
  // The engine holds what it reads, as stored (q8 / fp32 repacked in place of the original);
  // fp16 is widened, except an untied lookup table (rows widened as read: mid-size untied fp16
  // 501 MiB measured). Its cache grows as positions are written; prompts go in 64-row passes.
  // What is left over the weights, cache and activations is the same on every shape measured
  // (Qwen3.5 tiny fixture, mid-size Qwen3 tied and untied, Qwen3.5-0.8B and Qwen3-0.6B): the
  // tokenizer and ~7 MiB (q8, fp32, fp16: 14-22 MiB left over in all), q4 ~8 MiB more (22-28
  // left over), whatever the weights' size, so no per-weight term beyond 1.
  wasm: {
    runtimeBytes: 7 * 2 ** 20,
    dtypeRuntimeBytes: { q4: 8 * 2 ** 20 },
    weightFactor: { q4: 1, q8: 1, fp32: 1, fp16: 2 },
    cacheFactor: 1,
    scratchFactor: { q4: 1, q8: 1, fp32: 1, fp16: 1 },
    sharesDuplicates: true,
    inGraphLookupFactor: { fp16: 1 },
    // A tied fp16 table is kept as stored for the lookup and widened to fp32 for the head's
    // product: three bytes per stored byte where weightFactor counts two (mid-size tied fp16:
    // 494 MiB measured, 492 estimated; 344 without this term).
    sharedTableExtraFactor: { fp16: 1 },
  },
  // onnxruntime-web: the model bytes are read into JavaScript, copied into the WASM heap and
  // turned into initializers there (2.15x while loading; fp16 is also widened to fp32 on the
  // CPU, 4.3x). Its fp32 matrix product prepacks the head's matrix (one more fp32 copy: mid-size
  // fp32 1,108 MiB tied, 1,691 untied). 4-bit MatMulNBits has no packed kernel in this build:
  // every call dequantizes its whole matrix to fp32 into a fresh buffer, and the largest is the
  // head. Part of the load's copies are gone by then, so the peak is the larger of the load's
  // 2.15x and what stays (1.6x) plus the dequantized head and ~90 MiB, at least 240 MiB for
  // that last part (the Qwen3.5 tiny fixture's 37 MiB head: 131 MiB after the load, 285 with a
  // 1-token prompt, 330-421 with 2 to 500 tokens). Fitted on the Qwen3-0.6B shape (1,511 MiB
  // measured, 0.99), the Qwen3.5-0.8B shape (2,041, 1.11), the mid-size package (tied 709,
  // 0.98; untied 747, 1.01) and the tiny fixture (0.95-1.14). The head's dequantization and the
  // load's copies were added before: 1.23 on the Qwen3.5-0.8B shape, where the head (970 MiB in
  // fp32) is larger than the files (617 MiB). An 8-bit lookup-only table is held once (mid-size q8
  // 1.20 with it counted at 2.15x). All-position logits (graphs without num_logits_to_keep):
  // 2.9x through the tied fp32 graph's Gemm head, 2x in fp16, 1x through an untied MatMul head
  // (the untied graphs were at 1.21-1.24 with 2x for all).
  'ort-wasm': {
    runtimeBytes: 145 * 2 ** 20,
    weightFactor: { q4: 2.15, q8: 2.15, fp32: 2.15, fp16: 4.3 },
    cacheFactor: 3,
    scratchFactor: { q4: 2, q8: 2, fp32: 2, fp16: 2 },
    logitsFactor: { fp32: 1, fp16: 1 },
    sharedTableLogitsFactor: { fp32: 2.9, fp16: 2 },
    sharesDuplicates: false,
    // Qwen3.5's fp16 embedding graph beside q8: 1.9x (fitted between the tiny fixture, 1.16 of
    // its peak at 2.15x, and the 0.8B shape, 0.96 at 1.9x).
    lookupFactor: { q8: 1.9 },
    inGraphLookupFactor: { q8: 1, fp16: 2.15 },
    headExtraFactor: { fp32: 1, fp16: 2 },
    headDequantizedFactor: { q4: 1 },
    steadyWeightFactor: { q4: 1.6 },
    dequantizedFixedBytes: 90 * 2 ** 20,
    dequantizedFloorBytes: 240 * 2 ** 20,
  },
  // onnxruntime-node: 4-bit weights are prepacked beside the originals (1.4x); fp32 initializers
  // are copied out of the mapped file (1.1x: Qwen3-0.6B shape fp32 2,952 MiB), fp16 ones widened
  // to fp32 (2.2x). The head's fp32 / fp16 matrix gets a second, prepacked fp32 copy for its
  // Gemm / MatMul (mid-size fp32 tied: 702 MiB for a 321 MiB file, 1.85x for the table). A
  // lookup-only table, in its own graph (Qwen3.5's embed_tokens: fp16 beside q8, 4-bit beside
  // q4) or untied in the one graph, stays mostly in the mapped file (0.5x; 4-bit 1.4x before,
  // 1.16 on the Qwen3.5-0.8B shape). Qwen3.5 runs two sessions (embedding and decoder), each with
  // its own arena and threads: ~12 MiB more (the tiny fixture was 0.80-0.90 without it).
  // A prompt's all-position logits (graphs without num_logits_to_keep; 500 x 151,936 floats on
  // the mid-size package, 290 MiB) cost 3.1x in the tied fp32 graph (its Gemm head), 1.8x in
  // the untied one (a MatMul), 2.6x / 1.4x in fp16, 2x in the quantized ones; one factor of 3.3
  // for every fp32 / fp16 graph put the untied ones at 1.43 / 1.58 of their peaks.
  native: {
    runtimeBytes: 40 * 2 ** 20,
    extraSessionBytes: 12 * 2 ** 20,
    weightFactor: { q4: 1.4, q8: 0.9, fp32: 1.1, fp16: 2.2 },
    lookupFactor: { q4: 0.55, q8: 0.5, fp32: 0.5, fp16: 0.5 },
    cacheFactor: 2,
    scratchFactor: { q4: 2, q8: 2, fp32: 2, fp16: 2 },
    logitsFactor: { fp32: 1.8, fp16: 1.4 },
    sharedTableLogitsFactor: { fp32: 3.1, fp16: 2.6 },
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

/**
 * Copies of the recurrent state alive at once: the current one and the two checkpoints kept for
 * rewind; the engine (`wasm`) also keeps one more buffer, its copy of the states during decode (or
 * the spare a dropped checkpoint leaves), which a next turn resumes from.
 */
function stateCopies(backend: MemoryBackend): number {
  return backend === 'wasm' ? 4 : 3
}

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
): { layers: number; logits: number } {
  const attentionWidth = (config.numAttentionHeads * 2 + config.numKeyValueHeads * 2) * config.headDim
  const row = (4 * config.hiddenSize + attentionWidth + 3 * config.intermediateSize) * 4
  const scores = wholeScores ? config.numAttentionHeads * tokens * tokens * 4 : 0
  const logits = (allPositionLogits ? tokens : 1) * config.vocabSize * 4
  return { layers: tokens * row + scores, logits }
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
    const gpuCache = 2 * (cache.perToken * contextLength + cache.state * stateCopies(backend))
    const activations = activationBytes(config, prompt, true, allLogits)
    const scratch = activations.layers + activations.logits
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
    lookup * (calibration.lookupFactor?.[inputs.dtype] ?? weightFactor)
  const perTokenBytes = cache.perToken * calibration.cacheFactor
  const cacheTotal = perTokenBytes * contextLength + cache.state * stateCopies(backend)
  // A runtime that dequantizes the head on every call: the initializers plus the widened head,
  // beyond what the load's copies already count, and the multi-row path's fixed cost.
  const dequantizedFactor = optionalFactor(calibration.headDequantizedFactor)
  const dequantizedHead =
    dequantizedFactor > 0
      ? Math.max(
          0,
          inputs.weightFileBytes * optionalFactor(calibration.steadyWeightFactor) +
            Math.max(
              config.vocabSize * config.hiddenSize * 4 * dequantizedFactor +
                (calibration.dequantizedFixedBytes ?? 0),
              calibration.dequantizedFloorBytes ?? 0,
            ) -
            weights,
        )
      : 0
  // The engine feeds a prompt in passes of up to 128 rows (wasm/engine/models/pass-size.ts) and
  // attends one row of scores per head. The estimate counts 64 rows, as its calibration was
  // measured with: a prompt past 64 tokens touches the other 64 rows of the scratch too, ~13 MiB on
  // the Qwen3.5-0.8B shape, ~2 % of its peak.
  const activations =
    backend === 'wasm'
      ? activationBytes(config, Math.min(prompt, 64), false, false)
      : activationBytes(config, prompt, true, allLogits)
  const logitsFactor =
    (oneGraph && sharedTable ? calibration.sharedTableLogitsFactor?.[inputs.dtype] : undefined) ??
    calibration.logitsFactor?.[inputs.dtype] ??
    factorOf(calibration.scratchFactor)
  const scratch =
    factorOf(calibration.scratchFactor) * activations.layers +
    logitsFactor * activations.logits +
    dequantizedHead
  const runtime =
    calibration.runtimeBytes +
    optionalFactor(calibration.dtypeRuntimeBytes) +
    (oneGraph ? 0 : (calibration.extraSessionBytes ?? 0)) +
    tokenizer
  return {
    bytes: Math.ceil(weights + cacheTotal + scratch + runtime),
    perTokenBytes: Math.ceil(perTokenBytes),
    modelBytes: Math.ceil(weights + cacheTotal + scratch),
    parts: { weights, cache: cacheTotal, scratch, runtime },
  }
}

/**
 * What one more generation session over weights already loaded adds: its own cache at the
 * context (the copies a step keeps included) and one prompt append's activations, which run at
 * the same time as another session's. The part of `estimateMemory` that is per session: a
 * server whose concurrent slots share one copy of the weights (ONNX Runtime) needs the package's
 * estimate once plus this per further slot. The engine's sessions share one instance's weights
 * the same way.
 */
export function estimateSessionMemory(
  backend: MemoryBackend,
  inputs: Pick<MemoryInputs, 'config' | 'dtype' | 'contextLength' | 'promptTokens' | 'allPositionLogits'>,
): number {
  if (!(memoryBackends as readonly string[]).includes(backend))
    throw new InvalidArgumentError(
      'backend',
      `backend must be one of ${memoryBackends.join(', ')} (got ${JSON.stringify(backend)}).`,
    )
  const { config, contextLength } = inputs
  if (!Number.isFinite(contextLength) || contextLength < 1)
    throw new InvalidArgumentError(
      'contextLength',
      `contextLength must be a positive number (got ${JSON.stringify(contextLength)}).`,
    )
  const prompt = Math.min(inputs.promptTokens ?? 512, contextLength)
  const cache = cacheBytes(config)
  const allLogits =
    inputs.allPositionLogits ?? !(config.modelType === 'qwen3_5' || config.modelType === 'qwen3_5_text')
  if (backend === 'webgpu') {
    const activations = activationBytes(config, prompt, true, allLogits)
    return Math.ceil(
      2 * (cache.perToken * contextLength + cache.state * stateCopies(backend)) +
        activations.layers +
        activations.logits,
    )
  }
  const calibration = memoryCalibration[backend]
  const factorOf = (table: Readonly<Record<string, number>>): number =>
    table[inputs.dtype] ?? Math.max(...Object.values(table))
  const activations =
    backend === 'wasm'
      ? activationBytes(config, Math.min(prompt, 64), false, false)
      : activationBytes(config, prompt, true, allLogits)
  const oneGraph = graphLayoutFor(config.modelType) === 'single'
  const sharedTable = config.tieWordEmbeddings && inputs.dtype !== 'q8'
  const logitsFactor =
    (oneGraph && sharedTable ? calibration.sharedTableLogitsFactor?.[inputs.dtype] : undefined) ??
    calibration.logitsFactor?.[inputs.dtype] ??
    factorOf(calibration.scratchFactor)
  return Math.ceil(
    cache.perToken * calibration.cacheFactor * contextLength +
      cache.state * stateCopies(backend) +
      factorOf(calibration.scratchFactor) * activations.layers +
      logitsFactor * activations.logits,
  )
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
