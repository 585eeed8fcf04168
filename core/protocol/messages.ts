// Chat messages between core's ChatMessage and the wire's: every field the chat template reads
// travels, so the edge renders the very prompt the device rendered.
import type { ChatMessage } from '../chat-template.ts'
import { messageContentText } from './content.ts'
import type { ChatCompletionMessage } from './types.ts'

/** Core messages as the wire's (the SDK writes these). */
export function toWireMessages(messages: readonly ChatMessage[]): ChatCompletionMessage[] {
  return messages.map((message) => ({
    role: message.role,
    content: message.content,
    ...(message.reasoningContent === undefined ? {} : { reasoning_content: message.reasoningContent }),
    ...(message.toolCalls === undefined ? {} : { tool_calls: message.toolCalls }),
    ...(message.toolCallId === undefined ? {} : { tool_call_id: message.toolCallId }),
    ...(message.name === undefined ? {} : { name: message.name }),
  }))
}

/** A validated request's messages as core's ('developer' becomes 'system'; text parts joined). */
export function fromWireMessages(messages: readonly ChatCompletionMessage[]): ChatMessage[] {
  return messages.map((message) => ({
    role: message.role === 'developer' ? 'system' : message.role,
    content: messageContentText(message.content),
    ...(message.reasoning_content === undefined || message.reasoning_content === null
      ? {}
      : { reasoningContent: message.reasoning_content }),
    ...(message.tool_calls === undefined || message.tool_calls === null
      ? {}
      : { toolCalls: message.tool_calls }),
    ...(message.tool_call_id === undefined ? {} : { toolCallId: message.tool_call_id }),
    ...(message.name === undefined ? {} : { name: message.name }),
  }))
}
