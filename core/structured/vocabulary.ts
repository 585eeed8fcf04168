// The vocabulary as a byte trie, prepared once per tokenizer and shared by every matcher: the mask
// walks it with the grammar state, so tokens with a common prefix share the work, and a subtree
// whose prefix the grammar refuses is skipped at once.
//
// Layout: nodes in depth-first preorder in typed arrays. Node i's subtree is i..end[i]-1, so
// "skip this subtree" is `i = end[i]`; node 0 is the root (the empty prefix).

export interface TokenSource {
  /** Bytes per token id; undefined for tokens that are never text (control tokens). */
  tokenBytes(): readonly (Uint8Array | undefined)[]
  /**
   * The same bytes in one buffer, read instead of tokenBytes() where a source has it: an array of
   * 151k Uint8Array views costs ~16 MiB of heap, which a 128 MB Worker isolate feels.
   */
  tokenByteTable?(): TokenByteTable
  readonly eosTokenIds: readonly number[]
}

/** Every token's bytes in one buffer: id's are `bytes[starts[id], ends[id])`; starts[id] -1: none. */
export interface TokenByteTable {
  readonly bytes: Uint8Array
  readonly starts: Int32Array
  readonly ends: Int32Array
}

/** A table from an array of byte strings (a source without tokenByteTable()). */
export function tokenByteTableOf(tokenBytes: readonly (Uint8Array | undefined)[]): TokenByteTable {
  let total = 0
  for (const bytes of tokenBytes) total += bytes?.length ?? 0
  const all = new Uint8Array(total)
  const starts = new Int32Array(tokenBytes.length).fill(-1)
  const ends = new Int32Array(tokenBytes.length)
  let used = 0
  for (let id = 0; id < tokenBytes.length; id++) {
    const bytes = tokenBytes[id]
    if (bytes === undefined) continue
    starts[id] = used
    all.set(bytes, used)
    used += bytes.length
    ends[id] = used
  }
  return { bytes: all, starts, ends }
}

export class TokenVocabulary {
  /** Tokens the grammar can produce: ids with bytes (ids past it are padding or control tokens). */
  readonly size: number
  readonly table: TokenByteTable
  readonly eosTokenIds: readonly number[]
  readonly nodeByte: Uint8Array
  readonly nodeDepth: Uint16Array
  readonly nodeEnd: Int32Array
  /** The token ending at each node, or -1. */
  readonly nodeToken: Int32Array
  /** Further tokens with the same bytes as the node's token (rare: duplicate pieces). */
  readonly duplicates: ReadonlyMap<number, readonly number[]>
  readonly nodeCount: number
  /** Milliseconds and bytes the preparation took (reported by the benchmark). */
  readonly preparationMs: number
  readonly memoryBytes: number
  /** Per-vocabulary caches (string scans): keyed by what the cached result depends on. */
  readonly caches = new Map<string, unknown>()
  /** An id for cache keys that outlive one vocabulary's object identity. */
  readonly id: number

  constructor(source: TokenSource) {
    const started = performance.now()
    const table = source.tokenByteTable ? source.tokenByteTable() : tokenByteTableOf(source.tokenBytes())
    this.table = table
    this.size = table.starts.length
    this.eosTokenIds = [...source.eosTokenIds]
    const ids: number[] = []
    let totalBytes = 0
    for (let id = 0; id < this.size; id++) {
      const length = table.starts[id] === -1 ? 0 : table.ends[id]! - table.starts[id]!
      if (length > 0) {
        ids.push(id)
        totalBytes += length
      }
    }
    // Sorting by a latin1 string of the bytes: native string comparison is byte order here, and
    // several times faster than comparing byte arrays in a callback.
    const keys: string[] = new Array(this.size)
    for (const id of ids) {
      const bytes = this.bytesOf(id)!
      let key = ''
      for (let index = 0; index < bytes.length; index++) key += String.fromCharCode(bytes[index]!)
      keys[id] = key
    }
    ids.sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : a - b))
    // At most one node per byte of every token, plus the root.
    const capacity = totalBytes + 1
    const nodeByte = new Uint8Array(capacity)
    const nodeDepth = new Uint16Array(capacity)
    const nodeEnd = new Int32Array(capacity)
    const nodeToken = new Int32Array(capacity).fill(-1)
    const duplicates = new Map<number, number[]>()
    const path: number[] = [0] // node index per depth
    let count = 1
    let previous: Uint8Array = new Uint8Array(0)
    for (const id of ids) {
      const bytes = this.bytesOf(id)!
      let shared = 0
      const limit = Math.min(bytes.length, previous.length)
      while (shared < limit && bytes[shared] === previous[shared]) shared++
      // Close the nodes of the previous token below the shared prefix.
      while (path.length - 1 > shared) nodeEnd[path.pop() as number] = count
      for (let depth = shared; depth < bytes.length; depth++) {
        nodeByte[count] = bytes[depth]!
        nodeDepth[count] = depth + 1
        path.push(count)
        count++
      }
      const last = path[path.length - 1]!
      if (nodeToken[last] === -1) nodeToken[last] = id
      else {
        const list = duplicates.get(last) ?? []
        list.push(id)
        duplicates.set(last, list)
      }
      previous = bytes
    }
    while (path.length > 0) nodeEnd[path.pop() as number] = count
    this.nodeByte = nodeByte.slice(0, count)
    this.nodeDepth = nodeDepth.slice(0, count)
    this.nodeEnd = nodeEnd.slice(0, count)
    this.nodeToken = nodeToken.slice(0, count)
    this.duplicates = duplicates
    this.nodeCount = count
    this.memoryBytes = count * (1 + 2 + 4 + 4) + totalBytes
    this.preparationMs = performance.now() - started
    this.id = nextVocabularyId++
  }

  /** A token's bytes (a view into the table), or undefined for a token that is never text. */
  bytesOf(id: number): Uint8Array | undefined {
    const start = this.table.starts[id]
    if (start === undefined || start === -1) return undefined
    return this.table.bytes.subarray(start, this.table.ends[id])
  }

  /** The first token whose bytes are exactly `byte`, or -1. */
  idOfByte(byte: number): number {
    const { bytes, starts, ends } = this.table
    for (let id = 0; id < starts.length; id++)
      if (starts[id] !== -1 && ends[id]! - starts[id]! === 1 && bytes[starts[id]!] === byte) return id
    return -1
  }

  /** Words of a bitset covering every token id (and the EOS ids). */
  get wordCount(): number {
    let largest = this.size
    for (const id of this.eosTokenIds) if (id + 1 > largest) largest = id + 1
    return (largest + 31) >>> 5
  }
}

let nextVocabularyId = 0

const prepared = new WeakMap<object, TokenVocabulary>()

/** The prepared vocabulary of a tokenizer, built on first use and kept while the tokenizer lives. */
export function vocabularyOf(source: TokenSource): TokenVocabulary {
  let vocabulary = prepared.get(source)
  if (vocabulary === undefined) {
    vocabulary = new TokenVocabulary(source)
    prepared.set(source, vocabulary)
  }
  return vocabulary
}
