// Reading tool calls back out of an answer's tokens: the model's own syntax (Qwen3:
// `<tool_call>\n{"name":...,"arguments":{...}}\n</tool_call>`), which the constraint enforced, so
// every complete call parses. What comes before the first call is the answer's text.
import type { ToolCall } from '../stream-parts.ts'

export const toolCallOpen = '<tool_call>'
export const toolCallClose = '</tool_call>'

/** A short stable hash (FNV-1a) so a call's id is the same on every machine that saw the same tokens. */
function hash(values: readonly number[]): string {
  let h = 0x811c9dc5
  for (const value of values) {
    h ^= value & 0xffff
    h = Math.imul(h, 0x01000193)
    h ^= value >>> 16
    h = Math.imul(h, 0x01000193)
  }
  return (h >>> 0).toString(36)
}

/**
 * Splits an answer's text into its content (before the first call) and its complete calls.
 * `tokenIds` (the whole answer's) seed the call ids, so a handed-off answer gets the same ids.
 */
export function readToolCalls(
  text: string,
  tokenIds: readonly number[],
): { content: string; toolCalls: ToolCall[] } {
  const first = text.indexOf(toolCallOpen)
  if (first === -1) return { content: text, toolCalls: [] }
  const toolCalls: ToolCall[] = []
  const base = hash(tokenIds)
  const pattern = /<tool_call>\n([\s\S]*?)\n<\/tool_call>/g
  for (const match of text.slice(first).matchAll(pattern)) {
    try {
      const call = JSON.parse(match[1]!) as { name?: unknown; arguments?: unknown }
      if (typeof call.name !== 'string') continue
      toolCalls.push({
        id: `call_${base}${toolCalls.length}`,
        name: call.name,
        arguments: JSON.stringify(call.arguments ?? {}),
      })
    } catch {
      // An unfinished call (cut by the token limit) is not a call.
    }
  }
  return { content: text.slice(0, first).trimEnd(), toolCalls }
}
