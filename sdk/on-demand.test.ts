// A chunk loaded on first use: one load shared by every caller, and a failed load tried again by
// the next call (a page must not keep a brief network failure until it reloads).
import { describe, expect, it } from 'vitest'
import { BackendError } from '../core/errors.ts'
import { onDemand } from './on-demand.ts'

describe('onDemand', () => {
  it('loads once for every caller', async () => {
    let loads = 0
    const load = onDemand(async () => ++loads)
    expect(await Promise.all([load(), load(), load()])).toEqual([1, 1, 1])
    expect(await load()).toBe(1)
  })

  it('rejects a failed load with a retryable BackendError, and the next call loads again', async () => {
    let calls = 0
    const load = onDemand(async () => {
      calls++
      if (calls === 1)
        throw new TypeError('Failed to fetch dynamically imported module: /assets/runtime-host.js')
      return 'runtime'
    })
    const failure = await load().catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(BackendError)
    expect(failure).toMatchObject({ code: 'backend_unavailable', isRetryable: true })
    expect((failure as Error).message).toContain('Failed to fetch dynamically imported module')
    expect((failure as Error).cause).toBeInstanceOf(TypeError)
    expect(await load()).toBe('runtime')
    expect(calls).toBe(2)
  })
})
