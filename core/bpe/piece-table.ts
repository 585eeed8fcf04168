// A BPE vocabulary held in three typed arrays instead of one JS string and Map entry per piece:
// every piece's UTF-16 code units in one Uint16Array, each id's start and length, and an
// open-addressing hash index from a piece's units to its id. Qwen3's 151,643 pieces take ~4 MB
// this way, against ~20 MB as a Map plus an array of strings (and the parsed JSON object kept
// beside them), which is what a 128 MB Worker isolate could not afford.

/** Marks an id the vocabulary does not hold (ids may have holes). */
const absent = 0xffff

/** FNV-1a over UTF-16 code units. */
function hashUnits(units: Uint16Array, start: number, length: number): number {
  let hash = 0x811c9dc5
  for (let index = start; index < start + length; index++) hash = Math.imul(hash ^ units[index]!, 0x01000193)
  return hash >>> 0
}

function hashText(text: string, start: number, length: number): number {
  let hash = 0x811c9dc5
  for (let index = start; index < start + length; index++)
    hash = Math.imul(hash ^ text.charCodeAt(index), 0x01000193)
  return hash >>> 0
}

function tableCapacity(entries: number): number {
  let capacity = 1024
  while (capacity < entries * 1.6) capacity *= 2
  return capacity
}

export class PieceTable {
  /** One past the largest id. */
  readonly size: number
  readonly #units: Uint16Array
  readonly #starts: Uint32Array
  readonly #lengths: Uint16Array
  /** id + 1 per slot; 0 = empty. */
  readonly #index: Int32Array
  readonly #mask: number

  constructor(units: Uint16Array, starts: Uint32Array, lengths: Uint16Array, index: Int32Array) {
    this.size = starts.length
    this.#units = units
    this.#starts = starts
    this.#lengths = lengths
    this.#index = index
    this.#mask = index.length - 1
  }

  /** The id of a piece, or -1. */
  id(piece: string): number {
    return this.idOfText(piece, 0, piece.length)
  }

  /** The id of the piece `text.slice(from, from + length)`, or -1 (without making that string). */
  idOfText(text: string, from: number, length: number): number {
    const units = this.#units
    for (let slot = hashText(text, from, length) & this.#mask; ; slot = (slot + 1) & this.#mask) {
      const entry = this.#index[slot]!
      if (entry === 0) return -1
      const id = entry - 1
      if (this.#lengths[id] !== length) continue
      const start = this.#starts[id]!
      let index = 0
      while (index < length && units[start + index] === text.charCodeAt(from + index)) index++
      if (index === length) return id
    }
  }

  /** The id of the piece held in `units[start, start + length)`, or -1. */
  idOfUnits(units: Uint16Array, start: number, length: number): number {
    const own = this.#units
    for (let slot = hashUnits(units, start, length) & this.#mask; ; slot = (slot + 1) & this.#mask) {
      const entry = this.#index[slot]!
      if (entry === 0) return -1
      const id = entry - 1
      if (this.#lengths[id] !== length) continue
      const from = this.#starts[id]!
      let index = 0
      while (index < length && own[from + index] === units[start + index]) index++
      if (index === length) return id
    }
  }

  /** The piece of an id, or undefined where the vocabulary has none. */
  piece(id: number): string | undefined {
    if (!(id >= 0 && id < this.size)) return undefined
    const length = this.#lengths[id]!
    if (length === absent) return undefined
    const start = this.#starts[id]!
    // Short pieces (all of a BPE vocabulary's): one call, no intermediate array.
    return String.fromCharCode.apply(null, this.#units.subarray(start, start + length) as unknown as number[])
  }

  /** Bytes held, for the memory figures. */
  get byteLength(): number {
    return (
      this.#units.byteLength + this.#starts.byteLength + this.#lengths.byteLength + this.#index.byteLength
    )
  }
}

/**
 * Collects pieces in the file's order (ids in any order, with holes), then indexes them. A piece
 * listed twice keeps its last id, and an id listed twice its last piece, as JSON.parse and a Map
 * built from the parsed object would.
 */
export class PieceTableBuilder {
  #units: Uint16Array
  #used = 0
  #entries = new Int32Array(3 * 1024)
  #count = 0
  #largestId = -1

  constructor(expectedUnits = 1024) {
    this.#units = new Uint16Array(Math.max(16, expectedUnits))
  }

  /** Adds the piece in `units[start, start + length)` with its id; false when it cannot be held. */
  add(units: Uint16Array, start: number, length: number, id: number): boolean {
    if (length >= absent || !Number.isInteger(id) || id < 0 || id >= 0x7fffffff) return false
    if (this.#used + length > this.#units.length) {
      const grown = new Uint16Array(Math.max(this.#units.length * 2, this.#used + length))
      grown.set(this.#units.subarray(0, this.#used))
      this.#units = grown
    }
    this.#units.set(units.subarray(start, start + length), this.#used)
    if (3 * (this.#count + 1) > this.#entries.length) {
      const grown = new Int32Array(this.#entries.length * 2)
      grown.set(this.#entries)
      this.#entries = grown
    }
    const at = 3 * this.#count++
    this.#entries[at] = id
    this.#entries[at + 1] = this.#used
    this.#entries[at + 2] = length
    this.#used += length
    if (id > this.#largestId) this.#largestId = id
    return true
  }

  addString(piece: string, id: number): boolean {
    const units = new Uint16Array(piece.length)
    for (let index = 0; index < piece.length; index++) units[index] = piece.charCodeAt(index)
    return this.add(units, 0, units.length, id)
  }

  build(): PieceTable {
    const units = this.#units.slice(0, this.#used)
    this.#units = new Uint16Array(0)
    const size = this.#largestId + 1
    const starts = new Uint32Array(size)
    const lengths = new Uint16Array(size).fill(absent)
    const index = new Int32Array(tableCapacity(this.#count))
    const mask = index.length - 1
    const entries = this.#entries
    // The index first (last id wins for a repeated piece), then each id's piece from the entries
    // the index kept (last piece wins for a repeated id).
    for (let entry = 0; entry < this.#count; entry++) {
      const start = entries[3 * entry + 1]!
      const length = entries[3 * entry + 2]!
      for (let slot = hashUnits(units, start, length) & mask; ; slot = (slot + 1) & mask) {
        const held = index[slot]!
        if (held === 0) {
          index[slot] = entry + 1
          break
        }
        const other = held - 1
        const otherStart = entries[3 * other + 1]!
        if (entries[3 * other + 2] !== length) continue
        let at = 0
        while (at < length && units[otherStart + at] === units[start + at]) at++
        if (at === length) {
          index[slot] = entry + 1
          break
        }
      }
    }
    const live = new Uint8Array(this.#count)
    for (let slot = 0; slot < index.length; slot++) if (index[slot] !== 0) live[index[slot]! - 1] = 1
    for (let entry = 0; entry < this.#count; entry++) {
      if (live[entry] === 0) continue
      const id = entries[3 * entry]!
      starts[id] = entries[3 * entry + 1]!
      lengths[id] = entries[3 * entry + 2]!
    }
    // The index holds ids from now on; an id whose piece was replaced by a later one drops out.
    let dropped = false
    for (let slot = 0; slot < index.length; slot++) {
      const held = index[slot]!
      if (held === 0) continue
      const entry = held - 1
      const id = entries[3 * entry]!
      if (starts[id] === entries[3 * entry + 1] && lengths[id] === entries[3 * entry + 2])
        index[slot] = id + 1
      else {
        index[slot] = 0
        dropped = true
      }
    }
    this.#entries = new Int32Array(0)
    const table = new PieceTable(units, starts, lengths, index)
    // Emptying a slot breaks the probe chains through it. That happens only when one id is listed
    // with two pieces (never in a real tokenizer.json); the index is then rebuilt from the ids.
    return dropped ? rebuilt(table) : table
  }
}

function rebuilt(table: PieceTable): PieceTable {
  const builder = new PieceTableBuilder()
  for (let id = 0; id < table.size; id++) {
    const piece = table.piece(id)
    if (piece !== undefined) builder.addString(piece, id)
  }
  return builder.build()
}
