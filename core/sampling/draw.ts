// The draw: walk the kept tokens in id order and take the first whose running weight exceeds
// u × (their total weight), u = counterUniform(seed, step). Id order (not rank order) makes the
// walk independent of how a path ranked the tokens.
import type { Candidates } from './candidates.ts'

// Up to this many kept tokens, sorting their ids beats a scan of the whole vocabulary.
const sortedDrawLimit = 4096

export function drawCandidate(candidates: Candidates, uniform: number): number {
  const { logits, weights, count, minimumWeight } = candidates
  const size = logits.length
  if (count >= size) return drawAll(weights, size, minimumWeight, uniform)
  const ranked = candidates.ranked()
  if (count <= sortedDrawLimit) {
    return drawListed(ranked.slice(0, count).sort(), weights, minimumWeight, uniform)
  }
  return drawRankedPrefix(logits, weights, ranked[count - 1]!, minimumWeight, uniform)
}

/** Every token is a candidate (no top-k or top-p cut): only min-p's floor decides. */
function drawAll(weights: Float64Array, size: number, floor: number, uniform: number): number {
  let total = 0
  let last = -1
  for (let id = 0; id < size; id++) {
    const w = weights[id]!
    if (w < floor) continue
    total += w
    last = id
  }
  const goal = uniform * total
  let running = 0
  for (let id = 0; id < size; id++) {
    const w = weights[id]!
    if (w === 0 || w < floor) continue
    running += w
    last = id
    if (goal < running) return id
  }
  return last
}

/** The candidates as a short list of ids, ascending. */
function drawListed(ids: Int32Array, weights: Float64Array, floor: number, uniform: number): number {
  let total = 0
  let last = -1
  for (let i = 0; i < ids.length; i++) {
    const w = weights[ids[i]!]!
    if (w < floor) continue
    total += w
    last = ids[i]!
  }
  const goal = uniform * total
  let running = 0
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!
    const w = weights[id]!
    if (w === 0 || w < floor) continue
    running += w
    last = id
    if (goal < running) return id
  }
  return last
}

/**
 * A long ranked prefix, without sorting it: the prefix is every token ranking at or above its
 * last one, `boundaryId` (a higher logit, or the same logit and an id no higher).
 */
function drawRankedPrefix(
  logits: Float32Array,
  weights: Float64Array,
  boundaryId: number,
  floor: number,
  uniform: number,
): number {
  const size = logits.length
  const boundaryLogit = logits[boundaryId]!
  let total = 0
  let last = -1
  for (let id = 0; id < size; id++) {
    const value = logits[id]!
    if (!(value > boundaryLogit || (value === boundaryLogit && id <= boundaryId))) continue
    const w = weights[id]!
    if (w < floor) continue
    total += w
    last = id
  }
  const goal = uniform * total
  let running = 0
  for (let id = 0; id < size; id++) {
    const w = weights[id]!
    if (w === 0 || w < floor) continue
    const value = logits[id]!
    if (!(value > boundaryLogit || (value === boundaryLogit && id <= boundaryId))) continue
    running += w
    last = id
    if (goal < running) return id
  }
  return last
}
