// Min-p: drop tokens less likely than minP × the top token. Weights are relative to the top token
// (it weighs 1), so the rule is weight ≥ minP. Kept as a floor rather than a prefix cut: the draw
// tests each token's own weight, so the result never rests on exp() being monotone.
import type { CandidateFilter, Candidates } from './candidates.ts'

export class MinPFilter implements CandidateFilter {
  readonly minP: number

  constructor(minP: number) {
    this.minP = minP
  }

  narrow(candidates: Candidates): void {
    candidates.minimumWeight = this.minP
  }
}
