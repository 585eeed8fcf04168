// Idle model sessions, reused across requests. The generation slots already cap how many run at
// once, so the pool never holds more sessions than there are slots. A new request gets the idle
// session whose cache is the longest strict prefix of its prompt (the next turn of a chat that
// extends the cached tokens skips most of its prefill); any other session is reset first.
//
// Why never rewind: on onnxruntime-web in workerd, a KV cache rewound and then extended by one
// token gave different greedy tokens from a fresh prefill a few steps later (the same sequence is
// exact on Node), so the edge only ever extends a cache or starts clean. A clean prefill costs
// one prompt-length run; a wrong answer costs the handoff guarantee.
import type { ModelSession } from '../core/model-session.ts'
import type { HostedModel } from './model-host.ts'

export interface SessionPool {
  take(promptTokenIds: readonly number[]): Promise<ModelSession>
  /** Returns a session; one that failed mid-run is reset so a half-written cache is never reused. */
  give(session: ModelSession, healthy: boolean): Promise<void>
}

/** Length of `cached` when it is a strict prefix of `prompt`, else -1. */
function extendablePrefix(cached: readonly number[], prompt: readonly number[]): number {
  if (cached.length >= prompt.length) return -1
  for (let index = 0; index < cached.length; index++) if (cached[index] !== prompt[index]) return -1
  return cached.length
}

export function createSessionPool(model: HostedModel): SessionPool {
  const idle: ModelSession[] = []
  return {
    async take(promptTokenIds) {
      if (idle.length === 0) return model.createSession()
      let best = 0
      let bestLength = -1
      for (const [index, session] of idle.entries()) {
        const length = extendablePrefix(session.tokens, promptTokenIds)
        if (length > bestLength) {
          best = index
          bestLength = length
        }
      }
      const [session] = idle.splice(best, 1)
      if (!session) return model.createSession()
      if (bestLength < 0) await session.reset()
      return session
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
