// A DeviceModel over a ModelSession and its Tokenizer: core's generation loop, run in this
// thread. Node uses it on the runtime's ORT session; tests use it on core's test session. One
// session holds one cache, so generations on it take turns (a queue), never interleave.
import type { ChatMessage } from '../core/chat-template.ts'
import { type ChatPrompt, encodeChatTurns } from '../core/chat-turns.ts'
import { generate } from '../core/generate.ts'
import type { ModelSession } from '../core/model-session.ts'
import type { GenerationPart } from '../core/stream-parts.ts'
import type { Tokenizer } from '../core/tokenizer.ts'
import type { DeviceGenerateRequest, DeviceModel } from './device.ts'

export interface DeviceModelParts {
  readonly session: ModelSession
  readonly tokenizer: Tokenizer
  /** Frees what the session was loaded with (the runtime's LoadedModel.dispose); default session.dispose(). */
  readonly dispose?: () => Promise<void>
  /** Tokens the probe decodes; default 16. */
  readonly probeTokens?: number
}

export function createDeviceModel(parts: DeviceModelParts): DeviceModel {
  const { session, tokenizer } = parts
  let turn: Promise<void> = Promise.resolve()

  /** Waits for the session, then holds it until `release` is called. */
  const acquire = async (): Promise<() => void> => {
    let release!: () => void
    const previous = turn
    turn = new Promise<void>((resolve) => {
      release = resolve
    })
    await previous
    return release
  }

  async function* run(request: DeviceGenerateRequest): AsyncGenerator<GenerationPart> {
    const release = await acquire()
    try {
      yield* generate(session, tokenizer, {
        promptTokenIds: request.promptTokenIds,
        ...(request.promptBoundaries ? { promptBoundaries: request.promptBoundaries } : {}),
        ...(request.sampling ? { sampling: request.sampling } : {}),
        ...(request.maxTokens === undefined ? {} : { maxTokens: request.maxTokens }),
        ...(request.stop ? { stop: request.stop } : {}),
        ...(request.signal ? { signal: request.signal } : {}),
      })
    } finally {
      release()
    }
  }

  return {
    modelId: session.info.modelId,
    backend: session.info.backend,
    dtype: session.info.dtype,
    async encodeChat(messages: readonly ChatMessage[]): Promise<ChatPrompt> {
      return encodeChatTurns(tokenizer, messages, { addGenerationPrompt: true })
    },
    generate: run,
    async probe(signal?: AbortSignal): Promise<number> {
      // Greedy decode of a few tokens after a short prompt, EOS banned so the run is full length:
      // the figure is decode speed as the generation loop itself measures it.
      const tokens = parts.probeTokens ?? 16
      const noEos: Record<number, number> = {}
      for (const id of tokenizer.eosTokenIds) noEos[id] = -100
      const prompt =
        tokenizer.bosTokenId !== undefined
          ? [tokenizer.bosTokenId]
          : tokenizer.encode('Hello', { addSpecialTokens: false })
      let rate = 0
      for await (const part of run({
        promptTokenIds: prompt,
        sampling: { temperature: 0, logitBias: noEos },
        maxTokens: tokens,
        ...(signal ? { signal } : {}),
      })) {
        if (part.type === 'finish') rate = part.usage.decodeTokensPerSecond
      }
      return rate
    },
    async dispose(): Promise<void> {
      const release = await acquire()
      try {
        await (parts.dispose ? parts.dispose() : session.dispose())
      } finally {
        release()
      }
    },
  }
}
