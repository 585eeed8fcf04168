// The device slot's memory of a failed load against the wall clock: the system clock can be set
// back while an app runs (NTP, a user, a phone syncing its time), which must not keep the device
// off for as long as the change. A real clock change cannot be made in a test, so Date.now is
// what moves here; the load fails for real (no on-device runtime).
import { afterEach, describe, expect, it, vi } from 'vitest'
import { DeviceSlot } from './device-slot.ts'

afterEach(() => {
  vi.restoreAllMocks()
})

describe('DeviceSlot', () => {
  it('a failed load is tried again a minute later however the wall clock moves (set back a day, the device stayed off for a day)', async () => {
    const errors: unknown[] = []
    const slot = new DeviceSlot(
      Promise.resolve(undefined),
      undefined,
      {},
      {
        onProgress: () => undefined,
        onReady: () => undefined,
        onBackgroundError: (error) => errors.push(error),
      },
    )
    await expect(slot.load()).rejects.toMatchObject({ code: 'backend_unavailable' })
    const failed = slot.recentFailure
    expect(failed?.retryInMs).toBeGreaterThan(55_000)
    expect(failed?.retryInMs).toBeLessThanOrEqual(60_000)
    const realNow = Date.now.bind(Date)
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 86_400_000)
    expect(slot.recentFailure?.retryInMs).toBeLessThanOrEqual(60_000)
    await slot.dispose()
  })
})
