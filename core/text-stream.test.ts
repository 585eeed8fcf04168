import { describe, expect, it } from 'vitest'
import { qwen3Tokenizer } from '../test/support/qwen3-tokenizer.ts'
import { TextStream } from './text-stream.ts'

describe('TextStream', () => {
  const tokenizer = qwen3Tokenizer()

  it('releases only complete characters and adds up to the full decode', () => {
    const text = 'Emoji 😀 family 👨‍👩‍👧‍👦, 日本語, e\u0301, flags 🇯🇵 and 𝔘𝔫𝔦 end'
    const ids = tokenizer.encode(text)
    const stream = new TextStream(tokenizer)
    const deltas = ids.map((id) => stream.push(id))
    for (const delta of deltas) expect(delta).not.toContain('\uFFFD')
    // Some tokens carry only part of a character, so their delta is empty.
    expect(deltas.filter((delta) => delta === '').length).toBeGreaterThan(0)
    expect(deltas.join('') + stream.flush()).toBe(text.normalize('NFC'))
    expect(stream.text).toBe(text.normalize('NFC'))
  })

  it('shows incomplete bytes as U+FFFD only at the end, and gives up holding invalid UTF-8', () => {
    // Qwen3 splits the zero-width joiner (E2 80 8D) into two tokens: E2 80, then 8D.
    const ids = tokenizer.encode('\u200D')
    expect(ids).toHaveLength(2)
    const stream = new TextStream(tokenizer)
    expect(stream.push(ids[0]!)).toBe('')
    expect(stream.flush()).toBe('\uFFFD')
    // A run of lone lead bytes never completes: released after a few tokens rather than held forever.
    const leadByte = ids[0]!
    const stubborn = new TextStream(tokenizer)
    const shown = Array.from({ length: 8 }, () => stubborn.push(leadByte)).join('')
    expect(shown.length).toBeGreaterThan(0)
  })
})
