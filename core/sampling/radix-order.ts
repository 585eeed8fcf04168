// Ranking the whole vocabulary, for the rare draw the fast path cannot call: a radix sort is
// linear in the vocabulary where a comparison sort of 248,320 entries is not.

// An order-preserving integer for a float32 logit (larger logit → larger key; -0 and +0 equal).
const keyFloat = new Float32Array(1)
const keyInt = new Int32Array(keyFloat.buffer)
export function sortKey(value: number): number {
  keyFloat[0] = value
  const bits = keyInt[0]!
  return bits < 0 ? -bits : bits + 2147483648
}

/** Holds the sort's buffers between draws. */
export class RadixOrder {
  #order = new Int32Array(0)
  #orderNext = new Int32Array(0)
  #orderKeys = new Uint32Array(0)
  #orderKeysNext = new Uint32Array(0)
  #digitCounts = new Int32Array(3 * 2048)

  /** All ids by logit descending, ties lower id first: a stable LSD radix sort on sort keys. */
  rank(logits: Float32Array): Int32Array {
    const size = logits.length
    if (this.#order.length !== size) {
      this.#order = new Int32Array(size)
      this.#orderNext = new Int32Array(size)
      this.#orderKeys = new Uint32Array(size)
      this.#orderKeysNext = new Uint32Array(size)
    }
    let order = this.#order
    let orderNext = this.#orderNext
    let keys = this.#orderKeys
    let keysNext = this.#orderKeysNext
    const digits = this.#digitCounts
    digits.fill(0)
    for (let id = 0; id < size; id++) {
      // Ascending on the inverted key = descending logit; starting from id order keeps ties by id.
      const key = (4294967295 - sortKey(logits[id]!)) >>> 0
      order[id] = id
      keys[id] = key
      digits[key & 2047]!++
      digits[2048 + ((key >>> 11) & 2047)]!++
      digits[4096 + (key >>> 22)]!++
    }
    for (let pass = 0; pass < 3; pass++) {
      const offset = pass * 2048
      const shift = pass * 11
      let single = false
      for (let digit = 0; digit < 2048; digit++) {
        const count = digits[offset + digit]!
        if (count === size) single = true
        if (count !== 0) break
      }
      if (single) continue
      let position = 0
      for (let digit = 0; digit < 2048; digit++) {
        const count = digits[offset + digit]!
        digits[offset + digit] = position
        position += count
      }
      for (let i = 0; i < size; i++) {
        const key = keys[i]!
        const digit = (key >>> shift) & 2047
        const target = digits[offset + digit]!++
        orderNext[target] = order[i]!
        keysNext[target] = key
      }
      ;[order, orderNext] = [orderNext, order]
      ;[keys, keysNext] = [keysNext, keys]
    }
    return order
  }
}
