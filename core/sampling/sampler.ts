// The selection engine: picks the next token from a logits vector. A draw runs the logits
// processors in place (constraints → logit bias → repetition / presence / frequency penalties),
// then temperature → top-k → top-p → min-p → the draw, in that order.
//
// Two properties matter beyond the distribution itself:
// - Randomness is counter-based (counter-uniform.ts): the draw for step k is a hash of (seed, k).
//   Any machine that holds the same logits can resume at step k and draw the same token.
// - Vocabularies reach 248,320 entries (Qwen3.5): a step never sorts the whole vocabulary. Small
//   top-k is a heap selection (top-k.ts); otherwise approximate-draw.ts decides with checked
//   margins, and only a decision too close to call ranks everything (radix-order.ts).
//
// The arithmetic is specified, not incidental, so any implementation (see the full-sort reference
// in test/support) lands on the same token: weights w = exp((logit - max) / temperature) in float64;
// top-p keeps the shortest prefix, in descending order (ties: lower id first), whose summed weight
// reaches topP × (sum of the candidates' weights); min-p keeps w ≥ minP; the draw walks the kept
// tokens in id order and takes the first whose running weight exceeds u × (their total weight).
import { BackendError, InvalidArgumentError } from '../errors.ts'
import { ApproximateDraw, maximumOf, tooCloseToCall } from './approximate-draw.ts'
import { type CandidateFilter, type Candidates, narrowCandidates } from './candidates.ts'
import { counterUniform } from './counter-uniform.ts'
import { drawCandidate } from './draw.ts'
import { LogitBiasProcessor } from './logit-bias.ts'
import { applyLogitsProcessors, type LogitsProcessor } from './logits-processor.ts'
import { MinPFilter } from './min-p.ts'
import { type ResolvedSamplingOptions, resolveSamplingOptions, type SamplingOptions } from './options.ts'
import { PenaltiesProcessor, penaltiesOff } from './penalties.ts'
import { RadixOrder } from './radix-order.ts'
import { temperatureWeight } from './temperature.ts'
import { selectTop, TopKFilter } from './top-k.ts'
import { TopPFilter } from './top-p.ts'

/** The processors the options ask for, in their order: logit bias, then the penalties. */
export function createLogitsProcessors(options: ResolvedSamplingOptions): LogitsProcessor[] {
  const processors: LogitsProcessor[] = []
  if (options.logitBias.size > 0) processors.push(new LogitBiasProcessor(options.logitBias))
  if (!penaltiesOff(options)) processors.push(new PenaltiesProcessor(options))
  return processors
}

/**
 * The truncation filters the options ask for, in their order: top-k, top-p, min-p. The fast path
 * (approximate-draw.ts) implements exactly these three fused; a new filter needs its counterpart
 * there, or draws that use it must go to the exact path.
 */
export function createCandidateFilters(options: ResolvedSamplingOptions): CandidateFilter[] {
  const filters: CandidateFilter[] = []
  if (options.topK > 0) filters.push(new TopKFilter(options.topK))
  if (options.topP < 1) filters.push(new TopPFilter(options.topP))
  if (options.minP > 0) filters.push(new MinPFilter(options.minP))
  return filters
}

export interface SamplerSetup {
  /**
   * Processors that run first, before logit bias and penalties: masks that decide which tokens
   * may come at all (e.g. a grammar for structured output), so no bias can bring a ruled-out token
   * back. Like every processor, their state must follow from the context's tokens alone, so a
   * handoff that replays the tokens resumes it.
   */
  readonly constraints?: readonly LogitsProcessor[]
}

export class Sampler {
  readonly options: ResolvedSamplingOptions
  /** Run in place on every draw's logits, in this order. */
  readonly processors: readonly LogitsProcessor[]
  /** Narrow the candidates after temperature, in this order. */
  readonly filters: readonly CandidateFilter[]
  #exactDraws = 0
  readonly #approximate = new ApproximateDraw()
  readonly #radix = new RadixOrder()

  constructor(options: SamplingOptions = {}, setup: SamplerSetup = {}) {
    this.options = resolveSamplingOptions(options)
    const constraints = setup.constraints ?? []
    if (
      !Array.isArray(constraints) ||
      constraints.some(
        (constraint) => typeof (constraint as Partial<LogitsProcessor>)?.process !== 'function',
      )
    ) {
      throw new InvalidArgumentError(
        'constraints',
        'constraints must be an array of logits processors (objects with a process(logits, context) method).',
      )
    }
    this.processors = [...constraints, ...createLogitsProcessors(this.options)]
    this.filters = createCandidateFilters(this.options)
  }

  get seed(): number {
    return this.options.seed
  }

  /**
   * How many draws so far needed the exact path (a decision too close to call with approximate
   * weights, e.g. all logits equal); for benchmarks and tests. The token is the same either way.
   */
  get exactDraws(): number {
    return this.#exactDraws
  }

  /**
   * The token for draw number `step`. Modifies `logits` in place (processors; NaN becomes
   * -Infinity). `promptLength` says where generated tokens start in `previousTokenIds`
   * (presence and frequency penalties count only those); default 0 counts them all.
   */
  sample(logits: Float32Array, previousTokenIds: readonly number[], step: number, promptLength = 0): number {
    if (!(logits instanceof Float32Array) || logits.length === 0) {
      throw new InvalidArgumentError('logits', 'logits must be a non-empty Float32Array.')
    }
    if (!Number.isSafeInteger(step) || step < 0) {
      throw new InvalidArgumentError(
        'step',
        `step must be a whole number ≥ 0 (the draw counter); got ${step}.`,
      )
    }
    const options = this.options
    applyLogitsProcessors(this.processors, logits, { previousTokenIds, promptLength, step })
    const size = logits.length

    if (options.temperature === 0) {
      // Greedy: one pass. With +Infinity present, the first +Infinity entry wins, as in the reference.
      const best = argmax(logits)
      if (best === -1) throw noUsableLogits(step)
      return best
    }
    const k = options.topK > 0 ? Math.min(options.topK, size) : size
    if (k < size && k <= heapTopKLimit) return this.#sampleTopK(logits, k, step)
    return this.#sampleWhole(logits, k, step)
  }

  /** Small top-k: a heap selection ranks k candidates, then the filters and the draw as specified. */
  #sampleTopK(logits: Float32Array, k: number, step: number): number {
    const ranked = selectTop(logits, k)
    const max = logits[ranked[0]!]!
    if (max === Number.NEGATIVE_INFINITY) throw noUsableLogits(step)
    if (max === Number.POSITIVE_INFINITY) return ranked[0]!
    const temperature = this.options.temperature
    const weights = weightsFor(logits.length)
    let total = 0
    for (let i = 0; i < ranked.length; i++) {
      const id = ranked[i]!
      const w = temperatureWeight(logits[id]!, max, temperature)
      weights[id] = w
      total += w
    }
    const candidates: Candidates = {
      logits,
      weights,
      ranked: () => ranked,
      count: ranked.length,
      total,
      minimumWeight: 0,
    }
    narrowCandidates(this.filters, candidates)
    return drawCandidate(candidates, counterUniform(this.options.seed, step))
  }

  /** The whole vocabulary (no top-k or a large one): the fast path, or the exact one when it cannot call. */
  #sampleWhole(logits: Float32Array, k: number, step: number): number {
    const max = maximumOf(logits)
    if (max === Number.NEGATIVE_INFINITY) throw noUsableLogits(step)
    if (max === Number.POSITIVE_INFINITY) return logits.indexOf(Number.POSITIVE_INFINITY)
    warmUp()
    const uniform = counterUniform(this.options.seed, step)
    const id = this.#approximate.draw(logits, max, this.options, k, uniform)
    if (id !== tooCloseToCall) return id
    return this.#sampleExact(logits, max, uniform)
  }

  /**
   * The specified arithmetic like the full-sort reference, but with exact weights cached per
   * logit value and a radix sort (stable, id order within equal logits) only when a filter ranks.
   */
  #sampleExact(logits: Float32Array, max: number, uniform: number): number {
    this.#exactDraws++
    const size = logits.length
    const weights = weightsFor(size)
    const temperature = this.options.temperature
    let previous = Number.NaN
    let previousWeight = 0
    let total = 0
    for (let id = 0; id < size; id++) {
      const value = logits[id]!
      if (value !== previous) {
        previous = value
        previousWeight = temperatureWeight(value, max, temperature)
      }
      weights[id] = previousWeight
      total += previousWeight
    }
    let ranked: Int32Array | undefined
    const candidates: Candidates = {
      logits,
      weights,
      ranked: () => {
        ranked ??= this.#radix.rank(logits)
        return ranked
      },
      count: size,
      total,
      minimumWeight: 0,
    }
    narrowCandidates(this.filters, candidates)
    return drawCandidate(candidates, uniform)
  }
}

// Weights by token id for the exact paths, shared by every Sampler of this thread: a generation
// makes a new Sampler, and a vocabulary-sized buffer each time would cost more than its draw.
// Safe because sample() is synchronous and reads the buffer only after it filled it in the same
// call (processors and the warm-up run before). The small top-k path writes only its k entries.
let sharedWeights = new Float64Array(0)
function weightsFor(size: number): Float64Array {
  if (sharedWeights.length < size) sharedWeights = new Float64Array(size)
  return sharedWeights
}

// Up to this k the heap selection (one comparison per token, k exps) beats the whole-vocabulary path.
const heapTopKLimit = 1024

/** The index of the largest logit in one pass (NaN never wins; ties go to the lower id); -1 when none is > -Infinity. */
function argmax(logits: Float32Array): number {
  let best = -1
  let bestValue = Number.NEGATIVE_INFINITY
  for (let id = 0; id < logits.length; id++) {
    const value = logits[id]!
    if (value > bestValue) {
      bestValue = value
      best = id
    }
  }
  return best
}

function noUsableLogits(step: number): BackendError {
  return new BackendError(
    'backend_failed',
    `The model returned no usable logits at step ${step} (every value is NaN or -Infinity). The model file or backend is broken; try another backend or dtype.`,
    { isRetryable: true },
  )
}

// V8 compiles a long loop while it runs (on-stack replacement); code after the loop that never
// ran yet has no type feedback and deoptimizes on exit, again and again (measured: 5+ ms instead
// of 2 ms per step). Running the whole-vocabulary path once on a small vector first gives every
// site its feedback. Done once per process, on the first whole-vocabulary draw.
let warmedUp = false
function warmUp(): void {
  if (warmedUp) return
  warmedUp = true
  const logits = new Float32Array(3000)
  for (let id = 0; id < logits.length; id++) {
    logits[id] = (counterUniform(1, id) - 0.5) * 40 + (id % 7 === 0 ? 0.5 : 0)
  }
  const variants: SamplingOptions[] = [
    { temperature: 1, seed: 1 },
    { temperature: 0.8, topP: 0.9, seed: 2 },
    { temperature: 0.8, minP: 0.05, seed: 3 },
    { temperature: 0.8, topK: 2000, topP: 0.9, minP: 0.01, seed: 4 },
    { temperature: 100, topP: 0.5, seed: 5 },
  ]
  for (const options of variants) {
    const sampler = new Sampler(options)
    for (let step = 0; step < 3; step++) sampler.sample(logits.slice(), [], step)
  }
}
