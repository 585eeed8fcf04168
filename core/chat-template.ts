// Renders a model's own Jinja chat template (the `chat_template` from tokenizer_config.json or
// chat_template.jinja) with @huggingface/jinja, the engine transformers.js uses, so the prompt a
// model sees here is byte-for-byte the one it was trained on.
import { Template } from '@huggingface/jinja'
import { InvalidArgumentError, TemplateError } from './errors.ts'

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool'

export interface ChatToolCall {
  readonly id?: string
  readonly type?: 'function'
  readonly function: { readonly name: string; readonly arguments: string | Readonly<Record<string, unknown>> }
}

export interface ChatMessage {
  readonly role: ChatRole
  readonly content: string
  /** An assistant turn's reasoning (templates that split `<think>` blocks read it). */
  readonly reasoningContent?: string
  /** Tool calls an assistant turn made. */
  readonly toolCalls?: readonly ChatToolCall[]
  /** For a tool result: which call it answers. */
  readonly toolCallId?: string
  /** For a tool result: the tool's name. */
  readonly name?: string
}

/** A tool as OpenAI describes it; templates print it with `tojson`, so it passes through as is. */
export type ChatTool = Readonly<Record<string, unknown>>

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

const roles: ReadonlySet<string> = new Set(['system', 'user', 'assistant', 'tool'])

/** Checks a message list and names the first bad field (`messages.2.role`) with the fix. */
export function validateChatMessages(messages: unknown, param = 'messages'): readonly ChatMessage[] {
  if (!Array.isArray(messages)) {
    throw new InvalidArgumentError(param, `${param} must be an array of { role, content } objects.`)
  }
  if (messages.length === 0) {
    throw new InvalidArgumentError(
      param,
      `${param} is empty: pass at least one message, e.g. { role: 'user', content: 'Hi' }.`,
    )
  }
  messages.forEach((message: unknown, index) => {
    const at = `${param}.${index}`
    if (typeof message !== 'object' || message === null) {
      throw new InvalidArgumentError(at, `${at} must be an object like { role: 'user', content: '...' }.`)
    }
    const { role, content } = message as { role?: unknown; content?: unknown }
    if (typeof role !== 'string' || !roles.has(role)) {
      throw new InvalidArgumentError(
        `${at}.role`,
        `${at}.role is ${JSON.stringify(role)}; use one of 'system', 'user', 'assistant', 'tool'.`,
      )
    }
    if (typeof content !== 'string') {
      throw new InvalidArgumentError(`${at}.content`, contentProblem(at, content))
    }
    validateOptionalFields(message as Record<string, unknown>, role, at)
  })
  return messages as readonly ChatMessage[]
}

/** Why a message's content is refused, with the fix for the shapes OpenAI's API takes. */
function contentProblem(at: string, content: unknown): string {
  if (Array.isArray(content))
    return `${at}.content must be a string: join the text of its parts (OpenAI's [{ type: 'text', text }]) into one string; images and files are not supported.`
  if (content === null || content === undefined)
    return `${at}.content must be a string (got ${content === null ? 'null' : 'nothing'}): use '' for a turn without text, e.g. an assistant turn that only calls tools.`
  return `${at}.content must be a string (got ${typeof content}).`
}

/**
 * The fields a tool conversation adds. Checked here, before the template sees them: a number
 * for toolCalls failed inside Jinja with an obscure message, and a call without a name rendered
 * silently as garbage the model then continued.
 */
function validateOptionalFields(message: Record<string, unknown>, role: string, at: string): void {
  for (const field of ['toolCallId', 'name', 'reasoningContent'] as const) {
    const value = message[field]
    if (value !== undefined && typeof value !== 'string') {
      throw new InvalidArgumentError(`${at}.${field}`, `${at}.${field} must be a string when given.`)
    }
  }
  const toolCalls = message['toolCalls']
  if (toolCalls === undefined) return
  if (role !== 'assistant') {
    throw new InvalidArgumentError(
      `${at}.toolCalls`,
      `${at}.toolCalls is only allowed on assistant messages.`,
    )
  }
  if (!Array.isArray(toolCalls)) {
    throw new InvalidArgumentError(
      `${at}.toolCalls`,
      `${at}.toolCalls must be an array of { id, type: 'function', function: { name, arguments } }.`,
    )
  }
  toolCalls.forEach((call: unknown, index) => {
    const where = `${at}.toolCalls.${index}`
    const fn =
      typeof call === 'object' && call !== null ? (call as Record<string, unknown>)['function'] : undefined
    const name = typeof fn === 'object' && fn !== null ? (fn as Record<string, unknown>)['name'] : undefined
    if (typeof name !== 'string' || name === '') {
      throw new InvalidArgumentError(
        `${where}.function.name`,
        `${where} must be { id, type: 'function', function: { name, arguments } } with the tool's name (as result.toolCalls gives it: { id, name, arguments }).`,
      )
    }
    const args = (fn as Record<string, unknown>)['arguments']
    if (typeof args !== 'string' && (typeof args !== 'object' || args === null || Array.isArray(args))) {
      throw new InvalidArgumentError(
        `${where}.function.arguments`,
        `${where}.function.arguments must be the arguments' JSON text (or the parsed object).`,
      )
    }
    const id = (call as Record<string, unknown>)['id']
    if (id !== undefined && typeof id !== 'string') {
      throw new InvalidArgumentError(`${where}.id`, `${where}.id must be a string when given.`)
    }
  })
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
  if (message.toolCalls !== undefined)
    out['tool_calls'] = argumentsAsMapping
      ? message.toolCalls.map((call, callIndex) => withParsedArguments(call, index, callIndex))
      : message.toolCalls
  if (message.toolCallId !== undefined) out['tool_call_id'] = message.toolCallId
  if (message.name !== undefined) out['name'] = message.name
  return out
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
