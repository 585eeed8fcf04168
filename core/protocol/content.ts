// A message's content as OpenAI's API takes it: a string, an array of `{ type: 'text', text }`
// parts, or null on an assistant turn that only calls tools. One rule for the wire's validation
// (a request to the edge) and the SDK's (a request to chat() / stream()), and one way to join the
// parts, so the device and the edge render the same prompt from the same messages.
import { InvalidArgumentError } from '../errors.ts'
import { quote } from './checks.ts'
import type { ChatCompletionContentPart } from './types.ts'

/** What a message's `content` may be. */
export type MessageContent = string | readonly ChatCompletionContentPart[] | null

// OpenAI's (and the Responses API's) part types this model cannot read, each with its own words.
const unreadable: Readonly<Record<string, string>> = {
  image_url: 'images are',
  input_image: 'images are',
  image: 'images are',
  input_audio: 'audio is',
  audio: 'audio is',
  file: 'files are',
  input_file: 'files are',
}

function fail(param: string, message: string): never {
  throw new InvalidArgumentError(param, message)
}

/**
 * Checks a message's content (`param` is its path, e.g. `messages.2.content`): a string, an array
 * of text parts, or null / absent on an assistant turn. A part of another type is refused at its
 * `type` (`messages.2.content.1.type`), saying images (audio, files) are not supported.
 */
export function validateMessageContent(value: unknown, param: string, role: unknown): void {
  if (typeof value === 'string') return
  if (value === null || value === undefined) {
    if (role === 'assistant') return
    fail(param, `${param} is missing: every ${String(role)} message needs text content.`)
  }
  if (!Array.isArray(value))
    fail(param, `${param} must be a string or an array of { type: 'text', text } parts.`)
  // Every index, holes included (forEach skips a sparse array's holes; JSON sends them as null).
  for (let index = 0; index < value.length; index++) {
    const part: unknown = value[index]
    const at = `${param}.${index}`
    if (typeof part !== 'object' || part === null || Array.isArray(part))
      fail(at, `${at} must be an object like { type: 'text', text: '...' }.`)
    const { type, text } = part as Readonly<Record<string, unknown>>
    if (type !== 'text') {
      // Own keys only: a type named 'constructor' or '__proto__' is no known part type.
      const what = typeof type === 'string' && Object.hasOwn(unreadable, type) ? unreadable[type] : undefined
      fail(
        `${at}.type`,
        what === undefined
          ? `${at}.type is ${quote(type)}: this is a text-only model; send only { type: 'text', text } parts (or a string).`
          : `${at}.type is ${quote(type)}: ${what} not supported by this model (a text-only model); send only { type: 'text', text } parts (or a string).`,
      )
    }
    if (typeof text !== 'string') fail(`${at}.text`, `${at}.text must be a string.`)
  }
}

/**
 * The text a checked content stands for: a string as it is, text parts joined with nothing between
 * them (as the AI SDK's provider joins a prompt's text parts), null or absent as ''.
 */
export function messageContentText(content: MessageContent | undefined): string {
  if (content === null || content === undefined) return ''
  if (typeof content === 'string') return content
  return content.map((part) => part.text).join('')
}
