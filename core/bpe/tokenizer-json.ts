// Reads tokenizer.json without materialising its two big arrays as JavaScript objects. A byte
// scanner finds `model.vocab` and `model.merges`, reads them straight from the UTF-8 bytes into
// the typed arrays of a CompactBpe, and JSON.parse sees the rest of the file with those two
// values replaced by `{}` and `[]` (a few kilobytes: added tokens, normalizer, pre-tokenizer,
// decoder). Parsing the whole file the usual way held the file's text (a two-byte string: 22 MB
// for Qwen3's 11 MB file), the parsed object (~45 MB) and the library's Maps built from it at
// once; this holds the bytes and the compact tables. A model this does not cover (not BPE, a
// suffix, a merge of pieces outside the vocabulary) is parsed whole for the library's own model.
import { CompactBpe } from './bpe-model.ts'
import { MergeTable } from './merge-table.ts'
import { PieceTableBuilder } from './piece-table.ts'

type JsonObject = Record<string, unknown>

export interface ReadTokenizerJson {
  /** tokenizer.json; with `bpe`, its model's vocab and merges are empty stand-ins. */
  readonly json: JsonObject
  /** The model's vocabulary and merges, compact; undefined when the library's model must run. */
  readonly bpe: CompactBpe | undefined
}

export class TokenizerJsonError extends Error {}

const quote = 0x22
const backslash = 0x5c

/** Whether the model section can run as a CompactBpe (its options, not yet its pieces). */
function compactOptions(model: JsonObject): ConstructorParameters<typeof CompactBpe>[2] | undefined {
  if (model['type'] !== 'BPE') return undefined
  if (model['dropout'] !== undefined && model['dropout'] !== null) return undefined
  if (model['end_of_word_suffix']) return undefined
  if (model['continuing_subword_suffix']) return undefined
  const unknown = model['unk_token']
  if (unknown !== undefined && unknown !== null && typeof unknown !== 'string') return undefined
  return {
    unknownToken: typeof unknown === 'string' ? unknown : null,
    byteFallback: model['byte_fallback'] === true,
    fuseUnknown: model['fuse_unk'] === true,
    ignoreMerges: model['ignore_merges'] === true,
  }
}

/** tokenizer.json's bytes (UTF-8) to its parsed form, the big arrays compact. */
export function readTokenizerJsonBytes(bytes: Uint8Array): ReadTokenizerJson {
  const scanner = new Scanner(bytes)
  const ranges = scanner.modelArrays()
  if (ranges === undefined) return parseWhole(bytes)
  const { vocab, merges } = ranges
  const cut = [vocab, merges].sort((a, b) => a.start - b.start)
  const decoder = new TextDecoder()
  const text =
    decoder.decode(bytes.subarray(0, cut[0]!.start)) +
    (cut[0] === vocab ? '{}' : '[]') +
    decoder.decode(bytes.subarray(cut[0]!.end, cut[1]!.start)) +
    (cut[1] === vocab ? '{}' : '[]') +
    decoder.decode(bytes.subarray(cut[1]!.end))
  const json = parseObject(text)
  const model = json['model']
  const options =
    typeof model === 'object' && model !== null ? compactOptions(model as JsonObject) : undefined
  if (options === undefined) return parseWhole(bytes)
  try {
    const pieces = new PieceTableBuilder(vocab.end - vocab.start)
    if (!scanner.readVocabulary(vocab.start, pieces)) return parseWhole(bytes)
    const table = pieces.build()
    const merged = scanner.readMerges(merges.start, table)
    if (merged === undefined) return parseWhole(bytes)
    if (options.unknownToken !== null && table.id(options.unknownToken) < 0) return parseWhole(bytes)
    return { json, bpe: new CompactBpe(table, merged, options) }
  } catch (error) {
    // Something the scanner does not read as JSON.parse would (malformed UTF-8): the whole-file path decides.
    if (error instanceof TokenizerJsonError) return parseWhole(bytes)
    throw error
  }
}

/** An already parsed tokenizer.json: the same compact model, built from its objects. */
export function readTokenizerJsonObject(json: JsonObject): ReadTokenizerJson {
  const model = json['model']
  if (typeof model !== 'object' || model === null) return { json, bpe: undefined }
  const section = model as JsonObject
  const options = compactOptions(section)
  const vocab = section['vocab']
  const merges = section['merges']
  if (options === undefined || typeof vocab !== 'object' || vocab === null || Array.isArray(vocab))
    return { json, bpe: undefined }
  if (!Array.isArray(merges)) return { json, bpe: undefined }
  const pieces = new PieceTableBuilder()
  for (const [piece, id] of Object.entries(vocab as Record<string, unknown>))
    if (typeof id !== 'number' || !pieces.addString(piece, id)) return { json, bpe: undefined }
  const table = pieces.build()
  if (options.unknownToken !== null && table.id(options.unknownToken) < 0) return { json, bpe: undefined }
  const merged = new MergeCollector(merges.length)
  for (const merge of merges) {
    const pair = mergePair(merge)
    if (pair === undefined) merged.skip()
    else if (!merged.add(table.id(pair[0]), table.id(pair[1]), table.id(pair[0] + pair[1])))
      return { json, bpe: undefined }
  }
  return {
    json: { ...json, model: { ...section, vocab: {}, merges: [] } },
    bpe: new CompactBpe(table, merged.build(), options),
  }
}

/** A merge as the library reads it: ["a", "b"], or "a b" split at spaces (first two parts). */
function mergePair(merge: unknown): [string, string] | undefined {
  if (Array.isArray(merge))
    return merge.length === 2 && typeof merge[0] === 'string' && typeof merge[1] === 'string'
      ? [merge[0], merge[1]]
      : undefined
  if (typeof merge !== 'string') return undefined
  const parts = merge.split(' ', 2)
  return parts.length === 2 ? [parts[0]!, parts[1]!] : undefined
}

/**
 * Ranks in file order. A merge the library could never apply (a malformed entry) keeps its rank
 * and joins nothing; one whose pieces are not all in the vocabulary makes the model unsupported
 * here (the library would merge such strings, which ids cannot name).
 */
class MergeCollector {
  #left: Int32Array
  #right: Int32Array
  #result: Int32Array
  #count = 0

  constructor(expected: number) {
    this.#left = new Int32Array(Math.max(16, expected))
    this.#right = new Int32Array(this.#left.length)
    this.#result = new Int32Array(this.#left.length)
  }

  #grow(): void {
    if (this.#count < this.#left.length) return
    const grow = (from: Int32Array) => {
      const to = new Int32Array(from.length * 2)
      to.set(from)
      return to
    }
    this.#left = grow(this.#left)
    this.#right = grow(this.#right)
    this.#result = grow(this.#result)
  }

  skip(): void {
    this.#grow()
    this.#left[this.#count] = -1
    this.#right[this.#count] = -1
    this.#result[this.#count++] = -1
  }

  add(left: number, right: number, result: number): boolean {
    if (left < 0 || right < 0 || result < 0) return false
    this.#grow()
    this.#left[this.#count] = left
    this.#right[this.#count] = right
    this.#result[this.#count++] = result
    return true
  }

  build(): MergeTable {
    return new MergeTable(
      this.#left.slice(0, this.#count),
      this.#right.slice(0, this.#count),
      this.#result.slice(0, this.#count),
    )
  }
}

function parseObject(text: string): JsonObject {
  const parsed: unknown = JSON.parse(text)
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new TokenizerJsonError('must hold a JSON object')
  return parsed as JsonObject
}

function parseWhole(bytes: Uint8Array): ReadTokenizerJson {
  return readTokenizerJsonObject(parseObject(new TextDecoder().decode(bytes)))
}

interface Range {
  readonly start: number
  readonly end: number
}

/** A forward reader over JSON text in UTF-8: skips values, reads strings as UTF-16 units. */
class Scanner {
  readonly #bytes: Uint8Array
  #at = 0
  /** The last string read, as UTF-16 code units. */
  units = new Uint16Array(256)
  length = 0

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes
  }

  /** Where the value of the top-level "model" object's "vocab" and "merges" lie; undefined if absent or not well-formed. */
  modelArrays(): { vocab: Range; merges: Range } | undefined {
    try {
      this.#at = 0
      let found: { vocab: Range; merges: Range } | undefined
      this.#skipSpace()
      if (this.#byte() !== 0x7b) return undefined
      this.#members(() => {
        const key = this.#key()
        if (key !== 'model' || this.#peek() !== 0x7b) {
          this.#skipValue()
          return
        }
        let vocab: Range | undefined
        let merges: Range | undefined
        this.#at++
        this.#members(() => {
          const inner = this.#key()
          const start = this.#at
          const first = this.#peek()
          this.#skipValue()
          if (inner === 'vocab' && first === 0x7b) vocab = { start, end: this.#at }
          else if (inner === 'merges' && first === 0x5b) merges = { start, end: this.#at }
        })
        found = vocab && merges ? { vocab, merges } : undefined
      })
      this.#skipSpace()
      return this.#at === this.#bytes.length ? found : undefined
    } catch (error) {
      if (error instanceof TokenizerJsonError) return undefined
      throw error
    }
  }

  /** Reads `{ "piece": id, ... }` at `start` into the builder; false when something does not fit. */
  readVocabulary(start: number, into: PieceTableBuilder): boolean {
    this.#at = start + 1
    let ok = true
    this.#members(() => {
      this.#string()
      this.#skipSpace()
      this.#expect(0x3a)
      this.#skipSpace()
      const id = this.#integer()
      if (id === undefined || !into.add(this.units, 0, this.length, id)) {
        ok = false
        this.#skipValue()
      }
    })
    return ok
  }

  /** Reads `[ "a b", ... ]` or `[ ["a", "b"], ... ]` at `start`; undefined when a piece is missing. */
  readMerges(start: number, pieces: ReturnType<PieceTableBuilder['build']>): MergeTable | undefined {
    this.#at = start + 1
    const merges = new MergeCollector(1024)
    let ok = true
    let joined = new Uint16Array(1024)
    this.#elements(() => {
      const first = this.#peek()
      let left = -1
      let right = -1
      let result = -1
      let valid = false
      if (first === quote) {
        this.#string()
        if (this.length > joined.length) joined = new Uint16Array(this.length)
        // The library splits at spaces and keeps the first two parts.
        const units = this.units
        let space = 0
        while (space < this.length && units[space] !== 0x20) space++
        if (space < this.length) {
          let end = space + 1
          while (end < this.length && units[end] !== 0x20) end++
          valid = true
          left = pieces.idOfUnits(units, 0, space)
          right = pieces.idOfUnits(units, space + 1, end - space - 1)
          joined.set(units.subarray(0, space), 0)
          joined.set(units.subarray(space + 1, end), space)
          result = pieces.idOfUnits(joined, 0, end - 1)
        }
      } else if (first === 0x5b) {
        // ["a", "b"], read into one buffer: a, then b after it, so a + b is there too. Any other
        // shape throws, and the whole-file path gives the library's reading of it.
        this.#at++
        this.#string()
        const a = this.length
        if (a > joined.length) joined = new Uint16Array(2 * a)
        joined.set(this.units.subarray(0, a), 0)
        this.#skipSpace()
        this.#expect(0x2c)
        this.#string()
        const b = this.length
        if (a + b > joined.length) {
          const grown = new Uint16Array(2 * (a + b))
          grown.set(joined.subarray(0, a))
          joined = grown
        }
        joined.set(this.units.subarray(0, b), a)
        this.#skipSpace()
        this.#expect(0x5d)
        valid = true
        left = pieces.idOfUnits(joined, 0, a)
        right = pieces.idOfUnits(joined, a, b)
        result = pieces.idOfUnits(joined, 0, a + b)
      } else this.#skipValue()
      if (!valid) merges.skip()
      else if (!merges.add(left, right, result)) ok = false
    })
    return ok ? merges.build() : undefined
  }

  #byte(): number {
    if (this.#at >= this.#bytes.length) throw new TokenizerJsonError('unexpected end')
    return this.#bytes[this.#at++]!
  }

  #peek(): number {
    this.#skipSpace()
    if (this.#at >= this.#bytes.length) throw new TokenizerJsonError('unexpected end')
    return this.#bytes[this.#at]!
  }

  #expect(byte: number): void {
    if (this.#byte() !== byte) throw new TokenizerJsonError(`expected ${String.fromCharCode(byte)}`)
  }

  #skipSpace(): void {
    const bytes = this.#bytes
    while (this.#at < bytes.length) {
      const byte = bytes[this.#at]!
      if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) return
      this.#at++
    }
  }

  /** Object members after its `{`, through its `}`; `member` reads one key and value. */
  #members(member: () => void): void {
    if (this.#peek() === 0x7d) {
      this.#at++
      return
    }
    for (;;) {
      member()
      this.#skipSpace()
      const byte = this.#byte()
      if (byte === 0x7d) return
      if (byte !== 0x2c) throw new TokenizerJsonError('expected , or }')
    }
  }

  /** Array elements after its `[`, through its `]`. */
  #elements(element: () => void): void {
    if (this.#peek() === 0x5d) {
      this.#at++
      return
    }
    for (;;) {
      this.#skipSpace()
      element()
      this.#skipSpace()
      const byte = this.#byte()
      if (byte === 0x5d) return
      if (byte !== 0x2c) throw new TokenizerJsonError('expected , or ]')
    }
  }

  #key(): string {
    this.#string()
    this.#skipSpace()
    this.#expect(0x3a)
    this.#skipSpace()
    return String.fromCharCode(...this.units.subarray(0, Math.min(this.length, 64)))
  }

  #integer(): number | undefined {
    const bytes = this.#bytes
    let value = 0
    let digits = 0
    while (this.#at < bytes.length) {
      const byte = bytes[this.#at]!
      if (byte < 0x30 || byte > 0x39) break
      value = value * 10 + (byte - 0x30)
      digits++
      this.#at++
    }
    const following = this.#at < bytes.length ? bytes[this.#at]! : 0
    // Anything but a plain non-negative integer (a sign, a fraction, an exponent) is not an id here.
    if (digits === 0 || following === 0x2e || following === 0x65 || following === 0x45 || digits > 10)
      return undefined
    return value
  }

  /** Skips one value (string, number, literal, object, array). */
  #skipValue(): void {
    const first = this.#peek()
    if (first === quote) {
      this.#skipString()
      return
    }
    if (first === 0x7b || first === 0x5b) {
      const bytes = this.#bytes
      const end = bytes.length
      let at = this.#at
      let depth = 0
      while (at < end) {
        const byte = bytes[at++]!
        if (byte === quote) {
          // Inside a string: brackets do not count; an escape hides the next byte.
          while (at < end) {
            const inner = bytes[at++]!
            if (inner === quote) break
            if (inner === backslash) at++
          }
          continue
        }
        if (byte === 0x7b || byte === 0x5b) depth++
        else if (byte === 0x7d || byte === 0x5d) {
          if (--depth === 0) {
            this.#at = at
            return
          }
        }
      }
      throw new TokenizerJsonError('unexpected end')
    }
    const bytes = this.#bytes
    const start = this.#at
    while (this.#at < bytes.length) {
      const byte = bytes[this.#at]!
      if (byte === 0x2c || byte === 0x7d || byte === 0x5d || byte <= 0x20) break
      this.#at++
    }
    if (this.#at === start) throw new TokenizerJsonError('expected a value')
  }

  #skipString(): void {
    const bytes = this.#bytes
    this.#at++
    while (this.#at < bytes.length) {
      const byte = bytes[this.#at++]!
      if (byte === quote) return
      if (byte === backslash) this.#at++
    }
    throw new TokenizerJsonError('unterminated string')
  }

  /** Reads a JSON string into `units` / `length` (UTF-8 and escapes decoded, as JSON.parse does). */
  #string(): void {
    const bytes = this.#bytes
    if (this.#peek() !== quote) throw new TokenizerJsonError('expected a string')
    this.#at++
    let length = 0
    // The common case first: plain ASCII up to the closing quote, in local variables.
    {
      let at = this.#at
      const units = this.units
      while (at < bytes.length && length < units.length) {
        const byte = bytes[at]!
        if (byte === quote) {
          this.#at = at + 1
          this.length = length
          return
        }
        if (byte === backslash || byte >= 0x80 || byte < 0x20) break
        units[length++] = byte
        at++
      }
      this.#at = at
    }
    for (;;) {
      if (this.#at >= bytes.length) throw new TokenizerJsonError('unterminated string')
      if (length + 2 > this.units.length) {
        const grown = new Uint16Array(this.units.length * 2)
        grown.set(this.units)
        this.units = grown
      }
      const units = this.units
      const byte = bytes[this.#at++]!
      if (byte === quote) break
      if (byte === backslash) {
        const escaped = this.#byte()
        switch (escaped) {
          case 0x6e:
            units[length++] = 0x0a
            break
          case 0x74:
            units[length++] = 0x09
            break
          case 0x72:
            units[length++] = 0x0d
            break
          case 0x62:
            units[length++] = 0x08
            break
          case 0x66:
            units[length++] = 0x0c
            break
          case 0x75: {
            let code = 0
            for (let digit = 0; digit < 4; digit++) {
              const hex = this.#byte()
              const value =
                hex >= 0x30 && hex <= 0x39
                  ? hex - 0x30
                  : hex >= 0x61 && hex <= 0x66
                    ? hex - 0x57
                    : hex >= 0x41 && hex <= 0x46
                      ? hex - 0x37
                      : -1
              if (value < 0) throw new TokenizerJsonError('bad \\u escape')
              code = code * 16 + value
            }
            units[length++] = code
            break
          }
          case quote:
          case backslash:
          case 0x2f:
            units[length++] = escaped
            break
          default:
            throw new TokenizerJsonError('bad escape')
        }
        continue
      }
      if (byte < 0x80) {
        if (byte < 0x20) throw new TokenizerJsonError('control character in a string')
        units[length++] = byte
        continue
      }
      // Multi-byte UTF-8. A malformed sequence is left to the whole-file path (TextDecoder's
      // replacement rules), so ids never depend on this decoder's idea of an invalid byte.
      const extra =
        byte >= 0xf0 && byte <= 0xf4 ? 3 : byte >= 0xe0 ? 2 : byte >= 0xc2 && byte <= 0xdf ? 1 : -1
      if (extra < 0 || byte > 0xf4) throw new TokenizerJsonError('malformed UTF-8')
      let code = byte & (extra === 1 ? 0x1f : extra === 2 ? 0x0f : 0x07)
      for (let index = 0; index < extra; index++) {
        const next = this.#byte()
        if ((next & 0xc0) !== 0x80) throw new TokenizerJsonError('malformed UTF-8')
        code = (code << 6) | (next & 0x3f)
      }
      const smallest = extra === 1 ? 0x80 : extra === 2 ? 0x800 : 0x10000
      if (code < smallest || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
        throw new TokenizerJsonError('malformed UTF-8')
      if (code >= 0x10000) {
        code -= 0x10000
        units[length++] = 0xd800 + (code >> 10)
        units[length++] = 0xdc00 + (code & 0x3ff)
      } else units[length++] = code
    }
    this.length = length
  }
}
