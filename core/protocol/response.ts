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

/** The answer's text without its tool-call markup (what came before the first call). */
export function visibleContent(part: FinishPart): string {
  if (part.toolCalls === undefined) return part.text
  const at = part.text.indexOf('<tool_call>')
  return at === -1 ? part.text : part.text.slice(0, at).trimEnd()
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
          content: part.toolCalls !== undefined && visibleContent(part) === '' ? null : visibleContent(part),
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
