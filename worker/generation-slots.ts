// Concurrent generations per isolate. A model session runs one generation at a time and each
// session holds its own cache, so the isolate allows `maxConcurrent` generations, lets up to
// `maxQueue` more wait their turn (first come, first served), and refuses the rest at once with
// 429 rather than letting memory and latency grow without bound.
import { AbortedError, OndeviceError } from '../core/errors.ts'

export interface GenerationSlotsOptions {
  readonly maxConcurrent: number
  readonly maxQueue: number
  /** How long a request may wait in the queue before it is refused (429). */
  readonly queueTimeoutMs: number
}

export interface GenerationSlots {
  /** Resolves with a release function once a slot is free; throws `overloaded` or `aborted`. */
  acquire(signal?: AbortSignal): Promise<() => void>
  readonly active: number
  readonly queued: number
}

interface Waiter {
  grant(): void
}

export function createGenerationSlots(options: GenerationSlotsOptions): GenerationSlots {
  const { maxConcurrent, maxQueue, queueTimeoutMs } = options
  let active = 0
  const waiters: Waiter[] = []

  const makeRelease = () => {
    let released = false
    return () => {
      if (released) return
      released = true
      const next = waiters.shift()
      // Hand the slot straight to the next waiter so a newcomer cannot overtake the queue.
      if (next) next.grant()
      else active--
    }
  }

  const overloaded = (message: string) =>
    new OndeviceError('overloaded', message, {
      isRetryable: true,
      retryAfterSeconds: Math.max(1, Math.ceil(queueTimeoutMs / 1000 / 2)),
    })

  return {
    get active() {
      return active
    },
    get queued() {
      return waiters.length
    },
    acquire(signal) {
      if (signal?.aborted) return Promise.reject(new AbortedError('The client disconnected before generation started.'))
      if (active < maxConcurrent) {
        active++
        return Promise.resolve(makeRelease())
      }
      if (waiters.length >= maxQueue) {
        return Promise.reject(
          overloaded(
            `The server is busy (${active} generations running, ${waiters.length} queued). Retry after the Retry-After delay.`,
          ),
        )
      }
      return new Promise((resolve, reject) => {
        const leave = () => {
          const index = waiters.indexOf(waiter)
          if (index >= 0) waiters.splice(index, 1)
          clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
        }
        const waiter: Waiter = {
          grant() {
            leave()
            resolve(makeRelease())
          },
        }
        const onAbort = () => {
          leave()
          reject(new AbortedError('The client disconnected while waiting for a generation slot.'))
        }
        const timer = setTimeout(() => {
          leave()
          reject(overloaded(`Waited ${queueTimeoutMs} ms for a generation slot without getting one. Retry later.`))
        }, queueTimeoutMs)
        signal?.addEventListener('abort', onAbort, { once: true })
        waiters.push(waiter)
      })
    },
  }
}
