// An idle timer for downloads: a server that sends headers and part of a body, then stops without
// closing the connection, would otherwise keep a download (and every load waiting on it) pending
// for as long as the socket lives. Every chunk counts as activity; when no chunk came for the
// timeout it aborts the fetch through the signal handed to it, which errors the response body.
import { InvalidArgumentError, OndeviceError, StoreError } from '../../core/errors.ts'

/** Default for the stores' `idleTimeoutMs`: long enough for a slow mobile link, short enough to retry. */
export const defaultIdleTimeoutMs = 30_000

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

/** Throws InvalidArgumentError unless `value` is a usable idle timeout (a positive number of ms). */
export function checkIdleTimeout(value: number | undefined): number {
  return checkTimeout('idleTimeoutMs', value, defaultIdleTimeoutMs)
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

/** The retryable error for a download whose timer ran out after `written` bytes (both stores). */
export function stalledError(url: URL, timeoutMs: number, written: number, cause: unknown): StoreError {
  return new StoreError(
    'download_failed',
    `Downloading ${url.href} stalled: no bytes for ${timeoutMs} ms${written > 0 ? ` after ${written} bytes` : ''} (the server kept the connection open). The next try resumes from there; raise idleTimeoutMs for a very slow link.`,
    { isRetryable: true, cause },
  )
}

/**
 * What a body read that threw becomes: a stall when the idle timer ran out, the project's own error
 * as it is, anything else a retryable download_failed saying how far it got.
 */
export function bodyReadError(
  error: unknown,
  url: URL,
  idle: IdleTimer,
  idleTimeoutMs: number,
  received: number,
): OndeviceError {
  if (idle.expired) return stalledError(url, idleTimeoutMs, received, error)
  if (error instanceof OndeviceError) return error
  return new StoreError(
    'download_failed',
    `Reading ${url.href} broke off after ${received} bytes: ${error instanceof Error ? error.message : String(error)}. Try again.`,
    { isRetryable: true, cause: error },
  )
}

export function startIdleTimer(timeoutMs: number, callerSignal: AbortSignal | undefined): IdleTimer {
  const idle = new AbortController()
  let expired = false
  let stopped = false
  let timer: ReturnType<typeof setTimeout> | undefined
  /** When the last chunk came. touch() only notes it: a timer per chunk (clearTimeout + setTimeout
   * for every piece of a body) cost a streamed load at the edge seconds of CPU in workerd. */
  let last = Date.now()
  const arm = (delay: number) => {
    timer = setTimeout(() => {
      if (stopped) return
      const quiet = Date.now() - last
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
      last = Date.now()
    },
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}

export interface BoundedReadOptions {
  /** The timer the fetch was started with (its signal aborts the body when it runs out). */
  readonly idle: IdleTimer
  readonly idleTimeoutMs: number
  /** Most bytes the body may have; past it the read stops and `tooLarge` is thrown. */
  readonly maxBytes: number
  /** The error for a body past `maxBytes` (`received`: bytes read when it was noticed). */
  readonly tooLarge: (received: number) => Error
}

/**
 * Reads a response body whole, watched by an idle timer restarted on every chunk and stopped at
 * `maxBytes`: a server that sends headers and a byte and then nothing, or a gigabyte for a file
 * that should hold a kilobyte, costs at most the timeout and `maxBytes` of memory instead of a
 * load that never ends or an isolate that runs out of memory. Used wherever a whole file is read
 * into memory (the Node store's manifest.json, the edge's MODEL_URL reader).
 */
export async function readBodyWithin(
  response: Response,
  url: URL,
  options: BoundedReadOptions,
): Promise<Uint8Array> {
  const { idle, idleTimeoutMs, maxBytes } = options
  const declared = Number(response.headers.get('content-length') ?? Number.NaN)
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined)
    throw options.tooLarge(declared)
  }
  if (!response.body) return new Uint8Array(0)
  const reader = response.body.getReader()
  const chunks: Uint8Array[] = []
  let received = 0
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      idle.touch()
      received += value.byteLength
      if (received > maxBytes) {
        await reader.cancel().catch(() => undefined)
        throw options.tooLarge(received)
      }
      chunks.push(value)
    }
  } catch (error) {
    throw bodyReadError(error, url, idle, idleTimeoutMs, received)
  }
  const bytes = new Uint8Array(received)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return bytes
}
