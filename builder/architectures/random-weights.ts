// Seeded random decoder weights: deterministic for a (config, seed) pair on every machine, and
// scaled so activations stay O(1) through any depth (linear weights ~ N(0, 1/in), norm weights
// near 1) and logits spread a few units (so greedy decoding has clear winners).

import type { ModelConfig } from '../../core/model-package.ts'
import { type DecoderLayerWeights, type DecoderWeights, type Matrix, matrix } from './weights.ts'

/** SplitMix32-style generator: fast, seedable, identical everywhere. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x9e3779b9) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    z = (z ^ (z >>> 16)) >>> 0
    return (z + 0.5) / 4294967296
  }
}

function gaussianFill(out: Float32Array, random: () => number, std: number, mean = 0): Float32Array {
  for (let i = 0; i < out.length; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(random())) * std
    const theta = 2 * Math.PI * random()
    out[i] = mean + radius * Math.cos(theta)
    if (i + 1 < out.length) out[i + 1] = mean + radius * Math.sin(theta)
  }
  return out
}

export function randomDecoderWeights(config: ModelConfig, seed = 1): DecoderWeights {
  const random = seededRandom(seed)
  const linear = (rows: number, cols: number): Matrix =>
    matrix(rows, cols, gaussianFill(new Float32Array(rows * cols), random, 1 / Math.sqrt(cols)))
  const norm = (length: number) => gaussianFill(new Float32Array(length), random, 0.1, 1)
  const h = config.hiddenSize
  const q = config.numAttentionHeads * config.headDim
  const kv = config.numKeyValueHeads * config.headDim
  const embedTokens = matrix(
    config.vocabSize,
    h,
    gaussianFill(new Float32Array(config.vocabSize * h), random, 2.5 / Math.sqrt(h)),
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
        gaussianFill(new Float32Array(config.vocabSize * h), random, 2.5 / Math.sqrt(h)),
      )
  return { config, embedTokens, layers, norm: normWeights, ...(lmHead ? { lmHead } : {}) }
}
