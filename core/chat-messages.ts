// A chat's messages as every side takes them (the SDK's requests, the edge's wire format, a
// model's chat template): their types and the check that names the first bad field with the fix.
// Apart from chat-template.ts so that checking messages (the SDK in a page) does not bring the
// Jinja engine along.
import { InvalidArgumentError } from './errors.ts'

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
  // Every index, holes included: forEach skips a sparse array's holes, which then crashed the
  // prompt's rendering (a TypeError, not the caller's InvalidArgumentError).
  for (let index = 0; index < messages.length; index++) {
    const message: unknown = messages[index]
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
    refuseUnknownMessageKeys(message as Record<string, unknown>, at)
    validateOptionalFields(message as Record<string, unknown>, role, at)
  }
  return messages as readonly ChatMessage[]
}

const messageKeys: ReadonlySet<string> = new Set([
  'role',
  'content',
  'name',
  'toolCalls',
  'toolCallId',
  'reasoningContent',
])

/**
 * Where a key other APIs use (OpenAI's wire names, Ollama's images) goes, or why it cannot: the
 * edge's words for the same keys (core/protocol/validate.ts), in the camelCase names taken here.
 */
const messageKeyHints: Readonly<Record<string, string>> = {
  images: 'images are not supported by this model (a text-only model); send the text alone.',
  tool_calls: 'did you mean "toolCalls"?',
  tool_call_id: 'did you mean "toolCallId"?',
  reasoning_content: 'did you mean "reasoningContent"?',
  reasoning: 'an assistant turn\'s reasoning goes in "reasoningContent".',
  thinking: 'an assistant turn\'s reasoning goes in "reasoningContent".',
  text: 'the message\'s text goes in "content".',
}

/**
 * A key a message does not take is refused at its path (`messages.1.images`): dropped, what it
 * carried (an image, a misspelt content) was silently no part of the prompt, while the edge
 * refuses the same message with a 400 naming it. The SDK calls it before it checks `content`, so
 * a misspelt content (`contnet`) is named rather than reported as content missing.
 */
export function refuseUnknownMessageKeys(message: Record<string, unknown>, at: string): void {
  for (const key of Object.keys(message)) {
    // An undefined value carries nothing (JSON leaves it out on the way to the edge too).
    if (messageKeys.has(key) || message[key] === undefined) continue
    const shown = key.slice(0, 64)
    // Own keys only: a key named `constructor` must not find Object.prototype's.
    const hint = Object.hasOwn(messageKeyHints, key) ? messageKeyHints[key] : undefined
    throw new InvalidArgumentError(
      `${at}.${shown}`,
      `Unknown field ${at}.${shown}: ${hint ?? 'a message has role and content, and where its role takes them name, toolCalls and reasoningContent (assistant), toolCallId (tool).'}`,
    )
  }
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
  for (let index = 0; index < toolCalls.length; index++) {
    const call: unknown = toolCalls[index]
    const where = `${at}.toolCalls.${index}`
    const fn =
      typeof call === 'object' && call !== null ? (call as Record<string, unknown>)['function'] : undefined
    const name = typeof fn === 'object' && fn !== null ? (fn as Record<string, unknown>)['name'] : undefined
    if (typeof name !== 'string' || name === '') {
      throw new InvalidArgumentError(
        `${where}.function.name`,
        `${where} must be { id, type: 'function', function: { name, arguments } } with the tool's name: a call from result.toolCalls ({ id, name, arguments }) goes back as { id, type: 'function', function: { name: call.name, arguments: call.arguments } }.`,
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
  }
}

/** A message as the tool-result check reads it, whatever its side's field names. */
export interface ToolResultLink {
  readonly role: unknown
  /** An assistant message's calls' ids (undefined where a call has none); undefined: no calls. */
  readonly callIds: readonly (string | undefined)[] | undefined
  /** A tool message's id of the call it answers. */
  readonly resultId: unknown
}

/**
 * The first tool result that answers no call, as an InvalidArgumentError naming its id field
 * (`messages.3.tool_call_id` on the wire, `messages.3.toolCallId` in the SDK). A tool message
 * follows an assistant message with calls, with only other results between, and repeats one of
 * their ids, as OpenAI's API requires: one that did not reached the chat template as the result
 * of nothing, and an app whose tool loop lost or misspelt an id got an answer and no word of it.
 * Ids are compared only where every call of that message has one (the wire lets a call go
 * without).
 */
export function checkToolResults(
  messages: readonly ToolResultLink[],
  names: { readonly idField: string; readonly callsField: string },
  param = 'messages',
): void {
  /** The assistant message whose calls the results that follow answer. */
  let calling: number | undefined
  for (const [index, message] of messages.entries()) {
    if (message.role === 'assistant' && message.callIds !== undefined && message.callIds.length > 0) {
      calling = index
      continue
    }
    if (message.role !== 'tool') {
      calling = undefined
      continue
    }
    const at = `${param}.${index}.${names.idField}`
    if (calling === undefined) {
      throw new InvalidArgumentError(
        at,
        `${param}.${index} is a tool result, but no assistant message with ${names.callsField} comes before it (only other tool results may stand between a call and its results): send the assistant message that made the call, with its ${names.callsField}, before the result.`,
      )
    }
    const ids = messages[calling]!.callIds!
    if (ids.every((id) => id !== undefined) && !ids.includes(message.resultId as string)) {
      throw new InvalidArgumentError(
        at,
        `${at} is ${JSON.stringify(message.resultId)}, which is not the id of a call in ${param}.${calling}.${names.callsField} (${ids.map((id) => JSON.stringify(id)).join(', ')}): a tool result repeats the id of the call it answers.`,
      )
    }
  }
}
