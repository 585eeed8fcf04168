// Retries with backoff for the stores' network steps. A bad connection cuts a download, stalls it
// or answers 5xx now and then; one such hiccup should not fail a whole load (and an app's
// prepare()) when the next try, resuming with HTTP Range from what the last one kept, would have
// gone through. Only retryable download_failed errors are tried again (a cut, a stall, a network
// error, 5xx/429); a wrong file, a missing one, a full disk or the caller's abort fail at once.
import { AbortedError, InvalidArgumentError, OndeviceError, StoreError } from '../../core/errors.ts'
import { parseRetryAfter } from '../../core/retry-after.ts'

export interface RetryOptions {
  /** Further tries after the first. */
  readonly retries: number
  /** Wait before the first retry; doubled for each later one. */
  readonly delayMs: number
}

/** Defaults: 3 more tries after 1, 2 and 4 s (7 s of waiting at most, plus the tries themselves). */
export const defaultRetryOptions: RetryOptions = { retries: 3, delayMs: 1_000 }

/**
 * The longest pause between two tries (unless `delayMs` itself is longer): the doubling stops
 * there, so 20 retries wait minutes, not the days that 2^19 s would be (and no pause outgrows
 * setTimeout's 2^31 - 1 ms, past which it fires at once).
 */
export const maximumRetryPauseMs = 60_000

/** The pause before retry number `attempt + 1` (0-based `attempt`). */
export function retryPauseMs(options: RetryOptions, attempt: number): number {
  return Math.min(options.delayMs * 2 ** attempt, Math.max(options.delayMs, maximumRetryPauseMs))
}

/** Checks a store's `downloadRetries` / `downloadRetryDelayMs` and fills in the defaults. */
export function checkRetryOptions(retries: number | undefined, delayMs: number | undefined): RetryOptions {
  if (retries !== undefined && (!Number.isSafeInteger(retries) || retries < 0 || retries > 20)) {
    throw new InvalidArgumentError(
      'downloadRetries',
      `downloadRetries must be a whole number from 0 to 20, got ${String(retries)}. Default: ${defaultRetryOptions.retries}.`,
    )
  }
  if (delayMs !== undefined && (typeof delayMs !== 'number' || !(delayMs >= 0) || delayMs > 600_000)) {
    throw new InvalidArgumentError(
      'downloadRetryDelayMs',
      `downloadRetryDelayMs must be a number of milliseconds from 0 to 600000, got ${String(delayMs)}. Default: ${defaultRetryOptions.delayMs}.`,
    )
  }
  return { retries: retries ?? defaultRetryOptions.retries, delayMs: delayMs ?? defaultRetryOptions.delayMs }
}

/**
 * The seconds a Retry-After header asks for (delta-seconds or an HTTP date; within 0 and an hour,
 * as the edge client reads it), undefined when there is none or it cannot be read.
 */
export function retryAfterSeconds(value: string | null, now = Date.now()): number | undefined {
  return parseRetryAfter(value, now)
}

export function isRetryableDownload(error: unknown): boolean {
  return error instanceof OndeviceError && error.code === 'download_failed' && error.isRetryable
}

/** Waits `ms`, or throws AbortedError as soon as `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(new AbortedError(undefined, { cause: signal.reason }))
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer)
      reject(new AbortedError(undefined, { cause: signal?.reason }))
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * Runs `work`, and again after a growing pause while it fails with a retryable download_failed,
 * `retries` times at most; the last failure is thrown as it is (still retryable, for the app's
 * own later try). The caller's `signal` ends the pauses at once.
 */
export async function withRetries<T>(
  work: (attempt: number) => Promise<T>,
  options: RetryOptions,
  signal: AbortSignal | undefined,
  /** What the give-up message adds about what the tries left behind. */
  leftBehind = 'what arrived is kept where the store can resume',
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await work(attempt)
    } catch (error) {
      if (!isRetryableDownload(error) || signal?.aborted) throw error
      if (attempt >= options.retries) {
        if (attempt === 0) throw error
        // Say that it was tried, so the app does not simply try at once again.
        let pausedMs = 0
        for (let before = 0; before < attempt; before++) pausedMs += retryPauseMs(options, before)
        throw new StoreError(
          'download_failed',
          `${(error as Error).message} (gave up after ${attempt + 1} tries over the last ${Math.round(pausedMs / 1000)} s or more; ${leftBehind})`,
          {
            isRetryable: true,
            cause: error,
            ...((error as OndeviceError).retryAfterSeconds === undefined
              ? {}
              : { retryAfterSeconds: (error as OndeviceError).retryAfterSeconds }),
          },
        )
      }
      // A server's Retry-After (429, 503) is honoured: the pause is at least that long, and a server
      // that asks for longer than a pause may last is not asked again now (the error carries
      // retryAfterSeconds for the app's own later try).
      let pauseMs = retryPauseMs(options, attempt)
      const asked = (error as OndeviceError).retryAfterSeconds
      if (asked !== undefined) {
        if (asked * 1000 > Math.max(options.delayMs, maximumRetryPauseMs)) throw error
        pauseMs = Math.max(pauseMs, asked * 1000)
      }
      await pause(pauseMs, signal)
    }
  }
}
