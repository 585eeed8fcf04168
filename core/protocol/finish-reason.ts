// Finish reasons both ways. Ours has 'abort' and 'error', which OpenAI has no name for: they
// travel as 'stop'. OpenAI's 'tool_calls' and 'content_filter' read back as 'stop' until core
// has them.
import type { FinishReason } from '../stream-parts.ts'
import type { ChatCompletionFinishReason } from './types.ts'

export function toFinishReason(reason: FinishReason): ChatCompletionFinishReason {
  return reason === 'length' ? 'length' : 'stop'
}

export function fromFinishReason(reason: string | null | undefined): FinishReason {
  return reason === 'length' ? 'length' : 'stop'
}
