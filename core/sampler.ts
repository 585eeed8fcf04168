// Picks the next token from a logits vector: logit bias → repetition / presence / frequency
// penalties → temperature → top-k → top-p → min-p → draw, in that order (DESIGN.md §3).
//
// Two properties matter beyond the distribution itself:
// - Randomness is counter-based: the draw for step k is a hash of (seed, k). Any machine that
//   holds the same logits can resume at step k and draw the same token (device → edge handoff).
// - Vocabularies reach 248,320 entries (Qwen3.5): a step never sorts the whole vocabulary. Top-k
//   is a heap selection; top-p alone widens a partial selection until it covers the mass.
//
// The arithmetic is specified, not incidental, so any implementation (see the full-sort reference
// in test/support) lands on the same token: weights w = exp((logit - max) / temperature) in float64;
// top-p keeps the shortest prefix, in descending order (ties: lower id first), whose summed weight
// reaches topP × (sum of the candidates' weights); min-p keeps w ≥ minP; the draw walks the kept
// tokens in id order and takes the first whose running weight exceeds u × (their total weight).
import { BackendError, InvalidArgumentError } from './errors.ts'

export interface SamplingOptions {
  /** 0 = greedy (argmax). Default 1. */
  readonly temperature?: number
  /** Keep the k most likely tokens; 0 = off. Default 0. */
  readonly topK?: number
  /** Nucleus sampling mass in (0, 1]; 1 = off. Default 1. */
  readonly topP?: number
  /** Drop tokens below minP × the top token's probability, in [0, 1]; 0 = off. Default 0. */
  readonly minP?: number
  /** > 0; 1 = off. Divides positive / multiplies negative logits of every token seen (prompt included). */
  readonly repetitionPenalty?: number
  /** In [-2, 2]; subtracted once from tokens already generated. */
  readonly presencePenalty?: number
  /** In [-2, 2]; subtracted per occurrence in the generated tokens. */
  readonly frequencyPenalty?: number
  /** token id → value in [-100, 100] added to its logit (-100 effectively bans it). */
  readonly logitBias?: Readonly<Record<number, number>>
  /** Integer seed of the counter-based randomness; a random one when absent (read it back from `sampler.seed`). */
  readonly seed?: number
}

export interface ResolvedSamplingOptions {
  readonly temperature: number
  readonly topK: number
  readonly topP: number
  readonly minP: number
  readonly repetitionPenalty: number
  readonly presencePenalty: number
  readonly frequencyPenalty: number
  readonly logitBias: ReadonlyMap<number, number>
  readonly seed: number
}

const knownOptions: ReadonlySet<string> = new Set([
  'temperature',
  'topK',
  'topP',
  'minP',
  'repetitionPenalty',
  'presencePenalty',
  'frequencyPenalty',
  'logitBias',
  'seed',
])

function finiteNumber(options: SamplingOptions, field: keyof SamplingOptions, fallback: number): number {
  const value = options[field]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidArgumentError(field, `${field} must be a finite number (got ${String(value)}).`)
  }
  return value
}

/** Checks sampling options and fills defaults; every error names the field and the allowed range. */
export function resolveSamplingOptions(options: SamplingOptions = {}): ResolvedSamplingOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError(
      'sampling',
      'Sampling options must be an object like { temperature: 0.7 }.',
    )
  }
  for (const key of Object.keys(options)) {
    if (!knownOptions.has(key)) {
      throw new InvalidArgumentError(
        key,
        `Unknown sampling option "${key}"; the options are ${[...knownOptions].join(', ')}.`,
      )
    }
  }
  const temperature = finiteNumber(options, 'temperature', 1)
  if (temperature < 0) throw new InvalidArgumentError('temperature', 'temperature must be ≥ 0 (0 = greedy).')
  const topK = finiteNumber(options, 'topK', 0)
  if (!Number.isInteger(topK) || topK < 0) {
    throw new InvalidArgumentError('topK', `topK must be a whole number ≥ 0 (0 = off); got ${topK}.`)
  }
  const topP = finiteNumber(options, 'topP', 1)
  if (!(topP > 0 && topP <= 1)) {
    throw new InvalidArgumentError('topP', `topP must be in (0, 1] (1 = off); got ${topP}.`)
  }
  const minP = finiteNumber(options, 'minP', 0)
  if (!(minP >= 0 && minP <= 1))
    throw new InvalidArgumentError('minP', `minP must be in [0, 1] (0 = off); got ${minP}.`)
  const repetitionPenalty = finiteNumber(options, 'repetitionPenalty', 1)
  if (!(repetitionPenalty > 0)) {
    throw new InvalidArgumentError(
      'repetitionPenalty',
      `repetitionPenalty must be > 0 (1 = off); got ${repetitionPenalty}.`,
    )
  }
  const presencePenalty = finiteNumber(options, 'presencePenalty', 0)
  if (presencePenalty < -2 || presencePenalty > 2) {
    throw new InvalidArgumentError(
      'presencePenalty',
      `presencePenalty must be in [-2, 2]; got ${presencePenalty}.`,
    )
  }
  const frequencyPenalty = finiteNumber(options, 'frequencyPenalty', 0)
  if (frequencyPenalty < -2 || frequencyPenalty > 2) {
    throw new InvalidArgumentError(
      'frequencyPenalty',
      `frequencyPenalty must be in [-2, 2]; got ${frequencyPenalty}.`,
    )
  }
  const logitBias = new Map<number, number>()
  if (options.logitBias !== undefined) {
    if (
      typeof options.logitBias !== 'object' ||
      options.logitBias === null ||
      Array.isArray(options.logitBias)
    ) {
      throw new InvalidArgumentError(
        'logitBias',
        'logitBias must be an object mapping token ids to numbers, e.g. { "42": -100 }.',
      )
    }
    for (const [key, bias] of Object.entries(options.logitBias)) {
      const id = Number(key)
      if (!Number.isInteger(id) || id < 0 || String(id) !== key) {
        throw new InvalidArgumentError(
          `logitBias.${key}`,
          `logitBias keys must be token ids (whole numbers ≥ 0); got "${key}".`,
        )
      }
      if (typeof bias !== 'number' || !Number.isFinite(bias) || bias < -100 || bias > 100) {
        throw new InvalidArgumentError(
          `logitBias.${key}`,
          `logitBias values must be numbers in [-100, 100]; got ${String(bias)}.`,
        )
      }
      logitBias.set(id, bias)
    }
  }
  let seed: number
  if (options.seed === undefined) {
    seed = Math.floor(Math.random() * 2 ** 32)
  } else {
    seed = options.seed
    if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
      throw new InvalidArgumentError(
        'seed',
        `seed must be a whole number (a safe integer); got ${String(seed)}.`,
      )
    }
  }
  return {
    temperature,
    topK,
    topP,
    minP,
    repetitionPenalty,
    presencePenalty,
    frequencyPenalty,
    logitBias,
    seed,
  }
}

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

/**
 * Applies logit bias and the repetition / presence / frequency penalties in place. Repetition
 * looks at every previous token (prompt included, as Hugging Face does); presence and frequency
 * only at the generated ones (`previousTokenIds` from `promptLength` on, as OpenAI does).
 */
export function applyLogitProcessors(
  logits: Float32Array,
  options: ResolvedSamplingOptions,
  previousTokenIds: readonly number[],
  promptLength: number,
): void {
  const size = logits.length
  for (const [id, bias] of options.logitBias) {
    if (id >= size) {
      throw new InvalidArgumentError(
        `logitBias.${id}`,
        `logitBias names token ${id}, but the vocabulary has ${size} tokens.`,
      )
    }
    logits[id]! += bias
  }
  const repetition = options.repetitionPenalty
  const presence = options.presencePenalty
  const frequency = options.frequencyPenalty
  if (repetition === 1 && presence === 0 && frequency === 0) return
  const counts = new Map<number, number>()
  for (let index = 0; index < previousTokenIds.length; index++) {
    const id = previousTokenIds[index]!
    if (!(id >= 0 && id < size && Number.isInteger(id))) {
      throw new InvalidArgumentError(
        `previousTokenIds.${index}`,
        `Token id ${id} is outside the logits vector (0..${size - 1}).`,
      )
    }
    const generated = index >= promptLength ? 1 : 0
    counts.set(id, (counts.get(id) ?? 0) + generated)
  }
  for (const [id, count] of counts) {
    let value = logits[id]!
    if (repetition !== 1) value = value > 0 ? value / repetition : value * repetition
    if (count > 0) value -= presence + frequency * count
    logits[id] = value
  }
}

/** The index of the largest logit (NaN never wins); ties go to the lower id. Callers ensure one is > -Infinity. */
function argmax(logits: Float32Array): number {
  let best = 0
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

export class Sampler {
  readonly options: ResolvedSamplingOptions
  #weights: Float64Array | undefined

  constructor(options: SamplingOptions = {}) {
    this.options = resolveSamplingOptions(options)
  }

  get seed(): number {
    return this.options.seed
  }

  /**
   * The token for draw number `step`. Modifies `logits` in place (bias and penalties).
   * `promptLength` says where generated tokens start in `previousTokenIds` (presence and
   * frequency penalties count only those); default 0 counts them all.
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
    applyLogitProcessors(logits, options, previousTokenIds, promptLength)
    const size = logits.length

    // NaN logits can never be chosen (they become -Infinity); a +Infinity logit (overflow) is
    // certain. Both get a defined result, and a vector with nothing usable is a backend failure.
    const k = options.topK > 0 ? Math.min(options.topK, size) : size
    const greedy = options.temperature === 0
    let candidates: Int32Array | undefined
    let max: number
    if (!greedy && k < size) {
      // Top-k's selection pass finds the maximum too: one pass over the vocabulary in all.
      candidates = selectTop(logits, k)
      max = logits[candidates[0]!]!
    } else {
      max = Number.NEGATIVE_INFINITY
      for (let id = 0; id < size; id++) {
        const value = logits[id]!
        if (value > max) max = value
        else if (Number.isNaN(value)) logits[id] = Number.NEGATIVE_INFINITY
      }
    }
    if (max === Number.NEGATIVE_INFINITY) {
      throw new BackendError(
        'backend_failed',
        `The model returned no usable logits at step ${step} (every value is NaN or -Infinity). The model file or backend is broken; try another backend or dtype.`,
        { isRetryable: true },
      )
    }
    if (greedy || max === Number.POSITIVE_INFINITY) {
      // Greedy; and with +Infinity present, the first +Infinity entry is the only sane pick.
      return candidates === undefined ? argmax(logits) : candidates[0]!
    }
    const temperature = options.temperature
    const weight = (id: number): number => Math.exp((logits[id]! - max) / temperature)

    // The candidates' total weight (in descending order for top-k, id order for the whole vocabulary).
    let total = 0
    let weights: Float64Array | undefined
    if (candidates !== undefined) {
      for (let i = 0; i < candidates.length; i++) total += weight(candidates[i]!)
    } else {
      // Kept for the draw, so each exp runs once; the buffer is reused across steps.
      if (this.#weights === undefined || this.#weights.length !== size) this.#weights = new Float64Array(size)
      weights = this.#weights
      for (let id = 0; id < size; id++) {
        const w = Math.exp((logits[id]! - max) / temperature)
        weights[id] = w
        total += w
      }
    }

    let kept: Int32Array | undefined
    if (options.topP < 1) {
      const target = options.topP * total
      let width = Math.min(256, size)
      for (;;) {
        const ordered = candidates ?? selectTop(logits, width)
        let running = 0
        let cut = -1
        for (let i = 0; i < ordered.length; i++) {
          running += weight(ordered[i]!)
          if (running >= target) {
            cut = i + 1
            break
          }
        }
        if (cut === -1 && (candidates !== undefined || width === size)) cut = ordered.length
        if (cut !== -1) {
          kept = ordered.subarray(0, cut)
          break
        }
        width = Math.min(width * 8, size)
      }
    } else if (candidates !== undefined) {
      kept = candidates
    }

    if (options.minP > 0) {
      // w of the top token is exp(0) = 1, so minP × p_max becomes a bound on w itself.
      const threshold = options.minP
      if (kept !== undefined) {
        kept = kept.filter((id) => weight(id) >= threshold)
      } else {
        // A cheap prefilter on the logit (with slack for rounding); the weight test decides.
        const bound = max + temperature * Math.log(threshold) - 1e-4 * (1 + Math.abs(max))
        const list: number[] = []
        for (let id = 0; id < size; id++) if (logits[id]! >= bound && weight(id) >= threshold) list.push(id)
        kept = Int32Array.from(list)
      }
    }

    const uniform = counterUniform(options.seed, step)
    if (kept === undefined) {
      const goal = uniform * total
      let running = 0
      let last = -1
      for (let id = 0; id < size; id++) {
        const w = weights![id]!
        if (w === 0) continue
        running += w
        last = id
        if (goal < running) return id
      }
      return last
    }
    const inIdOrder = Int32Array.from(kept).sort()
    let keptTotal = 0
    for (let i = 0; i < inIdOrder.length; i++) keptTotal += weight(inIdOrder[i]!)
    const goal = uniform * keptTotal
    let running = 0
    for (let i = 0; i < inIdOrder.length; i++) {
      running += weight(inIdOrder[i]!)
      if (goal < running) return inIdOrder[i]!
    }
    return inIdOrder[inIdOrder.length - 1]!
  }
}
