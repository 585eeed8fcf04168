// The engine's kernels as a typed object over one WebAssembly instance and its linear memory, plus
// a bump allocator (arena) for weights, caches and scratch. Host-neutral: the compiled
// WebAssembly.Module comes from the host (Node reads engine.wasm from disk, a browser fetches it,
// workerd imports it precompiled). Each model gets its own instance and memory, so disposing a
// model frees all of it at once and two models never share an allocator.
//
// Pointers are byte offsets into memory (numbers up to 4 GiB; wasm32 passes them as i32, which
// wraps above 2 GiB and the C side reads back as unsigned). Views over memory are made fresh
// after any allocation because growing memory detaches the old ArrayBuffer.

import { BackendError } from '../../core/errors.ts'
import type { DotForms } from './dot-form.ts'
import type { ParallelJob, ParallelKernel, ThreadPool } from './thread-pool.ts'

/** A byte offset into the engine's linear memory. */
export type Pointer = number

/**
 * A 4-bit product that takes the activations' code sums (for the weights' zero points): y[r, n]
 * for r < rows and n in [nBegin, nEnd) of nTotal output rows.
 */
export type FourBitProduct = (
  weights: Pointer,
  weightScales: Pointer,
  zeroPoints: Pointer,
  nTotal: number,
  blocks: number,
  codes: Pointer,
  scales: Pointer,
  sums: Pointer,
  rows: number,
  y: Pointer,
  nBegin: number,
  nEnd: number,
) => void

/** The C exports (see src/*.c for what each computes). */
export interface KernelExports {
  readonly __heap_base: WebAssembly.Global
  readonly __stack_pointer: WebAssembly.Global
  // The quantizers and silu_mul take a trailing [begin, end) of rows / elements, like the other
  // kernels threads split (thread-pool.ts's parallelKernels).
  quantize_rows_q8(
    x: Pointer,
    rows: number,
    k: number,
    codes: Pointer,
    scales: Pointer,
    rowBegin: number,
    rowEnd: number,
  ): void
  quantize_rows_q4(
    x: Pointer,
    rows: number,
    k: number,
    codes: Pointer,
    scales: Pointer,
    sums: Pointer,
    rowBegin: number,
    rowEnd: number,
  ): void
  gemm_q4: FourBitProduct
  /**
   * The relaxed-SIMD builds only (src/gemm-q4-relaxed.c): gemm_q4 / gemm_panel_q4's bits from
   * quantize_rows_q4_relaxed's byte codes. gemm_panel_q4_relaxed takes its `starts` where the
   * others take the sums.
   */
  quantize_rows_q4_relaxed?(
    x: Pointer,
    rows: number,
    k: number,
    codes: Pointer,
    scales: Pointer,
    sums: Pointer,
    starts: Pointer,
    rowBegin: number,
    rowEnd: number,
  ): void
  gemm_q4_relaxed?: FourBitProduct
  gemm_panel_q4_relaxed?: FourBitProduct
  /**
   * The same two products on i32x4.relaxed_dot_i8x16_i7x16_add_s (the dot-add form, the same
   * bytes; dot-form.ts picks one form per host). Both take the sums: the panel's int32 start is
   * -15 times the sum.
   */
  gemm_q4_relaxed_dot_add?: FourBitProduct
  gemm_panel_q4_relaxed_dot_add?: FourBitProduct
  gemm_q8(
    weights: Pointer,
    weightScales: Pointer,
    nTotal: number,
    blocks: number,
    codes: Pointer,
    scales: Pointer,
    rows: number,
    y: Pointer,
    nBegin: number,
    nEnd: number,
  ): void
  /** The prefill products (src/gemm-q4.c, src/gemm-q8.c): gemm_q4 / gemm_q8's bits, weights unpacked once per pass. */
  gemm_panel_q4(
    weights: Pointer,
    weightScales: Pointer,
    zeroPoints: Pointer,
    nTotal: number,
    blocks: number,
    codes: Pointer,
    scales: Pointer,
    rows: number,
    y: Pointer,
    nBegin: number,
    nEnd: number,
  ): void
  gemm_panel_q8(
    weights: Pointer,
    weightScales: Pointer,
    nTotal: number,
    blocks: number,
    codes: Pointer,
    scales: Pointer,
    rows: number,
    y: Pointer,
    nBegin: number,
    nEnd: number,
  ): void
  gemm_f32(
    weights: Pointer,
    nTotal: number,
    k: number,
    x: Pointer,
    rows: number,
    y: Pointer,
    nBegin: number,
    nEnd: number,
  ): void
  repack_q4_scales(
    scales: Pointer,
    zeroPoints: Pointer,
    n: number,
    blocks: number,
    dstScales: Pointer,
    dstZeroPoints: Pointer,
  ): void
  repack_q4_weights(src: Pointer, rows: number, blocks: number, dst: Pointer): void
  /** A slab of a stored [k, n] int8 matrix into gemv-q8.c's grouped layout (four rows per 128-byte block). */
  repack_q8_grouped(src: Pointer, k0: number, kRows: number, k: number, n: number, dst: Pointer): void
  repack_f32_columns(src: Pointer, k0: number, kRows: number, n: number, dst: Pointer, k: number): void
  f16_to_f32(src: Pointer, dst: Pointer, count: number): void
  rms_norm(
    x: Pointer,
    weight: Pointer,
    out: Pointer,
    rows: number,
    dim: number,
    eps: number,
    weightPlusOne: number,
  ): void
  rope(
    x: Pointer,
    rows: number,
    heads: number,
    headDim: number,
    rotaryDim: number,
    position0: number,
    inverseFrequencies: Pointer,
  ): void
  kv_store(
    src: Pointer,
    cache: Pointer,
    rows: number,
    width: number,
    positionStride: number,
    position0: number,
  ): void
  attention(
    q: Pointer,
    keyCache: Pointer,
    valueCache: Pointer,
    out: Pointer,
    scores: Pointer,
    rows: number,
    heads: number,
    kvHeads: number,
    headDim: number,
    positionStride: number,
    position0: number,
    scale: number,
    headBegin: number,
    headEnd: number,
  ): void
  attention_split(
    q: Pointer,
    keyCache: Pointer,
    valueCache: Pointer,
    out: Pointer,
    scores: Pointer,
    scoresStride: number,
    rows: number,
    heads: number,
    kvHeads: number,
    headDim: number,
    positionStride: number,
    position0: number,
    scale: number,
    headBegin: number,
    headEnd: number,
  ): void
  silu_mul(gate: Pointer, up: Pointer, begin: number, end: number): void
  add_into(a: Pointer, b: Pointer, count: number): void
  argmax(x: Pointer, count: number): number
  // Qwen3.5 (src/causal-conv.c, src/gated-delta.c, src/gated-attention.c).
  qwen35_causal_conv_silu(
    x: Pointer,
    state: Pointer,
    weight: Pointer,
    out: Pointer,
    tokens: number,
    channels: number,
    kernel: number,
    channelBegin: number,
    channelEnd: number,
  ): void
  /** Floats of scratch qwen35_gated_delta needs (one slot per value head). */
  qwen35_gated_delta_scratch_floats(valueHeads: number, keyHeadDim: number, valueHeadDim: number): number
  qwen35_gated_delta(
    qkv: Pointer,
    qkvStride: number,
    z: Pointer,
    zStride: number,
    a: Pointer,
    b: Pointer,
    abStride: number,
    negExpALog: Pointer,
    dtBias: Pointer,
    normWeight: Pointer,
    state: Pointer,
    out: Pointer,
    outStride: number,
    scratch: Pointer,
    tokens: number,
    keyHeads: number,
    valueHeads: number,
    keyHeadDim: number,
    valueHeadDim: number,
    eps: number,
    headBegin: number,
    headEnd: number,
  ): void
  qwen35_split_query_gate(
    projected: Pointer,
    query: Pointer,
    gate: Pointer,
    rows: number,
    heads: number,
    headDim: number,
  ): void
  qwen35_sigmoid_gate(out: Pointer, gate: Pointer, count: number): void
  embed_f32(table: Pointer, hidden: number, ids: Pointer, count: number, out: Pointer): void
  embed_q4(
    data: Pointer,
    scales: Pointer,
    zeroPoints: Pointer,
    hidden: number,
    ids: Pointer,
    count: number,
    out: Pointer,
  ): void
  embed_q4_grouped(
    weights: Pointer,
    scales: Pointer,
    zeroPoints: Pointer,
    hidden: number,
    ids: Pointer,
    count: number,
    out: Pointer,
  ): void
  embed_q8(
    data: Pointer,
    scales: Pointer,
    zeroPoints: Pointer,
    hidden: number,
    ids: Pointer,
    count: number,
    out: Pointer,
  ): void
}

const PAGE = 65536
/** wasm32's whole address space: 65,536 pages of 64 KiB. */
export const maxMemoryBytes = 65536 * PAGE

/** The engine module's exports, instantiated over a fresh memory. */
export class Kernels {
  /** The compiled module this instance runs (the dot-form probe's choice is remembered per module). */
  readonly module: WebAssembly.Module
  readonly memory: WebAssembly.Memory
  readonly k: KernelExports
  /** Helper threads splitting the matrix products and attention (absent: one thread). */
  pool: ThreadPool | undefined
  /** The module is a relaxed-SIMD build: the 4-bit products run its *_relaxed kernels (same bits). */
  readonly relaxed: boolean
  /**
   * Relaxed-SIMD builds: which form of the 4-bit products runs, for prefill and for decode
   * (dot-form.ts; the same bits either way). Set when a session is created; until then (and in
   * the plain builds, where it stays undefined) the relaxed builds run the pairs form.
   */
  dot: DotForms | undefined
  #top: number

  private constructor(module: WebAssembly.Module, memory: WebAssembly.Memory, exports: KernelExports) {
    this.module = module
    this.memory = memory
    this.k = exports
    this.relaxed = typeof exports.gemm_panel_q4_relaxed === 'function'
    this.#top = exports.__heap_base.value as number
    this.pool = undefined
    this.dot = undefined
  }

  /** kernel(...args, begin, end) over [0, total), split across the pool's threads when there is one. */
  parallel(
    kernel: ParallelKernel,
    args: readonly number[],
    total: number,
    align: number,
    floatArgs = 0,
  ): void {
    if (this.pool) this.pool.run(kernel, args, total, align, floatArgs)
    else (this.k[kernel] as (...values: number[]) => void)(...args, 0, total)
  }

  /** Independent jobs (none reads another's output) in one pass of the pool: one wake-up and one wait. */
  parallelAll(jobs: readonly ParallelJob[]): void {
    if (this.pool) this.pool.runAll(jobs)
    else
      for (const job of jobs) (this.k[job.kernel] as (...values: number[]) => void)(...job.args, 0, job.total)
  }

  /**
   * Instantiates `module` with its own memory: engine.wasm over a plain memory, or
   * engine-threads.wasm over a shared one (`shared`), which helper threads can then join.
   */
  static async create(module: WebAssembly.Module, options: { shared?: boolean } = {}): Promise<Kernels> {
    const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: options.shared ?? false })
    const instance = await WebAssembly.instantiate(module, { env: { memory } })
    return new Kernels(module, memory, instance.exports as unknown as KernelExports)
  }

  /** Bytes allocated so far (including the module's stack). */
  get used(): number {
    return this.#top
  }

  /** Reserves `bytes` (aligned to `align`, default 16) and returns the pointer; grows memory as needed. */
  alloc(bytes: number, align = 16): Pointer {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`cannot allocate ${bytes} bytes`)
    const start = Math.ceil(this.#top / align) * align
    const end = start + bytes
    if (end > maxMemoryBytes)
      throw new RangeError(
        `the engine needs more than 4 GiB of WebAssembly memory (asked for ${bytes} bytes with ${start} in use)`,
      )
    const have = this.memory.buffer.byteLength
    // Grow in steps of at least 64 MiB (pages nobody touches cost no RSS), not once per tensor.
    if (end > have) {
      const pages = Math.ceil(Math.min(maxMemoryBytes - have, Math.max(end - have, 64 * 1024 * 1024)) / PAGE)
      const needed = Math.ceil((end - have) / PAGE)
      try {
        try {
          this.memory.grow(pages)
        } catch (error) {
          // A host short of memory may still give what this allocation needs without the step.
          if (needed >= pages) throw error
          this.memory.grow(needed)
        }
      } catch (error) {
        // The host's own words ('WebAssembly.Memory.grow(): Unable to grow instance memory') say
        // neither how much nor what to do; a phone or a crowded browser refuses here.
        const mib = (bytes: number) => Math.ceil(bytes / 1024 ** 2)
        throw new BackendError(
          'backend_unavailable',
          `This device would not give the WebAssembly engine more memory: it holds ${mib(have)} MiB and needs ${mib(needed * PAGE)} MiB more (${mib(end)} MiB in all). Free memory (close other tabs or apps), or load a smaller dtype (q4) or a shorter contextLength.`,
          { cause: error },
        )
      }
    }
    this.#top = end
    return start
  }

  /** The current top, to give back everything allocated after it with release(). */
  mark(): number {
    return this.#top
  }

  release(mark: number): void {
    if (mark > this.#top) throw new RangeError('release past the top of the arena')
    this.#top = mark
  }

  bytes(pointer: Pointer, length: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, pointer, length)
  }

  f32(pointer: Pointer, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, pointer, length)
  }

  i32(pointer: Pointer, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, pointer, length)
  }
}

/** Compiles engine.wasm bytes (hosts that may compile at run time: Node, browsers). */
export function compileEngine(bytes: Uint8Array): Promise<WebAssembly.Module> {
  return WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>)
}
