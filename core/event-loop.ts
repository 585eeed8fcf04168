// Long loops over client-sized input (a continuation replayed, a prompt prefilled in chunks, a
// generation whose backend computes on this thread, as WASM does in a Worker isolate) must let the
// host serve other work in between: other requests, health checks, the abort that would stop them.
// An `await` on an already-settled promise does not do that (microtasks run before any I/O), so
// these loops give up the thread for one macrotask whenever a time slice has passed.

type Schedule = (callback: () => void) => void

interface YieldingGlobals {
  readonly setImmediate?: (callback: () => void) => unknown
  /** `userAgent` is 'Cloudflare-Workers' in workerd. */
  readonly navigator?: { readonly userAgent?: unknown }
  readonly MessageChannel?: new () => {
    readonly port1: { onmessage: (() => void) | null; close?(): void; unref?(): void }
    readonly port2: { postMessage(message: unknown): void; close?(): void; unref?(): void }
  }
}

/**
 * The cheapest macrotask each host has that lets its I/O in: setImmediate (Node), a MessageChannel
 * message (browsers, Web Workers; unlike setTimeout it is not clamped to 4 ms when nested), else
 * setTimeout. Not in a Workers isolate (workerd): there a MessageChannel message is delivered
 * without the runtime taking any I/O in between, so a loop yielding through it still held the
 * isolate (a request, /healthz, a client's abort all waited for the whole prefill or generation;
 * measured under wrangler dev: 1 request answered over 150 yields between 10 ms of work, 11 with
 * setTimeout(0), whose timer does go through the runtime's event loop).
 */
function pickSchedule(): Schedule {
  const host = globalThis as unknown as YieldingGlobals
  const immediate = host.setImmediate
  if (typeof immediate === 'function') return (callback) => void immediate(callback)
  if (host.navigator?.userAgent === 'Cloudflare-Workers') return (callback) => void setTimeout(callback, 0)
  const Channel = host.MessageChannel
  if (typeof Channel === 'function') {
    const waiting: (() => void)[] = []
    let channel: InstanceType<NonNullable<YieldingGlobals['MessageChannel']>> | undefined
    return (callback) => {
      if (channel === undefined) {
        channel = new Channel()
        channel.port1.onmessage = () => waiting.shift()?.()
      }
      waiting.push(callback)
      channel.port2.postMessage(0)
    }
  }
  return (callback) => void setTimeout(callback, 0)
}

let schedule: Schedule | undefined

/** Resolves after one macrotask: timers, I/O and other requests run in between. */
export function yieldToEventLoop(): Promise<void> {
  schedule ??= pickSchedule()
  const run = schedule
  return new Promise<void>((resolve) => run(resolve))
}

export interface TimeSlice {
  /** Yields to the event loop when `sliceMilliseconds` passed since the last yield; else resolves at once. */
  maybeYield(): Promise<void> | undefined
}

/**
 * The most calls a slice lets pass on a clock that has not moved since its last yield: bounds the
 * stretch a fast loop runs between yields while the slice learns how many calls fill it.
 */
const maxStillCalls = 65_536

/**
 * A time slice for a long loop: call `maybeYield()` each iteration and await what it returns.
 * Give each loop its own: on a clock that stands still (below) the slice learns how long that
 * loop's iterations are, so one of microseconds (a continuation's text) and one of model steps
 * sharing a slice would run the slow one many steps between yields.
 */
export function createTimeSlice(sliceMilliseconds = 10): TimeSlice {
  let sliceStart = performance.now()
  // Calls since the last yield that read the clock exactly where that yield left it.
  let stillCalls = 0
  // How many such calls pass before the slice yields anyway.
  let stillBudget = 1
  const pause = (still: boolean): Promise<void> => {
    const yieldedAt = sliceStart
    const calls = stillCalls
    return yieldToEventLoop().then(() => {
      sliceStart = performance.now()
      stillCalls = 0
      // No reading moved across the yield: nothing learnt, so the budget stays (never grows on a
      // clock that tells nothing, which would leave a slow loop unyielding).
      if (!still || sliceStart === yieldedAt) return
      // What the time from the last yield to this one (the calls' work and this yield, which
      // moved the clock) says about the number of calls that fill a slice: double it at most per
      // yield (one slow call early does not stop the loop from yielding again soon).
      const span = Math.max(sliceStart - yieldedAt, 0.001)
      const fill = Math.floor((calls * sliceMilliseconds) / span)
      stillBudget = Math.max(1, Math.min(maxStillCalls, stillBudget * 2, fill))
    })
  }
  return {
    maybeYield() {
      const now = performance.now()
      if (now - sliceStart >= sliceMilliseconds) return pause(false)
      if (now !== sliceStart) return undefined
      // The clock reads where the last yield left it. A host that stops its clocks while code
      // runs (a deployed Worker: they advance only at I/O) reads that at every call however long
      // the loop has run, so no slice would ever end and a generation would hold the isolate to
      // its last token; one whose clock is coarse (whole milliseconds: wrangler dev's workerd,
      // Firefox, Safari) reads it for every call shorter than a tick. Yielding at each such call
      // (a millisecond's setTimeout(0) in workerd) made a continuation replayed at microseconds a
      // token pay a millisecond a token; so the slice yields after `stillBudget` of them, which
      // it fits to what the clock said at each yield: a call of a model step (10 ms and more)
      // still yields each time, one of microseconds about once a slice. On a coarse clock the
      // ticks take over once the budget outlasts one.
      stillCalls++
      if (stillCalls < stillBudget) return undefined
      return pause(true)
    },
  }
}
