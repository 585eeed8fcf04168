// The idle timer against the wall clock: the system clock can be set back or forward while a
// download runs (NTP, a user, a phone that syncs its time), which must not move when a stall is
// called. A real clock change cannot be made in a test, so Date.now is what moves here.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { startIdleTimer } from './idle-timer.ts'

const day = 86_400_000

function expiry(
  timer: ReturnType<typeof startIdleTimer>,
  withinMs: number,
): Promise<'expired' | 'not expired'> {
  return new Promise((resolve) => {
    const bound = setTimeout(() => resolve('not expired'), withinMs)
    timer.signal.addEventListener('abort', () => {
      clearTimeout(bound)
      resolve('expired')
    })
  })
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('startIdleTimer', () => {
  it("a clock set back 30 days still stalls after the timeout (it re-armed for 30 days, past a timer's limit: every millisecond, never expiring)", async () => {
    const realNow = Date.now.bind(Date)
    const timer = startIdleTimer(200)
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 30 * day)
    try {
      expect(await expiry(timer, 3_000)).toBe('expired')
      expect(timer.expired).toBe(true)
    } finally {
      timer.stop()
    }
  })
})
