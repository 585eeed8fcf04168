// Helpers the structured-output tests share: a seeded generator for walks over a grammar, and the
// token ids a filled mask allows.

/** A deterministic generator in [0, 1) (xorshift32). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0 || 1
  return () => {
    state ^= state << 13
    state >>>= 0
    state ^= state >>> 17
    state ^= state << 5
    state >>>= 0
    return state / 4294967296
  }
}

/** The token ids whose bit is set in a mask filled by GrammarMatcher.fillMask. */
export function allowedIds(bits: Uint32Array): number[] {
  const ids: number[] = []
  for (let word = 0; word < bits.length; word++) {
    let value = bits[word]!
    while (value !== 0) {
      const bit = 31 - Math.clz32(value & -value)
      ids.push(word * 32 + bit)
      value &= value - 1
    }
  }
  return ids
}
