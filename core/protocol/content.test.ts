// A message's content parts as a careless or hostile caller sends them: odd types (names of
// Object's own members included), holes, non-string text. Each is one InvalidArgumentError at
// the part's path with words that say what to send.
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../errors.ts'
import { messageContentText, validateMessageContent } from './content.ts'

function refusal(value: unknown): InvalidArgumentError {
  try {
    validateMessageContent(value, 'messages.0.content', 'user')
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError)
    return error as InvalidArgumentError
  }
  throw new Error('accepted')
}

describe('validateMessageContent', () => {
  it("a part type named like one of Object's members is an unknown type, not a garbled message", () => {
    for (const type of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const error = refusal([{ type, text: 'x' }])
      expect(error.param).toBe('messages.0.content.0.type')
      expect(error.message).toBe(
        `messages.0.content.0.type is "${type}": this is a text-only model; send only { type: 'text', text } parts (or a string).`,
      )
    }
    expect(refusal([{ type: 'image_url' }]).message).toMatch(/images are not supported by this model/)
  })

  it('holes, non-string text and non-objects are refused at their index', () => {
    expect(
      refusal([
        { type: 'text', text: 'a' },
        { type: 'text', text: 5 },
      ]).param,
    ).toBe('messages.0.content.1.text')
    expect(refusal([{ type: 'text', text: 'a' }, null]).param).toBe('messages.0.content.1')
    expect(refusal([{ type: 'text', text: 'a' }, ['text']]).param).toBe('messages.0.content.1')
    // A sparse array: its hole is no part (forEach would skip it and the join would drop it).
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    expect(refusal([{ type: 'text', text: 'a' }, , { type: 'text', text: 'b' }]).param).toBe(
      'messages.0.content.1',
    )
  })

  it('joins text parts with nothing between them', () => {
    const parts = [
      { type: 'text', text: 'a' },
      { type: 'text', text: '' },
      { type: 'text', text: 'b' },
    ] as const
    validateMessageContent(parts, 'messages.0.content', 'user')
    expect(messageContentText(parts)).toBe('ab')
  })
})
