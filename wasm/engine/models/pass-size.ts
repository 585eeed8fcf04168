// How many tokens one prefill pass takes (docs/wasm-engine.md, Prefill; Long prompts and the event
// loop). A pass unpacks each 4-bit weight panel once for all of its tokens and runs every layer over
// them, so a longer pass unpacks less often: with 128-token passes the Qwen3.5-0.8B shape's
// 512-token prefill took 1.07x less CPU (two small kernel changes with them; 1.02x those alone).
// But the engine computes on the calling thread and gives its event loop a turn only between
// passes, so the pass also bounds how long that thread is held:
// - in a worker (a browser's Web Worker, such as the SDK's device worker; a Node worker_thread)
//   nothing but the engine's own calls waits on that loop, but one of them is the user's stop: a
//   pass takes 128 tokens unless the pass before it says a 128-token pass holds the thread longer
//   than WORKER_PASS_BUDGET_MS (a slow phone), then 64;
// - on a thread with other work (a page's main thread, a server's, a Worker isolate serving other
//   requests) a pass takes 64 tokens, and 128 only where the pass before it says a 128-token pass
//   holds the thread at most PASS_BUDGET_MS (small models, fast machines).
// The pass size never changes a result: every output has one reduction order however a prompt is
// cut into passes (docs/wasm-engine.md, Kernels and determinism).

/** The most tokens in one pass: what the models size their scratch for. */
export const MAX_PASS_TOKENS = 128
/** A pass on a thread with other work, until a measured pass says a longer one fits the budget. */
export const BASE_PASS_TOKENS = 64
/**
 * The longest a 128-token pass may be expected to hold a thread with other work, in ms: the gap a
 * server's health check already saw between 64-token passes of a small model (~0.2-0.5 s).
 */
export const PASS_BUDGET_MS = 500
/**
 * The same in a worker, where the one thing that waits for a pass is a stop (an abort reaches the
 * engine between passes): 128-token passes of the Qwen3.5-0.8B shape take ~1.2 s on one thread
 * here, a phone several times longer, and a stop should not wait for seconds.
 */
export const WORKER_PASS_BUDGET_MS = 2_000

/** Whether this code runs in a worker: a browser's Web Worker or a Node worker_thread. */
export function runsInWorker(): boolean {
  const scope = globalThis as {
    WorkerGlobalScope?: unknown
    navigator?: { userAgent?: unknown }
    process?: { getBuiltinModule?: (id: string) => unknown }
  }
  // A Workers isolate serves other requests between passes: not a worker here, though workerd
  // defines WorkerGlobalScope (and ServiceWorkerGlobalScope) as a browser's worker does.
  if (scope.navigator?.userAgent === 'Cloudflare-Workers') return false
  if (scope.WorkerGlobalScope !== undefined) return true
  try {
    const threads = scope.process?.getBuiltinModule?.('node:worker_threads') as
      | { isMainThread?: boolean }
      | undefined
    return threads?.isMainThread === false
  } catch {
    return false
  }
}

/** The pass sizes of one append: call next() before each pass and done() after it. */
export class PassPlan {
  #tokens: number
  #started = 0
  readonly #inWorker: boolean
  readonly #now: () => number

  /** `now`: the clock in ms (tests give their own). */
  constructor(inWorker: boolean, now: () => number = () => performance.now()) {
    this.#inWorker = inWorker
    this.#now = now
    this.#tokens = inWorker ? MAX_PASS_TOKENS : BASE_PASS_TOKENS
  }

  /** The next pass's token count, for `left` tokens still to run; starts its clock. */
  next(left: number): number {
    this.#started = this.#now()
    return Math.min(left, this.#tokens)
  }

  /** After a pass of `count` tokens: its time sets the next pass's size. */
  done(count: number): void {
    const perToken = (this.#now() - this.#started) / count
    const budget = this.#inWorker ? WORKER_PASS_BUDGET_MS : PASS_BUDGET_MS
    this.#tokens = perToken * MAX_PASS_TOKENS <= budget ? MAX_PASS_TOKENS : BASE_PASS_TOKENS
  }
}
