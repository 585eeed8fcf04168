import { describe, expect, it } from 'vitest'
import { qwen3Tokenizer } from '../test/support/qwen3-tokenizer.ts'
import { TextStream } from './text-stream.ts'
import { Tokenizer } from './tokenizer.ts'

/** Joins a stream's deltas, checking after each that the text so far begins the full decode. */
function streamed(tokenizer: Tokenizer, ids: readonly number[], skipSpecialTokens = false): string[] {
  const full = tokenizer.decode(ids, { skipSpecialTokens })
  const stream = new TextStream(tokenizer, { skipSpecialTokens })
  const deltas: string[] = []
  let joined = ''
  for (const id of [...ids, undefined]) {
    const delta = id === undefined ? stream.flush() : stream.push(id)
    joined += delta
    expect(full.startsWith(joined), `${JSON.stringify(joined)} does not begin ${JSON.stringify(full)}`).toBe(
      true,
    )
    deltas.push(delta)
  }
  expect(joined).toBe(full)
  return deltas
}

/** Qwen3's single-byte token for each UTF-8 byte of `text` (what a model may emit instead of merged pieces). */
function byteLevelIds(tokenizer: Tokenizer, text: string): number[] {
  const characterOf = new Map<number, string>()
  let extra = 0
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255)
    characterOf.set(byte, String.fromCharCode(printable ? byte : 256 + extra++))
  }
  return [...new TextEncoder().encode(text)].map((byte) => tokenizer.tokenToId(characterOf.get(byte)!)!)
}

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

  it('tells a real U+FFFD from an unfinished character: holds exactly the bytes still open', () => {
    // A real U+FFFD then an emoji, one token per byte (7 tokens). Holding while the text ended in
    // U+FFFD held all of them, gave up at six ('��') and then released '\uDE00', a lone surrogate.
    const ids = byteLevelIds(tokenizer, '\uFFFD😀 ok')
    expect(ids).toHaveLength(10)
    expect(streamed(tokenizer, ids)).toEqual(['', '', '\uFFFD', '', '', '', '😀', ' ', 'o', 'k', ''])
    // Invalid bytes are final at once (as TextDecoder reads them), never held for more.
    const lead = byteLevelIds(tokenizer, '😀')[0]!
    const ascii = byteLevelIds(tokenizer, 'a')[0]!
    expect(streamed(tokenizer, [lead, ascii, lead, lead, ascii])).toEqual([
      '',
      '\uFFFDa',
      '',
      '\uFFFD',
      '\uFFFDa',
      '',
    ])
    // An added token ends an unfinished character; a skipped special token does not (the decoder never sees it).
    const imEnd = tokenizer.tokenToId('<|im_end|>')!
    const [f0, x9f, x98, x80] = byteLevelIds(tokenizer, '😀')
    expect(streamed(tokenizer, [f0!, x9f!, imEnd, x98!, x80!]).join('')).toBe('\uFFFD<|im_end|>\uFFFD\uFFFD')
    expect(streamed(tokenizer, [f0!, x9f!, imEnd, x98!, x80!], true)).toEqual(['', '', '', '', '😀', ''])
  })

  it('on any bytes of valid text with U+FFFD in it, spelled one token per byte, every prefix begins the decode', () => {
    const texts = [
      '\uFFFD\uFFFD中文字',
      'a\uFFFD👨‍👩‍👧‍👦\uFFFD',
      '\uFFFD𝔘𝔫𝔦\uFFFD日本',
      '\uFFFD\u200D\uFFFDé',
    ]
    for (const text of texts) expect(streamed(tokenizer, byteLevelIds(tokenizer, text)).join('')).toBe(text)
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

  it('holds byte tokens exactly: a real U+FFFD (three byte tokens) then an emoji', () => {
    const tokenizer = sentencePieceTokenizer()
    const byte = (value: number) => value + 3
    const once = tokenizer.encode('Once', { addSpecialTokens: false })
    const ids = [...once, ...[...new TextEncoder().encode('\uFFFD😀')].map(byte)]
    // Before: '��' at the sixth byte token, then '\uDE00'.
    expect(streamed(tokenizer, ids)).toEqual(['Once', '', '', '\uFFFD', '', '', '', '😀', ''])
  })

  it('keeps the space before a word that follows a run of skipped special tokens', () => {
    const tokenizer = sentencePieceTokenizer()
    const [once, upon] = tokenizer.encode('Once upon', { addSpecialTokens: false })
    // Six skipped <s> moved the window past every released token, so the decoder's Strip took
    // the space off ' upon': 'Onceupon'.
    const deltas = streamed(tokenizer, [once!, 1, 1, 1, 1, 1, 1, upon!], true)
    expect(deltas.join('')).toBe('Once upon')
    expect(deltas.at(-2)).toBe(' upon')
  })
})
