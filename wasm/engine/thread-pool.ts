// Row splitting across threads over one shared WebAssembly.Memory. The calling thread and N-1
// helper threads each run the same kernel on their own contiguous range of output rows (or
// attention heads); every output is still reduced in its one fixed order by one thread, so the
// bits are the same for any thread count. Host-neutral: the host starts the helpers (Node:
// worker_threads, ./threads-node.ts; browsers: module Web Workers, ./threads-browser.ts) and each
// runs `helperLoop` over the shared control block.
//
// Control block (int32 words in the shared memory): 0 generation, 1 op (-1 stops), 2 argument
// count, 3 float-argument bit mask, 4 total, 5 alignment, 6 shares, 7 helpers still working,
// 8.. arguments (floats stored as their bits).

/** Kernels that take a trailing [begin, end) range and may be split. */
export const parallelKernels = [
  'gemm_q4',
  'gemm_q8',
  'gemm_f32',
  'gemm_panel_q4',
  'gemm_panel_q8',
  'attention_split',
  // Qwen3.5: value heads of the delta rule, channels of the causal conv.
  'qwen35_gated_delta',
  'qwen35_causal_conv_silu',
] as const
export type ParallelKernel = (typeof parallelKernels)[number]

export const controlWords = 32
const GENERATION = 0
const OP = 1
const ARGC = 2
const FLOATS = 3
const TOTAL = 4
const ALIGN = 5
const SHARES = 6
const PENDING = 7
const ARGS = 8

type RangeKernel = (...args: number[]) => void

/**
 * Whether this thread may block in Atomics.wait. A browser page's main thread may not (it throws
 * there, whatever the value), so the pool's calling thread spins on the counter instead; helpers
 * always run in workers, where waiting is allowed.
 */
export function threadMayBlock(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0)
    return true
  } catch {
    return false
  }
}

/** [begin, end) of share `index` of `shares`, whole multiples of `align` except the last. */
export function shareRange(total: number, shares: number, align: number, index: number): [number, number] {
  const step = Math.ceil(total / shares / align) * align
  const begin = Math.min(total, index * step)
  return [begin, Math.min(total, begin + step)]
}

function runShare(
  exports: Record<string, unknown>,
  control: Int32Array,
  floats: Float32Array,
  index: number,
): void {
  const op = parallelKernels[control[OP]!]
  if (!op) return
  const argc = control[ARGC]!
  const mask = control[FLOATS]!
  const args: number[] = []
  for (let i = 0; i < argc; i++) args.push(mask & (1 << i) ? floats[ARGS + i]! : control[ARGS + i]!)
  const [begin, end] = shareRange(control[TOTAL]!, control[SHARES]!, control[ALIGN]!, index)
  if (begin < end) (exports[op] as RangeKernel)(...args, begin, end)
}

/** What a helper thread runs until the pool stops: wait for a job, do its share, report. */
export function helperLoop(
  exports: Record<string, unknown>,
  memory: WebAssembly.Memory,
  control: number,
  index: number,
): void {
  const words = new Int32Array(memory.buffer, control, controlWords)
  const floats = new Float32Array(memory.buffer, control, controlWords)
  let seen = 0
  for (;;) {
    Atomics.wait(words, GENERATION, seen)
    seen = Atomics.load(words, GENERATION)
    if (Atomics.load(words, OP) === -1) return
    try {
      runShare(exports, words, floats, index)
    } finally {
      if (Atomics.sub(words, PENDING, 1) === 1) Atomics.notify(words, PENDING)
    }
  }
}

/** The calling thread's side: publishes a job, does share 0, waits for the helpers. */
export class ThreadPool {
  readonly threads: number
  readonly #exports: Record<string, unknown>
  readonly #words: Int32Array
  readonly #floats: Float32Array
  readonly #stop: () => Promise<void>
  readonly #mayBlock = threadMayBlock()

  constructor(
    exports: Record<string, unknown>,
    memory: WebAssembly.Memory,
    control: number,
    threads: number,
    stop: () => Promise<void>,
  ) {
    this.threads = threads
    this.#exports = exports
    // The memory is shared: its buffer never detaches when it grows, so these views stay valid.
    this.#words = new Int32Array(memory.buffer, control, controlWords)
    this.#floats = new Float32Array(memory.buffer, control, controlWords)
    this.#stop = stop
  }

  /**
   * Runs kernel(...args, begin, end) over [0, total) split into `threads` ranges aligned to
   * `align`. `floatArgs` lists which argument positions are f32.
   */
  run(kernel: ParallelKernel, args: readonly number[], total: number, align: number, floatArgs = 0): void {
    const words = this.#words
    if (this.threads === 1 || total < 2 * align * this.threads) {
      ;(this.#exports[kernel] as RangeKernel)(...args, 0, total)
      return
    }
    words[OP] = parallelKernels.indexOf(kernel)
    words[ARGC] = args.length
    words[FLOATS] = floatArgs
    words[TOTAL] = total
    words[ALIGN] = align
    words[SHARES] = this.threads
    args.forEach((value, i) => {
      if (floatArgs & (1 << i)) this.#floats[ARGS + i] = value
      else words[ARGS + i] = value
    })
    Atomics.store(words, PENDING, this.threads - 1)
    Atomics.add(words, GENERATION, 1)
    Atomics.notify(words, GENERATION)
    runShare(this.#exports, words, this.#floats, 0)
    // The helpers' shares take about as long as this thread's, so a page's main thread (which may
    // not wait) spins only for the difference.
    for (let pending = Atomics.load(words, PENDING); pending !== 0; pending = Atomics.load(words, PENDING))
      if (this.#mayBlock) Atomics.wait(words, PENDING, pending)
  }

  /** Stops the helpers. */
  async close(): Promise<void> {
    Atomics.store(this.#words, OP, -1)
    Atomics.add(this.#words, GENERATION, 1)
    Atomics.notify(this.#words, GENERATION)
    await this.#stop()
  }
}
