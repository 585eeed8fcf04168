// Finish reasons both ways. Ours has 'abort' and 'error', which OpenAI has no name for: they
// travel as 'stop'. 'tool-calls' is OpenAI's 'tool_calls'; 'content_filter' reads back as 'stop'.
import type { FinishReason } from '../stream-parts.ts'
import type { ChatCompletionFinishReason } from './types.ts'

export function toFinishReason(reason: FinishReason): ChatCompletionFinishReason {
  return reason === 'length' ? 'length' : reason === 'tool-calls' ? 'tool_calls' : 'stop'
}

export function fromFinishReason(reason: string | null | undefined): FinishReason {
  return reason === 'length' ? 'length' : reason === 'tool_calls' ? 'tool-calls' : 'stop'
}
