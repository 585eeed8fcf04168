// A model host over core's deterministic test session and the real Qwen3 tokenizer, for tests of
// the app that need no ONNX model. Every session it makes computes the same logits for the same
// tokens, as two isolates running the same weights do.

import type { Tokenizer } from '../../core/tokenizer.ts'
import { createModelHost, type ModelHost } from '../../worker/model-host.ts'
import { qwen3Tokenizer } from '../support/qwen3-tokenizer.ts'
import { createTestSession, type TestSession, type TestSessionOptions } from '../support/test-session.ts'

export interface TestHost extends ModelHost {
  /** Sessions made so far (to check disposal, append calls, cache reuse). */
  readonly sessions: readonly TestSession[]
  /** How many times the loader ran. */
  readonly loads: number
}

export function createTestHost(
  options: {
    readonly session?: Omit<TestSessionOptions, 'vocabularySize'>
    readonly loadDelayMs?: number
    readonly failLoad?: string
    /** The model's tokenizer (default: Qwen3's; another chat template, a model without tool calls). */
    readonly tokenizer?: Tokenizer
  } = {},
): TestHost {
  const sessions: TestSession[] = []
  let loads = 0
  const host = createModelHost({
    modelId: 'test-model',
    retryAfterMs: 60_000,
    load: async () => {
      loads++
      if (options.loadDelayMs) await new Promise((resolve) => setTimeout(resolve, options.loadDelayMs))
      if (options.failLoad) throw new Error(options.failLoad)
      const tokenizer = options.tokenizer ?? qwen3Tokenizer()
      const sessionOptions = {
        contextLength: 4096,
        ...options.session,
        vocabularySize: tokenizer.vocabularySize,
      }
      return {
        info: {
          modelId: 'test-model',
          backend: 'test',
          dtype: 'fp32',
          contextLength: sessionOptions.contextLength,
        },
        tokenizer,
        async createSession() {
          const session = createTestSession(sessionOptions)
          sessions.push(session)
          return session
        },
      }
    },
  })
  return {
    ...host,
    modelId: host.modelId,
    load: host.load,
    status: host.status,
    get sessions() {
      return sessions
    },
    get loads() {
      return loads
    },
  }
}
