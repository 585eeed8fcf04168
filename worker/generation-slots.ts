// Concurrent generations per isolate. A model session runs one generation at a time and each
// session holds its own cache, so the isolate allows `maxConcurrent` generations, lets up to
// `maxQueue` more wait their turn (first come, first served), and refuses the rest at once with
// 429 rather than letting memory and latency grow without bound.
//
// A slot is a lease that its generation touches on every step. Workers may cancel a request
// outright (client gone before its stream was read, CPU limit, the runtime judging it hung), and
// then none of its code runs again, not even `finally`: its slot would be lost for the life of
// the isolate. So a lease untouched for `stallTimeoutMs` is reclaimed by the next request that
// needs a slot, and its owner is told (to discard the session it held).
import { AbortedError, OndeviceError } from '../core/errors.ts'

export interface GenerationSlotsOptions {
  readonly maxConcurrent: number
  readonly maxQueue: number
  /**
   * How long a request may wait in the queue before it is refused (429), unless it asks for less
   * (`acquire`'s `waitMs`: what is left of its `Prefer: wait`).
   */
  readonly queueTimeoutMs: number
  /** A lease untouched this long is considered dead and reclaimed. Default 60 s. */
  readonly stallTimeoutMs?: number
  readonly now?: () => number
}

export interface SlotLease {
  /** Gives the slot back (idempotent; a no-op once reclaimed). */
  release(): void
  /** Marks progress, so the lease is not taken for a dead one. */
  touch(): void
  /** True once the slot was taken back because the lease stalled. */
  readonly reclaimed: boolean
}

export interface GenerationSlots {
  /**
   * Resolves with a lease once a slot is free; throws `overloaded` (queue full or waited too
   * long) or `aborted`. `onReclaim` runs if the lease is ever reclaimed as stalled. `waitMs`
   * shortens the queue's wait for this request below `queueTimeoutMs` (what is left of the wait
   * its client said it allows: past it, the client has given up on the answer and would never
   * see the 429).
   */
  acquire(signal?: AbortSignal, onReclaim?: () => void, waitMs?: number): Promise<SlotLease>
  readonly active: number
  readonly queued: number
}

interface Waiter {
  grant(lease: Lease): void
}

interface Lease extends SlotLease {
  lastActivity: number
  onReclaim: (() => void) | undefined
  reclaim(): void
}

export function createGenerationSlots(options: GenerationSlotsOptions): GenerationSlots {
  const { maxConcurrent, maxQueue, queueTimeoutMs } = options
  const stallTimeoutMs = options.stallTimeoutMs ?? 60_000
  const now = options.now ?? (() => Date.now())
  const leases = new Set<Lease>()
  const waiters: Waiter[] = []

  // Hands a freed slot straight to the next waiter, so a newcomer cannot overtake the queue.
  const handOver = () => {
    const next = waiters.shift()
    if (next) next.grant(createLease())
  }

  function createLease(): Lease {
    let done = false
    let reclaimed = false
    const lease: Lease = {
      lastActivity: now(),
      onReclaim: undefined,
      get reclaimed() {
        return reclaimed
      },
      touch() {
        lease.lastActivity = now()
      },
      release() {
        if (done) return
        done = true
        leases.delete(lease)
        handOver()
      },
      reclaim() {
        if (done) return
        done = true
        reclaimed = true
        leases.delete(lease)
        try {
          lease.onReclaim?.()
        } catch {
          // The owner's cleanup is best effort; the slot is free either way.
        }
        handOver()
      },
    }
    leases.add(lease)
    return lease
  }

  const reclaimStalled = () => {
    const limit = now() - stallTimeoutMs
    for (const lease of [...leases]) if (lease.lastActivity < limit) lease.reclaim()
  }

  // Retry-After: half of what this request would wait in the queue.
  const overloaded = (message: string, boundMs: number) =>
    new OndeviceError('overloaded', message, {
      isRetryable: true,
      retryAfterSeconds: Math.max(1, Math.ceil(boundMs / 1000 / 2)),
    })

  const withOwner = (lease: Lease, onReclaim: (() => void) | undefined): SlotLease => {
    lease.onReclaim = onReclaim
    return lease
  }

  return {
    get active() {
      return leases.size
    },
    get queued() {
      return waiters.length
    },
    acquire(signal, onReclaim, waitMs) {
      const boundMs = waitMs === undefined ? queueTimeoutMs : Math.max(0, Math.min(queueTimeoutMs, waitMs))
      const shortened = boundMs < queueTimeoutMs
      if (signal?.aborted)
        return Promise.reject(new AbortedError('The client disconnected before generation started.'))
      if (leases.size >= maxConcurrent) reclaimStalled()
      if (leases.size < maxConcurrent) return Promise.resolve(withOwner(createLease(), onReclaim))
      if (waiters.length >= maxQueue) {
        return Promise.reject(
          overloaded(
            `The server is busy (${leases.size} generations running, ${waiters.length} queued). Retry after the Retry-After delay.`,
            boundMs,
          ),
        )
      }
      return new Promise((resolve, reject) => {
        // A slot is handed over by whichever request frees or reclaims it. On Workers each waiter's
        // AbortSignal and timers belong to its own request, and touching them from another request
        // throws ("Cannot perform I/O on behalf of a different request"): that made the freeing
        // request fail with a 500 and lost the slot for good (taken, never given to anyone). So
        // `grant` only records the lease and settles a promise; the waiter's own continuation
        // (run in the waiter's request: workerd's cross-request promise resolution) does the rest.
        let granted: Lease | undefined
        let settled = false
        let wake: () => void = () => undefined
        const woken = new Promise<void>((resolveWake) => (wake = resolveWake))
        const leave = () => {
          settled = true
          const index = waiters.indexOf(waiter)
          if (index >= 0) waiters.splice(index, 1)
          clearTimeout(timer)
          clearInterval(poll)
          signal?.removeEventListener('abort', onAbort)
        }
        const waiter: Waiter = {
          grant(lease) {
            granted = lease
            wake()
          },
        }
        void woken.then(() => {
          const lease = granted
          if (!lease) return
          leave()
          if (signal?.aborted) {
            lease.release()
            reject(new AbortedError('The client disconnected while waiting for a generation slot.'))
            return
          }
          resolve(withOwner(lease, onReclaim))
        })
        const onAbort = () => {
          // Once granted, the continuation above gives the slot back.
          if (granted || settled) return
          leave()
          reject(new AbortedError('The client disconnected while waiting for a generation slot.'))
        }
        const timer = setTimeout(() => {
          if (granted || settled) return
          leave()
          reject(
            overloaded(
              shortened
                ? `Waited ${boundMs} ms for a generation slot without getting one (what was left of this request's Prefer: wait; the queue allows ${queueTimeoutMs} ms, QUEUE_TIMEOUT_MS). Retry later.`
                : `Waited ${queueTimeoutMs} ms for a generation slot without getting one. Retry later.`,
              boundMs,
            ),
          )
        }, boundMs)
        // Waiters run in live requests, so they are the ones that notice a dead lease.
        const poll = setInterval(reclaimStalled, Math.min(1000, stallTimeoutMs))
        signal?.addEventListener('abort', onAbort, { once: true })
        waiters.push(waiter)
      })
    },
  }
}
