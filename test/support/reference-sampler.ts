// A straightforward implementation of core's sampling spec that sorts the whole vocabulary every
// step. Tests check the fast Sampler against it token for token; the core benchmark times both.
import { BackendError } from '../../core/errors.ts'
import {
  applyLogitsProcessors,
  counterUniform,
  createLogitsProcessors,
  resolveSamplingOptions,
  type SamplingOptions,
} from '../../core/sampling/index.ts'

export function referenceSample(
  input: Float32Array,
  options: SamplingOptions,
  previousTokenIds: readonly number[],
  step: number,
  promptLength = 0,
): number {
  const resolved = resolveSamplingOptions(options)
  const logits = Float32Array.from(input)
  applyLogitsProcessors(createLogitsProcessors(resolved), logits, { previousTokenIds, promptLength, step })
  const size = logits.length
  for (let id = 0; id < size; id++) if (Number.isNaN(logits[id])) logits[id] = Number.NEGATIVE_INFINITY
  const order = Array.from({ length: size }, (_, id) => id).sort((a, b) => {
    const difference = logits[b]! - logits[a]!
    // -Infinity - -Infinity is NaN: treat those as equal.
    return (Number.isNaN(difference) ? 0 : difference) || a - b
  })
  const max = logits[order[0]!]!
  if (max === Number.NEGATIVE_INFINITY) throw new BackendError('backend_failed', 'no usable logits')
  if (resolved.temperature === 0 || max === Number.POSITIVE_INFINITY) return order[0]!
  const weight = (id: number): number => Math.exp((logits[id]! - max) / resolved.temperature)
  const k = resolved.topK > 0 ? Math.min(resolved.topK, size) : size
  let total = 0
  let kept: number[] | undefined
  if (k < size) {
    kept = order.slice(0, k)
    for (const id of kept) total += weight(id)
  } else {
    for (let id = 0; id < size; id++) total += weight(id)
  }
  if (resolved.topP < 1) {
    const candidates = kept ?? order
    const target = resolved.topP * total
    let running = 0
    let cut = candidates.length
    for (let i = 0; i < candidates.length; i++) {
      running += weight(candidates[i]!)
      if (running >= target) {
        cut = i + 1
        break
      }
    }
    kept = candidates.slice(0, cut)
  }
  if (resolved.minP > 0) kept = (kept ?? order).filter((id) => weight(id) >= resolved.minP)
  const uniform = counterUniform(resolved.seed, step)
  const walk = kept === undefined ? order.slice().sort((a, b) => a - b) : kept.slice().sort((a, b) => a - b)
  let walkTotal = 0
  if (kept === undefined) walkTotal = total
  else for (const id of walk) walkTotal += weight(id)
  const goal = uniform * walkTotal
  let running = 0
  let last = walk[walk.length - 1]!
  for (const id of walk) {
    const w = weight(id)
    if (w === 0) continue
    running += w
    last = id
    if (goal < running) return id
  }
  return last
}
