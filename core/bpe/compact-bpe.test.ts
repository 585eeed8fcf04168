// The compact BPE must give exactly the ids, pieces and text of @huggingface/tokenizers' own
// Tokenizer on the same tokenizer.json: the real Qwen3 file on random text of every kind (long
// words take the heap path), and small hand-made files for what Qwen3 does not exercise (merges
// written as "a b" strings, byte fallback, an unknown token fused, added tokens that are also
// pieces, escapes in pieces, models the compact path leaves to the library).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Tokenizer as HuggingFaceTokenizer } from '@huggingface/tokenizers'
import { describe, expect, it } from 'vitest'
import { qwen3TokenizerDirectory } from '../../test/support/qwen3-tokenizer.ts'
import { Tokenizer } from '../tokenizer.ts'
import { readTokenizerJsonBytes, readTokenizerJsonObject } from './index.ts'

/** A seeded generator (mulberry32), so a failure names a reproducible case. */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const pools = [
  'abcdefghijklmnopqrstuvwxyz',
  'ABCDEFGHIJKLMNOPQRSTUVWXYZ',
  '0123456789',
  ' \n\t\r  ',
  '.,;:!?\'"()[]{}<>/\\|-_=+*&^%$#@~`',
  '你好世界中文标点日本語のテキスト한국어문장',
  'éèêëàâäôöûüçñßåøæ\u0301\u0308\u0303',
  'مرحبا بالعالم שלום עולם สวัสดี नमस्ते',
  '😀👨‍👩‍👧‍👦🇫🇷🇯🇵1️⃣👩🏽‍💻𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  '\uD800\uDC00\uDBFF',
]
const specials = ['<|im_start|>', '<|im_end|>', '<think>', '</tool_call>', '<|endoftext|>']

function randomText(next: () => number): string {
  const parts: string[] = []
  const count = 1 + Math.floor(next() * 12)
  for (let part = 0; part < count; part++) {
    const kind = next()
    if (kind < 0.08) parts.push(specials[Math.floor(next() * specials.length)]!)
    else if (kind < 0.16) {
      // One long word: the merge heap's path (over 48 characters).
      const pool = pools[Math.floor(next() * 3)]!
      const length = 49 + Math.floor(next() * 400)
      let word = ''
      for (let index = 0; index < length; index++)
        word += pool[Math.floor(next() * (next() < 0.5 ? 2 : pool.length))]
      parts.push(word)
    } else {
      const pool = Array.from(pools[Math.floor(next() * pools.length)]!)
      const length = 1 + Math.floor(next() * 20)
      let run = ''
      for (let index = 0; index < length; index++) run += pool[Math.floor(next() * pool.length)]
      parts.push(run)
    }
  }
  return parts.join(next() < 0.5 ? ' ' : '')
}

function expectSame(ours: Tokenizer, library: HuggingFaceTokenizer, text: string): void {
  for (const addSpecialTokens of [true, false]) {
    const theirs = library.encode(text, { add_special_tokens: addSpecialTokens })
    const mine = ours.tokenize(text, { addSpecialTokens })
    expect(mine.ids, JSON.stringify(text)).toEqual(theirs.ids)
    expect(mine.pieces, JSON.stringify(text)).toEqual(theirs.tokens)
    if (theirs.ids.length > 0)
      for (const skipSpecialTokens of [false, true])
        expect(ours.decode(theirs.ids, { skipSpecialTokens })).toBe(
          library.decode(theirs.ids, {
            skip_special_tokens: skipSpecialTokens,
            clean_up_tokenization_spaces: false,
          }),
        )
  }
}

describe('the real Qwen3 tokenizer: compact BPE against the library', () => {
  const directory = qwen3TokenizerDirectory()
  const bytes = readFileSync(join(directory, 'tokenizer.json'))
  const config = readFileSync(join(directory, 'tokenizer_config.json'), 'utf8')
  const ours = Tokenizer.fromFiles({ tokenizerJson: bytes, tokenizerConfigJson: config })
  const library = new HuggingFaceTokenizer(JSON.parse(bytes.toString('utf8')), JSON.parse(config))

  it('reads the file compactly: every piece and merge, nothing left to the library', () => {
    const { json, bpe } = readTokenizerJsonBytes(bytes)
    expect(bpe).toBeDefined()
    expect(bpe!.pieces.size).toBe(151_643)
    expect(bpe!.merges.count).toBe(151_387)
    expect(json['model']).toMatchObject({ type: 'BPE', vocab: {}, merges: [] })
    // Under 8 MB for what the library held in ~49 MB.
    expect(bpe!.pieces.byteLength + bpe!.merges.byteLength).toBeLessThan(8_000_000)
  })

  it('gives the same ids, pieces and text on 300 random texts (scripts, emoji, long words, added tokens)', () => {
    const next = random(15)
    for (let round = 0; round < 300; round++) expectSame(ours, library, randomText(next))
  })

  it('knows every id the way the library does', () => {
    for (let id = 0; id < ours.vocabularySize; id += 97) {
      expect(ours.idToToken(id)).toBe(library.id_to_token(id))
      const piece = library.id_to_token(id)
      if (piece !== undefined) expect(ours.tokenToId(piece)).toBe(library.token_to_id(piece))
    }
    for (const special of specials) expect(ours.tokenToId(special)).toBe(library.token_to_id(special))
    expect(ours.tokenToId('not a piece at all')).toBeUndefined()
  })

  it('reads the same from text, bytes and the parsed object', () => {
    const text = 'Hello, my dog is cute. 你好世界 1234 <|im_end|>'
    const expected = ours.encode(text)
    const fromText = Tokenizer.fromFiles({
      tokenizerJson: bytes.toString('utf8'),
      tokenizerConfigJson: config,
    })
    const fromObject = Tokenizer.fromFiles({
      tokenizerJson: JSON.parse(bytes.toString('utf8')) as object,
      tokenizerConfigJson: config,
    })
    expect(fromText.encode(text)).toEqual(expected)
    expect(fromObject.encode(text)).toEqual(expected)
  })
})

/** A small SentencePiece-style BPE in the shape llama2.c's converter writes. */
function sentencePieceJson(modelExtra: Record<string, unknown> = {}): Record<string, unknown> {
  const pieces = [
    '<unk>',
    '<s>',
    '</s>',
    ...Array.from({ length: 256 }, (_, byte) => `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`),
  ]
  const words = [
    '▁',
    'a',
    'b',
    'c',
    'd',
    'e',
    'h',
    'l',
    'o',
    'w',
    'r',
    'ab',
    'abc',
    '▁a',
    '▁ab',
    'he',
    'll',
    'hell',
    'hello',
    '▁hello',
    'wo',
    'wor',
    'world',
    'lo',
    'cd',
    'q"\\\n',
  ]
  const vocab: Record<string, number> = {}
  for (const piece of [...pieces, ...words]) vocab[piece] = Object.keys(vocab).length
  const merges = [
    'a b',
    'ab c',
    '▁ a',
    '▁a b',
    'h e',
    'l l',
    'he ll',
    'hell o',
    '▁ hello',
    'w o',
    'wo r',
    'wor ld',
    'l o',
    'c d',
    'a b',
    'malformed',
  ]
  // 'ld' is needed by 'wor ld'; 'world' then needs 'wor' + 'ld'.
  vocab['ld'] = Object.keys(vocab).length
  merges.splice(11, 0, 'l d')
  return {
    version: '1.0',
    added_tokens: [
      { id: 0, content: '<unk>', special: true, normalized: false },
      { id: 1, content: '<s>', special: true, normalized: false },
      { id: 2, content: '</s>', special: true, normalized: false },
      // An added token that is also a model piece, under another id.
      { id: Object.keys(vocab).length, content: 'hello', special: false, normalized: true },
    ],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
      ...modelExtra,
    },
  }
}

describe('hand-made tokenizer.json files: compact BPE against the library', () => {
  const texts = [
    'hello world',
    'abc abcd hello hellohello',
    'héllo wörld ☃ 😀 unknown ŧ',
    'q"\\\n and q',
    '<s>hello</s> <unk>',
    'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabcabcabcabcabcabcabcabcabcabcabcabc',
    '',
  ]
  const next = random(7)
  const randomTexts = Array.from({ length: 60 }, () => randomText(next))

  const cases: [string, Record<string, unknown>, boolean][] = [
    ['byte fallback, fused unknowns, "a b" merges', sentencePieceJson(), true],
    [
      'no byte fallback: unknown characters fuse into one <unk>',
      sentencePieceJson({ byte_fallback: false }),
      true,
    ],
    [
      'no unknown token: unknown characters vanish',
      sentencePieceJson({ byte_fallback: false, unk_token: null, fuse_unk: false }),
      true,
    ],
    ['ignore_merges', sentencePieceJson({ ignore_merges: true }), true],
    [
      'merges as pairs',
      {
        ...sentencePieceJson(),
        model: {
          ...(sentencePieceJson()['model'] as object),
          merges: (sentencePieceJson()['model'] as { merges: string[] }).merges
            .filter((merge) => merge.includes(' '))
            .map((merge) => merge.split(' ')),
        },
      },
      true,
    ],
    ['an end-of-word suffix: left to the library', sentencePieceJson({ end_of_word_suffix: '</w>' }), false],
  ]

  it.each(cases)('%s', (_name, json, compact) => {
    const text = JSON.stringify(json)
    expect(readTokenizerJsonBytes(new TextEncoder().encode(text)).bpe !== undefined).toBe(compact)
    expect(readTokenizerJsonObject(JSON.parse(text) as Record<string, unknown>).bpe !== undefined).toBe(
      compact,
    )
    const library = new HuggingFaceTokenizer(JSON.parse(text), {})
    for (const form of [text, new TextEncoder().encode(text), JSON.parse(text) as object]) {
      const ours = Tokenizer.fromFiles({ tokenizerJson: form })
      for (const sample of [...texts, ...randomTexts]) expectSame(ours, library, sample)
    }
  })

  it('reads escapes and non-ASCII in pieces as JSON.parse does', () => {
    const json = sentencePieceJson()
    const text = JSON.stringify(json).replace('"q\\"\\\\\\n"', '"\\u0071\\"\\\\\\u000a"')
    expect(text).toContain('\\u0071')
    const ours = Tokenizer.fromFiles({ tokenizerJson: new TextEncoder().encode(text) })
    const library = new HuggingFaceTokenizer(JSON.parse(text), {})
    expect(ours.tokenToId('q"\\\n')).toBe(library.token_to_id('q"\\\n'))
    expectSame(ours, library, 'q"\\\n q')
  })

  it('a merge of pieces outside the vocabulary leaves the model to the library', () => {
    const json = sentencePieceJson()
    ;(json['model'] as { merges: string[] }).merges.push('x y')
    expect(readTokenizerJsonBytes(new TextEncoder().encode(JSON.stringify(json))).bpe).toBeUndefined()
    const ours = Tokenizer.fromFiles({ tokenizerJson: JSON.stringify(json) })
    expectSame(ours, new HuggingFaceTokenizer(json, {}), 'hello world xy')
  })
})
