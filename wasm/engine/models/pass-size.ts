// How many tokens one prefill pass takes, and where a pass gives its thread's event loop a turn
// (docs/wasm-engine.md, Prefill; Long prompts and the event loop). A pass unpacks each 4-bit weight
// panel once for all of its tokens and runs every layer over them, so a longer pass unpacks less
// often: 128-token passes took 1-5 % less CPU than 64-token ones on the Qwen3.5-0.8B shape's
// 512-token prefill (256-token ones were no faster than 128: docs/wasm-engine.md, Prefill). The
// engine computes on the calling thread, so a long append gives the event loop a turn between its
// passes and, inside a pass, between two layers once TURN_SLICE_MS have passed since the last
// turn: what holds the thread is a stretch of layers, not a pass (a layer of
// the 0.8B shape over 128 tokens is ~50 ms on one thread here, a pass ~1.2 s). Between layers a
// pass keeps nothing in the instance's shared working buffers, only in its session's own residual
// stream, so the other sessions of the instance may run theirs during that turn; and the last pass
// copies its logits out of the shared buffer in its last step (runPasses), before any await.
// - A pass takes 128 tokens, unless the longest stretch of the pass before it says a 128-token pass
//   would hold the thread longer than the budget between two turns: 64 then. In a Workers isolate
//   the first pass takes 64: a deployed isolate's clock stands still while code runs (it moves at
//   I/O), so no turn inside a pass is ever due there and nothing measures a pass before it runs.
// - The budget: on a thread with other work (a page's main thread, a server's, a Worker isolate
//   serving other requests) PASS_BUDGET_MS; in a worker (a browser's Web Worker, such as the SDK's
//   device worker; a Node worker_thread), where nothing but the engine's own calls waits (one of
//   them the user's stop), WORKER_PASS_BUDGET_MS.
// The pass size and the turns never change a result: every output has one reduction order however
// a prompt is cut into passes (docs/wasm-engine.md, Kernels and determinism), and a turn only
// pauses between two layers.

/** The most tokens in one pass: what the models size their scratch for. */
export const MAX_PASS_TOKENS = 128
/**
 * A pass where a 128-token one would hold the thread too long between turns. Also the longest
 * append that runs as one pass without turns (a prompt's short chunk; a decode step is one token).
 */
export const BASE_PASS_TOKENS = 64
/**
 * The longest a stretch of a pass between two turns may be expected to hold a thread with other
 * work, in ms: the gap a server's health check already saw between 64-token passes of a small
 * model (~0.2-0.5 s).
 */
export const PASS_BUDGET_MS = 500
/**
 * The same in a worker, where the one thing that waits for a stretch is a stop (an abort reaches
 * the engine at a turn): a phone several times slower than this machine should not keep a stop
 * waiting for seconds.
 */
export const WORKER_PASS_BUDGET_MS = 2_000
/**
 * Inside a pass, a turn is due between two layers once this long has passed since the last one
 * (or since the pass began). A turn costs a macrotask (microseconds in Node, a message in a
 * browser), so ~20 a second are nothing next to the prefill; a server's other requests and a
 * page's input wait about a layer longer than this at most.
 */
export const TURN_SLICE_MS = 50

/** Whether this code runs in a Workers isolate (workerd). */
export function runsInWorkersIsolate(): boolean {
  return (globalThis as { navigator?: { userAgent?: unknown } }).navigator?.userAgent === 'Cloudflare-Workers'
}

/** Whether this code runs in a worker: a browser's Web Worker or a Node worker_thread. */
export function runsInWorker(): boolean {
  const scope = globalThis as {
    WorkerGlobalScope?: unknown
    process?: { getBuiltinModule?: (id: string) => unknown }
  }
  // A Workers isolate serves other requests between passes: not a worker here, though workerd
  // defines WorkerGlobalScope (and ServiceWorkerGlobalScope) as a browser's worker does.
  if (runsInWorkersIsolate()) return false
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

/**
 * The passes and turns of one append: next() before each pass, turnDue() between two layers of it
 * (and turned() after a turn taken there), done() after it.
 */
export interface PassPlanOptions {
  /** The clock in ms (tests give their own). */
  readonly now?: () => number
  /** The stretch after which a turn is due inside a pass (TURN_SLICE_MS; 0: at every layer boundary). */
  readonly sliceMs?: number
  /** The first pass's tokens (MAX_PASS_TOKENS; BASE_PASS_TOKENS in a Workers isolate). */
  readonly first?: number
}

export class PassPlan {
  #tokens: number
  /** When the current stretch began: the pass's start or the last turn inside it. */
  #stretchStart = 0
  /** The longest stretch of the current pass so far, in ms. */
  #longest = 0
  readonly #inWorker: boolean
  readonly #now: () => number
  readonly #sliceMs: number

  constructor(inWorker: boolean, options: PassPlanOptions = {}) {
    this.#inWorker = inWorker
    this.#now = options.now ?? (() => performance.now())
    this.#sliceMs = options.sliceMs ?? TURN_SLICE_MS
    this.#tokens = options.first ?? (runsInWorkersIsolate() ? BASE_PASS_TOKENS : MAX_PASS_TOKENS)
  }

  /** The next pass's token count, for `left` tokens still to run; starts its clock. */
  next(left: number): number {
    this.#stretchStart = this.#now()
    this.#longest = 0
    return Math.min(left, this.#tokens)
  }

  /** Between two layers of a pass: whether the stretch since the last turn has reached the slice. */
  turnDue(): boolean {
    return this.#now() - this.#stretchStart >= this.#sliceMs
  }

  /**
   * A turn was taken inside the pass: `before`, the clock when it began, ends the stretch (the
   * turn's own time, other work's, is not the engine's); the next stretch starts now.
   */
  turned(before: number): void {
    this.#longest = Math.max(this.#longest, before - this.#stretchStart)
    this.#stretchStart = this.#now()
  }

  /** The clock, for turned(). */
  now(): number {
    return this.#now()
  }

  /** After a pass of `count` tokens: its longest stretch sets the next pass's size. */
  done(count: number): void {
    const longest = Math.max(this.#longest, this.#now() - this.#stretchStart)
    const budget = this.#inWorker ? WORKER_PASS_BUDGET_MS : PASS_BUDGET_MS
    this.#tokens = (longest / count) * MAX_PASS_TOKENS <= budget ? MAX_PASS_TOKENS : BASE_PASS_TOKENS
  }
}

/**
 * Runs an append of `tokens` tokens in passes, each a generator that computes one layer per step
 * (`pass(from, count, last)`, last: the pass whose final position gives the logits). A long append
 * (more than BASE_PASS_TOKENS) awaits `turn` between passes and, where the plan says one is due,
 * between two layers of a pass; a short one (a decode step, a prompt's short chunk) runs as one
 * pass without turns. The architectures share this, so a pass and its turns mean the same in each.
 *
 * What the append gives is what the last pass returns, and that pass must copy its logits out of
 * the instance's shared buffer in its own last step: the caller only gets them after an await (this
 * function's promise), and at an await another session of the instance, appending at the same time,
 * may run a pass that writes its own logits there (interleaved-appends.test.ts).
 */
export async function runPasses<T>(
  tokens: number,
  inWorker: boolean,
  sliceMs: number | undefined,
  pass: (from: number, count: number, last: boolean) => Generator<undefined, T | undefined>,
  turn: () => Promise<void>,
): Promise<T> {
  const long = tokens > BASE_PASS_TOKENS
  const plan = new PassPlan(inWorker, sliceMs === undefined ? {} : { sliceMs })
  let result: T | undefined
  for (let from = 0; from < tokens; ) {
    if (from > 0) await turn()
    const count = plan.next(tokens - from)
    const layers = pass(from, count, from + count === tokens)
    let step = layers.next()
    while (!step.done) {
      if (long && plan.turnDue()) {
        const before = plan.now()
        await turn()
        plan.turned(before)
      }
      step = layers.next()
    }
    result = step.value
    plan.done(count)
    from += count
  }
  // Only a caller's mistake gets here (an append of no tokens: the session refuses those first).
  if (result === undefined)
    throw new Error(`An append of ${tokens} tokens ended without logits from its last pass.`)
  return result
}
