// Reading tool calls back out of an answer's tokens: the model's own syntax (Qwen3:
// `<tool_call>\n{"name":...,"arguments":{...}}\n</tool_call>`), which the constraint enforced, so
// every complete call parses. What comes before the first call is the answer's text.
import type { ToolCall, ToolCallProgress } from '../stream-parts.ts'

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
 * A call's id from what precedes it: the tokens (the prompt, then the answer up to and including
 * the call's `<tool_call>`) and the call's index. Known when the call opens,
 * so a stream can name it in its first delta, and the same wherever the same tokens ran (device,
 * edge, a handoff). The prompt makes the ids of one conversation's turns differ even when two
 * answers are the very same tokens (an app's loop keys calls and their results by id).
 */
export function toolCallId(precedingTokenIds: readonly number[], index: number): string {
  return `call_${hash(precedingTokenIds)}${index}`
}

/**
 * A call's arguments as the model wrote them (the constraint made them compact JSON valid against
 * the tool's parameters): the text between `{"name":"...","arguments":` and the closing `}`, so
 * a stream's argument fragments add up to it exactly. Parsing and printing again could change it
 * (`0.10` becomes `0.1`, a 30-digit number loses digits and may leave its bounds).
 */
function rawArguments(body: string, name: string, parsed: unknown): string {
  const head = `{"name":${JSON.stringify(name)},"arguments":`
  if (body.startsWith(head) && body.endsWith('}')) return body.slice(head.length, -1)
  return JSON.stringify(parsed ?? {})
}

/**
 * Splits an answer's text into its content (before the first call) and its complete calls.
 * Ids: `idOf(index)` when given (generate() passes toolCallId over the prompt and the tokens
 * before each call); else a hash of `tokenIds` (the whole answer's) and the index.
 */
export function readToolCalls(
  text: string,
  tokenIds: readonly number[],
  idOf?: (index: number) => string,
): { content: string; toolCalls: ToolCall[] } {
  const first = text.indexOf(toolCallOpen)
  if (first === -1) return { content: text, toolCalls: [] }
  const toolCalls: ToolCall[] = []
  const base = idOf === undefined ? hash(tokenIds) : ''
  const pattern = /<tool_call>\n([\s\S]*?)\n<\/tool_call>/g
  for (const match of text.slice(first).matchAll(pattern)) {
    try {
      const body = match[1]!
      const call = JSON.parse(body) as { name?: unknown; arguments?: unknown }
      if (typeof call.name !== 'string') continue
      const index = toolCalls.length
      toolCalls.push({
        id: idOf === undefined ? `call_${base}${index}` : idOf(index),
        name: call.name,
        arguments: rawArguments(body, call.name, call.arguments),
      })
    } catch {
      // An unfinished call (cut by the token limit) is not a call.
    }
  }
  return { content: text.slice(0, first).trimEnd(), toolCalls }
}

const callHead = '\n{"name":"'
const argumentsKey = '","arguments":'

/**
 * Follows the call being written, token by token, for a stream that sends calls as they come
 * (OpenAI's deltas: the id and name first, then argument fragments). Each call syntax reads its
 * own text into `progress`; the calls' count, ids and text are kept here.
 */
export abstract class CallTextReader {
  #index = -1
  #id = ''
  #text = ''

  /** At a call's `<tool_call>` token, with the call's id (toolCallId). */
  open(id: string): void {
    this.#index++
    this.#id = id
    this.#text = ''
  }

  /** Text decoded after the `<tool_call>` token (the markup included). */
  push(text: string): void {
    if (this.#index >= 0) this.#text += text
  }

  /** The call so far, once its name is written; its `arguments` is a prefix of the finished call's. */
  abstract get progress(): ToolCallProgress | undefined

  protected get index(): number {
    return this.#index
  }

  protected get id(): string {
    return this.#id
  }

  protected get text(): string {
    return this.#text
  }
}

/**
 * The JSON syntax's reader. The constraint writes `<tool_call>`, a newline,
 * `{"name":"<name>","arguments":<arguments>}`, a newline and `</tool_call>`, compact and in that
 * order, so the name is known at `"arguments":` and every argument fragment is final: the one
 * character held back is a `}` that may be the call's own.
 */
export class ToolCallReader extends CallTextReader {
  get progress(): ToolCallProgress | undefined {
    const text = this.text
    if (!text.startsWith(callHead)) return undefined
    const nameEnd = text.indexOf(argumentsKey, callHead.length)
    if (nameEnd === -1) return undefined
    const rest = text.slice(nameEnd + argumentsKey.length)
    const newline = rest.indexOf('\n')
    const written = newline === -1 ? rest : rest.slice(0, newline)
    return {
      index: this.index,
      id: this.id,
      name: text.slice(callHead.length, nameEnd),
      arguments: newline !== -1 || written.endsWith('}') ? written.slice(0, -1) : written,
    }
  }
}
