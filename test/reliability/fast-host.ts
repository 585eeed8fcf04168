// A model host for the reliability suites: core's deterministic test session (logits a pure
// function of the token history, as two machines running the same weights agree) with the real
// Qwen3 tokenizer, counting the sessions it makes (to find leaks). Optional per-step delay makes
// streams last long enough to be cut mid-way.
import type { ModelSession } from '../../core/model-session.ts'
import { createModelHost, type ModelHost } from '../../worker/model-host.ts'
import { qwen3Tokenizer } from '../support/qwen3-tokenizer.ts'
import { createTestSession, type TestSessionOptions } from '../support/test-session.ts'

export interface FastHost extends ModelHost {
  /** Sessions created so far (each is one concurrent generation's cache). */
  readonly sessionsCreated: () => number
  /** Sessions not disposed. */
  readonly liveSessions: () => ModelSession[]
}

export function createFastHost(
  options: { readonly modelId?: string; readonly session?: Omit<TestSessionOptions, 'vocabularySize'> } = {},
): FastHost {
  const modelId = options.modelId ?? 'test-model'
  const sessions: ReturnType<typeof createTestSession>[] = []
  const host = createModelHost({
    modelId,
    load: async () => ({
      info: {
        modelId,
        backend: 'test',
        dtype: 'fp32',
        contextLength: options.session?.contextLength ?? 4096,
      },
      tokenizer: qwen3Tokenizer(),
      async createSession() {
        const session = createTestSession({
          ...options.session,
          vocabularySize: qwen3Tokenizer().vocabularySize,
        })
        sessions.push(session)
        return session
      },
    }),
  })
  return {
    modelId: host.modelId,
    load: host.load,
    status: host.status,
    sessionsCreated: () => sessions.length,
    liveSessions: () => sessions.filter((session) => !session.disposed),
  }
}
