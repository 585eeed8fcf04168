// The stores' retry loop on its own, on a fake clock: how long it pauses between tries when an
// app asks for many retries (the pauses stop doubling at a minute), and what its final error says.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { type OndeviceError, StoreError } from '../../core/errors.ts'
import { parseRetryAfter } from '../../sdk/edge-client.ts'
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

  it("reads only the header's forms and at most an hour, as the edge client does (a garbled value was a years-long wait: Date.parse takes 'soon 2030')", () => {
    const now = Date.parse('1994-11-06T08:49:00Z')
    // The three HTTP-date forms RFC 9110 names (asctime has no zone: GMT).
    for (const value of [
      'Sun, 06 Nov 1994 08:49:37 GMT',
      'Sunday, 06-Nov-94 08:49:37 GMT',
      'Sun Nov  6 08:49:37 1994',
    ])
      expect(retryAfterSeconds(value, now)).toBe(37)
    for (const value of ['soon 2030', 'retry in 5', '1e3', '0x10', '12 seconds'])
      expect(retryAfterSeconds(value, now)).toBeUndefined()
    // A server's word is not a ten-year ban: the error's retryAfterSeconds is the edge's, an hour at most.
    expect(retryAfterSeconds('315360000', now)).toBe(3600)
    expect(retryAfterSeconds('Sun, 06 Nov 2094 08:49:37 GMT', now)).toBe(3600)
    for (const value of ['soon 2030', '315360000', 'Sun, 06 Nov 2094 08:49:37 GMT', '-5', ' 7 '])
      expect(retryAfterSeconds(value, now)).toBe(parseRetryAfter(value, now))
  })
})
