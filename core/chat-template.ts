// Renders a model's own Jinja chat template (the `chat_template` from tokenizer_config.json or
// chat_template.jinja) with @huggingface/jinja, the engine transformers.js uses, so the prompt a
// model sees here is byte-for-byte the one it was trained on.
import { Template } from '@huggingface/jinja'
import { type ChatMessage, type ChatTool, type ChatToolCall, validateChatMessages } from './chat-messages.ts'
import { InvalidArgumentError, TemplateError } from './errors.ts'

// The messages' types and their check live apart, so code that only checks messages (the SDK in a
// page) does not bring the Jinja engine along.
export {
  type ChatMessage,
  type ChatRole,
  type ChatTool,
  type ChatToolCall,
  validateChatMessages,
} from './chat-messages.ts'

export interface RenderChatTemplateOptions {
  readonly messages: readonly ChatMessage[]
  /** Append the opening of an assistant turn (what generation continues from). Default true. */
  readonly addGenerationPrompt?: boolean
  /** Qwen3-style thinking switch; left undefined the template's own default applies. */
  readonly enableThinking?: boolean
  readonly tools?: readonly ChatTool[]
  readonly bosToken?: string
  readonly eosToken?: string
  /** Further variables some templates read (e.g. `date_string`). */
  readonly extraVariables?: Readonly<Record<string, unknown>>
}

const parsedTemplates = new Map<string, Template>()

function parse(template: string): Template {
  let parsed = parsedTemplates.get(template)
  if (parsed === undefined) {
    try {
      parsed = new Template(template)
    } catch (error) {
      throw new TemplateError(
        `The chat template does not parse (${error instanceof Error ? error.message : String(error)}). Fix the template in tokenizer_config.json / chat_template.jinja.`,
        { cause: error },
      )
    }
    // Templates are few and long-lived (one per model); the cache saves re-parsing each request.
    if (parsedTemplates.size > 16) parsedTemplates.clear()
    parsedTemplates.set(template, parsed)
  }
  return parsed
}

/** Renders `template` for `messages`; the result is the prompt text to tokenize without adding special tokens. */
export function renderChatTemplate(template: string, options: RenderChatTemplateOptions): string {
  if (typeof template !== 'string' || template.length === 0) {
    throw new InvalidArgumentError(
      'template',
      'The chat template is empty: this model has no chat template. Encode plain text instead, or pass a template.',
    )
  }
  const messages = validateChatMessages(options.messages)
  if (options.tools !== undefined && !Array.isArray(options.tools)) {
    throw new InvalidArgumentError('tools', 'tools must be an array of tool definitions.')
  }
  const variables: Record<string, unknown> = {
    ...options.extraVariables,
    messages: messages.map((message, index) =>
      toTemplateMessage(message, index, readsArgumentsAsMapping(template)),
    ),
    add_generation_prompt: options.addGenerationPrompt ?? true,
    bos_token: options.bosToken ?? '',
    eos_token: options.eosToken ?? '',
  }
  // Only defined when asked: Qwen3 tests `enable_thinking is defined and enable_thinking is false`.
  if (options.enableThinking !== undefined) variables['enable_thinking'] = options.enableThinking
  if (options.tools !== undefined && options.tools.length > 0) variables['tools'] = options.tools
  try {
    return parse(template).render(variables)
  } catch (error) {
    throw new TemplateError(
      `The chat template failed to render: ${error instanceof Error ? error.message : String(error)}. Check the messages (order of roles, a system message only first) against what this model's template accepts.`,
      { cause: error },
    )
  }
}

/**
 * Whether the template reads a call's arguments as a mapping: the Qwen3-Coder XML dialect
 * (Qwen3.5's own template) walks them with `arguments|items` to write one `<parameter=...>` each,
 * which fails on JSON text ("Can only get item pairs from a mapping"). Qwen3-style templates print
 * text as it is and only `tojson` a mapping, so they keep getting the text: a resumed turn then
 * encodes to the very tokens the model generated.
 */
export function readsArgumentsAsMapping(template: string): boolean {
  return /arguments\s*\|\s*items/.test(template) || template.includes('<parameter=')
}

// Templates read the Hugging Face (snake_case) field names.
function toTemplateMessage(
  message: ChatMessage,
  index: number,
  argumentsAsMapping: boolean,
): Record<string, unknown> {
  const out: Record<string, unknown> = { role: message.role, content: message.content }
  if (message.reasoningContent !== undefined) out['reasoning_content'] = message.reasoningContent
  if (message.toolCalls !== undefined) {
    const calls = argumentsAsMapping
      ? message.toolCalls.map((call, callIndex) => withParsedArguments(call, index, callIndex))
      : message.toolCalls
    for (const [callIndex, call] of calls.entries())
      checkArgumentsDepth(call.function.arguments, index, callIndex, argumentsAsMapping)
    out['tool_calls'] = calls
  }
  if (message.toolCallId !== undefined) out['tool_call_id'] = message.toolCallId
  if (message.name !== undefined) out['name'] = message.name
  return out
}

/** How deep a call's arguments (an object the template prints) may nest arrays and objects. */
const maxArgumentsDepth = 64

/**
 * The template prints arguments given as an object (`tojson`, or one `<parameter=...>` each)
 * recursively: one nested 5,000 deep overflowed the stack while rendering, reported as a failed
 * template that named no field. Text is printed as it is, at any depth.
 */
function checkArgumentsDepth(
  value: unknown,
  messageIndex: number,
  callIndex: number,
  argumentsAsMapping: boolean,
): void {
  if (typeof value !== 'object' || value === null) return
  // Breadth first, one level at a time: no recursion on the client's nesting here either.
  let level: unknown[] = [value]
  for (let depth = 1; level.length > 0; depth++) {
    if (depth > maxArgumentsDepth) {
      const param = `messages.${messageIndex}.toolCalls.${callIndex}.function.arguments`
      throw new InvalidArgumentError(
        param,
        // A template that reads the arguments as a mapping parses JSON text too: only flatter helps.
        argumentsAsMapping
          ? `${param} nests deeper than ${maxArgumentsDepth} levels of arrays and objects: this model's chat template writes each argument out (JSON text is parsed first), so send flatter arguments.`
          : `${param} nests deeper than ${maxArgumentsDepth} levels of arrays and objects: the chat template prints the call's arguments, so send them as the call gave them (JSON text), or flatter.`,
      )
    }
    const next: unknown[] = []
    for (const item of level)
      if (typeof item === 'object' && item !== null)
        for (const child of Object.values(item))
          if (typeof child === 'object' && child !== null) next.push(child)
    level = next
  }
}

/** A call whose arguments are JSON text, with them parsed (they must be a JSON object). */
function withParsedArguments(call: ChatToolCall, messageIndex: number, callIndex: number): ChatToolCall {
  const given = call.function.arguments
  if (typeof given !== 'string') return call
  const param = `messages.${messageIndex}.toolCalls.${callIndex}.function.arguments`
  let parsed: unknown
  try {
    parsed = JSON.parse(given)
  } catch (error) {
    throw new InvalidArgumentError(
      param,
      `${param} is not JSON (${error instanceof Error ? error.message : String(error)}): this model's template writes each argument as a <parameter=...> of its own, so the arguments must be a JSON object's text (as the call's result gave them) or the object itself.`,
      { cause: error },
    )
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError(
      param,
      `${param} must be a JSON object's text (got ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : typeof parsed}): this model's template writes each argument as a <parameter=...> of its own.`,
    )
  }
  return { ...call, function: { ...call.function, arguments: parsed as Record<string, unknown> } }
}
