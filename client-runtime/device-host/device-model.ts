// A DeviceModel over a ModelSession and its Tokenizer: the chat prompt and core's generation loop,
// run in this thread. The runtime's host uses it on an ORT session (in Node, or inside the Web
// Worker that serves the page); tests use it on core's test session. One session holds one
// cache, so generations on it take turns (a queue), never interleave.

import { encodeChatTurns } from '../../core/chat-turns.ts'
import { BackendError, ContextLengthError } from '../../core/errors.ts'
import { generate } from '../../core/generate.ts'
import type { ModelSession } from '../../core/model-session.ts'
import { constraintTemplateTools } from '../../core/protocol/response-format.ts'
import { loadStructuredOutput } from '../../core/structured/load.ts'
import type { Tokenizer } from '../../core/tokenizer.ts'
import { measureDecodeSpeed } from '../decode-speed.ts'
import { deviceModelInfo } from './model-info.ts'
import type { DeviceGenerateRequest, DeviceModel, DevicePart } from './types.ts'

export interface DeviceModelParts {
  readonly session: ModelSession
  readonly tokenizer: Tokenizer
  /** Frees what the session was loaded with (the runtime's LoadedModel.dispose); default session.dispose(). */
  readonly dispose?: () => Promise<void>
  /** Tokens the probe decodes; default 16. */
  readonly probeTokens?: number
  /** The load's warnings (LoadedModel.warnings), for DeviceModel.warnings. */
  readonly warnings?: readonly string[]
  /** DeviceModel.packageFingerprint: of the manifest's files for the dtype loaded. */
  readonly packageFingerprint?: string
  /** DeviceModel.sourceModelId: the id of where the package was loaded from, where not modelId. */
  readonly sourceModelId?: string
}

export function createDeviceModel(parts: DeviceModelParts): DeviceModel {
  const { session, tokenizer } = parts
  const info = deviceModelInfo(parts)
  let turn: Promise<void> = Promise.resolve()
  let disposed = false
  /** The dispose() under way or done: later calls wait for it. */
  let disposing: Promise<void> | undefined
  // A call after dispose() fails as the same call on a model served by a Web Worker does
  // (web-worker/serve.ts: BackendError, backend_unavailable), whatever backend ran it: it failed
  // here with the session's own error (onnxruntime's backend_failed, the engine's ModelError).
  const refuseDisposed = (): void => {
    if (disposed) throw new BackendError('backend_unavailable', 'This model was disposed: load it again.')
  }

  /** Whether dispose() had its turn: the session is disposed. */
  let sessionGone = false
  const refuseGone = (): void => {
    if (sessionGone) throw new BackendError('backend_unavailable', 'This model was disposed: load it again.')
  }

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

  async function* run(request: DeviceGenerateRequest): AsyncGenerator<DevicePart> {
    refuseDisposed()
    // What this model cannot call (no call syntax, or tools its XML dialect cannot write) is
    // refused before the prompt is built and before the request waits its turn for the session
    // (the compiler loads with the first constrained request, load.ts).
    if (request.constraint !== undefined) {
      const { validateConstraintForModel } = await loadStructuredOutput()
      validateConstraintForModel(request.constraint, info.toolCallSyntax)
    }
    // The prompt exactly as the edge builds it, so a handoff continues the same answer.
    const tools = constraintTemplateTools(request.constraint)
    const prompt = encodeChatTurns(tokenizer, request.messages, {
      addGenerationPrompt: true,
      ...(tools === undefined ? {} : { tools }),
      ...(request.enableThinking === undefined ? {} : { enableThinking: request.enableThinking }),
    })
    // What the edge (and OpenAI) refuse, refused here too: an answer asked to be longer than the
    // context leaves. The loop itself would stop it at the context's end, so the same request
    // finished 'length' on the device but failed on the edge, or mid-answer after a handoff.
    const room = session.info.contextLength - prompt.tokenIds.length
    // A prompt that leaves no room for an answer names the messages, as the edge's refusal does
    // (core's generate() would refuse it too, but without a param).
    if (room <= 0) {
      // When the tools hold most of the prompt, shortening the conversation would not help: they
      // are named, as the edge names them (it said "Shorten the conversation" at messages for a
      // one-word question beside a tool of 1,000 parameters). Counted only on this failure path.
      const toolTokens =
        tools === undefined
          ? 0
          : prompt.tokenIds.length -
            encodeChatTurns(tokenizer, request.messages, {
              addGenerationPrompt: true,
              ...(request.enableThinking === undefined ? {} : { enableThinking: request.enableThinking }),
            }).tokenIds.length
      if (toolTokens > prompt.tokenIds.length - toolTokens) {
        throw new ContextLengthError(
          `The prompt has ${prompt.tokenIds.length} tokens, ${toolTokens} of them the tools, but the model's context holds ${session.info.contextLength}, with room needed for the answer. Send fewer or shorter tools (descriptions, schemas).`,
          { param: 'tools' },
        )
      }
      throw new ContextLengthError(
        `The prompt has ${prompt.tokenIds.length} tokens but the model's context holds ${session.info.contextLength}, with room needed for the answer. Shorten the conversation.`,
        { param: 'messages' },
      )
    }
    if (request.maxTokens !== undefined && room > 0 && request.maxTokens > room) {
      throw new ContextLengthError(
        `The prompt (${prompt.tokenIds.length} tokens) plus maxTokens (${request.maxTokens}) exceeds the model's context of ${session.info.contextLength} tokens. Lower maxTokens to at most ${room}, leave it out (the answer then stops at the context's end), or shorten the conversation.`,
        { param: 'maxTokens' },
      )
    }
    // The prompt's size is known before the request waits its turn: a request aborted while it
    // waits (a chat app's second question, stopped) counts its prompt as any aborted one does.
    yield { type: 'prompt', promptTokens: prompt.tokenIds.length }
    const release = await acquire()
    try {
      // Its turn came after dispose()'s (its prompt part read before dispose(), the session asked
      // for after): the disposed model's error, not the disposed session's own. An answer that
      // asked before dispose() still runs first, as dispose() waits its turn.
      refuseGone()
      yield* generate(session, tokenizer, {
        promptTokenIds: prompt.tokenIds,
        promptBoundaries: prompt.turnBoundaries,
        ...(request.sampling ? { sampling: request.sampling } : {}),
        ...(request.maxTokens === undefined ? {} : { maxTokens: request.maxTokens }),
        ...(request.stop ? { stop: request.stop } : {}),
        ...(request.signal ? { signal: request.signal } : {}),
        ...(request.constraint ? { constraint: request.constraint } : {}),
      })
    } finally {
      release()
    }
  }

  return {
    ...info,
    generate: run,
    async probe(signal?: AbortSignal): Promise<number> {
      refuseDisposed()
      const release = await acquire()
      try {
        refuseGone()
        const speed = await measureDecodeSpeed(
          { session, tokenizer },
          { tokens: parts.probeTokens ?? 16, ...(signal ? { signal } : {}) },
        )
        return speed.tokensPerSecond
      } finally {
        release()
      }
    },
    dispose(): Promise<void> {
      // A second call waits for the first: returning at once, it let a caller go on while the
      // session (waiting for a running answer to end) was still loaded.
      disposing ??= (async () => {
        disposed = true
        const release = await acquire()
        try {
          await (parts.dispose ? parts.dispose() : session.dispose())
        } finally {
          sessionGone = true
          release()
        }
      })()
      return disposing
    },
  }
}
