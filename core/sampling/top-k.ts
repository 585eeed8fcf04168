// Top-k: keep the k most likely tokens. As a filter it cuts a ranked prefix; for small k the
// engine instead ranks only k tokens (selectTop), since a step must never sort 248,320 entries.
import type { CandidateFilter, Candidates } from './candidates.ts'

export class TopKFilter implements CandidateFilter {
  readonly k: number

  constructor(k: number) {
    this.k = k
  }

  narrow(candidates: Candidates): void {
    if (this.k >= candidates.count) return
    const ranked = candidates.ranked()
    // The top-k's mass, summed in descending order: what top-p then measures against.
    let total = 0
    for (let i = 0; i < this.k; i++) total += candidates.weights[ranked[i]!]!
    candidates.count = this.k
    candidates.total = total
  }
}

/**
 * The `count` largest entries, sorted descending (ties: lower id first), by one pass with a
 * min-heap of size `count`: most entries cost a single comparison with the heap's minimum.
 * NaN entries are set to -Infinity on the way (they can never be chosen).
 */
export function selectTop(logits: Float32Array, count: number): Int32Array {
  const size = logits.length
  const k = Math.max(1, Math.min(count, size))
  const heap = new Int32Array(k)
  // "a ranks below b": smaller logit, or equal logit and higher id.
  const below = (a: number, b: number): boolean => {
    const la = logits[a]!
    const lb = logits[b]!
    return la < lb || (la === lb && a > b)
  }
  const siftDown = (): void => {
    let parent = 0
    for (;;) {
      const left = 2 * parent + 1
      if (left >= k) return
      const right = left + 1
      const smallest = right < k && below(heap[right]!, heap[left]!) ? right : left
      if (!below(heap[smallest]!, heap[parent]!)) return
      const swap = heap[parent]!
      heap[parent] = heap[smallest]!
      heap[smallest] = swap
      parent = smallest
    }
  }
  for (let id = 0; id < k; id++) {
    if (Number.isNaN(logits[id])) logits[id] = Number.NEGATIVE_INFINITY
    heap[id] = id
    let child = id
    while (child > 0) {
      const parent = (child - 1) >> 1
      if (!below(heap[child]!, heap[parent]!)) break
      const swap = heap[parent]!
      heap[parent] = heap[child]!
      heap[child] = swap
      child = parent
    }
  }
  // The hot loop: one load and one comparison per entry. Scanning in id order, an equal logit has
  // the higher id and so ranks below the heap's minimum: skipped, like NaN (no comparison holds).
  let threshold = logits[heap[0]!]!
  for (let id = k; id < size; id++) {
    const value = logits[id]!
    if (!(value > threshold)) {
      if (Number.isNaN(value)) logits[id] = Number.NEGATIVE_INFINITY
      continue
    }
    heap[0] = id
    siftDown()
    threshold = logits[heap[0]!]!
  }
  const sorted = Array.from(heap).sort((a, b) => logits[b]! - logits[a]! || a - b)
  return Int32Array.from(sorted)
}
