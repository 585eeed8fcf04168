// The stores' retry loop on its own, on a fake clock: how long it pauses between tries when an
// app asks for many retries (the pauses stop doubling at a minute), and what its final error says.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { type OndeviceError, StoreError } from '../../core/errors.ts'
import { checkRetryOptions, maximumRetryPauseMs, retryAfterSeconds, withRetries } from './retry.ts'

afterEach(() => {
  vi.useRealTimers()
})

/** Runs withRetries over a download that always fails retryably; the times each try started. */
async function triesOf(
  retries: number,
  delayMs: number,
): Promise<{ starts: number[]; error: OndeviceError }> {
  vi.useFakeTimers()
  const starts: number[] = []
  const pending = withRetries(
    async () => {
      starts.push(Date.now())
      throw new StoreError('download_failed', 'the connection was cut', { isRetryable: true })
    },
    checkRetryOptions(retries, delayMs),
    undefined,
  ).catch((error: unknown) => error as OndeviceError)
  await vi.runAllTimersAsync()
  return { starts, error: await pending }
}

describe('withRetries', () => {
  it('doubles the pause up to a minute, never to hours or days (20 retries from 1 s)', async () => {
    const { starts, error } = await triesOf(20, 1_000)
    expect(starts).toHaveLength(21)
    const pauses = starts.slice(1).map((start, index) => start - (starts[index] as number))
    expect(pauses.slice(0, 6)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000])
    expect(Math.max(...pauses)).toBe(maximumRetryPauseMs)
    // 63 s of doubling, then 14 pauses of a minute.
    expect(error).toMatchObject({ code: 'download_failed', isRetryable: true })
    expect(error.message).toMatch(/gave up after 21 tries over the last 903 s or more/)
  })

  it('a first pause longer than the cap is kept as it is, not doubled', async () => {
    const { starts } = await triesOf(3, 120_000)
    const pauses = starts.slice(1).map((start, index) => start - (starts[index] as number))
    expect(pauses).toEqual([120_000, 120_000, 120_000])
  })
})

describe('retryAfterSeconds', () => {
  it('reads delta-seconds and HTTP dates, never below 0, and nothing else', () => {
    const now = Date.parse('2026-12-07T08:00:00Z')
    expect(retryAfterSeconds('120', now)).toBe(120)
    expect(retryAfterSeconds('-5', now)).toBe(0)
    expect(retryAfterSeconds('Mon, 07 Dec 2026 08:01:30 GMT', now)).toBe(90)
    expect(retryAfterSeconds('Mon, 07 Dec 2026 07:00:00 GMT', now)).toBe(0)
    for (const value of [null, '', '  ', 'soon', 'Infinity', 'NaN'])
      expect(retryAfterSeconds(value, now)).toBeUndefined()
  })
})
