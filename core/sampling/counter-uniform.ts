// Counter-based randomness: the draw for step k is a hash of (seed, k), not the next value of a
// stateful generator. Any machine that holds the same logits can resume at step k and draw the
// same token (device → edge handoff).

// A 32-bit avalanche mix (Murmur3's finalizer): integer-only, so every JS engine agrees bit for bit.
function mix32(value: number): number {
  let h = value >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

function lowHigh(value: number): [number, number] {
  return [value >>> 0, Math.floor(value / 4294967296) >>> 0]
}

/** The uniform number in [0, 1) that draw `step` of `seed` uses: a pure function of (seed, step). */
export function counterUniform(seed: number, step: number): number {
  const [seedLow, seedHigh] = lowHigh(seed)
  const [stepLow, stepHigh] = lowHigh(step)
  let a = mix32(seedLow ^ 0x9e3779b9)
  a = mix32(a ^ seedHigh)
  a = mix32(a ^ stepLow)
  a = mix32(a ^ stepHigh ^ 0x27d4eb2f)
  const b = mix32(a ^ 0x165667b1)
  // 53 random bits → a double in [0, 1).
  return ((a >>> 5) * 67108864 + (b >>> 6)) / 9007199254740992
}
