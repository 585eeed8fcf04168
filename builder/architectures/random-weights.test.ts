import { describe, expect, it } from 'vitest'
import { fixtureConfig } from '../fixtures/fixture.ts'
import { qwen35FixtureConfig } from './qwen3-5-fixture.ts'
import { randomQwen35Weights, tinyQwen35Config } from './qwen3-5-weights.ts'
import { fixtureTokenizerSize, randomDecoderWeights } from './random-weights.ts'

/** Whether rows [from, to) of a [rows, width] matrix are all zero, and whether row from - 1 is not. */
function rowsFrom(data: Float32Array, width: number, from: number) {
  return {
    paddingZero: data.subarray(from * width).every((value) => value === 0),
    paddingRows: data.length / width - from,
    lastTokenRowZero: data.subarray((from - 1) * width, from * width).every((value) => value === 0),
  }
}

describe("fixture weights past the tokenizer's last id", () => {
  // Random padding rows won greedy decoding now and then: transformers.js emitted ids the
  // tokenizer does not have (the tiny Qwen3.5 fixture, 2 of 10 150-token answers), which ours
  // never draws, so the two parted there.
  it('are zero in the Llama / Qwen3 embedding (151,936 rows, 151,669 tokens)', () => {
    const config = fixtureConfig('qwen3', 'tiny')
    const { embedTokens } = randomDecoderWeights(config, 1)
    expect(rowsFrom(embedTokens.data, config.hiddenSize, fixtureTokenizerSize)).toEqual({
      paddingZero: true,
      paddingRows: 267,
      lastTokenRowZero: false,
    })
  })

  it('are zero in the Qwen3.5 embedding, and a small unit-test vocabulary is left as drawn', () => {
    const config = qwen35FixtureConfig('tiny')
    const embedding = randomQwen35Weights(config, 1).get('model.embed_tokens.weight')!
    expect(rowsFrom(embedding.data, embedding.shape[1] as number, fixtureTokenizerSize)).toEqual({
      paddingZero: true,
      paddingRows: 267,
      lastTokenRowZero: false,
    })
    const small = randomQwen35Weights(tinyQwen35Config(384), 1).get('model.embed_tokens.weight')!
    expect(small.data.every((value) => value !== 0)).toBe(true)
  })
})
