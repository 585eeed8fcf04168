// Idle model sessions, reused across requests. The generation slots already cap how many run at
// once, so the pool never holds more sessions than there are slots. A new request gets the idle
// session that saves it the most prefill; any other session is reset first. What a session saves:
// its whole cache when that is a strict prefix of the prompt, else the prompt up to the last turn
// boundary (chat-turns.ts) inside what the cache shares with it. The next turn of a chat is the
// second case: the previous answer, re-rendered by the chat template, rarely equals the tokens
// the model generated, but everything before the answer's turn is shared.
//
// Why only at a boundary: with q8 weights (DynamicQuantizeMatMul quantizes activations per run)
// the logits depend on how the tokens were chunked into runs. Rewinding to the prompt minus one
// token and re-feeding that token alone made workerd's greedy answer to a repeated request
// diverge from the first one after a few tokens. generate() resumes only at a turn boundary,
// where a cold run cuts the prompt too, so a resumed turn feeds the same chunks as a cold run and
// the same request gets the same answer. A prompt without boundaries reuses only a cache it
// extends. (The engine's sessions give the same logits however the prompt is chunked: generate()
// resumes them further, up to what the cache shares, so a session holding a conversation's
// previous answer counts here as saving at least up to that answer's turn boundary.)
import type { ModelSession } from '../core/model-session.ts'
import type { HostedModel } from './model-host.ts'

export interface SessionPool {
  /** The idle session that saves `promptTokenIds` the most prefill (a new one when none is idle). */
  take(
    promptTokenIds: readonly number[],
    options?: {
      /** Hand back an empty cache (no reuse at all). */
      readonly fresh?: boolean
      /** The prompt's turn boundaries (generate()'s `promptBoundaries`), increasing. */
      readonly boundaries?: readonly number[]
    },
  ): Promise<ModelSession>
  /** Returns a session; one that failed mid-run is reset so a half-written cache is never reused. */
  give(
    session: ModelSession,
    healthy: boolean,
  ): Promise<void> /** Disposes a session taken that will not come back (its generation stalled), counting it out. */
  drop(session: ModelSession): Promise<void>
}

/**
 * How much of `prompt` a session holding `cached` can start from: all of `cached` when it is a
 * strict prefix of the prompt, else the last boundary inside their shared prefix; -1 for nothing.
 */
function reusableTokens(
  cached: readonly number[],
  prompt: readonly number[],
  boundaries: readonly number[],
): number {
  const limit = Math.min(cached.length, prompt.length)
  let shared = 0
  while (shared < limit && cached[shared] === prompt[shared]) shared++
  if (shared === cached.length && cached.length < prompt.length) return cached.length
  let reusable = -1
  for (const boundary of boundaries) if (boundary > 0 && boundary <= shared) reusable = boundary
  return reusable
}

/**
 * `maxSessions`: the most sessions the pool keeps alive (the generation slots). Below it, a
 * request that no idle session saves anything gets a new session rather than one that holds
 * another conversation's cache (over shared weights a session is only its cache), so concurrent
 * conversations each keep theirs for their next turn; at it, the least recently used idle session
 * is reset for it.
 */
export function createSessionPool(model: HostedModel, maxSessions = 1): SessionPool {
  const idle: ModelSession[] = []
  let alive = 0
  const create = async (): Promise<ModelSession> => {
    const session = await model.createSession()
    alive++
    return session
  }
  const drop = async (session: ModelSession): Promise<void> => {
    alive--
    await session.dispose().catch(() => undefined)
  }
  return {
    async take(promptTokenIds, options = {}) {
      if (idle.length === 0) return create()
      // Ties (nothing reusable included) go to the earliest: idle is least recently used first.
      let best = 0
      let bestLength = -1
      for (const [index, session] of idle.entries()) {
        const length = reusableTokens(session.tokens, promptTokenIds, options.boundaries ?? [])
        if (length > bestLength) {
          best = index
          bestLength = length
        }
      }
      if (bestLength < 0 && alive < maxSessions) return create()
      const [session] = idle.splice(best, 1)
      if (!session) return create()
      if (bestLength < 0 || (options.fresh === true && session.tokens.length > 0)) await session.reset()
      return session
    },
    async give(session, healthy) {
      if (!healthy) {
        try {
          await session.reset()
        } catch {
          // A session that cannot even reset is dropped; the next request makes a fresh one.
          await drop(session)
          return
        }
      }
      idle.push(session)
    },
    drop,
  }
}
