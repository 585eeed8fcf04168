// The pieces of a draw on their own: each processor and filter, their order, and the constraint
// hook structured output uses (a mask that runs before bias and penalties).
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../errors.ts'
import {
  type Candidates,
  createCandidateFilters,
  createLogitsProcessors,
  drawCandidate,
  LogitBiasProcessor,
  type LogitsContext,
  type LogitsProcessor,
  MinPFilter,
  PenaltiesProcessor,
  resolveSamplingOptions,
  Sampler,
  TopKFilter,
  TopPFilter,
} from './index.ts'

const context = (previousTokenIds: number[], promptLength = 0, step = 0): LogitsContext => ({
  previousTokenIds,
  promptLength,
  step,
})

/** Candidates over `values` at temperature 1, ranked by a full sort (for the filters' unit checks). */
function candidatesOf(values: number[]): Candidates {
  const logits = Float32Array.from(values)
  const max = Math.max(...values)
  const weights = Float64Array.from(logits, (value) => Math.exp(value - max))
  const ranked = Int32Array.from(values.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b)
  let total = 0
  for (const w of weights) total += w
  return { logits, weights, ranked: () => ranked, count: values.length, total, minimumWeight: 0 }
}

describe('logits processors', () => {
  it('logit bias adds to the named tokens and names a token past the vocabulary', () => {
    const logits = Float32Array.from([0, 1, 2])
    new LogitBiasProcessor(new Map([[1, 5]])).process(logits)
    expect(Array.from(logits)).toEqual([0, 6, 2])
    expect(() => new LogitBiasProcessor(new Map([[3, 1]])).process(logits)).toThrow(
      /logitBias names token 3, but the vocabulary has 3 tokens/,
    )
  })

  it('penalties: repetition on every previous token, presence and frequency on generated ones only', () => {
    const logits = Float32Array.from([2, -2, 1, 1])
    const penalties = new PenaltiesProcessor({
      repetitionPenalty: 2,
      presencePenalty: 0.5,
      frequencyPenalty: 0.25,
    })
    // Token 0 is in the prompt only; 1 is in the prompt; 2 was generated twice; 3 never seen.
    penalties.process(logits, context([0, 1, 2, 2], 2))
    expect(Array.from(logits)).toEqual([1, -4, 0.5 - 0.5 - 0.5, 1])
    expect(() => penalties.process(new Float32Array(2), context([5]))).toThrow(/outside the logits vector/)
  })

  it('the options give bias then penalties, and leave out what is off', () => {
    expect(createLogitsProcessors(resolveSamplingOptions({}))).toEqual([])
    const both = createLogitsProcessors(
      resolveSamplingOptions({ logitBias: { 1: 2 }, frequencyPenalty: 0.1 }),
    )
    expect(both.map((processor) => processor.constructor)).toEqual([LogitBiasProcessor, PenaltiesProcessor])
  })
})

describe('candidate filters', () => {
  it('top-k keeps a ranked prefix and measures the next cut against its own mass', () => {
    const candidates = candidatesOf([0, 3, 1, 2])
    new TopKFilter(2).narrow(candidates)
    expect(candidates.count).toBe(2)
    expect(candidates.total).toBeCloseTo(1 + Math.exp(-1), 12)
    new TopKFilter(5).narrow(candidates)
    expect(candidates.count).toBe(2)
  })

  it('top-p keeps the shortest prefix whose mass reaches topP × total', () => {
    const candidates = candidatesOf([Math.log(4), Math.log(3), Math.log(2), Math.log(1)])
    // Weights 1, 0.75, 0.5, 0.25 (total 2.5): 0.5 × 2.5 = 1.25 is reached by the first two.
    new TopPFilter(0.5).narrow(candidates)
    expect(candidates.count).toBe(2)
    expect(Array.from(candidates.ranked().subarray(0, candidates.count))).toEqual([0, 1])
  })

  it('min-p sets a floor on the weight (the top token weighs 1)', () => {
    const candidates = candidatesOf([0, Math.log(0.5), Math.log(0.1)])
    new MinPFilter(0.2).narrow(candidates)
    for (let step = 0; step < 50; step++) expect(drawCandidate(candidates, step / 50)).not.toBe(2)
  })

  it('the options give top-k, top-p, min-p in that order', () => {
    const filters = createCandidateFilters(resolveSamplingOptions({ minP: 0.1, topP: 0.9, topK: 5 }))
    expect(filters.map((filter) => filter.constructor)).toEqual([TopKFilter, TopPFilter, MinPFilter])
  })

  it('draws in id order: u splits the kept weight at the same place whatever the ranking', () => {
    const candidates = candidatesOf([0, 0, 0, 0])
    expect([0, 0.26, 0.51, 0.99].map((u) => drawCandidate(candidates, u))).toEqual([0, 1, 2, 3])
  })
})

describe('constraints (the hook for token masks such as a grammar)', () => {
  /** Allows only the tokens in `allowed(generated)`; state follows from the context's tokens. */
  class AllowList implements LogitsProcessor {
    readonly seen: LogitsContext[] = []
    readonly allowed: (generated: readonly number[]) => readonly number[]
    constructor(allowed: (generated: readonly number[]) => readonly number[]) {
      this.allowed = allowed
    }
    process(logits: Float32Array, context: LogitsContext): void {
      this.seen.push({ ...context, previousTokenIds: [...context.previousTokenIds] })
      const keep = new Set(this.allowed(context.previousTokenIds.slice(context.promptLength)))
      for (let id = 0; id < logits.length; id++) if (!keep.has(id)) logits[id] = Number.NEGATIVE_INFINITY
    }
  }

  it('run before bias and penalties: a +100 bias cannot bring a masked token back', () => {
    const mask = new AllowList(() => [2, 3])
    const sampler = new Sampler(
      { temperature: 0, logitBias: { 0: 100 }, presencePenalty: 2 },
      { constraints: [mask] },
    )
    expect(sampler.processors[0]).toBe(mask)
    // Token 3 would win (2.5) without the presence penalty on it: the penalty still applies after the mask.
    expect(sampler.sample(Float32Array.from([0, 9, 1, 2.5]), [2, 3], 4, 1)).toBe(2)
    expect(mask.seen).toEqual([{ previousTokenIds: [2, 3], promptLength: 1, step: 4 }])
  })

  it('see the tokens generated so far, so a resumed sampler reaches the same state', () => {
    // Alternate: after an even number of generated tokens allow {0, 1}, after an odd one {2, 3}.
    const alternate = () => new AllowList((generated) => (generated.length % 2 === 0 ? [0, 1] : [2, 3]))
    const logits = (step: number) =>
      Float32Array.from([1, 1.5, 0.5, 2], (value, id) => value + ((step + id) % 3))
    const options = { temperature: 0.9, seed: 11 }
    const history = [5, 6]
    const whole = new Sampler(options, { constraints: [alternate()] })
    const tokens: number[] = []
    for (let step = 0; step < 8; step++) {
      const id = whole.sample(logits(step), history, step, 2)
      expect(step % 2 === 0 ? id < 2 : id >= 2).toBe(true)
      tokens.push(id)
      history.push(id)
    }
    const resumed = new Sampler(options, { constraints: [alternate()] })
    for (let step = 4; step < 8; step++) {
      expect(resumed.sample(logits(step), history.slice(0, 2 + step), step, 2)).toBe(tokens[step])
    }
  })

  it('must be processors', () => {
    const bad = [{ constraints: [{}] }, { constraints: 'mask' }] as unknown as {
      constraints: LogitsProcessor[]
    }[]
    for (const setup of bad) {
      expect(() => new Sampler({}, setup)).toThrow(InvalidArgumentError)
      expect(() => new Sampler({}, setup)).toThrow(/constraints must be an array of logits processors/)
    }
  })
})
