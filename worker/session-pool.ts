// Idle model sessions, reused across requests. The generation slots already cap how many run at
// once, so the pool never holds more sessions than there are slots. A new request gets the idle
// session whose cache shares the longest prefix with its prompt: the next turn of a chat (or a
// handoff continuation of an answer this server started) then skips most of its prefill.
import type { ModelSession } from '../core/model-session.ts'
import type { HostedModel } from './model-host.ts'

export interface SessionPool {
  take(promptTokenIds: readonly number[]): Promise<ModelSession>
  /** Returns a session; one that failed mid-run is reset so a half-written cache is never reused. */
  give(session: ModelSession, healthy: boolean): Promise<void>
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const length = Math.min(a.length, b.length)
  let index = 0
  while (index < length && a[index] === b[index]) index++
  return index
}

export function createSessionPool(model: HostedModel): SessionPool {
  const idle: ModelSession[] = []
  return {
    async take(promptTokenIds) {
      if (idle.length === 0) return model.createSession()
      let best = 0
      let bestLength = -1
      for (const [index, session] of idle.entries()) {
        const length = commonPrefixLength(session.tokens, promptTokenIds)
        if (length > bestLength) {
          best = index
          bestLength = length
        }
      }
      const [session] = idle.splice(best, 1)
      return session ?? model.createSession()
    },
    async give(session, healthy) {
      if (!healthy) {
        try {
          await session.reset()
        } catch {
          // A session that cannot even reset is dropped; the next request makes a fresh one.
          await session.dispose().catch(() => undefined)
          return
        }
      }
      idle.push(session)
    },
  }
}
