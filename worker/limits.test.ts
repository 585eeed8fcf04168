// The pieces that protect the endpoint, on their own: key checks, rate limits, generation slots.
import { describe, expect, it } from 'vitest'
import { OndeviceError } from '../core/errors.ts'
import { createKeyChecker, parseApiKeys } from './auth.ts'
import { createGenerationSlots } from './generation-slots.ts'
import { createMemoryRateLimiter } from './rate-limit.ts'

const key = 'k'.repeat(20)
const otherKey = 'o'.repeat(20)

describe('API keys', () => {
  it('accepts a configured key and names it by a short id, never the key', async () => {
    const checker = createKeyChecker([key, otherKey])
    const id = await checker.check(`Bearer ${key}`)
    expect(id).toMatch(/^key-[0-9a-f]{12}$/)
    expect(id).not.toContain(key)
    expect(await checker.check(`bearer ${otherKey}`)).not.toBe(id)
  })

  it('refuses missing, malformed and wrong keys with `unauthorized`', async () => {
    const checker = createKeyChecker([key])
    for (const header of [undefined, '', 'Basic abc', `Bearer ${key}x`, `Bearer ${key.slice(1)}`, 'Bearer']) {
      const error = await checker.check(header).catch((caught: unknown) => caught)
      expect(error, String(header)).toBeInstanceOf(OndeviceError)
      expect((error as OndeviceError).code).toBe('unauthorized')
    }
  })

  it('is open when no key is configured, and refuses keys too short to be secrets', async () => {
    expect(await createKeyChecker([]).check(undefined)).toBe('anonymous')
    expect(() => createKeyChecker(['short'])).toThrow(/apiKeys|16 characters/)
    expect(parseApiKeys(` ${key}, ${otherKey}\n`)).toEqual([key, otherKey])
  })
})

describe('in-isolate rate limiter', () => {
  it('allows the burst, refuses the next with a Retry-After, refills over time, per key', async () => {
    let now = 0
    const limiter = createMemoryRateLimiter({ limit: 3, periodSeconds: 60, now: () => now })
    for (let index = 0; index < 3; index++) expect((await limiter.limit('a')).allowed).toBe(true)
    const refused = await limiter.limit('a')
    expect(refused.allowed).toBe(false)
    expect(refused.retryAfterSeconds).toBe(20)
    expect((await limiter.limit('b')).allowed).toBe(true)
    now += 20_000
    expect((await limiter.limit('a')).allowed).toBe(true)
    expect((await limiter.limit('a')).allowed).toBe(false)
  })

  it('keeps its memory bounded', async () => {
    const limiter = createMemoryRateLimiter({ limit: 1, periodSeconds: 1, maxKeys: 10, now: () => 0 })
    for (let index = 0; index < 100; index++) await limiter.limit(`key-${index}`)
    // The oldest keys were forgotten, so key-0 gets a fresh bucket.
    expect((await limiter.limit('key-0')).allowed).toBe(true)
  })
})

describe('generation slots', () => {
  it('runs maxConcurrent, queues maxQueue in order, refuses the rest with overloaded', async () => {
    const slots = createGenerationSlots({ maxConcurrent: 1, maxQueue: 2, queueTimeoutMs: 10_000 })
    const releaseFirst = await slots.acquire()
    const order: number[] = []
    const second = slots.acquire().then((release) => {
      order.push(2)
      return release
    })
    const third = slots.acquire().then((release) => {
      order.push(3)
      return release
    })
    const refused = await slots.acquire().catch((error: unknown) => error)
    expect((refused as OndeviceError).code).toBe('overloaded')
    expect((refused as OndeviceError).retryAfterSeconds).toBeGreaterThan(0)
    expect(slots.queued).toBe(2)
    releaseFirst()
    releaseFirst() // a second release of the same slot is ignored
    ;(await second)()
    ;(await third)()
    expect(order).toEqual([2, 3])
    expect(slots.active).toBe(0)
  })

  it('lets a waiter leave on abort or timeout without taking a slot', async () => {
    const slots = createGenerationSlots({ maxConcurrent: 1, maxQueue: 4, queueTimeoutMs: 50 })
    const release = await slots.acquire()
    const controller = new AbortController()
    const aborted = slots.acquire(controller.signal).catch((error: unknown) => error)
    controller.abort()
    expect(((await aborted) as OndeviceError).code).toBe('aborted')
    const timedOut = await slots.acquire().catch((error: unknown) => error)
    expect((timedOut as OndeviceError).code).toBe('overloaded')
    expect(slots.queued).toBe(0)
    release()
    expect(slots.active).toBe(0)
  })
})
