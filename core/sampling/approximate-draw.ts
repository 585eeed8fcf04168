// The whole-vocabulary fast path of the selection engine (no top-k, or a large one): temperature,
// top-k, top-p and min-p fused into a few linear passes, with no sort of the vocabulary.
//
// Exact weights need one Math.exp per token (~4 ms at 248,320 entries) and an exact top-p cut
// needs the prefix sums in sorted order (a sort of most of the vocabulary on flat distributions).
// Instead the fast path works with approximate weights whose error has a proven bound, decides
// the cut and the draw from those, and checks that every decision holds with a margin larger than
// the worst-case difference to the exact arithmetic. When a decision is too close to call (rare:
// the target lands within ~1e-10 of a prefix sum; or all logits equal), it says so and the engine
// runs the specified arithmetic itself (candidates.ts). Either way the token is the full-sort
// reference's token.
//
// Approximate weight: x = (logit - max) / temperature is placed in a bucket of width 1/128;
// w = exp(centre) × (degree-4 Taylor polynomial of exp(x - centre)), |x - centre| ≤ 1/256. The
// relative error is below 3e-14 (truncation 8e-15, x rounded differently 2e-14 at |x| ≤ 64);
// `weightTolerance` allows 1e-13. Tokens with x ≤ -64 (w < 1.7e-28) form a tail counted apart.
import type { ResolvedSamplingOptions } from './options.ts'
import { sortKey } from './radix-order.ts'
import { temperatureWeight } from './temperature.ts'

/** What ApproximateDraw.draw returns when a decision is too close to call: run the exact path. */
export const tooCloseToCall = -1

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

/** Pass 1: the maximum, turning NaN into -Infinity (never chosen, like the reference). */
export function maximumOf(logits: Float32Array): number {
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
    if (temperatureWeight(logits[id]!, filter.max, filter.temperature) < filter.minP) return 0
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

/** Holds the buffers a draw reuses (sized to the vocabulary once), so a step allocates nothing. */
export class ApproximateDraw {
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

  /**
   * The token for one draw, or tooCloseToCall. `logits`: after the processors, NaN already turned
   * into -Infinity by maximumOf, whose finite result is `max`; `k`: the top-k (the vocabulary size
   * when off); `uniform`: counterUniform(seed, step).
   */
  draw(
    logits: Float32Array,
    max: number,
    options: ResolvedSamplingOptions,
    k: number,
    uniform: number,
  ): number {
    const size = logits.length
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
        return tooCloseToCall
      }
      keptTotal = this.#massThrough
      filter.hasPrefix = true
    }
    if (options.topP < 1) {
      const target = options.topP * keptTotal
      if (!this.#descend(logits, max, inverseTemperature, k, target)) {
        return tooCloseToCall
      }
      // The reference cuts at the first token whose running weight reaches the target: check that
      // the one before surely falls short and this one surely reaches it (or is the k-th).
      const shortBefore = this.#boundaryPosition === 1 || this.#massBefore < target - slack
      const reaches = this.#boundaryPosition === k || this.#massThrough > target + slack
      if (!(shortBefore && reaches)) return tooCloseToCall
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
      if (options.minP < 1e-20) return tooCloseToCall
      filter.minPLow = options.minP * (1 - 1e-12)
      filter.minPHigh = options.minP * (1 + 1e-12)
      blockSums = this.#keptBlocks
      keptTotal = keptBlockSums(logits, weights, filter, blockSums)
    }

    const goal = uniform * keptTotal
    const crossing = this.#crossing
    const id = findCrossing(logits, weights, filter, blockSums, goal, crossing)
    if (id === -1) return tooCloseToCall
    const shortBefore = crossing[2] === 0 || crossing[0]! < goal - slack
    if (!(shortBefore && crossing[1]! > goal + slack)) return tooCloseToCall
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
}
