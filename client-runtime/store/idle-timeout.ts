// The stores' download timing: their default idle timeout, the error a stalled download becomes,
// and a body read bounded in size and in idle time. The idle timer itself is core's (core/idle-timer.ts,
// shared with the engine's module fetch).
import { concatBytes } from '../../core/concat-bytes.ts'
import { OndeviceError, StoreError } from '../../core/errors.ts'
import { checkTimeout, type IdleTimer } from '../../core/idle-timer.ts'

export { checkTimeout, type IdleTimer, startIdleTimer } from '../../core/idle-timer.ts'

/** Default for the stores' `idleTimeoutMs`: long enough for a slow mobile link, short enough to retry. */
export const defaultIdleTimeoutMs = 30_000

/** Throws InvalidArgumentError unless `value` is a usable idle timeout (a positive number of ms). */
export function checkIdleTimeout(value: number | undefined): number {
  return checkTimeout('idleTimeoutMs', value, defaultIdleTimeoutMs)
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
  return concatBytes(chunks, received)
}
