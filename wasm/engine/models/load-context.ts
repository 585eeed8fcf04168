// Loading helpers every architecture shares: weights from the ONNX graph into linear memory in
// the kernels' layout, found through the graph's nodes (so the builder's initializer names are
// not hard-coded here), and the layers that run them (Linear, Embedding, KvCache).
//
// Kernel layouts (documented in docs/wasm-engine.md):
// - q4 (MatMulNBits bits 4, block 32): the [n, blocks, 16] bytes regrouped once to four rows per
//   64-byte block (src/gemv-q4.c: no shifts to unpack, no transpose of row sums); the [n, blocks]
//   float scales and packed 4-bit zero points to [n / 4, blocks, 4] (four rows side by side).
// - q8 (DynamicQuantizeMatMul): the stored [k, n] int8 is regrouped once to four rows per 128-byte
//   block (src/gemv-q8.c: each group of rows one sequential stream, codes widened by their loads;
//   k zero padded to whole blocks, n to whole groups); per-column float scales as stored.
// - fp32 MatMul [k, n] is repacked to [n, k]; Gemm(transB) tables are [n, k] already; fp16 is
//   widened to fp32 while repacking.
// Repacking streams the file through a small slab at the top of the arena: no full JS copy.
import { ModelError } from '../../../core/errors.ts'
import type { ModelConfig } from '../../../core/model-package.ts'
import { relaxedProduct } from '../dot-form.ts'
import type { Kernels, Pointer } from '../kernels.ts'
import type { GraphNode, Initializer, OnnxWeights } from '../onnx-weights.ts'
import type { ParallelJob, ParallelKernel } from '../thread-pool.ts'

/** Bytes of file read per slab while repacking (bounded, whatever the matrix size). */
const slabBytes = 8 * 1024 * 1024

/** Raised when the engine does not cover a package (unknown architecture, op or layout): callers fall back. */
export class EngineUnsupportedError extends ModelError {
  override readonly name: string = 'EngineUnsupportedError'
  constructor(message: string) {
    super('unsupported', message)
  }
}

export type LinearFormat = 'q4' | 'q8' | 'f32'

/**
 * From this many activation rows on, the quantized products run the panel GEMM (weights unpacked
 * once per pass, src/gemm-q4.c / gemm-q8.c) instead of the GEMV; both give the same bits.
 */
export const panelRows = 4

/**
 * kernel(...args, begin, end) over [0, total) (shares aligned to `align`): split across the
 * threads for a prompt pass (`rows` of at least panelRows), run on this thread alone for fewer
 * rows (decode), where a pass of the pool would cost more than the work.
 */
function rowSplit(
  kernels: Kernels,
  kernel: ParallelKernel,
  args: readonly number[],
  rows: number,
  total = rows,
  align = 1,
): void {
  if (rows >= panelRows) kernels.parallel(kernel, args, total, align)
  else (kernels.k[kernel] as (...values: number[]) => void)(...args, 0, total)
}

/** A decoder layer's feed-forward weights (Llama, Qwen3 and Qwen3.5 alike). */
export interface FeedForward {
  readonly postNorm: Pointer
  readonly gate: Linear
  readonly up: Linear
  readonly down: Linear
}

/**
 * The second half of a decoder layer, in place on `residual` [rows, hidden]: residual += attended
 * (the attention's output projection), then residual += down(silu(gate(n)) · up(n)) with
 * n = rms_norm(residual) · postNorm. `attended` then holds the down projection's output; normed,
 * gate and up are scratch.
 */
export function feedForward(
  layer: FeedForward,
  residual: Pointer,
  attended: Pointer,
  scratch: { readonly normed: Pointer; readonly gate: Pointer; readonly up: Pointer },
  rows: number,
  eps: number,
): void {
  const kernels = layer.gate.kernels
  const K = kernels.k
  const hidden = layer.down.outFeatures
  K.add_into(residual, attended, rows * hidden)
  K.rms_norm(residual, layer.postNorm, scratch.normed, rows, hidden, eps, 0)
  runShared([layer.gate, layer.up], scratch.normed, rows, [scratch.gate, scratch.up])
  rowSplit(kernels, 'silu_mul', [scratch.gate, scratch.up], rows, rows * layer.gate.outFeatures, 16)
  layer.down.run(scratch.gate, rows, attended)
  K.add_into(residual, attended, rows * hidden)
}

/** Scratch for quantized activations, shared by every Linear of a model (sized at load). */
export interface ActivationScratch {
  codes: Pointer
  scales: Pointer
  sums: Pointer
  /** The relaxed-SIMD prefill panel's start values (quantize_rows_q4_relaxed). */
  starts: Pointer
  /** Rows and k it was sized for. */
  rows: number
  k: number
}

/** y [rows, n] = x [rows, k] · Wᵀ for one weight matrix in one of the kernel formats. */
export class Linear {
  readonly format: LinearFormat
  readonly outFeatures: number
  readonly inFeatures: number
  readonly #kernels: Kernels
  readonly #scratch: ActivationScratch
  readonly #weights: Pointer
  readonly #scales: Pointer
  readonly #zeroPoints: Pointer
  readonly #blocks: number

  constructor(
    kernels: Kernels,
    scratch: ActivationScratch,
    format: LinearFormat,
    n: number,
    k: number,
    weights: Pointer,
    scales = 0,
    zeroPoints = 0,
  ) {
    this.#kernels = kernels
    this.#scratch = scratch
    this.format = format
    this.outFeatures = n
    this.inFeatures = k
    this.#weights = weights
    this.#scales = scales
    this.#zeroPoints = zeroPoints
    this.#blocks = Math.ceil(k / 32)
  }

  /** Quantizes x for this format into the shared scratch (a no-op for f32). */
  prepare(x: Pointer, rows: number): void {
    const s = this.#scratch
    if (rows > s.rows || this.inFeatures > s.k) throw new RangeError('activation scratch too small')
    const k = this.inFeatures
    if (this.format === 'q4' && this.#kernels.relaxed)
      rowSplit(
        this.#kernels,
        'quantize_rows_q4_relaxed',
        [x, rows, k, s.codes, s.scales, s.sums, s.starts],
        rows,
      )
    else if (this.format === 'q4')
      rowSplit(this.#kernels, 'quantize_rows_q4', [x, rows, k, s.codes, s.scales, s.sums], rows)
    else if (this.format === 'q8')
      rowSplit(this.#kernels, 'quantize_rows_q8', [x, rows, k, s.codes, s.scales], rows)
  }

  /** y from the prepared activations (f32 reads x directly); output rows split across threads. */
  multiply(x: Pointer, rows: number, y: Pointer): void {
    this.#kernels.parallelAll([this.job(x, rows, y)])
  }

  /**
   * The split kernel call that multiply runs. Four output rows per group: a thread's range starts
   * on a group boundary. Several tokens (prefill) take the panel GEMM, one token the GEMV: the
   * same bits either way. A relaxed-SIMD module runs its *_relaxed 4-bit kernels (the same bits
   * again, from prepare's byte codes).
   */
  job(x: Pointer, rows: number, y: Pointer): ParallelJob {
    const s = this.#scratch
    const n = this.outFeatures
    const panel = rows >= panelRows
    if (this.format === 'q4') {
      // The plain panel GEMM takes no code sums (its panel subtracts the zero points); the
      // relaxed one takes its start values in their place, its dot-add form the sums again
      // (dot-form.ts: which form runs is chosen per host; the same bits either way).
      const relaxed = this.#kernels.relaxed
      const form = panel ? (this.#kernels.dot?.prefill ?? 'pairs') : (this.#kernels.dot?.decode ?? 'pairs')
      const kernel: ParallelKernel = relaxed
        ? relaxedProduct(panel, form)
        : panel
          ? 'gemm_panel_q4'
          : 'gemm_q4'
      const sums = relaxed && panel && form === 'pairs' ? [s.starts] : relaxed || !panel ? [s.sums] : []
      return {
        kernel,
        args: [
          this.#weights,
          this.#scales,
          this.#zeroPoints,
          n,
          this.#blocks,
          s.codes,
          s.scales,
          ...sums,
          rows,
          y,
        ],
        total: n,
        align: 4,
      }
    }
    if (this.format === 'q8')
      return {
        kernel: panel ? 'gemm_panel_q8' : 'gemm_q8',
        args: [this.#weights, this.#scales, n, this.#blocks, s.codes, s.scales, rows, y],
        total: n,
        align: 4,
      }
    return { kernel: 'gemm_f32', args: [this.#weights, n, this.inFeatures, x, rows, y], total: n, align: 4 }
  }

  run(x: Pointer, rows: number, y: Pointer): void {
    this.prepare(x, rows)
    this.multiply(x, rows, y)
  }

  get kernels(): Kernels {
    return this.#kernels
  }

  /** Whether `other` can reuse this one's prepared activations (same format and k). */
  sharesInput(other: Linear): boolean {
    return other.format === this.format && other.inFeatures === this.inFeatures
  }
}

/**
 * Several matrices over the same input (q/k/v, gate/up): quantize once, then multiply them all in
 * one pass of the thread pool (one wake-up instead of one per matrix; the same bits). A matrix
 * that needs the input quantized another way runs after the others, with its own.
 */
export function runShared(
  linears: readonly Linear[],
  x: Pointer,
  rows: number,
  outputs: readonly Pointer[],
): void {
  const first = linears[0]!
  first.prepare(x, rows)
  const together = linears.flatMap((linear, i) =>
    first.sharesInput(linear) ? [linear.job(x, rows, outputs[i]!)] : [],
  )
  first.kernels.parallelAll(together)
  linears.forEach((linear, i) => {
    if (!first.sharesInput(linear)) linear.run(x, rows, outputs[i]!)
  })
}

/** Token embedding lookup in the stored format. */
export class Embedding {
  readonly hidden: number
  readonly vocabulary: number
  readonly #kernels: Kernels
  readonly #run: (ids: Pointer, count: number, out: Pointer) => void

  constructor(
    kernels: Kernels,
    vocabulary: number,
    hidden: number,
    run: (ids: Pointer, count: number, out: Pointer) => void,
  ) {
    this.#kernels = kernels
    this.vocabulary = vocabulary
    this.hidden = hidden
    this.#run = run
  }

  /** out [count, hidden] for the ids at `ids` (int32, already checked against the vocabulary). */
  lookup(ids: Pointer, count: number, out: Pointer): void {
    this.#run(ids, count, out)
  }

  get kernels(): Kernels {
    return this.#kernels
  }
}

/**
 * How many positions a KV cache of `bytesPerPosition` can hold in what wasm32's 4 GiB leaves after
 * everything allocated so far, `otherBytes` more (the sessions' recurrent states) and 16 MiB kept
 * back, at least 1 and at most `contextLength`. For several sessions, bytesPerPosition is every
 * session's together, so each gets the same capacity.
 */
export function kvCacheCapacity(
  kernels: Kernels,
  contextLength: number,
  bytesPerPosition: number,
  otherBytes = 0,
): number {
  const free = 4 * 1024 ** 3 - kernels.used - otherBytes - 16 * 1024 ** 2
  return Math.max(1, Math.min(contextLength, Math.floor(free / bytesPerPosition)))
}

/**
 * Floats of attention scratch per query head (KvCache.attend's scoresStride): a row of scores for
 * every position, and room for the prefill's blocks of eight query rows (src/attention.c attends
 * up to eight rows of a head per pass over its keys, as many as this holds) up to 4,096 positions
 * even when the context is shorter than eight times that.
 */
export function attentionScoresStride(contextLength: number): number {
  return Math.max(contextLength, 8 * Math.min(contextLength, 4096))
}

/** Rows of a stored 4-bit table per slab when it is regrouped: whole groups of four, ~slabBytes. */
function q4RowsPerSlab(blocks: number): number {
  return Math.max(4, Math.floor(slabBytes / (blocks * 16) / 4) * 4)
}

/**
 * A KV cache for `layers` attention layers, position-major (position t holds every layer's keys
 * then values), allocated last in the arena so it grows at the top without moving anything.
 */
export class KvCache {
  readonly layers: number
  readonly kvHeads: number
  readonly headDim: number
  readonly width: number
  readonly capacityLimit: number
  readonly #kernels: Kernels
  #base = 0
  #capacity = 0

  constructor(kernels: Kernels, layers: number, kvHeads: number, headDim: number, capacityLimit: number) {
    this.#kernels = kernels
    this.layers = layers
    this.kvHeads = kvHeads
    this.headDim = headDim
    this.width = kvHeads * headDim
    this.capacityLimit = capacityLimit
  }

  /** Floats between one position and the next. */
  get positionStride(): number {
    return this.layers * 2 * this.width
  }

  get bytesPerPosition(): number {
    return this.positionStride * 4
  }

  /** Positions it has room for now (it grows up to capacityLimit). */
  get capacity(): number {
    return this.#capacity
  }

  /** Makes room for `positions` positions (grows in steps of 256; nothing may be allocated after it). */
  reserve(positions: number): void {
    if (positions <= this.#capacity) return
    const wanted = Math.min(this.capacityLimit, Math.max(positions, Math.ceil((positions + 1) / 256) * 256))
    if (this.#capacity === 0) this.#base = this.#kernels.alloc(wanted * this.bytesPerPosition, 16)
    else {
      const end = this.#base + this.#capacity * this.bytesPerPosition
      if (this.#kernels.mark() !== end) throw new Error('the KV cache must be the last allocation')
      this.#kernels.alloc((wanted - this.#capacity) * this.bytesPerPosition, 4)
    }
    this.#capacity = wanted
  }

  keys(layer: number): Pointer {
    return this.#base + layer * 2 * this.width * 4
  }

  values(layer: number): Pointer {
    return this.#base + (layer * 2 + 1) * this.width * 4
  }

  /**
   * One layer's attention step: stores the new positions' keys and values at `position0`, then
   * attends `query` (`heads` heads) of the last `queries` of them over the cache into `out`. Heads
   * are split across threads, each with its own row of `scores` (`scoresStride` floats).
   */
  attend(layer: number, step: AttentionStep): void {
    const { keys, values, query, out, scores, scoresStride, count, heads, position0, scale } = step
    const queries = step.queries ?? count
    const K = this.#kernels.k
    K.kv_store(keys, this.keys(layer), count, this.width, this.positionStride, position0)
    K.kv_store(values, this.values(layer), count, this.width, this.positionStride, position0)
    if (queries === 0) return
    // The scale, argument 12, is a float.
    this.#kernels.parallel(
      'attention_split',
      [
        query,
        this.keys(layer),
        this.values(layer),
        out,
        scores,
        scoresStride,
        queries,
        heads,
        this.kvHeads,
        this.headDim,
        this.positionStride,
        position0 + count - queries,
        scale,
      ],
      heads,
      1,
      1 << 12,
    )
  }
}

/**
 * Each session's own blocks (its KV cache, for Qwen3.5 its recurrent state) in an instance whose
 * weights and working buffers every session shares. The arena never frees, so a disposed
 * session's slot is kept for the next one. Only the newest slot's cache grows at the top of the
 * arena (in steps, so a short conversation touches little memory); before another slot is made it
 * takes its whole capacity, which the load sized so that `sessions` caches fit.
 */
export class SessionSlots<Slot extends { readonly cache: KvCache | undefined }> {
  readonly #kernels: Kernels
  readonly #fixedBytes: number
  readonly #make: () => Slot
  readonly #free: Slot[] = []
  #newest: Slot | undefined

  /** `fixedBytes`: what a slot allocates besides its cache (Qwen3.5's recurrent states). */
  constructor(kernels: Kernels, fixedBytes: number, make: () => Slot) {
    this.#kernels = kernels
    this.#fixedBytes = fixedBytes
    this.#make = make
  }

  take(): Slot {
    const free = this.#free.pop()
    if (free) return free
    const cache = this.#newest?.cache
    // Checked before anything is allocated: a session refused leaves the others as they were.
    const needed =
      (cache ? (cache.capacityLimit - cache.capacity) * cache.bytesPerPosition : 0) +
      this.#fixedBytes +
      (cache ? Math.min(cache.capacityLimit, 256) * cache.bytesPerPosition : 0)
    if (this.#kernels.used + needed > 4 * 1024 ** 3 - 16 * 1024 ** 2)
      throw new ModelError(
        'backend_unavailable',
        `There is no room in the engine's 4 GiB of WebAssembly memory for another session's cache of ${cache?.capacityLimit ?? 0} tokens: load the model for more sessions at once (the \`sessions\` option, a server's MAX_CONCURRENT) or with a shorter contextLength.`,
      )
    cache?.reserve(cache.capacityLimit)
    const slot = this.#make()
    this.#newest = slot
    return slot
  }

  /** Hands a released session's slot to the next session (whoever takes it resets it first). */
  give(slot: Slot): void {
    this.#free.push(slot)
  }
}

/** What KvCache.attend takes for one layer and one pass. */
export interface AttentionStep {
  /** The pass's new keys and values ([count, kvHeads, headDim]). */
  readonly keys: Pointer
  readonly values: Pointer
  /** [queries, heads, headDim] */
  readonly query: Pointer
  /**
   * How many of the pass's positions, the last ones, are attended (default: all `count`); the
   * others' keys and values are stored only. A model's last layer needs no more than the position
   * whose logits are asked for.
   */
  readonly queries?: number
  readonly out: Pointer
  readonly scores: Pointer
  readonly scoresStride: number
  readonly count: number
  readonly heads: number
  readonly position0: number
  readonly scale: number
}

export interface LoadContextOptions {
  readonly kernels: Kernels
  readonly config: ModelConfig
  readonly dtype: string
  /** The model graph; Qwen3.5 also has an embedding graph under `files`. */
  readonly graph: OnnxWeights
  readonly files: Readonly<Record<string, OnnxWeights>>
  readonly contextLength: number
  /** Sessions the instance is sized for: each holds a cache of the context (default 1). */
  readonly sessions?: number
}

/** What an architecture's loader gets: the kernels, the graph(s), and the loading helpers. */
export class LoadContext {
  readonly kernels: Kernels
  readonly config: ModelConfig
  readonly dtype: string
  readonly graph: OnnxWeights
  readonly files: Readonly<Record<string, OnnxWeights>>
  readonly contextLength: number
  /** Sessions the instance is sized for (each cache's capacity is what fits that many). */
  readonly sessions: number
  /** Shared activation scratch; its pointers are set by allocateScratch(). */
  readonly scratch: ActivationScratch = { codes: 0, scales: 0, sums: 0, starts: 0, rows: 0, k: 0 }
  readonly #loaded = new Map<string, Pointer>()

  constructor(options: LoadContextOptions) {
    this.kernels = options.kernels
    this.config = options.config
    this.dtype = options.dtype
    this.graph = options.graph
    this.files = options.files
    this.contextLength = options.contextLength
    this.sessions = options.sessions ?? 1
    // The loaders read the layers config.json names: a graph with more would run as a shorter
    // model without a word (the others' weights never read), one with fewer fail on a name.
    let layers = 0
    for (const initializer of this.graph.initializers()) {
      const index = /^model\.layers\.(\d+)\./.exec(initializer.name)?.[1]
      if (index !== undefined) layers = Math.max(layers, Number(index) + 1)
    }
    if (layers > 0 && layers !== this.config.numHiddenLayers)
      throw new ModelError(
        'model_invalid',
        `${this.graph.path} has ${layers} layers but config.json says num_hidden_layers ${this.config.numHiddenLayers}: the package's config.json and ONNX files come from different models. Rebuild the package (ondevice convert) or put back its own config.json.`,
      )
    // The kernels take config.json's epsilon; ONNX Runtime takes each norm node's (1e-5 where it
    // has none). Where they differ the two would answer differently on the same files (a handoff
    // would not continue the same answer), so such a package runs on onnxruntime-web.
    const eps = Math.fround(this.config.rmsNormEps)
    for (const node of this.graph.nodes) {
      if (node.opType !== 'SimplifiedLayerNormalization') continue
      const epsilon = node.attributes.epsilon ?? Math.fround(1e-5)
      if (epsilon !== eps)
        throw new EngineUnsupportedError(
          `${this.graph.path}'s norm ${node.name} uses epsilon ${epsilon} but config.json says rms_norm_eps ${this.config.rmsNormEps}`,
        )
    }
  }

  /**
   * Fails before anything is loaded when the weights plus `extraBytes` (caches, scratch) cannot
   * fit wasm32's 4 GiB of linear memory.
   */
  checkFits(extraBytes: number): void {
    let weights = 0
    for (const file of new Set([this.graph, ...Object.values(this.files)])) weights += file.totalBytes
    const total = weights + extraBytes + this.kernels.used
    // Not an EngineUnsupportedError: onnxruntime-web, the fallback, has the same 4 GiB (and files
    // of at most 2 GiB), so it would only fail in its own words, without the sizes or the fix.
    const limit = 4 * 1024 ** 3 - 64 * 1024 ** 2
    if (total > limit)
      throw new ModelError(
        'unsupported',
        `This package needs ${(total / 1024 ** 3).toFixed(2)} GiB of WebAssembly memory (weights ${(weights / 1024 ** 3).toFixed(2)} GiB + cache and scratch for ${this.contextLength} tokens), more than wasm32's 4 GiB: use a smaller dtype (q4)${weights + this.kernels.used > limit ? '' : ' or a shorter contextLength'}.`,
      )
  }

  /**
   * The graph's rotary inverse frequencies where it keeps them as an unnamed constant: the float32
   * vector of `count` values its Cos is computed from (a few nodes up: positions × frequencies,
   * summed over the M-RoPE rows). ONNX Runtime rotates by these, whatever config.json says.
   */
  rotaryFrequencies(graph: OnnxWeights, count: number): Initializer | undefined {
    const cos = graph.nodes.find((node) => node.opType === 'Cos')
    let values = cos ? [...cos.inputs] : []
    for (let depth = 0; depth < 4 && values.length > 0; depth++) {
      for (const value of values) {
        if (!graph.has(value)) continue
        const found = graph.get(value)
        if (found.type === 'float32' && found.dims.length === 1 && found.elements === count) return found
      }
      values = values.flatMap((value) => graph.producer(value)?.inputs ?? [])
    }
    return undefined
  }

  /** Copies an initializer as stored into the arena (once per name; later calls return the same pointer). */
  async loadRaw(graph: OnnxWeights, initializer: Initializer): Promise<Pointer> {
    const key = `${graph.path}\u0000${initializer.name}`
    const known = this.#loaded.get(key)
    if (known !== undefined) return known
    const pointer = this.kernels.alloc(initializer.byteLength, 16)
    for (let offset = 0; offset < initializer.byteLength; offset += slabBytes) {
      const length = Math.min(slabBytes, initializer.byteLength - offset)
      // A fresh view per slab: nothing grows memory during the read, but the buffer may have changed before it.
      await graph.readInto(initializer, this.kernels.bytes(pointer + offset, length), offset)
    }
    this.#loaded.set(key, pointer)
    return pointer
  }

  /**
   * The 4-bit bytes of an [n, blocks] matrix (stored [n, blocks, 16]) in the kernel's grouped layout
   * (repack_q4_weights: four rows per 64-byte block), streamed through a slab of whole groups;
   * once per initializer, so a tied table shared by the embedding and the LM head is in memory
   * once (embed_q4_grouped reads the same layout).
   */
  async loadQ4Grouped(
    graph: OnnxWeights,
    initializer: Initializer,
    n: number,
    blocks: number,
  ): Promise<Pointer> {
    const key = `${graph.path}\u0000${initializer.name}\u0000q4-grouped`
    const known = this.#loaded.get(key)
    if (known !== undefined) return known
    const rowBytes = blocks * 16
    if (initializer.byteLength !== n * rowBytes)
      throw new ModelError(
        'model_invalid',
        `${graph.path}: "${initializer.name}" has ${initializer.byteLength} bytes, expected ${n * rowBytes} (${n} rows of ${blocks} 4-bit blocks).`,
      )
    const pointer = this.kernels.alloc(Math.ceil(n / 4) * blocks * 64, 16)
    await this.#streamQ4Grouped(graph, initializer, n, blocks, (row0) => pointer + (row0 / 4) * blocks * 64)
    this.#loaded.set(key, pointer)
    return pointer
  }

  /**
   * Whether `initializer` (a stored [n, blocks, 16] 4-bit table) holds the very bytes already
   * regrouped at `grouped` (by loadQ4Grouped): each slab is regrouped into scratch and compared,
   * so a table stored twice (Qwen3.5's embedding and its tied LM head, in two files) is checked
   * with one read of the second copy, not a read of each.
   */
  async matchesQ4Grouped(
    graph: OnnxWeights,
    initializer: Initializer,
    grouped: Pointer,
    n: number,
    blocks: number,
  ): Promise<boolean> {
    if (initializer.byteLength !== n * blocks * 16) return false
    const groupBytes = blocks * 64
    const mark = this.kernels.mark()
    try {
      const scratch = this.kernels.alloc(Math.ceil(Math.min(n, q4RowsPerSlab(blocks)) / 4) * groupBytes, 16)
      return await this.#streamQ4Grouped(
        graph,
        initializer,
        n,
        blocks,
        () => scratch,
        (row0, rows) => {
          const words = (Math.ceil(rows / 4) * groupBytes) / 4
          const mine = this.kernels.i32(scratch, words)
          const theirs = this.kernels.i32(grouped + (row0 / 4) * groupBytes, words)
          for (let i = 0; i < words; i++) if (mine[i] !== theirs[i]) return false
          return true
        },
      )
    } finally {
      this.kernels.release(mark)
    }
  }

  /**
   * Streams a stored [n, blocks, 16] 4-bit table through a slab of whole groups, regrouping the
   * rows from row0 to target(row0); stops (false) as soon as `visit` says so.
   */
  async #streamQ4Grouped(
    graph: OnnxWeights,
    initializer: Initializer,
    n: number,
    blocks: number,
    target: (row0: number) => Pointer,
    visit: (row0: number, rows: number) => boolean = () => true,
  ): Promise<boolean> {
    const rowBytes = blocks * 16
    const rowsPerSlab = q4RowsPerSlab(blocks)
    const mark = this.kernels.mark()
    try {
      const slab = this.kernels.alloc(Math.min(n, rowsPerSlab) * rowBytes, 16)
      for (let row0 = 0; row0 < n; row0 += rowsPerSlab) {
        const rows = Math.min(rowsPerSlab, n - row0)
        await graph.readInto(initializer, this.kernels.bytes(slab, rows * rowBytes), row0 * rowBytes)
        this.kernels.k.repack_q4_weights(slab, rows, blocks, target(row0))
        if (!visit(row0, rows)) return false
      }
      return true
    } finally {
      this.kernels.release(mark)
    }
  }

  /** A float vector (norm weights, frequencies) of exactly `length` elements. */
  async loadVector(graph: OnnxWeights, name: string, length: number): Promise<Pointer> {
    const initializer = graph.get(name)
    if (initializer.type !== 'float32' || initializer.elements !== length)
      throw new ModelError(
        'model_invalid',
        `${graph.path}: "${name}" is ${initializer.type}[${initializer.dims.join(', ')}], expected ${length} float32 values (config.json and the ONNX file disagree).`,
      )
    return this.loadRaw(graph, initializer)
  }

  /** The linear layer whose weight initializer is `weightName` (found through the node that reads it). */
  async loadLinear(graph: OnnxWeights, weightName: string, n: number, k: number): Promise<Linear> {
    const node = linearNodeFor(graph, weightName)
    return this.loadLinearNode(graph, node, n, k)
  }

  /** A linear layer from its MatMulNBits / DynamicQuantizeMatMul / MatMul / Gemm node. */
  async loadLinearNode(graph: OnnxWeights, node: GraphNode, n: number, k: number): Promise<Linear> {
    const where = `${graph.path}: ${node.opType} "${node.name || node.outputs[0]}"`
    switch (node.opType) {
      case 'MatMulNBits': {
        const bits = node.attributes.bits ?? 4
        const blockSize = node.attributes.block_size
        if (bits !== 4 || blockSize !== 32 || node.attributes.K !== k || node.attributes.N !== n)
          throw new EngineUnsupportedError(
            `${where} has bits ${String(bits)}, block_size ${String(blockSize)}, K ${String(node.attributes.K)}, N ${String(node.attributes.N)}; the engine runs bits 4, block 32 with K ${k}, N ${n}.`,
          )
        const blocks = Math.ceil(k / 32)
        const data = graph.expect(node.inputs[1]!, 'uint8', [n, blocks, 16])
        const scales = graph.get(node.inputs[2]!)
        if (scales.type !== 'float32' || scales.elements !== n * blocks)
          throw new ModelError(
            'model_invalid',
            `${where}: scales are ${scales.type}[${scales.dims.join(', ')}], expected ${n * blocks} float32.`,
          )
        const zpName = node.inputs[3]
        const zp = zpName ? graph.get(zpName) : undefined
        if (zp && (zp.type !== 'uint8' || zp.elements !== n * Math.ceil(blocks / 2)))
          throw new EngineUnsupportedError(
            `${where}: zero points ${zp.type}[${zp.dims.join(', ')}] are not packed uint8 [${n}, ${Math.ceil(blocks / 2)}].`,
          )
        if (node.inputs[4] || node.inputs[5])
          throw new EngineUnsupportedError(
            `${where} has g_idx or bias inputs, which the engine does not run.`,
          )
        const weights = await this.loadQ4Grouped(graph, data, n, blocks)
        // Scales and zero points go to the kernel's grouped layout (four rows side by side per block).
        const groups = Math.ceil(n / 4)
        const groupedScales = this.kernels.alloc(groups * blocks * 16, 16)
        const groupedZero = this.kernels.alloc(groups * blocks * 4, 16)
        const mark = this.kernels.mark()
        const scalesSource = this.kernels.alloc(scales.byteLength, 16)
        await graph.readInto(scales, this.kernels.bytes(scalesSource, scales.byteLength))
        let zpSource = 0
        if (zp) {
          zpSource = this.kernels.alloc(zp.byteLength, 16)
          await graph.readInto(zp, this.kernels.bytes(zpSource, zp.byteLength))
        }
        this.kernels.k.repack_q4_scales(scalesSource, zpSource, n, blocks, groupedScales, groupedZero)
        this.kernels.release(mark)
        return new Linear(this.kernels, this.scratch, 'q4', n, k, weights, groupedScales, groupedZero)
      }
      case 'DynamicQuantizeMatMul': {
        const data = graph.expect(node.inputs[1]!, 'int8', [k, n])
        const scales = graph.get(node.inputs[2]!)
        if (scales.type !== 'float32' || scales.elements !== n)
          throw new EngineUnsupportedError(
            `${where}: the engine runs one float scale per output column (${n}), got ${scales.type}[${scales.dims.join(', ')}].`,
          )
        if (node.inputs[3] || node.inputs[4])
          throw new EngineUnsupportedError(
            `${where} has weight zero points or a bias, which the engine does not run.`,
          )
        // Four rows per 128-byte block (src/gemv-q8.c), k padded to whole blocks, n to whole groups.
        const weights = this.kernels.alloc(Math.ceil(n / 4) * 4 * Math.ceil(k / 32) * 32, 16)
        await this.#repack(graph, data, k, n, 1, (slab, k0, rows) =>
          this.kernels.k.repack_q8_grouped(slab, k0, rows, k, n, weights),
        )
        return new Linear(this.kernels, this.scratch, 'q8', n, k, weights, await this.loadRaw(graph, scales))
      }
      case 'MatMul': {
        const source = node.inputs[1]!
        const cast = graph.producer(source)
        if (cast?.opType === 'Cast' && graph.has(cast.inputs[0]!)) {
          const data = graph.expect(cast.inputs[0]!, 'float16', [k, n])
          const weights = this.kernels.alloc(n * k * 4, 16)
          await this.#repack(graph, data, k, n, 2, (slab, k0, rows) => {
            const mark = this.kernels.mark()
            const wide = this.kernels.alloc(rows * n * 4, 16)
            this.kernels.k.f16_to_f32(slab, wide, rows * n)
            this.kernels.k.repack_f32_columns(wide, k0, rows, n, weights, k)
            this.kernels.release(mark)
          })
          return new Linear(this.kernels, this.scratch, 'f32', n, k, weights)
        }
        const data = graph.expect(source, 'float32', [k, n])
        const weights = this.kernels.alloc(n * k * 4, 16)
        await this.#repack(graph, data, k, n, 4, (slab, k0, rows) =>
          this.kernels.k.repack_f32_columns(slab, k0, rows, n, weights, k),
        )
        return new Linear(this.kernels, this.scratch, 'f32', n, k, weights)
      }
      case 'Gemm': {
        const transB = node.attributes.transB ?? 0
        const alpha = node.attributes.alpha ?? 1
        if (transB !== 1 || alpha !== 1 || node.inputs[2] || node.attributes.transA)
          throw new EngineUnsupportedError(
            `${where}: only Gemm(A, Bᵀ) without bias or scaling runs on the engine.`,
          )
        // An fp16 package's tied head reads the fp16 embedding table through a Cast: widened to
        // fp32 slab by slab (the f32 kernels' layout is the table's own, [n, k]).
        const cast = graph.producer(node.inputs[1]!)
        if (cast?.opType === 'Cast' && graph.has(cast.inputs[0]!)) {
          const table = graph.expect(cast.inputs[0]!, 'float16', [n, k])
          const weights = this.kernels.alloc(n * k * 4, 16)
          const rowsPerSlab = Math.max(1, Math.floor(slabBytes / (k * 2)))
          const mark = this.kernels.mark()
          const slab = this.kernels.alloc(Math.min(n, rowsPerSlab) * k * 2, 16)
          for (let row = 0; row < n; row += rowsPerSlab) {
            const rows = Math.min(rowsPerSlab, n - row)
            await graph.readInto(table, this.kernels.bytes(slab, rows * k * 2), row * k * 2)
            this.kernels.k.f16_to_f32(slab, weights + row * k * 4, rows * k)
          }
          this.kernels.release(mark)
          return new Linear(this.kernels, this.scratch, 'f32', n, k, weights)
        }
        const data = graph.expect(node.inputs[1]!, 'float32', [n, k])
        return new Linear(this.kernels, this.scratch, 'f32', n, k, await this.loadRaw(graph, data))
      }
      default:
        throw new EngineUnsupportedError(`${where}: ${node.opType} is not a matrix product the engine runs.`)
    }
  }

  /** Streams a [k, n] matrix of `elementBytes` through a slab; `apply` repacks rows k0..k0+rows. */
  async #repack(
    graph: OnnxWeights,
    data: Initializer,
    k: number,
    n: number,
    elementBytes: number,
    apply: (slab: Pointer, k0: number, rows: number) => void,
  ): Promise<void> {
    const rowBytes = n * elementBytes
    const fit = Math.max(1, Math.floor(slabBytes / rowBytes))
    // Whole multiples of 16 inputs where the slab holds that many: the q8 regrouping transposes
    // sixteen inputs at a time and goes byte by byte only at a slab's unaligned ends.
    const rowsPerSlab = fit >= 16 ? fit - (fit % 16) : fit
    const mark = this.kernels.mark()
    const slab = this.kernels.alloc(Math.min(k, rowsPerSlab) * rowBytes, 16)
    for (let k0 = 0; k0 < k; k0 += rowsPerSlab) {
      const rows = Math.min(rowsPerSlab, k - k0)
      await graph.readInto(data, this.kernels.bytes(slab, rows * rowBytes), k0 * rowBytes)
      apply(slab, k0, rows)
    }
    this.kernels.release(mark)
  }

  /** The embedding that reads `input_ids` (Gather of an fp32 / fp16 table, or GatherBlockQuantized). */
  async loadEmbedding(graph: OnnxWeights, vocabulary: number, hidden: number): Promise<Embedding> {
    const node = graph
      .consumers('input_ids')
      .find((n) => n.opType === 'Gather' || n.opType === 'GatherBlockQuantized')
    if (!node)
      throw new EngineUnsupportedError(
        `${graph.path}: no Gather reads input_ids, so the engine cannot find the embedding table.`,
      )
    const k = this.kernels.k
    if (node.opType === 'Gather') {
      const table = graph.get(node.inputs[0]!)
      if (table.type === 'float32') {
        graph.expect(table.name, 'float32', [vocabulary, hidden])
        const pointer = await this.loadRaw(graph, table)
        return new Embedding(this.kernels, vocabulary, hidden, (ids, count, out) =>
          k.embed_f32(pointer, hidden, ids, count, out),
        )
      }
      graph.expect(table.name, 'float16', [vocabulary, hidden])
      const pointer = await this.loadRaw(graph, table)
      return new Embedding(this.kernels, vocabulary, hidden, (ids, count, out) => {
        const view = this.kernels.i32(ids, count)
        for (let t = 0; t < count; t++)
          k.f16_to_f32(pointer + view[t]! * hidden * 2, out + t * hidden * 4, hidden)
      })
    }
    const bits = node.attributes.bits ?? 4
    if (node.attributes.block_size !== 32 || (node.attributes.gather_axis ?? 0) !== 0 || hidden % 32 !== 0)
      throw new EngineUnsupportedError(
        `${graph.path}: GatherBlockQuantized with block_size ${String(node.attributes.block_size)} on hidden ${hidden} is not one the engine reads.`,
      )
    const blocks = hidden / 32
    const data = graph.get(node.inputs[0]!)
    const scales = graph.get(node.inputs[2]!)
    const zpName = node.inputs[3]
    const zp = zpName ? graph.get(zpName) : undefined
    const expectedData = bits === 4 ? (vocabulary * hidden) / 2 : vocabulary * hidden
    if (
      (bits !== 4 && bits !== 8) ||
      data.type !== 'uint8' ||
      data.elements !== expectedData ||
      scales.type !== 'float32' ||
      scales.elements !== vocabulary * blocks ||
      (zp && (zp.type !== 'uint8' || zp.elements !== vocabulary * blocks))
    )
      throw new EngineUnsupportedError(
        `${graph.path}: GatherBlockQuantized bits ${String(bits)} data ${data.type}[${data.dims.join(', ')}], scales [${scales.dims.join(', ')}] do not match a ${vocabulary} × ${hidden} table in the layout the engine reads.`,
      )
    const scalesPointer = await this.loadRaw(graph, scales)
    const zpPointer = zp ? await this.loadRaw(graph, zp) : 0
    // A tied table (the LM head's MatMulNBits reads the same bytes) is kept once, in the head's layout.
    const tied =
      bits === 4 &&
      graph.consumers(data.name).some((n) => n.opType === 'MatMulNBits' && n.inputs[1] === data.name)
    if (tied) {
      const grouped = await this.loadQ4Grouped(graph, data, vocabulary, blocks)
      return new Embedding(this.kernels, vocabulary, hidden, (ids, count, out) =>
        k.embed_q4_grouped(grouped, scalesPointer, zpPointer, hidden, ids, count, out),
      )
    }
    const dataPointer = await this.loadRaw(graph, data)
    const run = bits === 4 ? k.embed_q4 : k.embed_q8
    return new Embedding(this.kernels, vocabulary, hidden, (ids, count, out) =>
      run(dataPointer, scalesPointer, zpPointer, hidden, ids, count, out),
    )
  }

  /** The matrix product that produces `output` (default 'logits'), through Identity / Reshape. */
  async loadHead(graph: OnnxWeights, n: number, k: number, output = 'logits'): Promise<Linear> {
    let node = graph.producer(output)
    for (
      let depth = 0;
      node && (node.opType === 'Identity' || node.opType === 'Reshape') && depth < 4;
      depth++
    )
      node = graph.producer(node.inputs[0]!)
    if (!node) throw new EngineUnsupportedError(`${graph.path}: no node produces ${output}.`)
    return this.loadLinearNode(graph, node, n, k)
  }

  /** Sizes the shared activation scratch for `rows` rows of at most `k` inputs (after the weights). */
  allocateScratch(rows: number, k: number): void {
    const blocks = Math.ceil(k / 32)
    this.scratch.codes = this.kernels.alloc(rows * blocks * 32 * 2, 16)
    this.scratch.scales = this.kernels.alloc(rows * blocks * 4, 16)
    this.scratch.sums = this.kernels.alloc(rows * blocks * 4, 16)
    this.scratch.starts = this.kernels.alloc(rows * blocks * 4, 16)
    this.scratch.rows = rows
    this.scratch.k = k
  }
}

const matrixOps = new Set(['MatMulNBits', 'DynamicQuantizeMatMul', 'MatMul', 'Gemm'])

/** The matrix-product node whose weight input (input 1, possibly through a Cast) is `weightName`. */
function linearNodeFor(graph: OnnxWeights, weightName: string): GraphNode {
  if (!graph.has(weightName))
    throw new ModelError('model_invalid', `${graph.path} has no weight "${weightName}".`)
  for (const node of graph.consumers(weightName)) {
    if (matrixOps.has(node.opType) && node.inputs[1] === weightName) return node
    if (node.opType === 'Cast')
      for (const next of graph.consumers(node.outputs[0]!))
        if (next.opType === 'MatMul' && next.inputs[1] === node.outputs[0]) return next
  }
  throw new EngineUnsupportedError(
    `${graph.path}: "${weightName}" is not the weight of a matrix product the engine runs.`,
  )
}
