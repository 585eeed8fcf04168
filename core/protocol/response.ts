// The non-streamed answer (stream: false), and the `ondevice` extension it shares with the last
// chunk: every generated token id and the next sampler step, so a client can hand off again.
import type { FinishPart } from '../stream-parts.ts'
import { toFinishReason } from './finish-reason.ts'
import type { ChatCompletionResponse, ChatCompletionToolCall, OndeviceResult } from './types.ts'
import { toUsage } from './usage.ts'

/** What every response and chunk of one completion repeats. */
export interface CompletionHeader {
  readonly id: string
  /** Unix seconds. */
  readonly created: number
  readonly model: string
  readonly systemFingerprint: string
  /** Why the request's ondevice_format was not honoured (it allowed a fallback); unset when it was. */
  readonly formatFallback?: string
}

export function toOndeviceResult(part: FinishPart, formatFallback?: string): OndeviceResult {
  return {
    token_ids: [...part.tokenIds],
    next_step: part.nextStep,
    ...(part.seed === undefined ? {} : { seed: part.seed }),
    ...(part.partial === true ? { partial: true } : {}),
    ...(formatFallback === undefined ? {} : { format_fallback: formatFallback }),
  }
}

/** A finish part's tool calls in OpenAI's shape. */
export function toWireToolCalls(part: FinishPart): ChatCompletionToolCall[] {
  return (part.toolCalls ?? []).map((call) => ({
    id: call.id,
    type: 'function' as const,
    function: { name: call.name, arguments: call.arguments },
  }))
}

/**
 * `message.content`: the answer's text (generate() leaves tool-call markup out of it), or null, as
 * OpenAI sends it, when there is none beside calls: the answer has calls, or it was cut (the token
 * limit inside a call) before any text.
 */
function messageContent(part: FinishPart): string | null {
  return part.text === '' && (part.toolCalls !== undefined || part.partial === true) ? null : part.text
}

export function toChatCompletionResponse(header: CompletionHeader, part: FinishPart): ChatCompletionResponse {
  return {
    id: header.id,
    object: 'chat.completion',
    created: header.created,
    model: header.model,
    system_fingerprint: header.systemFingerprint,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: messageContent(part),
          ...(part.reasoning === undefined ? {} : { reasoning_content: part.reasoning }),
          refusal: null,
          ...(part.toolCalls === undefined ? {} : { tool_calls: toWireToolCalls(part) }),
        },
        logprobs: null,
        finish_reason: toFinishReason(part.finishReason),
      },
    ],
    usage: toUsage(part.usage),
    ondevice: toOndeviceResult(part, header.formatFallback),
  }
}
