// The sampling fields, listed once: each SamplingOptions field, its wire name (OpenAI's, or
// vLLM's for the extensions) and the wire's rule for it. The validator, the request encoder (SDK)
// and the decoder (worker) all walk this table, and the request type derives its fields from it:
// a new sampling option does not compile until it has a line here.
import { maxTemperature, type SamplingOptions } from '../sampling/options.ts'
import { fail, type JsonObject, type NumberCheck, range, wholeAtLeast } from './checks.ts'

interface NumberField {
  readonly wire: string
  readonly check: NumberCheck
}

export const samplingFields = {
  // OpenAI's [0, 2], the bound every public entry shares; the sampler accepts any value ≥ 0.
  temperature: { wire: 'temperature', check: range(0, maxTemperature, ' (0 = greedy)') },
  topP: {
    wire: 'top_p',
    check: (value) => (value > 0 && value <= 1 ? undefined : 'use a value in (0, 1] (1 = off).'),
  },
  topK: { wire: 'top_k', check: wholeAtLeast(0, ' (0 = off)') },
  minP: { wire: 'min_p', check: range(0, 1, ' (0 = off)') },
  repetitionPenalty: {
    wire: 'repetition_penalty',
    check: (value) => (value > 0 ? undefined : 'use a value > 0 (1 = off).'),
  },
  presencePenalty: { wire: 'presence_penalty', check: range(-2, 2) },
  frequencyPenalty: { wire: 'frequency_penalty', check: range(-2, 2) },
  seed: {
    wire: 'seed',
    // A 64-bit seed (what some clients draw) has lost digits in JSON already: say which range is kept.
    check: (value) =>
      Number.isSafeInteger(value)
        ? undefined
        : Number.isInteger(value)
          ? `use a whole number between -${Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER} (2^53 - 1; larger ones lose digits in JSON).`
          : 'use a whole number.',
  },
  // A map, not a number: validateLogitBias checks its keys and values.
  logitBias: { wire: 'logit_bias' },
} as const satisfies Record<keyof SamplingOptions, NumberField | { readonly wire: 'logit_bias' }>

type SamplingFields = typeof samplingFields

/** The sampling fields of a wire request (null means absent, as OpenAI allows). */
export type WireSampling = {
  readonly [K in keyof SamplingFields as SamplingFields[K]['wire']]?:
    | (K extends 'logitBias' ? Readonly<Record<string, number>> : number)
    | null
}

/** The numeric fields with their rules, in the order the validator reports them. */
export const numericSamplingFields: readonly NumberField[] = (
  Object.values(samplingFields) as readonly (NumberField | { readonly wire: string })[]
).filter((field): field is NumberField => 'check' in field)

const entries = Object.entries(samplingFields) as [
  keyof SamplingOptions,
  SamplingFields[keyof SamplingFields],
][]

/** SamplingOptions as wire fields (absent options stay absent). */
export function toWireSampling(options: SamplingOptions): WireSampling {
  const wire: Record<string, unknown> = {}
  for (const [option, field] of entries) {
    const value = options[option]
    if (value !== undefined) wire[field.wire] = value
  }
  return wire as WireSampling
}

/** A validated request's sampling fields as SamplingOptions (logit_bias keys become numbers). */
export function fromWireSampling(request: WireSampling): SamplingOptions {
  const options: Record<string, unknown> = {}
  const wire = request as Readonly<Record<string, unknown>>
  for (const [option, field] of entries) {
    const value = wire[field.wire]
    if (value === undefined || value === null) continue
    if (option === 'logitBias') {
      const bias: Record<number, number> = {}
      for (const [key, weight] of Object.entries(value as Record<string, number>)) bias[Number(key)] = weight
      options[option] = bias
    } else {
      options[option] = value
    }
  }
  return options as SamplingOptions
}

/** The wire rule for logit_bias: token-id keys, values in [-100, 100] (absent or null is fine). */
export function validateLogitBias(logitBias: unknown): void {
  if (logitBias !== undefined && logitBias !== null) {
    if (typeof logitBias !== 'object' || Array.isArray(logitBias))
      fail('logit_bias', 'logit_bias must map token ids to numbers, e.g. { "42": -100 }.')
    for (const [key, value] of Object.entries(logitBias as JsonObject)) {
      if (!/^(0|[1-9][0-9]*)$/.test(key))
        fail(`logit_bias.${key}`, `logit_bias keys must be token ids; "${key}" is not one.`)
      if (typeof value !== 'number' || !Number.isFinite(value) || value < -100 || value > 100) {
        fail(`logit_bias.${key}`, `logit_bias.${key} must be a number in [-100, 100].`)
      }
    }
  }
}
