// Top-p (nucleus): keep the shortest prefix, in descending order, whose summed weight reaches
// topP × the candidates' total.
import type { CandidateFilter, Candidates } from './candidates.ts'

export class TopPFilter implements CandidateFilter {
  readonly topP: number

  constructor(topP: number) {
    this.topP = topP
  }

  narrow(candidates: Candidates): void {
    const ranked = candidates.ranked()
    const target = this.topP * candidates.total
    let running = 0
    // Rounding can leave the running sum just short of the target: then every candidate stays.
    let cut = candidates.count
    for (let i = 0; i < candidates.count; i++) {
      running += candidates.weights[ranked[i]!]!
      if (running >= target) {
        cut = i + 1
        break
      }
    }
    candidates.count = cut
    candidates.total = running
  }
}
