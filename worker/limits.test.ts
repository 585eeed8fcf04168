// The pieces that protect the endpoint, on their own: key checks, rate limits, generation slots.
import { describe, expect, it } from 'vitest'
import { OndeviceError } from '../core/errors.ts'
import { createKeyChecker, parseApiKeys } from './auth.ts'
import { createGenerationSlots } from './generation-slots.ts'
import { createMemoryRateLimiter, workersRateLimiter } from './rate-limit.ts'

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
    expect(() => createKeyChecker([key, 'short'])).toThrow(
      'API key 2 of 2 (API_KEYS, or the apiKeys option) has 5 characters: each key must be a string of at least 16 characters',
    )
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

describe('the Workers rate-limiting binding', () => {
  it('answers from the binding, and from the in-isolate bucket when the binding fails', async () => {
    let failing = false
    const errors: unknown[] = []
    const binding = {
      async limit({ key }: { key: string }) {
        if (failing) throw new Error('database is locked: SQLITE_BUSY')
        return { success: key !== 'blocked' }
      },
    }
    const fallback = createMemoryRateLimiter({ limit: 1, periodSeconds: 60, now: () => 0 })
    const limiter = workersRateLimiter(binding, 10, fallback, (error) => errors.push(error))
    expect(await limiter.limit('a')).toEqual({ allowed: true, retryAfterSeconds: 0 })
    expect(await limiter.limit('blocked')).toEqual({ allowed: false, retryAfterSeconds: 10 })
    failing = true
    // Still limited while the binding is down: the bucket allows one, then refuses.
    expect((await limiter.limit('a')).allowed).toBe(true)
    expect((await limiter.limit('a')).allowed).toBe(false)
    expect(errors).toHaveLength(2)
  })
})

describe('generation slots', () => {
  it('runs maxConcurrent, queues maxQueue in order, refuses the rest with overloaded', async () => {
    const slots = createGenerationSlots({ maxConcurrent: 1, maxQueue: 2, queueTimeoutMs: 10_000 })
    const first = await slots.acquire()
    const order: number[] = []
    const second = slots.acquire().then((lease) => {
      order.push(2)
      return lease
    })
    const third = slots.acquire().then((lease) => {
      order.push(3)
      return lease
    })
    const refused = await slots.acquire().catch((error: unknown) => error)
    expect((refused as OndeviceError).code).toBe('overloaded')
    expect((refused as OndeviceError).retryAfterSeconds).toBeGreaterThan(0)
    expect(slots.queued).toBe(2)
    first.release()
    first.release() // a second release of the same slot is ignored
    ;(await second).release()
    ;(await third).release()
    expect(order).toEqual([2, 3])
    expect(slots.active).toBe(0)
  })

  it('lets a waiter leave on abort or timeout without taking a slot', async () => {
    const slots = createGenerationSlots({ maxConcurrent: 1, maxQueue: 4, queueTimeoutMs: 50 })
    const lease = await slots.acquire()
    const controller = new AbortController()
    const aborted = slots.acquire(controller.signal).catch((error: unknown) => error)
    controller.abort()
    expect(((await aborted) as OndeviceError).code).toBe('aborted')
    const timedOut = await slots.acquire().catch((error: unknown) => error)
    expect((timedOut as OndeviceError).code).toBe('overloaded')
    expect(slots.queued).toBe(0)
    lease.release()
    expect(slots.active).toBe(0)
  })

  it("gives up on a waiter at the earlier of queueTimeoutMs and the request's own wait", async () => {
    const slots = createGenerationSlots({ maxConcurrent: 1, maxQueue: 4, queueTimeoutMs: 30_000 })
    const lease = await slots.acquire()
    const startedAt = Date.now()
    const shortened = (await slots
      .acquire(undefined, undefined, 100)
      .catch((error: unknown) => error)) as OndeviceError
    expect(Date.now() - startedAt).toBeLessThan(5000)
    expect(shortened.code).toBe('overloaded')
    expect(shortened.retryAfterSeconds).toBe(1)
    expect(shortened.message).toMatch(
      /Waited 100 ms for a generation slot without getting one \(what was left of this request's Prefer: wait; the queue allows 30000 ms, QUEUE_TIMEOUT_MS\)/,
    )
    // A longer wait than the queue's is cut to the queue's.
    const capped = createGenerationSlots({ maxConcurrent: 1, maxQueue: 4, queueTimeoutMs: 50 })
    const held = await capped.acquire()
    const timedOut = (await capped
      .acquire(undefined, undefined, 60_000)
      .catch((error: unknown) => error)) as OndeviceError
    expect(timedOut.message).toMatch(
      /^Waited 50 ms for a generation slot without getting one\. Retry later\.$/,
    )
    held.release()
    lease.release()
    expect(slots.queued).toBe(0)
    expect(capped.queued).toBe(0)
  })

  it('reclaims a lease that stopped making progress and tells its owner', async () => {
    let now = 0
    const slots = createGenerationSlots({
      maxConcurrent: 1,
      maxQueue: 0,
      queueTimeoutMs: 1000,
      stallTimeoutMs: 5000,
      now: () => now,
    })
    let reclaimed = 0
    const dead = await slots.acquire(undefined, () => reclaimed++)
    now = 4000
    dead.touch()
    now = 8000
    // Touched 4 s ago: still alive, so the newcomer is refused.
    expect(((await slots.acquire().catch((error: unknown) => error)) as OndeviceError).code).toBe(
      'overloaded',
    )
    now = 9500
    const next = await slots.acquire()
    expect(reclaimed).toBe(1)
    expect(dead.reclaimed).toBe(true)
    dead.release() // the dead owner's late release changes nothing
    expect(slots.active).toBe(1)
    next.release()
    expect(slots.active).toBe(0)
  })
})
