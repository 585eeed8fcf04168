// Row splitting across threads over one shared WebAssembly.Memory. The calling thread and N-1
// helper threads each run the same kernel on their own contiguous range of output rows (or
// attention heads); every output is still reduced in its one fixed order by one thread, so the
// bits are the same for any thread count. Host-neutral: the host starts the helpers (Node:
// worker_threads, ./threads-node.ts; browsers: module Web Workers, ./threads-browser.ts) and each
// runs `helperLoop` over the shared control block.
//
// Control block (int32 words in the shared memory): 0 generation, 1 job count (-1 stops), 2
// shares, 3 helpers still working, 4 the first helper that failed (its index; 0: none), then up
// to maxJobs job records of jobWords words: op, argument count, float-argument bit mask, total,
// alignment, arguments (floats stored as their bits); then one word per thread: the last
// generation that thread finished (so a stalled pass can name the helpers it waits for). A batch
// of independent jobs (q/k/v, gate/up: the same input, different outputs) costs one wake-up and
// one wait instead of one per matrix; each thread runs its share of every job in order.
//
// Watchdog: a helper that dies (an exception in a kernel, terminated, killed by the browser or for
// memory) would leave the calling thread waiting for its share forever. The caller therefore
// waits in slices and fails the pass with a retryable BackendError when a helper reported a
// failure (through the control block: seen at once, even mid-pass), when the host saw a helper
// exit or fail (its events arrive between passes: the calling thread runs each pass
// synchronously, so no event is delivered while it waits), or when the helpers have not finished
// within the stall bound (stallBoundMs). The pool then refuses every later pass with the same
// error; the session closes it (every helper stopped) and the model must be loaded again.
import { BackendError } from '../../core/errors.ts'
import { SpinWait } from './spin-wait.ts'

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
  'gemm_q4_relaxed_dot_add',
  'gemm_panel_q4_relaxed_dot_add',
  'attention_split',
  // Qwen3.5: value heads of the delta rule, channels of the causal conv.
  'qwen35_gated_delta',
  'qwen35_causal_conv_silu',
  // A prompt pass's activations: rows of the quantizers, elements of SwiGLU.
  'quantize_rows_q8',
  'quantize_rows_q4',
  'quantize_rows_q4_relaxed',
  'silu_mul',
] as const
export type ParallelKernel = (typeof parallelKernels)[number]

/** Jobs one pass can carry (Qwen3.5's four input projections of a Gated DeltaNet layer). */
export const maxJobs = 4
const GENERATION = 0
const JOBS = 1
const SHARES = 2
const PENDING = 3
const FAILED = 4
const HEADER = 5
const OP = 0
const ARGC = 1
const FLOATS = 2
const TOTAL = 3
const ALIGN = 4
const ARGS = 5
const maxArgs = 24
const jobWords = ARGS + maxArgs
/** The most threads a pool runs (numThreads' upper bound). */
export const maxThreads = 64
const FINISHED = HEADER + maxJobs * jobWords
export const controlWords = FINISHED + maxThreads

/**
 * How long the calling thread waits for the helpers' shares of one pass before it declares them
 * dead or stuck: `stallFactor` times its own share's time (every share is the same size, so a
 * working helper takes about as long; a helper on a slower core, or preempted now and then, takes
 * a few times longer, never twenty), and never less than `stallFloorMs`, which covers what the
 * share's time does not: waking a helper and the operating system not scheduling it for a while
 * on a loaded device (the slowest of 6,321 decode passes took 83 ms on the tests' 2-core machine
 * at a load average of 14.6; docs/wasm-engine.md, Threads).
 * Scaled by the pass, a slow phone gets a bound as long as its own shares are slow. Time the
 * process did not run at all (a laptop's sleep, a frozen page) does not count: see #waitForHelpers.
 */
export const stallFactor = 20
export const stallFloorMs = 5_000
/** How often a waiting caller looks at the failure flags and the clock. */
const waitSliceMs = 50

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
  const spinWait = new SpinWait()
  let seen = 0
  for (;;) {
    // Until the generation moves: a wake-up alone is no new pass. The caller notifies right
    // after it publishes a pass, and a helper that saw the pass while spinning may already have
    // finished it and gone back to sleep when that notify lands (the caller's thread was
    // descheduled in between): taken as a pass, it ran the last pass's shares again and counted
    // itself done twice, so the caller waited for a count of -1 until its stall bound. Firefox
    // hit this within a few hundred tokens on 2 threads; docs/wasm-engine.md, Threads.
    while (!spinWait.spin(words, GENERATION, seen)) Atomics.wait(words, GENERATION, seen)
    seen = Atomics.load(words, GENERATION)
    if (Atomics.load(words, JOBS) === -1) return
    let failed = false
    try {
      runShares(exports, words, floats, index)
    } catch (error) {
      // Said through the shared memory first: the caller sees it mid-pass, before the host's
      // error event (which only arrives once the caller's thread is free again).
      failed = true
      Atomics.compareExchange(words, FAILED, 0, index)
      throw error
    } finally {
      // The count first: a helper stopped between the two (terminated from outside) then either
      // finished its share or is named late by the next pass, never counted done yet unnamed.
      const last = Atomics.sub(words, PENDING, 1) === 1
      Atomics.store(words, FINISHED + index, seen)
      if (last || failed) Atomics.notify(words, PENDING)
    }
  }
}

/**
 * Tells helpers that never became a pool to leave: one that starts late (its 'ready' came after
 * the host gave up on it) then sees the stop word on its first look at the control block and
 * returns without running a share, before the host's terminate() lands.
 */
export function stopHelpersAt(memory: WebAssembly.Memory, control: number): void {
  const words = new Int32Array(memory.buffer, control, controlWords)
  Atomics.store(words, JOBS, -1)
  Atomics.add(words, GENERATION, 1)
  Atomics.notify(words, GENERATION)
}

/** The host's handle on one helper thread (Node: a worker_threads Worker; browsers: a Worker). */
export interface HelperThread {
  terminate(): unknown
}

/** What the host tells the pool when it starts it. */
export interface ThreadPoolHost {
  /** The helpers' handles: thread i + 1 at index i. */
  readonly helpers: readonly HelperThread[]
  /**
   * Stops every helper, after the pool told them to leave their loop (a browser keeps those that
   * left it for its next load, unless the pool failed: ./threads-browser.ts).
   */
  stop(): Promise<void>
}

/** The calling thread's side: publishes a job, does share 0, waits for the helpers. */
export class ThreadPool {
  readonly threads: number
  /**
   * The host's handles on the helper threads, thread i + 1 at index i (Node: worker_threads
   * Workers; browsers: Web Workers): to watch them (Node: `resourceLimits`,
   * `performance.eventLoopUtilization()`) or to stop one. A helper that stops, however it stops,
   * fails the next pass (or the one under way) with the pool's error.
   */
  readonly helpers: readonly HelperThread[]
  readonly #exports: Record<string, unknown>
  readonly #words: Int32Array
  readonly #floats: Float32Array
  readonly #stop: () => Promise<void>
  readonly #mayBlock = threadMayBlock()
  readonly #spinWait = new SpinWait()
  #failure: BackendError | undefined
  #closing: Promise<void> | undefined

  constructor(
    exports: Record<string, unknown>,
    memory: WebAssembly.Memory,
    control: number,
    threads: number,
    host: ThreadPoolHost,
  ) {
    this.threads = threads
    this.helpers = host.helpers
    this.#exports = exports
    // The memory is shared: its buffer never detaches when it grows, so these views stay valid.
    this.#words = new Int32Array(memory.buffer, control, controlWords)
    this.#floats = new Float32Array(memory.buffer, control, controlWords)
    this.#stop = () => host.stop()
  }

  /** Why this pool can no longer run (a helper died or stalled); undefined while it works. */
  get failure(): BackendError | undefined {
    return this.#failure
  }

  /**
   * The host saw helper thread `thread` (1-based) stop or fail (`what`: "exited with code 1",
   * "threw RangeError: ..."). Every later pass throws; so does one under way, if the host could
   * tell it (its thread is another than the waiting one). Ignored once the pool is closing.
   */
  helperFailed(thread: number, what: string): void {
    if (this.#closing || this.#failure) return
    this.#failure = new BackendError(
      'backend_failed',
      `The WebAssembly engine's helper thread ${thread} ${what}. ${recovery}`,
      { isRetryable: true },
    )
    Atomics.compareExchange(this.#words, FAILED, 0, thread)
    Atomics.notify(this.#words, PENDING)
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
    if (this.#failure) throw this.#failure
    if (this.#closing)
      throw new BackendError('backend_failed', `The WebAssembly engine's threads were stopped. ${recovery}`, {
        isRetryable: true,
      })
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
    // As the int32 word holds it (it wraps after 2^31 passes, about 15 million tokens).
    const generation = (Atomics.add(words, GENERATION, 1) + 1) | 0
    Atomics.notify(words, GENERATION)
    const started = performance.now()
    try {
      runShares(this.#exports, words, this.#floats, 0)
    } finally {
      // Even when this thread's share threw: the helpers must be done with this pass before the
      // control block is written again.
      this.#waitForHelpers(jobs, generation, performance.now() - started)
    }
  }

  /**
   * Waits until every helper finished its share of the pass, in slices, looking between them at
   * the failure flag and at the time waited. The helpers' shares take about as long as this
   * thread's, so a page's main thread (which may not wait) spins only for the difference.
   */
  #waitForHelpers(jobs: readonly ParallelJob[], generation: number, ownShareMs: number): void {
    const words = this.#words
    const boundMs = stallBoundMs(ownShareMs)
    // Most passes end while this thread spins; the loop below then returns at once. A helper that
    // fails changes PENDING too (it counts itself done).
    const pending = Atomics.load(words, PENDING)
    if (pending !== 0) this.#spinWait.spin(words, PENDING, pending)
    let waitedMs = 0
    let last = performance.now()
    for (let spins = 0; ; spins++) {
      const pending = Atomics.load(words, PENDING)
      const failed = Atomics.load(words, FAILED)
      if (failed !== 0) throw this.#fail(`failed while running its share of ${kernelNames(jobs)}`, failed)
      if (pending === 0) return
      if (this.#mayBlock) Atomics.wait(words, PENDING, pending, waitSliceMs)
      else if (spins % 1024 !== 0) continue
      const now = performance.now()
      // A gap far longer than a slice is time this thread did not run (the process suspended, a
      // frozen page, a machine asleep): the helpers did not run either, so it does not count.
      waitedMs += Math.min(now - last, waitSliceMs)
      last = now
      if (waitedMs > boundMs) {
        const late: number[] = []
        for (let thread = 1; thread < this.threads; thread++)
          if (Atomics.load(words, FINISHED + thread) !== generation) late.push(thread)
        // None recorded late (a helper stopped while it reported): every helper is suspect.
        if (late.length === 0) for (let thread = 1; thread < this.threads; thread++) late.push(thread)
        throw this.#fail(
          `did not finish its share of ${kernelNames(jobs)} within ${(boundMs / 1000).toFixed(1)} s (this thread's share took ${ownShareMs.toFixed(2)} ms): it has stopped or hangs`,
          ...late,
        )
      }
    }
  }

  #fail(what: string, ...threads: number[]): BackendError {
    // A failure the host saw first (with the exit code or the exception) says more.
    if (this.#failure) return this.#failure
    const who = threads.length === 1 ? `helper thread ${threads[0]}` : `helper threads ${threads.join(', ')}`
    this.#failure = new BackendError(
      'backend_failed',
      `The WebAssembly engine's ${who} ${what}. ${recovery}`,
      {
        isRetryable: true,
      },
    )
    Atomics.compareExchange(this.#words, FAILED, 0, threads[0] ?? -1)
    return this.#failure
  }

  /** Stops the helpers (all of them, whatever state they are in). Safe to call more than once. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      Atomics.store(this.#words, JOBS, -1)
      Atomics.add(this.#words, GENERATION, 1)
      Atomics.notify(this.#words, GENERATION)
      await this.#stop()
    })()
    return this.#closing
  }
}

const recovery =
  'This loaded model can no longer run: dispose it and load it again (numThreads: 1 runs without helper threads).'

function kernelNames(jobs: readonly ParallelJob[]): string {
  return [...new Set(jobs.map((job) => job.kernel))].join(', ')
}

/** The stall bound of a pass whose calling thread's share took `ownShareMs`. */
export function stallBoundMs(ownShareMs: number): number {
  return Math.max(stallFloorMs, stallFactor * ownShareMs)
}
