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

/** A time slice for a long loop: call `maybeYield()` each iteration and await what it returns. */
export function createTimeSlice(sliceMilliseconds = 10): TimeSlice {
  let sliceStart = performance.now()
  let lastReading = sliceStart
  return {
    maybeYield() {
      const now = performance.now()
      // A host that stops its clocks while code runs (a Workers isolate: they advance only at
      // I/O) reads the same time at every call however long the loop has run, so no slice would
      // ever end and a generation would hold the isolate to its last token. A reading equal to
      // the last one yields at once: each call follows an iteration's work (a model step, a
      // token), so elsewhere a repeat only means an iteration shorter than the clock's resolution.
      const frozen = now === lastReading
      lastReading = now
      if (!frozen && now - sliceStart < sliceMilliseconds) return undefined
      return yieldToEventLoop().then(() => {
        sliceStart = performance.now()
        lastReading = sliceStart
      })
    },
  }
}
