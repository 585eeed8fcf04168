// Seeded random decoder weights: deterministic for a (config, seed) pair on every machine, and
// scaled so activations stay O(1) through any depth (linear weights with variance 1/in, norm weights
// near 1) and logits spread a few units (so greedy decoding has clear winners).

import type { ModelConfig } from '../../core/model-package.ts'
import { type DecoderLayerWeights, type DecoderWeights, type Matrix, matrix } from './weights.ts'

/** Mulberry32: a fast, seedable generator in int32 arithmetic, identical on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed | 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Uniform values with the given mean and standard deviation. Uniform rather than Gaussian: the
 * distribution does not matter for a fixture, and this is ~10x faster on 100M+ parameter shapes.
 */
function uniformFill(out: Float32Array, random: () => number, std: number, mean = 0): Float32Array {
  const width = 2 * Math.sqrt(3) * std
  const low = mean - width / 2
  for (let i = 0; i < out.length; i++) out[i] = low + width * random()
  return out
}

/** How many ids the Qwen3 tokenizer has (0..151,668), the tokenizer every fixture ships. */
export const fixtureTokenizerSize = 151_669

/**
 * Zeroes the rows of a [vocabulary, hidden] embedding or LM head past the fixtures' tokenizer
 * (Qwen3 pads its vocabulary to 151,936, the Qwen3.5-0.8B shape has 248,320 rows). A trained model
 * never learns to produce those padding ids; random rows made them win greedy decoding now and
 * then (2 of 10 150-token answers of the tiny Qwen3.5 fixture in transformers.js), an id an
 * independent engine then emits while ours never draws one its tokenizer cannot show. A zero
 * row's logit is exactly 0 in every dtype the builder writes (a zero block quantizes to zero),
 * below the best of 151,669 random logits. A vocabulary no larger than the tokenizer's (unit
 * tests' small ones) is left as drawn. The random draws are the same either way, so every other
 * weight of a seed is unchanged.
 */
export function zeroPaddingRows(data: Float32Array, width: number): void {
  if (data.length > fixtureTokenizerSize * width) data.fill(0, fixtureTokenizerSize * width)
}

export function randomDecoderWeights(config: ModelConfig, seed = 1): DecoderWeights {
  const random = seededRandom(seed)
  const linear = (rows: number, cols: number): Matrix =>
    matrix(rows, cols, uniformFill(new Float32Array(rows * cols), random, 1 / Math.sqrt(cols)))
  const norm = (length: number) => uniformFill(new Float32Array(length), random, 0.1, 1)
  const h = config.hiddenSize
  const q = config.numAttentionHeads * config.headDim
  const kv = config.numKeyValueHeads * config.headDim
  const embedTokens = matrix(
    config.vocabSize,
    h,
    uniformFill(new Float32Array(config.vocabSize * h), random, 2.5 / Math.sqrt(h)),
  )
  const layers: DecoderLayerWeights[] = []
  for (let i = 0; i < config.numHiddenLayers; i++) {
    layers.push({
      inputLayernorm: norm(h),
      qProj: linear(q, h),
      kProj: linear(kv, h),
      vProj: linear(kv, h),
      oProj: linear(h, q),
      ...(config.modelType === 'qwen3' ? { qNorm: norm(config.headDim), kNorm: norm(config.headDim) } : {}),
      postAttentionLayernorm: norm(h),
      gateProj: linear(config.intermediateSize, h),
      upProj: linear(config.intermediateSize, h),
      downProj: linear(h, config.intermediateSize),
    })
  }
  const normWeights = norm(h)
  const lmHead = config.tieWordEmbeddings
    ? undefined
    : matrix(
        config.vocabSize,
        h,
        uniformFill(new Float32Array(config.vocabSize * h), random, 2.5 / Math.sqrt(h)),
      )
  zeroPaddingRows(embedTokens.data, h)
  if (lmHead) zeroPaddingRows(lmHead.data, h)
  return { config, embedTokens, layers, norm: normWeights, ...(lmHead ? { lmHead } : {}) }
}
