// The sampling options callers give, and their one validator: every field, its default and its
// allowed range live here, so the SDK, the edge and the CLI check them with the same words.
import { InvalidArgumentError } from '../errors.ts'

/**
 * The largest temperature a public entry takes (the SDK, the edge's wire field, the CLI's flag):
 * OpenAI's [0, 2]. One bound for all of them, so a request one accepts never fails at another,
 * e.g. at the edge in a handoff mid-answer. The sampler itself takes any value ≥ 0.
 */
export const maxTemperature = 2

export interface SamplingOptions {
  /** 0 = greedy (argmax). Default 1. Public entries take [0, maxTemperature]. */
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

// A compile error when SamplingOptions gains a field this list lacks (the validator would refuse it).
type UnlistedOption = Exclude<keyof SamplingOptions, (typeof samplingOptionNames)[number]>
const everyOptionListed: [UnlistedOption] extends [never] ? true : UnlistedOption = true
void everyOptionListed

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
