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

/** Every field of SamplingOptions: what callers copy out of a wider request (the SDK, the edge). */
export const samplingOptionNames = [
  'temperature',
  'topK',
  'topP',
  'minP',
  'repetitionPenalty',
  'presencePenalty',
  'frequencyPenalty',
  'logitBias',
  'seed',
] as const satisfies readonly (keyof SamplingOptions)[]

const knownOptions: ReadonlySet<string> = new Set(samplingOptionNames)

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

// --- The fast path for the whole vocabulary (no top-k, or a large one) -------------------------
//
// Exact weights need one Math.exp per token (~4 ms at 248,320 entries) and an exact top-p cut
// needs the prefix sums in sorted order (a sort of most of the vocabulary on flat distributions).
// Instead the fast path works with approximate weights whose error has a proven bound, decides
// the cut and the draw from those, and checks that every decision holds with a margin larger than
// the worst-case difference to the exact arithmetic. When a decision is too close to call (rare:
// the target lands within ~1e-10 of a prefix sum; or all logits equal), the exact path runs the
// specified arithmetic itself. Either way the token is the full-sort reference's token.
//
// Approximate weight: x = (logit - max) / temperature is placed in a bucket of width 1/128;
// w = exp(centre) × (degree-4 Taylor polynomial of exp(x - centre)), |x - centre| ≤ 1/256. The
// relative error is below 3e-14 (truncation 8e-15, x rounded differently 2e-14 at |x| ≤ 64);
// `weightTolerance` allows 1e-13. Tokens with x ≤ -64 (w < 1.7e-28) form a tail counted apart.
const bucketsPerUnit = 128
const tailStart = 64
const bucketCount = tailStart * bucketsPerUnit // index bucketCount counts the tail
const blockSize = 1024
const weightTolerance = 1e-13
const tailWeightBound = 1.7e-28
const smallGroup = 48
const subBucketBits = 11

let centreWeightTable: Float64Array | undefined
function centreWeights(): Float64Array {
  if (centreWeightTable === undefined) {
    // One more entry, 0, for the tail bucket.
    centreWeightTable = new Float64Array(bucketCount + 1)
    for (let bucket = 0; bucket < bucketCount; bucket++) {
      centreWeightTable[bucket] = Math.exp(-(bucket + 0.5) / bucketsPerUnit)
    }
  }
  return centreWeightTable
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

// An order-preserving integer for a float32 logit (larger logit → larger key; -0 and +0 equal).
const keyFloat = new Float32Array(1)
const keyInt = new Int32Array(keyFloat.buffer)
function sortKey(value: number): number {
  keyFloat[0] = value
  const bits = keyInt[0]!
  return bits < 0 ? -bits : bits + 2147483648
}

/** Pass 1: the maximum, turning NaN into -Infinity (never chosen, like the reference). */
function maximumOf(logits: Float32Array): number {
  let max = Number.NEGATIVE_INFINITY
  for (let id = 0; id < logits.length; id++) {
    const value = logits[id]!
    if (value > max) max = value
    else if (Number.isNaN(value)) logits[id] = Number.NEGATIVE_INFINITY
  }
  return max
}

/**
 * Pass 2: approximate weights, per-bucket count and mass (the tail counts in bucketCount), and
 * per-block sums; returns the total. Each loop lives in its own function: V8 compiles a nested
 * inner loop on its own while it runs and then deoptimizes at every exit from it (measured: 14 ms
 * instead of 2 ms per pass).
 */
function approximateWeights(
  logits: Float32Array,
  max: number,
  inverseTemperature: number,
  weights: Float64Array,
  counts: Int32Array,
  masses: Float64Array,
  blockSums: Float64Array,
  histogram: boolean,
): number {
  const centres = centreWeights()
  const size = logits.length
  let total = 0
  if (!histogram) {
    // No cut to find (no top-k or top-p): the weights and block sums are all the draw needs.
    for (let start = 0, block = 0; start < size; start += blockSize, block++) {
      const sum = weighBlockOnly(
        logits,
        max,
        inverseTemperature,
        weights,
        centres,
        start,
        Math.min(start + blockSize, size),
      )
      blockSums[block] = sum
      total += sum
    }
    return total
  }
  counts.fill(0)
  masses.fill(0)
  for (let start = 0, block = 0; start < size; start += blockSize, block++) {
    const sum = weighBlock(
      logits,
      max,
      inverseTemperature,
      weights,
      counts,
      masses,
      centres,
      start,
      Math.min(start + blockSize, size),
    )
    blockSums[block] = sum
    total += sum
  }
  return total
}

function weighBlockOnly(
  logits: Float32Array,
  max: number,
  inverseTemperature: number,
  weights: Float64Array,
  centres: Float64Array,
  start: number,
  end: number,
): number {
  let sum = 0
  for (let id = start; id < end; id++) {
    const x = (logits[id]! - max) * inverseTemperature
    const scaled = x > -tailStart ? -x * bucketsPerUnit : bucketCount + 0.5
    const bucket = scaled | 0
    const d = (bucket + 0.5 - scaled) / bucketsPerUnit
    const w = centres[bucket]! * (1 + d * (1 + d * (0.5 + d * (1 / 6 + d * (1 / 24)))))
    weights[id] = w
    sum += w
  }
  return sum
}

function weighBlock(
  logits: Float32Array,
  max: number,
  inverseTemperature: number,
  weights: Float64Array,
  counts: Int32Array,
  masses: Float64Array,
  centres: Float64Array,
  start: number,
  end: number,
): number {
  let sum = 0
  for (let id = start; id < end; id++) {
    const x = (logits[id]! - max) * inverseTemperature
    // The tail (and -Infinity) lands in bucket bucketCount, whose centre weight is 0: no branch.
    const scaled = x > -tailStart ? -x * bucketsPerUnit : bucketCount + 0.5
    const bucket = scaled | 0
    const d = (bucket + 0.5 - scaled) / bucketsPerUnit
    const w = centres[bucket]! * (1 + d * (1 + d * (0.5 + d * (1 / 6 + d * (1 / 24)))))
    weights[id] = w
    sum += w
    counts[bucket]!++
    masses[bucket]! += w
  }
  return sum
}

/** The ids whose bucket (same arithmetic as approximateWeights) is `bucket`, in id order. */
function collectBucket(
  logits: Float32Array,
  max: number,
  inverseTemperature: number,
  bucket: number,
  into: Int32Array,
): number {
  let count = 0
  for (let id = 0; id < logits.length; id++) {
    const x = (logits[id]! - max) * inverseTemperature
    if (x > -tailStart && ((-x * bucketsPerUnit) | 0) === bucket) into[count++] = id
  }
  return count
}

/** Fills keys[i] with the sort key of candidates[i]; writes the smallest and largest into out. */
function keyRange(
  logits: Float32Array,
  candidates: Int32Array,
  count: number,
  keys: Float64Array,
  out: Float64Array,
): void {
  let minKey = Number.POSITIVE_INFINITY
  let maxKey = Number.NEGATIVE_INFINITY
  for (let i = 0; i < count; i++) {
    const key = sortKey(logits[candidates[i]!]!)
    keys[i] = key
    if (key < minKey) minKey = key
    if (key > maxKey) maxKey = key
  }
  out[0] = minKey
  out[1] = maxKey
}

function histogramSlots(
  keys: Float64Array,
  candidates: Int32Array,
  weights: Float64Array,
  count: number,
  minKey: number,
  shift: number,
  subCounts: Int32Array,
  subMasses: Float64Array,
): void {
  for (let i = 0; i < count; i++) {
    const slot = (keys[i]! - minKey) >>> shift
    subCounts[slot]!++
    subMasses[slot]! += weights[candidates[i]!]!
  }
}

/** From the highest slot down: the slot where count reaches limit or mass reaches target; walk = [count, mass] before it. */
function walkSlots(
  subCounts: Int32Array,
  subMasses: Float64Array,
  slots: number,
  limit: number,
  target: number,
  walk: Float64Array,
): number {
  let count = walk[0]!
  let mass = walk[1]!
  let slot = slots - 1
  for (; slot > 0; slot--) {
    const inSlot = subCounts[slot]!
    if (inSlot === 0) continue
    if (count + inSlot >= limit || mass + subMasses[slot]! >= target) break
    count += inSlot
    mass += subMasses[slot]!
  }
  walk[0] = count
  walk[1] = mass
  return slot
}

/** Keeps the candidates (and keys) in `slot`, in id order; returns how many. */
function keepSlot(
  keys: Float64Array,
  candidates: Int32Array,
  count: number,
  minKey: number,
  shift: number,
  slot: number,
  next: Int32Array,
  keysNext: Float64Array,
): number {
  let kept = 0
  for (let i = 0; i < count; i++) {
    if ((keys[i]! - minKey) >>> shift === slot) {
      next[kept] = candidates[i]!
      keysNext[kept] = keys[i]!
      kept++
    }
  }
  return kept
}

/** Sorts ids[0..count) by logit descending, ties lower id first (small counts only). */
function insertionSortByLogit(logits: Float32Array, ids: Int32Array, count: number): void {
  for (let i = 1; i < count; i++) {
    const id = ids[i]!
    const value = logits[id]!
    let j = i - 1
    while (j >= 0) {
      const other = ids[j]!
      const otherValue = logits[other]!
      if (otherValue > value || (otherValue === value && other < id)) break
      ids[j + 1] = other
      j--
    }
    ids[j + 1] = id
  }
}

/**
 * The draw's crossing: the first kept id, in id order, whose running weight exceeds `goal`.
 * Kept = inside the prefix (logit > boundaryLogit, or equal with id ≤ boundaryId) when
 * `hasPrefix`, and w ≥ minP when minP > 0 (decided exactly near the threshold). With block sums of
 * the kept weights it skips whole blocks. Writes the running weight before and after into `out`
 * (and out[2] = 1 when a kept token with weight came before); returns -1 when it never crosses.
 */
function findCrossing(
  logits: Float32Array,
  weights: Float64Array,
  filter: KeptFilter,
  blockSums: Float64Array | undefined,
  goal: number,
  out: Float64Array,
): number {
  const size = logits.length
  let running = 0
  let start = 0
  if (blockSums !== undefined) {
    for (let block = 0; start < size; block++, start += blockSize) {
      const sum = blockSums[block]!
      if (running + sum > goal) break
      running += sum
    }
    if (start >= size) return -1
  }
  let seen = running > 0 ? 1 : 0
  for (let id = start; id < size; id++) {
    const w = keptWeight(logits, weights, filter, id)
    if (w <= 0) continue
    const next = running + w
    if (next > goal) {
      out[0] = running
      out[1] = next
      out[2] = seen
      return id
    }
    running = next
    seen = 1
  }
  return -1
}

interface KeptFilter {
  hasPrefix: boolean
  boundaryLogit: number
  boundaryId: number
  minP: number
  minPLow: number
  minPHigh: number
  max: number
  temperature: number
}

/** The approximate weight of `id` when kept, else 0. */
function keptWeight(logits: Float32Array, weights: Float64Array, filter: KeptFilter, id: number): number {
  const w = weights[id]!
  if (filter.hasPrefix) {
    const value = logits[id]!
    if (!(value > filter.boundaryLogit || (value === filter.boundaryLogit && id <= filter.boundaryId)))
      return 0
  }
  if (filter.minP > 0 && w < filter.minPHigh) {
    if (w < filter.minPLow) return 0
    // Too close to call with the approximation: the specified weight decides.
    if (Math.exp((logits[id]! - filter.max) / filter.temperature) < filter.minP) return 0
  }
  return w
}

/** Per-block sums of the kept approximate weights; returns their total. */
function keptBlockSums(
  logits: Float32Array,
  weights: Float64Array,
  filter: KeptFilter,
  blockSums: Float64Array,
): number {
  const size = logits.length
  let total = 0
  for (let start = 0, block = 0; start < size; start += blockSize, block++) {
    const sum = keptSum(logits, weights, filter, start, Math.min(start + blockSize, size))
    blockSums[block] = sum
    total += sum
  }
  return total
}

function keptSum(
  logits: Float32Array,
  weights: Float64Array,
  filter: KeptFilter,
  start: number,
  end: number,
): number {
  let sum = 0
  for (let id = start; id < end; id++) sum += keptWeight(logits, weights, filter, id)
  return sum
}

export class Sampler {
  readonly options: ResolvedSamplingOptions
  #exactDraws = 0
  #size = 0
  #weights = new Float64Array(0)
  #blockSums = new Float64Array(0)
  #keptBlocks = new Float64Array(0)
  #counts = new Int32Array(bucketCount + 1)
  #masses = new Float64Array(bucketCount + 1)
  #subCounts = new Int32Array(1 << subBucketBits)
  #subMasses = new Float64Array(1 << subBucketBits)
  #candidates = new Int32Array(0)
  #candidatesNext = new Int32Array(0)
  #keys = new Float64Array(0)
  #keysNext = new Float64Array(0)
  #crossing = new Float64Array(3)
  #extremes = new Float64Array(2)
  #walk = new Float64Array(2)
  #filter: KeptFilter = {
    hasPrefix: false,
    boundaryLogit: 0,
    boundaryId: 0,
    minP: 0,
    minPLow: 0,
    minPHigh: 0,
    max: 0,
    temperature: 1,
  }
  // The result of #descend: the boundary token, its 1-based position in descending order, and
  // the approximate mass before and through it.
  #boundaryId = 0
  #boundaryPosition = 0
  #massBefore = 0
  #massThrough = 0

  constructor(options: SamplingOptions = {}) {
    this.options = resolveSamplingOptions(options)
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
   * The token for draw number `step`. Modifies `logits` in place (bias and penalties; NaN
   * becomes -Infinity). `promptLength` says where generated tokens start in `previousTokenIds`
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
    applyLogitProcessors(logits, options, previousTokenIds, promptLength)
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

  /** Small top-k: a heap selection, then the specified arithmetic on the k candidates. */
  #sampleTopK(logits: Float32Array, k: number, step: number): number {
    const options = this.options
    const candidates = selectTop(logits, k)
    const max = logits[candidates[0]!]!
    if (max === Number.NEGATIVE_INFINITY) throw noUsableLogits(step)
    if (max === Number.POSITIVE_INFINITY) return candidates[0]!
    const temperature = options.temperature
    const weight = (id: number): number => Math.exp((logits[id]! - max) / temperature)
    let total = 0
    for (let i = 0; i < candidates.length; i++) total += weight(candidates[i]!)
    let kept: Int32Array = candidates
    if (options.topP < 1) {
      const target = options.topP * total
      let running = 0
      let cut = candidates.length
      for (let i = 0; i < candidates.length; i++) {
        running += weight(candidates[i]!)
        if (running >= target) {
          cut = i + 1
          break
        }
      }
      kept = candidates.subarray(0, cut)
    }
    if (options.minP > 0) kept = kept.filter((id) => weight(id) >= options.minP)
    const inIdOrder = Int32Array.from(kept).sort()
    let keptTotal = 0
    for (let i = 0; i < inIdOrder.length; i++) keptTotal += weight(inIdOrder[i]!)
    const goal = counterUniform(options.seed, step) * keptTotal
    let running = 0
    let last = inIdOrder[inIdOrder.length - 1]!
    for (let i = 0; i < inIdOrder.length; i++) {
      const w = weight(inIdOrder[i]!)
      if (w === 0) continue
      running += w
      last = inIdOrder[i]!
      if (goal < running) return last
    }
    return last
  }

  #ensureSize(size: number): void {
    if (this.#size === size) return
    this.#size = size
    const blocks = Math.ceil(size / blockSize)
    this.#weights = new Float64Array(size)
    this.#blockSums = new Float64Array(blocks)
    this.#keptBlocks = new Float64Array(blocks)
    this.#candidates = new Int32Array(size)
    this.#candidatesNext = new Int32Array(size)
    this.#keys = new Float64Array(size)
    this.#keysNext = new Float64Array(size)
  }

  /** The whole vocabulary (no top-k or a large one): approximate weights with checked margins. */
  #sampleWhole(logits: Float32Array, k: number, step: number): number {
    const options = this.options
    const size = logits.length
    const max = maximumOf(logits)
    if (max === Number.NEGATIVE_INFINITY) throw noUsableLogits(step)
    if (max === Number.POSITIVE_INFINITY) return logits.indexOf(Number.POSITIVE_INFINITY)
    warmUp()
    this.#ensureSize(size)
    const temperature = options.temperature
    const inverseTemperature = 1 / temperature
    const weights = this.#weights
    const needCut = k < size || options.topP < 1
    const total = approximateWeights(
      logits,
      max,
      inverseTemperature,
      weights,
      this.#counts,
      this.#masses,
      this.#blockSums,
      needCut,
    )
    // Bound on |approximate sum - exact sum| for any subset, whatever the order of either sum:
    // relative weight error plus recursive-summation rounding of both sides, plus the tail
    // (without the histogram, every token counts as possibly in the tail: still negligible).
    const tail = needCut ? this.#counts[bucketCount]! : size
    const margin = (weightTolerance + (size + 16_384) * 2 ** -52) * total + tail * tailWeightBound * 2
    const slack = 4 * margin

    const filter = this.#filter
    filter.hasPrefix = false
    filter.minP = options.minP
    filter.max = max
    filter.temperature = temperature
    let keptTotal = total
    if (k < size) {
      if (!this.#descend(logits, max, inverseTemperature, k, Number.POSITIVE_INFINITY)) {
        return this.#sampleExact(logits, max, k, step)
      }
      keptTotal = this.#massThrough
      filter.hasPrefix = true
    }
    if (options.topP < 1) {
      const target = options.topP * keptTotal
      if (!this.#descend(logits, max, inverseTemperature, k, target)) {
        return this.#sampleExact(logits, max, k, step)
      }
      // The reference cuts at the first token whose running weight reaches the target: check that
      // the one before surely falls short and this one surely reaches it (or is the k-th).
      const shortBefore = this.#boundaryPosition === 1 || this.#massBefore < target - slack
      const reaches = this.#boundaryPosition === k || this.#massThrough > target + slack
      if (!(shortBefore && reaches)) return this.#sampleExact(logits, max, k, step)
      keptTotal = this.#massThrough
      filter.hasPrefix = true
    }
    if (filter.hasPrefix) {
      filter.boundaryId = this.#boundaryId
      filter.boundaryLogit = logits[this.#boundaryId]!
    }
    let blockSums: Float64Array | undefined = filter.hasPrefix ? undefined : this.#blockSums
    if (options.minP > 0) {
      // Weights within the tail could pass a tiny minP: leave those to the exact path.
      if (options.minP < 1e-20) return this.#sampleExact(logits, max, k, step)
      filter.minPLow = options.minP * (1 - 1e-12)
      filter.minPHigh = options.minP * (1 + 1e-12)
      blockSums = this.#keptBlocks
      keptTotal = keptBlockSums(logits, weights, filter, blockSums)
    }

    const goal = counterUniform(options.seed, step) * keptTotal
    const crossing = this.#crossing
    const id = findCrossing(logits, weights, filter, blockSums, goal, crossing)
    if (id === -1) return this.#sampleExact(logits, max, k, step)
    const shortBefore = crossing[2] === 0 || crossing[0]! < goal - slack
    if (!(shortBefore && crossing[1]! > goal + slack)) return this.#sampleExact(logits, max, k, step)
    return id
  }

  /**
   * Finds the first token, in descending order (ties: lower id first), at which the count
   * reaches `limit` or the approximate running mass reaches `target`. Returns false when that
   * lies in the tail (left to the exact path).
   */
  #descend(
    logits: Float32Array,
    max: number,
    inverseTemperature: number,
    limit: number,
    target: number,
  ): boolean {
    const counts = this.#counts
    const masses = this.#masses
    let count = 0
    let mass = 0
    let bucket = 0
    for (; bucket < bucketCount; bucket++) {
      const inBucket = counts[bucket]!
      if (inBucket === 0) continue
      if (count + inBucket >= limit || mass + masses[bucket]! >= target) break
      count += inBucket
      mass += masses[bucket]!
    }
    if (bucket === bucketCount) return false
    let candidates = this.#candidates
    let next = this.#candidatesNext
    let keys = this.#keys
    let keysNext = this.#keysNext
    let remaining = collectBucket(logits, max, inverseTemperature, bucket, candidates)
    const weights = this.#weights
    for (;;) {
      if (remaining <= smallGroup) {
        insertionSortByLogit(logits, candidates, remaining)
        for (let i = 0; i < remaining; i++) {
          const id = candidates[i]!
          const before = mass
          count++
          mass += weights[id]!
          if (count >= limit || mass >= target) return this.#found(id, count, before, mass)
        }
        return false
      }
      const extremes = this.#extremes
      keyRange(logits, candidates, remaining, keys, extremes)
      const minKey = extremes[0]!
      const maxKey = extremes[1]!
      if (minKey === maxKey) {
        // Equal logits: equal weights, in id order. The crossing position is arithmetic.
        const w = weights[candidates[0]!]!
        let position = limit - count
        if (target !== Number.POSITIVE_INFINITY) {
          const byMass = Math.max(1, Math.ceil((target - mass) / w))
          if (byMass < position) position = byMass
        }
        if (position > remaining) return false
        return this.#found(
          candidates[position - 1]!,
          count + position,
          mass + (position - 1) * w,
          mass + position * w,
        )
      }
      const range = maxKey - minKey
      const shift = Math.max(0, 32 - Math.clz32(range) - subBucketBits)
      const slots = (range >>> shift) + 1
      const subCounts = this.#subCounts
      const subMasses = this.#subMasses
      subCounts.fill(0, 0, slots)
      subMasses.fill(0, 0, slots)
      histogramSlots(keys, candidates, weights, remaining, minKey, shift, subCounts, subMasses)
      const walk = this.#walk
      walk[0] = count
      walk[1] = mass
      const slot = walkSlots(subCounts, subMasses, slots, limit, target, walk)
      count = walk[0]!
      mass = walk[1]!
      const kept = keepSlot(keys, candidates, remaining, minKey, shift, slot, next, keysNext)
      ;[candidates, next] = [next, candidates]
      ;[keys, keysNext] = [keysNext, keys]
      remaining = kept
    }
  }

  #found(id: number, position: number, before: number, through: number): true {
    this.#boundaryId = id
    this.#boundaryPosition = position
    this.#massBefore = before
    this.#massThrough = through
    return true
  }

  /**
   * The specified arithmetic, step by step like the full-sort reference, but with a radix sort
   * (stable, id order within equal logits) and exact weights: for decisions the fast path could
   * not call.
   */
  #sampleExact(logits: Float32Array, max: number, k: number, step: number): number {
    this.#exactDraws++
    const options = this.options
    const size = logits.length
    const temperature = options.temperature
    const weights = this.#weights
    let previous = Number.NaN
    let previousWeight = 0
    let idTotal = 0
    for (let id = 0; id < size; id++) {
      const value = logits[id]!
      if (value !== previous) {
        previous = value
        previousWeight = Math.exp((value - max) / temperature)
      }
      weights[id] = previousWeight
      idTotal += previousWeight
    }
    const needOrder = k < size || options.topP < 1
    let boundaryLogit = Number.NEGATIVE_INFINITY
    let boundaryId = size - 1
    let total = idTotal
    if (needOrder) {
      const order = this.#radixOrder(logits)
      if (k < size) {
        total = 0
        for (let i = 0; i < k; i++) total += weights[order[i]!]!
      }
      let cut = k
      if (options.topP < 1) {
        const target = options.topP * total
        let running = 0
        for (let i = 0; i < k; i++) {
          running += weights[order[i]!]!
          if (running >= target) {
            cut = i + 1
            break
          }
        }
      }
      boundaryId = order[cut - 1]!
      boundaryLogit = logits[boundaryId]!
    }
    const minP = options.minP
    const kept = (id: number): boolean => {
      if (needOrder) {
        const value = logits[id]!
        if (!(value > boundaryLogit || (value === boundaryLogit && id <= boundaryId))) return false
      }
      return minP === 0 || weights[id]! >= minP
    }
    let walkTotal = idTotal
    let last = -1
    if (needOrder || minP > 0) {
      walkTotal = 0
      for (let id = 0; id < size; id++) {
        if (!kept(id)) continue
        walkTotal += weights[id]!
        last = id
      }
    } else {
      last = size - 1
    }
    const goal = counterUniform(options.seed, step) * walkTotal
    let running = 0
    for (let id = 0; id < size; id++) {
      const w = weights[id]!
      if (w === 0 || !kept(id)) continue
      running += w
      last = id
      if (goal < running) return id
    }
    return last
  }

  #order = new Int32Array(0)
  #orderNext = new Int32Array(0)
  #orderKeys = new Uint32Array(0)
  #orderKeysNext = new Uint32Array(0)
  #digitCounts = new Int32Array(3 * 2048)

  /** All ids by logit descending, ties lower id first: a stable LSD radix sort on sort keys. */
  #radixOrder(logits: Float32Array): Int32Array {
    const size = logits.length
    if (this.#order.length !== size) {
      this.#order = new Int32Array(size)
      this.#orderNext = new Int32Array(size)
      this.#orderKeys = new Uint32Array(size)
      this.#orderKeysNext = new Uint32Array(size)
    }
    let order = this.#order
    let orderNext = this.#orderNext
    let keys = this.#orderKeys
    let keysNext = this.#orderKeysNext
    const digits = this.#digitCounts
    digits.fill(0)
    for (let id = 0; id < size; id++) {
      // Ascending on the inverted key = descending logit; starting from id order keeps ties by id.
      const key = (4294967295 - sortKey(logits[id]!)) >>> 0
      order[id] = id
      keys[id] = key
      digits[key & 2047]!++
      digits[2048 + ((key >>> 11) & 2047)]!++
      digits[4096 + (key >>> 22)]!++
    }
    for (let pass = 0; pass < 3; pass++) {
      const offset = pass * 2048
      const shift = pass * 11
      let single = false
      for (let digit = 0; digit < 2048; digit++) {
        const count = digits[offset + digit]!
        if (count === size) single = true
        if (count !== 0) break
      }
      if (single) continue
      let position = 0
      for (let digit = 0; digit < 2048; digit++) {
        const count = digits[offset + digit]!
        digits[offset + digit] = position
        position += count
      }
      for (let i = 0; i < size; i++) {
        const key = keys[i]!
        const digit = (key >>> shift) & 2047
        const target = digits[offset + digit]!++
        orderNext[target] = order[i]!
        keysNext[target] = key
      }
      ;[order, orderNext] = [orderNext, order]
      ;[keys, keysNext] = [keysNext, keys]
    }
    return order
  }
}

// Up to this k the heap selection (one comparison per token, k exps) beats the whole-vocabulary path.
const heapTopKLimit = 1024
