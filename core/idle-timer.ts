// An idle timer for a download: a server that sends headers and part of a body, then stops
// without closing the connection, would otherwise keep the download (and everything waiting on
// it) pending for as long as the socket lives. Every chunk counts as activity; when no chunk came
// for the timeout it aborts through the signal handed to fetch, which errors the response body.
// Shared by the stores (client-runtime/store) and the engine's module fetch (wasm/engine/browser.ts).
import { InvalidArgumentError } from './errors.ts'

export interface IdleTimer {
  /** Pass to fetch: aborts when the caller's signal does, or when no byte came for the timeout. */
  readonly signal: AbortSignal
  /** True once the timer ran out (tells an idle stall from the caller's abort or a cut connection). */
  readonly expired: boolean
  /** Call on every chunk that arrives. */
  touch(): void
  /** Stops the timer (call when the download ends, whatever the outcome). */
  stop(): void
}

/** Throws InvalidArgumentError naming `param` unless `value` is a positive number of ms (or unset). */
export function checkTimeout(param: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value > 0) || value > 2_147_483_647) {
    throw new InvalidArgumentError(
      param,
      `${param} must be a positive number of milliseconds (at most 2147483647), got ${String(value)}. Default: ${fallback}.`,
    )
  }
  return value
}

export function startIdleTimer(timeoutMs: number, callerSignal?: AbortSignal): IdleTimer {
  const idle = new AbortController()
  let expired = false
  let stopped = false
  let timer: ReturnType<typeof setTimeout> | undefined
  /** When the last chunk came. touch() only notes it: a timer per chunk (clearTimeout + setTimeout
   * for every piece of a body) cost a streamed load at the edge seconds of CPU in workerd.
   * performance.now, not the wall clock: a clock set back re-armed the timer for as long as the
   * change (past a timer's limit: every millisecond, never expiring), one set forward expired it. */
  let last = performance.now()
  const arm = (delay: number) => {
    timer = setTimeout(() => {
      if (stopped) return
      const quiet = performance.now() - last
      if (quiet < timeoutMs) {
        arm(timeoutMs - quiet)
        return
      }
      expired = true
      idle.abort(new Error(`no bytes received for ${timeoutMs} ms`))
    }, delay)
  }
  arm(timeoutMs)
  return {
    signal: callerSignal ? AbortSignal.any([callerSignal, idle.signal]) : idle.signal,
    get expired() {
      return expired
    },
    touch() {
      last = performance.now()
    },
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}
