import { describe, expect, it } from 'vitest'
import { type SamplingOptions, samplingOptionNames } from '../sampling/index.ts'
import { fromWireSampling, samplingFields, toWireSampling } from './sampling.ts'
import { validateChatCompletionRequest } from './validate.ts'

const every: Required<SamplingOptions> = {
  temperature: 0.6,
  topK: 20,
  topP: 0.95,
  minP: 0.05,
  repetitionPenalty: 1.1,
  presencePenalty: 0.5,
  frequencyPenalty: 0.25,
  logitBias: { 3: -100 },
  seed: 11,
}

describe('the sampling fields table', () => {
  it('names every sampling option once, with a distinct wire name', () => {
    expect(Object.keys(samplingFields).sort()).toEqual([...samplingOptionNames].sort())
    const wireNames = Object.values(samplingFields).map((field) => field.wire)
    expect(new Set(wireNames).size).toBe(wireNames.length)
  })

  it('maps every option to the wire and back unchanged', () => {
    const wire = toWireSampling(every)
    expect(wire).toEqual({
      temperature: 0.6,
      top_k: 20,
      top_p: 0.95,
      min_p: 0.05,
      repetition_penalty: 1.1,
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
      logit_bias: { 3: -100 },
      seed: 11,
    })
    // JSON turns logit_bias keys into strings; the decoder turns them back into token ids.
    expect(fromWireSampling(JSON.parse(JSON.stringify(wire)))).toEqual(every)
    expect(toWireSampling({})).toEqual({})
  })

  it('reads null as absent (OpenAI clients send nulls)', () => {
    expect(fromWireSampling({ temperature: null, top_p: 0.5, logit_bias: null })).toEqual({ topP: 0.5 })
  })

  it('the validator accepts every wire name and checks each with its rule', () => {
    const base = { model: 'm', messages: [{ role: 'user', content: 'x' }] }
    expect(() => validateChatCompletionRequest({ ...base, ...toWireSampling(every) })).not.toThrow()
    for (const [option, field] of Object.entries(samplingFields)) {
      if (option === 'logitBias') continue
      expect(() => validateChatCompletionRequest({ ...base, [field.wire]: 'x' }), field.wire).toThrow(
        `${field.wire} must be a finite number`,
      )
    }
  })
})
