// The second half of a draw, as the specification states it: the tokens still in the running
// after temperature, narrowed by one filter after the other (top-k → top-p → min-p), then drawn.
// The exact paths of the selection engine run these filters as written; the whole-vocabulary
// fast path (approximate-draw.ts) computes the same three cuts fused, and hands any decision it
// cannot call with certainty back to them.

export interface Candidates {
  readonly logits: Float32Array
  /**
   * By token id, the specified weight (temperature.ts): the largest logit weighs 1. Only the
   * ranked candidates' entries are read (the small top-k path fills no others).
   */
  readonly weights: Float64Array
  /**
   * Token ids by logit descending (ties: lower id first), at least `count` of them. Computed on
   * first use: with neither top-k nor top-p nothing is sorted.
   */
  readonly ranked: () => Int32Array
  /** How many of the ranked tokens are in: top-k and top-p cut this prefix. */
  count: number
  /**
   * The weight the next mass-based cut measures against: all tokens summed in id order at the
   * start, or the kept prefix summed in descending order once a filter cut it.
   */
  total: number
  /** Tokens weighing less than this are out (min-p); 0 keeps all. */
  minimumWeight: number
}

/** One truncation step; filters run in the order the Sampler lists them. */
export interface CandidateFilter {
  narrow(candidates: Candidates): void
}

export function narrowCandidates(filters: readonly CandidateFilter[], candidates: Candidates): void {
  for (const filter of filters) filter.narrow(candidates)
}
