// A chat-completion request both ways: the SDK encodes its ChatRequest into the wire body, the
// worker decodes a validated body into what core's generate() takes (prompt, sampling, limits,
// stop strings, continuation).
import type { ChatMessage } from '../chat-template.ts'
import { type ChatEncoder, type ChatPrompt, encodeChatTurns } from '../chat-turns.ts'
import { InvalidArgumentError } from '../errors.ts'
import type { Continuation, GenerateRequest } from '../generate.ts'
import type { SamplingOptions } from '../sampling/index.ts'
import type { ConstraintOptions } from '../structured/constraint.ts'
import type { ApplyChatTemplateOptions } from '../tokenizer.ts'
import { fromWireMessages, toWireMessages } from './messages.ts'
import { thinkingOfEffort } from './reasoning-effort.ts'
import { toConstraintOptions, toWireConstraint, wireConstraintFieldNames } from './response-format.ts'
import { fromWireSampling, toWireSampling } from './sampling.ts'
import { templateTools } from './tools.ts'
import type { ChatCompletionRequest } from './types.ts'

/** What the SDK asks the edge for, in core's terms. */
export interface ChatRequestInput {
  readonly model: string
  readonly messages: readonly ChatMessage[]
  readonly sampling?: SamplingOptions
  readonly maxTokens?: number
  readonly stop?: readonly string[]
  /** Continue an answer another side started: its token ids so far and the sampler step to resume at. */
  readonly continuation?: Continuation
  /** responseFormat / tools / toolChoice / parallelToolCalls (enforced by the edge as by the device). */
  readonly constraint?: ConstraintOptions
  /** The weight format and backend to answer in (a handoff names the device's): `ondevice_format`. */
  readonly format?: { readonly dtype?: string; readonly backend?: string; readonly fallback?: boolean }
  /** The template's thinking switch: `chat_template_kwargs.enable_thinking`. */
  readonly enableThinking?: boolean
}

/** The wire body for `input`: always streamed, with usage on the last chunk. */
export function toChatCompletionRequest(input: ChatRequestInput): ChatCompletionRequest {
  return {
    model: input.model,
    messages: toWireMessages(input.messages),
    stream: true,
    stream_options: { include_usage: true },
    ...(input.maxTokens === undefined ? {} : { max_tokens: input.maxTokens }),
    ...toWireSampling(input.sampling ?? {}),
    ...(input.stop && input.stop.length > 0 ? { stop: [...input.stop] } : {}),
    ...toWireConstraint(input.constraint),
    ...(input.enableThinking === undefined
      ? {}
      : { chat_template_kwargs: { enable_thinking: input.enableThinking } }),
    ...(input.continuation
      ? {
          ondevice_continuation: {
            token_ids: [...input.continuation.tokenIds],
            step: input.continuation.step,
          },
        }
      : {}),
    ...(input.format
      ? {
          ondevice_format: {
            ...(input.format.dtype === undefined ? {} : { dtype: input.format.dtype }),
            ...(input.format.backend === undefined ? {} : { backend: input.format.backend }),
            ...(input.format.fallback === undefined ? {} : { fallback: input.format.fallback }),
          },
        }
      : {}),
  }
}

/** The request's messages as core ChatMessages ('developer' becomes 'system'; text parts joined). */
export function toChatMessages(request: ChatCompletionRequest): ChatMessage[] {
  return fromWireMessages(request.messages)
}

/** Template options from the request: tools, and chat_template_kwargs (enable_thinking and the rest). */
export function toTemplateOptions(request: ChatCompletionRequest): ApplyChatTemplateOptions {
  const kwargs = { ...request.chat_template_kwargs }
  // reasoning_effort maps onto the template's switch (validation refused a contradiction).
  const thinking = kwargs['enable_thinking'] ?? thinkingOfEffort(request.reasoning_effort)
  delete kwargs['enable_thinking']
  const tools = templateTools(request)
  return {
    addGenerationPrompt: true,
    ...(typeof thinking === 'boolean' ? { enableThinking: thinking } : {}),
    ...(tools === undefined ? {} : { tools }),
    ...(Object.keys(kwargs).length > 0 ? { extraVariables: kwargs } : {}),
  }
}

/**
 * The prompt for a request (template rendered, special tokens not added twice) with its turn
 * boundaries, computed as the device computes them so that both prefill in the same chunks.
 */
export function encodeChatPrompt(tokenizer: ChatEncoder, request: ChatCompletionRequest): ChatPrompt {
  try {
    return encodeChatTurns(tokenizer, toChatMessages(request), toTemplateOptions(request))
  } catch (error) {
    throw wireMessageError(error)
  }
}

/** An error about a message's field, named as the wire spells it (`messages.1.tool_calls.0...`). */
function wireMessageError(error: unknown): unknown {
  if (!(error instanceof InvalidArgumentError) || error.param === undefined) return error
  const match = /^messages\.(\d+)\.toolCalls\.(.*)$/.exec(error.param)
  if (match === null) return error
  const core = error.param
  const wire = `messages.${match[1]}.tool_calls.${match[2]}`
  return new InvalidArgumentError(wire, error.message.replaceAll(core, wire), { cause: error.cause })
}

/** Sampling options from the request's OpenAI fields and extensions. */
export function toSamplingOptions(request: ChatCompletionRequest): SamplingOptions {
  return fromWireSampling(request)
}

/** The stop list as an array (OpenAI allows one string). */
export function toStopStrings(request: ChatCompletionRequest): readonly string[] {
  const stop = request.stop
  if (stop === undefined || stop === null) return []
  return typeof stop === 'string' ? [stop] : stop
}

/**
 * A core GenerateRequest (without a signal) for a validated request and its encoded prompt.
 * `maxTokens` is the caller's to resolve, once: the server knows its cap and the context room
 * that max_tokens / max_completion_tokens are checked against (worker/chat-completions.ts).
 */
export function toGenerateRequest(
  request: ChatCompletionRequest,
  prepared: {
    readonly promptTokenIds: readonly number[]
    readonly promptBoundaries?: readonly number[]
    readonly maxTokens: number
  },
): GenerateRequest {
  const { maxTokens } = prepared
  const stop = toStopStrings(request)
  const continuation = request.ondevice_continuation
  const constraint = toConstraintOptions(request)
  return {
    promptTokenIds: prepared.promptTokenIds,
    ...(prepared.promptBoundaries === undefined ? {} : { promptBoundaries: prepared.promptBoundaries }),
    sampling: toSamplingOptions(request),
    maxTokens,
    ...(stop.length > 0 ? { stop } : {}),
    ...(continuation === undefined
      ? {}
      : { continuation: { tokenIds: continuation.token_ids, step: continuation.step } }),
    ...(constraint === undefined ? {} : { constraint, constraintFieldNames: wireConstraintFieldNames }),
  }
}
