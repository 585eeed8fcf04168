// A package's Hugging Face tokenizer.json as GGUF tokenizer metadata (llama.cpp's `tokenizer.ggml.*`
// keys), the way llama.cpp's convert_hf_to_gguf.py writes them:
// - byte-level BPE (Qwen, GPT-2, Llama 3): model "gpt2", the vocabulary by id (ids the
//   tokenizer does not use, up to the model's vocab_size, as "[PADn]" of type UNUSED), token types
//   (special added tokens CONTROL, other added tokens USER_DEFINED) and the merges as "a b";
// - SentencePiece-style BPE with byte fallback (llama2.c's stories models, converted by the
//   builder): model "llama", the pieces with scores. llama.cpp's SentencePiece tokenizer merges
//   the adjacent pair whose piece scores highest; the builder's tokenizer.json holds that order as
//   merge ranks, so a piece's score is minus the rank of the first merge that makes it.
import { InvalidArgumentError } from '../../core/errors.ts'
import type { ModelConfig } from '../../core/model-package.ts'
import { type GgufValue, gguf } from './gguf-file.ts'

/** llama_token_type values. */
const TokenType = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const

export interface GgufTokenizerSource {
  /** tokenizer.json, parsed or as text. */
  readonly tokenizerJson: string | Readonly<Record<string, unknown>>
  /** tokenizer_config.json (chat template, add_bos_token), when the package has one. */
  readonly tokenizerConfigJson?: string | Readonly<Record<string, unknown>>
  readonly config: ModelConfig
  /** generation_config.json's ids override config.json's when given. */
  readonly bosTokenId?: number
  readonly eosTokenId?: number
  readonly padTokenId?: number
}

interface AddedToken {
  readonly id: number
  readonly content: string
  readonly special?: boolean
}

type Json = Record<string, unknown>

const asObject = (value: unknown): Json | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : undefined

function parse(value: string | Readonly<Record<string, unknown>>, what: string): Json {
  if (typeof value !== 'string') return value as Json
  try {
    const parsed = asObject(JSON.parse(value))
    if (parsed) return parsed
  } catch {}
  throw new InvalidArgumentError('tokenizer', `${what} is not a JSON object.`)
}

/** Pre-tokenizer regexes llama.cpp knows by name (tokenizer.ggml.pre). */
const knownPreTokenizers: readonly { readonly name: string; readonly pattern: string }[] = [
  {
    name: 'qwen2',
    pattern:
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  },
  {
    // Qwen3.5's tokenizer: Qwen2's split with combining marks (\p{M}) kept inside words.
    name: 'qwen35',
    pattern:
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  },
  {
    name: 'llama-bpe',
    pattern:
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  },
]

function collectStrings(node: unknown, found: string[]): void {
  if (Array.isArray(node)) for (const item of node) collectStrings(item, found)
  else if (asObject(node)) {
    const object = node as Json
    const pattern = asObject(object['pattern'])
    if (typeof pattern?.['Regex'] === 'string') found.push(pattern['Regex'] as string)
    for (const value of Object.values(object)) if (typeof value === 'object') collectStrings(value, found)
  }
}

function hasByteLevel(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(hasByteLevel)
  const object = asObject(node)
  if (!object) return false
  if (object['type'] === 'ByteLevel') return true
  return Object.values(object).some((value) => typeof value === 'object' && hasByteLevel(value))
}

/** The `tokenizer.ggml.*` entries (and the chat template) for a package's tokenizer. */
export function ggufTokenizerMetadata(source: GgufTokenizerSource): Map<string, GgufValue> {
  const tokenizer = parse(source.tokenizerJson, 'tokenizer.json')
  const tokenizerConfig =
    source.tokenizerConfigJson === undefined ? {} : parse(source.tokenizerConfigJson, 'tokenizer_config.json')
  const model = asObject(tokenizer['model'])
  const vocab = asObject(model?.['vocab'])
  if (model?.['type'] !== 'BPE' || !vocab)
    throw new InvalidArgumentError(
      'tokenizer',
      `GGUF export handles BPE tokenizers (byte-level as Qwen's, or SentencePiece-style with byte fallback as llama2.c's); this tokenizer.json's model is ${JSON.stringify(model?.['type'])}.`,
    )
  const vocabSize = source.config.vocabSize
  const pieces: (string | undefined)[] = new Array(vocabSize).fill(undefined)
  const place = (content: string, id: number) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
      throw new InvalidArgumentError(
        'tokenizer',
        `tokenizer.json gives "${content}" the id ${id}, outside the model's ${vocabSize}-token vocabulary (config.json vocab_size).`,
      )
    pieces[id] = content
  }
  for (const [content, id] of Object.entries(vocab)) place(content, id as number)
  const added = (Array.isArray(tokenizer['added_tokens']) ? tokenizer['added_tokens'] : []) as AddedToken[]
  for (const token of added) place(token.content, token.id)
  const addedById = new Map(added.map((token) => [token.id, token]))
  const merges = (Array.isArray(model['merges']) ? model['merges'] : []).map((merge: unknown) =>
    Array.isArray(merge) ? merge.join(' ') : String(merge),
  )
  const entries = new Map<string, GgufValue>()
  const byteLevel = hasByteLevel(tokenizer['pre_tokenizer']) || hasByteLevel(tokenizer['decoder'])
  const types = new Int32Array(vocabSize)
  const tokens = pieces.map((piece, id) => {
    if (piece === undefined) {
      types[id] = TokenType.unused
      return `[PAD${id}]`
    }
    const addedToken = addedById.get(id)
    if (addedToken) types[id] = addedToken.special ? TokenType.control : TokenType.userDefined
    else if (!byteLevel && /^<0x[0-9A-F]{2}>$/.test(piece)) types[id] = TokenType.byte
    else types[id] = TokenType.normal
    return piece
  })
  const bos = source.bosTokenId ?? source.config.bosTokenId
  const eos = source.eosTokenId ?? source.config.eosTokenIds[0]
  if (byteLevel) {
    const regexes: string[] = []
    collectStrings(tokenizer['pre_tokenizer'], regexes)
    const pre = knownPreTokenizers.find((known) => regexes.includes(known.pattern))?.name
    if (!pre)
      throw new InvalidArgumentError(
        'tokenizer',
        `tokenizer.json's pre-tokenizer regex is not one GGUF export knows (${knownPreTokenizers.map((known) => known.name).join(', ')}); llama.cpp would split text differently.`,
      )
    entries.set('tokenizer.ggml.model', gguf.str('gpt2'))
    entries.set('tokenizer.ggml.pre', gguf.str(pre))
    entries.set('tokenizer.ggml.tokens', gguf.strings(tokens))
    entries.set('tokenizer.ggml.token_type', gguf.i32s(types))
    entries.set('tokenizer.ggml.merges', gguf.strings(merges))
  } else {
    if (model['byte_fallback'] !== true)
      throw new InvalidArgumentError(
        'tokenizer',
        'GGUF export handles BPE tokenizers that are byte-level or have byte_fallback (SentencePiece-style); this one is neither.',
      )
    // A piece's score: minus the rank of the first merge that makes it (see the top of the file).
    const scores = new Float32Array(vocabSize)
    const scored = new Set<number>()
    merges.forEach((merge, rank) => {
      const id = vocab[merge.replace(' ', '')] as number | undefined
      if (id !== undefined && !scored.has(id)) {
        scored.add(id)
        scores[id] = -rank
      }
    })
    for (let id = 0; id < vocabSize; id++)
      if (!scored.has(id) && types[id] === TokenType.normal) scores[id] = -merges.length
    const unknown = typeof model['unk_token'] === 'string' ? vocab[model['unk_token']] : undefined
    if (typeof unknown === 'number') types[unknown] = TokenType.unknown
    entries.set('tokenizer.ggml.model', gguf.str('llama'))
    entries.set('tokenizer.ggml.tokens', gguf.strings(tokens))
    entries.set('tokenizer.ggml.scores', gguf.f32s(scores))
    entries.set('tokenizer.ggml.token_type', gguf.i32s(types))
    if (typeof unknown === 'number') entries.set('tokenizer.ggml.unknown_token_id', gguf.u32(unknown))
    entries.set('tokenizer.ggml.add_space_prefix', gguf.bool(true))
  }
  if (bos !== undefined) entries.set('tokenizer.ggml.bos_token_id', gguf.u32(bos))
  if (eos !== undefined) entries.set('tokenizer.ggml.eos_token_id', gguf.u32(eos))
  if (source.padTokenId !== undefined)
    entries.set('tokenizer.ggml.padding_token_id', gguf.u32(source.padTokenId))
  const addBos = tokenizerConfig['add_bos_token']
  entries.set('tokenizer.ggml.add_bos_token', gguf.bool(addBos === true))
  if (typeof tokenizerConfig['chat_template'] === 'string')
    entries.set('tokenizer.chat_template', gguf.str(tokenizerConfig['chat_template']))
  return entries
}
