// Byte-pair encoding over ids: a word's characters become piece ids, and the lowest-ranked
// adjacent pair (the leftmost among equals) is merged until none is left, exactly as
// @huggingface/tokenizers' BPE does on strings, but with the vocabulary and merges in typed
// arrays (piece-table.ts, merge-table.ts) and no string made per merge. What it emits is the id
// the library's Tokenizer.encode would map its piece to: an added token's id where the piece is
// an added token's text, byte-fallback pieces, the unknown token.
import type { MergeTable } from './merge-table.ts'
import type { PieceTable } from './piece-table.ts'

export interface BpeOptions {
  readonly unknownToken: string | null
  readonly byteFallback: boolean
  readonly fuseUnknown: boolean
  readonly ignoreMerges: boolean
}

/** Added tokens as the library's Tokenizer holds them. */
export interface AddedTokenIds {
  /** added_tokens_map: each added token's text, and its normalized text, to its id. */
  readonly byText: ReadonlyMap<string, number>
  /** Each added token's text to its id (what the library writes into the model's vocabulary). */
  readonly byContent: ReadonlyMap<string, number>
}

/** Words longer than this are not cached (the library's limit). */
const longestCachedWord = 256
/** Words cached before the cache starts over. */
const cacheCapacity = 10_000
/** Words with more characters than this merge through a heap; shorter ones by scanning. */
const scanLimit = 48
const positionSpan = 2 ** 32

export class CompactBpe {
  readonly pieces: PieceTable
  readonly merges: MergeTable
  readonly options: BpeOptions
  /** The model's own id of its unknown token (-1: none). */
  readonly unknownModelId: number
  #added: AddedTokenIds = { byText: new Map(), byContent: new Map() }
  #addedById = new Map<number, string>()
  /** Model id → the added token id the library maps that piece to. */
  #remap = new Map<number, number>()
  #unknownId = -1
  #byteIds: Int32Array | undefined
  readonly #cache = new Map<string, readonly number[]>()
  #symbols = new Int32Array(64)
  #starts = new Int32Array(64)
  #ranks = new Int32Array(64)
  #next = new Int32Array(64)
  #previous = new Int32Array(64)

  constructor(pieces: PieceTable, merges: MergeTable, options: BpeOptions) {
    this.pieces = pieces
    this.merges = merges
    this.options = options
    this.unknownModelId = options.unknownToken === null ? -1 : pieces.id(options.unknownToken)
    this.#refresh()
  }

  /** Takes the tokenizer's added tokens (after the library has read them). */
  attachAddedTokens(added: AddedTokenIds): void {
    this.#added = added
    this.#addedById = new Map([...added.byContent].map(([text, id]) => [id, text]))
    this.#remap = new Map()
    for (const [text, id] of added.byText) {
      const own = this.pieces.id(text)
      if (own >= 0 && own !== id) this.#remap.set(own, id)
    }
    this.#cache.clear()
    this.#refresh()
  }

  #refresh(): void {
    const unknown = this.options.unknownToken
    this.#unknownId = unknown === null ? -1 : (this.finalId(unknown) ?? -1)
    if (this.options.byteFallback) {
      const ids = new Int32Array(256)
      for (let byte = 0; byte < 256; byte++) {
        const piece = `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`
        ids[byte] = this.idOf(piece) === undefined ? -1 : (this.finalId(piece) ?? -1)
      }
      this.#byteIds = ids
    }
  }

  /** One past the largest id, added tokens included. */
  get size(): number {
    let size = this.pieces.size
    for (const id of this.#addedById.keys()) if (id + 1 > size) size = id + 1
    return size
  }

  /** The id of a piece as the library's token_to_id gives it (an added token's text wins). */
  idOf(piece: string): number | undefined {
    const added = this.#added.byContent.get(piece)
    if (added !== undefined) return added
    const id = this.pieces.id(piece)
    return id < 0 ? undefined : id
  }

  /** The piece of an id as the library's id_to_token gives it. */
  pieceOf(id: number): string | undefined {
    return this.#addedById.get(id) ?? this.pieces.piece(id)
  }

  /** What the library's encode maps a piece string to. */
  finalId(piece: string): number | undefined {
    return (
      this.#added.byText.get(piece) ??
      this.idOf(piece) ??
      (this.unknownModelId < 0 ? undefined : this.unknownModelId)
    )
  }

  /**
   * Appends the ids of pre-tokenized words (one model call of the library); with `pieces`, also
   * the piece strings the library's model returns (what its encode reports as tokens).
   */
  encodeWords(words: readonly string[], out: number[], pieces?: string[]): void {
    const first = out.length
    for (const word of words) this.#encodeWord(word, out, pieces)
    if (this.options.fuseUnknown && this.#unknownId >= 0) {
      // Runs of the unknown token become one (the library's fuse_unk).
      let write = first
      for (let read = first; read < out.length; read++) {
        if (out[read] === this.#unknownId && write > first && out[write - 1] === this.#unknownId) continue
        if (pieces !== undefined) pieces[write] = pieces[read]!
        out[write++] = out[read]!
      }
      out.length = write
      if (pieces !== undefined) pieces.length = write
    }
  }

  #encodeWord(word: string, out: number[], pieces: string[] | undefined): void {
    if (word.length === 0) return
    const cached = pieces === undefined ? this.#cache.get(word) : undefined
    if (cached !== undefined) {
      for (const id of cached) out.push(id)
      return
    }
    if (this.options.ignoreMerges && this.idOf(word) !== undefined) {
      out.push(this.finalId(word)!)
      pieces?.push(word)
      return
    }
    const first = out.length
    const count = this.#split(word)
    if (count <= scanLimit) this.#mergeByScan(count, word, out, pieces)
    else this.#mergeByHeap(count, word, out, pieces)
    if (word.length < longestCachedWord) {
      if (this.#cache.size >= cacheCapacity) this.#cache.clear()
      this.#cache.set(word, out.slice(first))
    }
  }

  /** The word's characters (code points) as model ids, -1 for those the vocabulary lacks. */
  #split(word: string): number {
    if (this.#symbols.length < word.length + 1) {
      const size = Math.max(word.length + 1, this.#symbols.length * 2)
      this.#symbols = new Int32Array(size)
      this.#starts = new Int32Array(size + 1)
      this.#ranks = new Int32Array(size)
      this.#next = new Int32Array(size)
      this.#previous = new Int32Array(size)
    }
    const symbols = this.#symbols
    const starts = this.#starts
    let count = 0
    for (let index = 0; index < word.length; ) {
      const code = word.charCodeAt(index)
      const length =
        code >= 0xd800 &&
        code <= 0xdbff &&
        index + 1 < word.length &&
        (word.charCodeAt(index + 1) & 0xfc00) === 0xdc00
          ? 2
          : 1
      starts[count] = index
      symbols[count++] = this.pieces.idOfText(word, index, length)
      index += length
    }
    starts[count] = word.length
    return count
  }

  #rank(left: number, right: number): number {
    return left < 0 || right < 0 ? -1 : this.merges.rank(left, right)
  }

  /** Short words: keep each adjacent pair's rank and merge the smallest, leftmost first. */
  #mergeByScan(count: number, word: string, out: number[], pieces: string[] | undefined): void {
    const symbols = this.#symbols
    const starts = this.#starts
    const ranks = this.#ranks
    const none = 0x7fffffff
    for (let index = 0; index + 1 < count; index++) {
      const rank = this.#rank(symbols[index]!, symbols[index + 1]!)
      ranks[index] = rank < 0 ? none : rank
    }
    let length = count
    while (length > 1) {
      let best = 0
      let bestRank = ranks[0]!
      for (let index = 1; index + 1 < length; index++) {
        if (ranks[index]! < bestRank) {
          bestRank = ranks[index]!
          best = index
        }
      }
      if (bestRank === none) break
      symbols[best] = this.merges.result(bestRank)
      // The right symbol goes: shift everything after it one place left.
      for (let index = best + 1; index + 1 < length; index++) {
        symbols[index] = symbols[index + 1]!
        starts[index] = starts[index + 1]!
        ranks[index] = ranks[index + 1]!
      }
      starts[length - 1] = starts[length]!
      length--
      if (best > 0) {
        const rank = this.#rank(symbols[best - 1]!, symbols[best]!)
        ranks[best - 1] = rank < 0 ? none : rank
      }
      if (best + 1 < length) {
        const rank = this.#rank(symbols[best]!, symbols[best + 1]!)
        ranks[best] = rank < 0 ? none : rank
      }
    }
    for (let index = 0; index < length; index++)
      this.#emit(symbols[index]!, word, starts[index]!, starts[index + 1]!, out, pieces)
  }

  /**
   * Long words: a min-heap of (rank, position) over a linked list of symbols, O(n log n); a
   * popped pair that no longer stands where it was pushed is skipped.
   */
  #mergeByHeap(count: number, word: string, out: number[], pieces: string[] | undefined): void {
    const symbols = this.#symbols
    const starts = this.#starts
    const next = this.#next
    const previous = this.#previous
    const heap: number[] = []
    const push = (key: number): void => {
      let at = heap.length
      heap.push(key)
      while (at > 0) {
        const parent = (at - 1) >> 1
        if (heap[parent]! <= key) break
        heap[at] = heap[parent]!
        at = parent
      }
      heap[at] = key
    }
    const pop = (): number => {
      const top = heap[0]!
      const last = heap.pop()!
      if (heap.length > 0) {
        let at = 0
        for (;;) {
          let child = 2 * at + 1
          if (child >= heap.length) break
          if (child + 1 < heap.length && heap[child + 1]! < heap[child]!) child++
          if (heap[child]! >= last) break
          heap[at] = heap[child]!
          at = child
        }
        heap[at] = last
      }
      return top
    }
    for (let index = 0; index < count; index++) {
      next[index] = index + 1 < count ? index + 1 : -1
      previous[index] = index - 1
    }
    for (let index = 0; index + 1 < count; index++) {
      const rank = this.#rank(symbols[index]!, symbols[index + 1]!)
      if (rank >= 0) push(rank * positionSpan + index)
    }
    const dead = -2
    while (heap.length > 0) {
      const key = pop()
      const rank = Math.floor(key / positionSpan)
      const at = key - rank * positionSpan
      const right = next[at]!
      if (symbols[at] === dead || right < 0) continue
      if (symbols[at] !== this.merges.left(rank) || symbols[right] !== this.merges.right(rank)) continue
      symbols[at] = this.merges.result(rank)
      symbols[right] = dead
      const after = next[right]!
      next[at] = after
      if (after >= 0) previous[after] = at
      const before = previous[at]!
      if (before >= 0) {
        const left = this.#rank(symbols[before]!, symbols[at]!)
        if (left >= 0) push(left * positionSpan + before)
      }
      if (after >= 0) {
        const following = this.#rank(symbols[at]!, symbols[after]!)
        if (following >= 0) push(following * positionSpan + at)
      }
    }
    for (let index = 0; index >= 0; index = next[index]!) {
      const end = next[index]! < 0 ? word.length : starts[next[index]!]!
      this.#emit(symbols[index]!, word, starts[index]!, end, out, pieces)
    }
  }

  /** One final symbol: its id, or for a character the vocabulary lacks, what the library does. */
  #emit(
    symbol: number,
    word: string,
    start: number,
    end: number,
    out: number[],
    pieces: string[] | undefined,
  ): void {
    if (symbol >= 0) {
      out.push(this.#remap.get(symbol) ?? symbol)
      pieces?.push(this.pieces.piece(symbol)!)
      return
    }
    const text = word.slice(start, end)
    const added = this.#added.byContent.get(text)
    if (added !== undefined) {
      out.push(this.#added.byText.get(text) ?? added)
      pieces?.push(text)
      return
    }
    if (this.#byteIds !== undefined) {
      const bytes = utf8(text)
      const ids = bytes.map((byte) => this.#byteIds![byte]!)
      if (ids.every((id) => id >= 0)) {
        for (const id of ids) out.push(id)
        if (pieces !== undefined)
          for (const byte of bytes) pieces.push(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`)
        return
      }
    }
    if (this.#unknownId >= 0) {
      out.push(this.#unknownId)
      pieces?.push(this.options.unknownToken!)
    }
  }
}

const encoder = new TextEncoder()

function utf8(text: string): number[] {
  return Array.from(encoder.encode(text))
}
