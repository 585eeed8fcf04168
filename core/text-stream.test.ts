import { describe, expect, it } from 'vitest'
import { qwen3Tokenizer } from '../test/support/qwen3-tokenizer.ts'
import { TextStream } from './text-stream.ts'
import { Tokenizer } from './tokenizer.ts'

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

// A tiny SentencePiece-style tokenizer.json (the shape Llama checkpoints and our llama2.c importer
// use): '▁' for spaces, byte fallback for characters without a piece, and a decoder that strips
// the first leading space. Streaming must keep every later leading space and fuse byte tokens.
function sentencePieceTokenizer(): Tokenizer {
  const pieces = [
    '▁',
    'O',
    'n',
    'c',
    'e',
    'u',
    'p',
    'o',
    'a',
    '▁O',
    '▁On',
    '▁Onc',
    '▁Once',
    '▁u',
    '▁up',
    '▁upo',
    '▁upon',
    '▁a',
  ]
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 }
  for (let byte = 0; byte < 256; byte++)
    vocab[`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`] = byte + 3
  for (const piece of pieces) vocab[piece] = Object.keys(vocab).length
  const merges = [
    ['▁', 'O'],
    ['▁O', 'n'],
    ['▁On', 'c'],
    ['▁Onc', 'e'],
    ['▁', 'u'],
    ['▁u', 'p'],
    ['▁up', 'o'],
    ['▁upo', 'n'],
    ['▁', 'a'],
  ]
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  })
  return Tokenizer.fromFiles({
    tokenizerJson: {
      version: '1.0',
      added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
      normalizer: {
        type: 'Sequence',
        normalizers: [
          { type: 'Prepend', prepend: '▁' },
          { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
        ],
      },
      pre_tokenizer: null,
      post_processor: null,
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
          { type: 'ByteFallback' },
          { type: 'Fuse' },
          { type: 'Strip', content: ' ', start: 1, stop: 0 },
        ],
      },
      model: { type: 'BPE', unk_token: '<unk>', fuse_unk: true, byte_fallback: true, vocab, merges },
    },
    tokenizerConfigJson: { bos_token: '<s>', eos_token: '</s>' },
  })
}

describe('TextStream on a SentencePiece tokenizer with byte fallback', () => {
  it('keeps later leading spaces, fuses byte tokens, and matches the full decode', () => {
    const tokenizer = sentencePieceTokenizer()
    const text = 'Once upon a 😀 é upon'
    const ids = tokenizer.encode(text, { addSpecialTokens: false })
    // The emoji has no piece: four byte tokens.
    expect(ids.filter((id) => id >= 3 && id < 259).length).toBeGreaterThanOrEqual(4)
    expect(tokenizer.decode(ids)).toBe(text)
    const stream = new TextStream(tokenizer)
    const deltas = ids.map((id) => stream.push(id))
    expect(deltas[0]).toBe('Once')
    expect(deltas[1]).toBe(' upon')
    for (const delta of deltas) expect(delta).not.toContain('\uFFFD')
    expect(deltas.join('') + stream.flush()).toBe(text)
    expect(tokenizer.eosTokenIds).toEqual([2])
    expect(tokenizer.bosTokenId).toBe(1)
  })
})
