// Row splitting across threads over one shared WebAssembly.Memory. The calling thread and N-1
// helper threads each run the same kernel on their own contiguous range of output rows (or
// attention heads); every output is still reduced in its one fixed order by one thread, so the
// bits are the same for any thread count. Host-neutral: the host starts the helpers (Node:
// worker_threads, ./threads-node.ts; browsers: module Web Workers, ./threads-browser.ts) and each
// runs `helperLoop` over the shared control block.
//
// Control block (int32 words in the shared memory): 0 generation, 1 job count (-1 stops), 2
// shares, 3 helpers still working, then up to maxJobs job records of jobWords words: op, argument
// count, float-argument bit mask, total, alignment, arguments (floats stored as their bits). A
// batch of independent jobs (q/k/v, gate/up: the same input, different outputs) costs one wake-up
// and one wait instead of one per matrix; each thread runs its share of every job in order.

/** Kernels that take a trailing [begin, end) range and may be split. */
export const parallelKernels = [
  'gemm_q4',
  'gemm_q8',
  'gemm_f32',
  'gemm_panel_q4',
  'gemm_panel_q8',
  // Relaxed-SIMD modules only (src/gemm-q4-relaxed.c).
  'gemm_q4_relaxed',
  'gemm_panel_q4_relaxed',
  'attention_split',
  // Qwen3.5: value heads of the delta rule, channels of the causal conv.
  'qwen35_gated_delta',
  'qwen35_causal_conv_silu',
] as const
export type ParallelKernel = (typeof parallelKernels)[number]

/** Jobs one pass can carry (Qwen3.5's four input projections of a Gated DeltaNet layer). */
export const maxJobs = 4
const GENERATION = 0
const JOBS = 1
const SHARES = 2
const PENDING = 3
const HEADER = 4
const OP = 0
const ARGC = 1
const FLOATS = 2
const TOTAL = 3
const ALIGN = 4
const ARGS = 5
const maxArgs = 24
const jobWords = ARGS + maxArgs
export const controlWords = HEADER + maxJobs * jobWords

/** One split kernel call: kernel(...args, begin, end) over [0, total) in shares aligned to `align`. */
export interface ParallelJob {
  readonly kernel: ParallelKernel
  readonly args: readonly number[]
  readonly total: number
  readonly align: number
  /** Bit i set: argument i is an f32. */
  readonly floatArgs?: number
}

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

function runShares(
  exports: Record<string, unknown>,
  control: Int32Array,
  floats: Float32Array,
  index: number,
): void {
  const jobs = control[JOBS]!
  for (let job = 0; job < jobs; job++) {
    const base = HEADER + job * jobWords
    const op = parallelKernels[control[base + OP]!]
    if (!op) continue
    const argc = control[base + ARGC]!
    const mask = control[base + FLOATS]!
    const args: number[] = []
    for (let i = 0; i < argc; i++)
      args.push(mask & (1 << i) ? floats[base + ARGS + i]! : control[base + ARGS + i]!)
    const [begin, end] = shareRange(control[base + TOTAL]!, control[SHARES]!, control[base + ALIGN]!, index)
    if (begin < end) (exports[op] as RangeKernel)(...args, begin, end)
  }
}

/** What a helper thread runs until the pool stops: wait for a pass, do its shares, report. */
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
    if (Atomics.load(words, JOBS) === -1) return
    try {
      runShares(exports, words, floats, index)
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
    this.runAll([{ kernel, args, total, align, floatArgs }])
  }

  /**
   * Runs independent jobs (none reads another's output) in one pass: every thread does its share
   * of each job in order, so each output is still computed by one thread in its one order.
   */
  runAll(jobs: readonly ParallelJob[]): void {
    for (let first = 0; first < jobs.length; first += maxJobs) this.#pass(jobs.slice(first, first + maxJobs))
  }

  #pass(jobs: readonly ParallelJob[]): void {
    const words = this.#words
    // Too little work to be worth waking the helpers: this thread runs it all.
    if (this.threads === 1 || jobs.every((job) => job.total < 2 * job.align * this.threads)) {
      for (const job of jobs) (this.#exports[job.kernel] as RangeKernel)(...job.args, 0, job.total)
      return
    }
    jobs.forEach((job, index) => {
      if (job.args.length > maxArgs) throw new RangeError(`${job.kernel}: more than ${maxArgs} arguments`)
      const base = HEADER + index * jobWords
      const floatArgs = job.floatArgs ?? 0
      words[base + OP] = parallelKernels.indexOf(job.kernel)
      words[base + ARGC] = job.args.length
      words[base + FLOATS] = floatArgs
      words[base + TOTAL] = job.total
      words[base + ALIGN] = job.align
      job.args.forEach((value, i) => {
        if (floatArgs & (1 << i)) this.#floats[base + ARGS + i] = value
        else words[base + ARGS + i] = value
      })
    })
    words[JOBS] = jobs.length
    words[SHARES] = this.threads
    Atomics.store(words, PENDING, this.threads - 1)
    Atomics.add(words, GENERATION, 1)
    Atomics.notify(words, GENERATION)
    runShares(this.#exports, words, this.#floats, 0)
    // The helpers' shares take about as long as this thread's, so a page's main thread (which may
    // not wait) spins only for the difference.
    for (let pending = Atomics.load(words, PENDING); pending !== 0; pending = Atomics.load(words, PENDING))
      if (this.#mayBlock) Atomics.wait(words, PENDING, pending)
  }

  /** Stops the helpers. */
  async close(): Promise<void> {
    Atomics.store(this.#words, JOBS, -1)
    Atomics.add(this.#words, GENERATION, 1)
    Atomics.notify(this.#words, GENERATION)
    await this.#stop()
  }
}
