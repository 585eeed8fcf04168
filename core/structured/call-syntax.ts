// Which tool-call syntax a model writes, read from its tokens and its chat template. Small on
// purpose: a device model says its syntax when it loads (DeviceModel.toolCallSyntax) without
// loading the structured-output compiler, which comes only with a request that needs it (load.ts).

export type ToolCallSyntax = 'json' | 'xml'

/**
 * How a model writes tool calls: its template's syntax (toolCallSyntaxOf), or 'none' when its
 * tokenizer has no `<tool_call>` / `</tool_call>` tokens (it cannot call tools at all).
 */
export type ModelToolCallSyntax = ToolCallSyntax | 'none'

/**
 * The call syntax a chat template teaches its model: the XML dialect when the template shows
 * `<function=...>` and `<parameter=...>` blocks (Qwen3.5, Qwen3-Coder), else Qwen3's JSON inside
 * `<tool_call>` (what every other template gets, as before).
 */
export function toolCallSyntaxOf(template: string | undefined): ToolCallSyntax {
  return template?.includes('<function=') && template.includes('<parameter=') ? 'xml' : 'json'
}

/** The call syntax of the model `tokenizer` belongs to (its tokens and its chat template). */
export function modelToolCallSyntaxOf(tokenizer: {
  readonly chatTemplate?: string | undefined
  tokenToId?(token: string): number | undefined
}): ModelToolCallSyntax {
  if (typeof tokenizer.tokenToId !== 'function') return 'none'
  if (tokenizer.tokenToId('<tool_call>') === undefined || tokenizer.tokenToId('</tool_call>') === undefined)
    return 'none'
  return toolCallSyntaxOf(tokenizer.chatTemplate)
}
