// Idle model sessions, reused across requests. The generation slots already cap how many run at
// once, so the pool never holds more sessions than there are slots. A new request gets the idle
// session whose cache is the longest strict prefix of its prompt (the next turn of a chat that
// extends the cached tokens skips most of its prefill); any other session is reset first.
//
// Why never rewind: with q8 weights (DynamicQuantizeMatMul quantizes activations per run) the
// logits depend on how the tokens were chunked into runs. Rewinding to the prompt minus one token
// and re-feeding that token alone made workerd's greedy answer to a repeated request diverge from
// the first one after a few tokens. Extending a cache (a chat's next turn) keeps the earlier runs
// as they were; anything else starts clean, so the same request gets the same answer.
import type { ModelSession } from '../core/model-session.ts'
import type { HostedModel } from './model-host.ts'

export interface SessionPool {
  /** `fresh`: hand back an empty cache (no reuse at all). */
  take(promptTokenIds: readonly number[], options?: { readonly fresh?: boolean }): Promise<ModelSession>
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
    async take(promptTokenIds, options = {}) {
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
      if (bestLength < 0 || (options.fresh === true && session.tokens.length > 0)) await session.reset()
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
