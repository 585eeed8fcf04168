// The non-streamed answer (stream: false), and the `ondevice` extension it shares with the last
// chunk: every generated token id and the next sampler step, so a client can hand off again.
import type { FinishPart } from '../stream-parts.ts'
import { toFinishReason } from './finish-reason.ts'
import type { ChatCompletionResponse, OndeviceResult } from './types.ts'
import { toUsage } from './usage.ts'

/** What every response and chunk of one completion repeats. */
export interface CompletionHeader {
  readonly id: string
  /** Unix seconds. */
  readonly created: number
  readonly model: string
  readonly systemFingerprint: string
}

export function toOndeviceResult(part: FinishPart): OndeviceResult {
  return {
    token_ids: [...part.tokenIds],
    next_step: part.nextStep,
    ...(part.seed === undefined ? {} : { seed: part.seed }),
  }
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
        message: { role: 'assistant', content: part.text, refusal: null },
        logprobs: null,
        finish_reason: toFinishReason(part.finishReason),
      },
    ],
    usage: toUsage(part.usage),
    ondevice: toOndeviceResult(part),
  }
}
