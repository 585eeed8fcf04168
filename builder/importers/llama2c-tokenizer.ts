// Turns a llama2.c tokenizer.bin (SentencePiece-style BPE: pieces with scores, byte fallback)
// into a Hugging Face tokenizer.json that encodes and decodes the same way, so core's Tokenizer
// runs it. llama2.c's encoder prepends a space, splits into code points (bytes as <0xNN> when a
// code point is not a piece), then repeatedly merges the adjacent pair whose concatenation is the
// highest-scoring piece. A BPE model whose merge list holds every (a, b) with a+b in the
// vocabulary, ranked by the score of a+b, makes the same choices.

import type { Llama2cVocabulary } from './llama2c.ts'

const SPACE_MARK = '\u2581' // '▁', SentencePiece's visible space

export interface ConvertedTokenizer {
  readonly tokenizerJson: Record<string, unknown>
  readonly tokenizerConfigJson: Record<string, unknown>
}

const special = new Map([
  [0, '<unk>'],
  [1, '<s>'],
  [2, '</s>'],
])

function codePoints(text: string): string[] {
  return Array.from(text)
}

export function convertLlama2cTokenizer(vocabulary: Llama2cVocabulary): ConvertedTokenizer {
  const decoder = new TextDecoder('utf-8', { fatal: true })
  const tokens = vocabulary.pieces.map((bytes, id) => {
    const fixed = special.get(id)
    if (fixed) return fixed
    const text = decoder.decode(bytes)
    // Byte tokens keep their <0xNN> spelling; spaces become '▁' as in SentencePiece vocabularies.
    return /^<0x[0-9A-F]{2}>$/.test(text) ? text : text.replaceAll(' ', SPACE_MARK)
  })
  const vocab: Record<string, number> = {}
  tokens.forEach((token, id) => {
    // First id wins on duplicates, as llama2.c's sorted lookup would find one of them.
    if (!(token in vocab)) vocab[token] = id
  })

  const merges: { left: string; right: string; score: number; id: number; split: number }[] = []
  tokens.forEach((token, id) => {
    if (special.has(id) || /^<0x[0-9A-F]{2}>$/.test(token)) return
    const points = codePoints(token)
    for (let split = 1; split < points.length; split++) {
      const left = points.slice(0, split).join('')
      const right = points.slice(split).join('')
      if (left in vocab && right in vocab)
        merges.push({ left, right, score: vocabulary.scores[id]!, id, split })
    }
  })
  // Highest score first; equal scores keep vocabulary order, then the leftmost split.
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.split - b.split)

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...special].map(([id, content]) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPACE_MARK },
        { type: 'Replace', pattern: { String: ' ' }, content: SPACE_MARK },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE_MARK }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: merges.map((m) => [m.left, m.right]),
    },
  }
  const tokenizerConfigJson = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: 512,
    tokenizer_class: 'LlamaTokenizer',
    added_tokens_decoder: Object.fromEntries(
      [...special].map(([id, content]) => [
        String(id),
        { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
  }
  return { tokenizerJson, tokenizerConfigJson }
}
