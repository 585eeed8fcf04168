// A plain TypeScript forward pass of the Llama / Qwen3 decoder, written straight from the
// Hugging Face modeling code (no ONNX, no shared graph code), in float64 arithmetic. The ONNX
// graphs are tested against it; it is deliberately simple rather than fast.

import type { DecoderWeights, Matrix } from '../architectures/weights.ts'

function linear(m: Matrix, x: Float64Array): Float64Array {
  const out = new Float64Array(m.rows)
  for (let r = 0; r < m.rows; r++) {
    let sum = 0
    const base = r * m.cols
    for (let c = 0; c < m.cols; c++) sum += m.data[base + c]! * x[c]!
    out[r] = sum
  }
  return out
}

function rmsNorm(x: Float64Array, weight: Float32Array, eps: number, offset = 0, length = x.length): void {
  let sum = 0
  for (let i = 0; i < length; i++) sum += x[offset + i]! ** 2
  const scale = 1 / Math.sqrt(sum / length + eps)
  for (let i = 0; i < length; i++) x[offset + i] = x[offset + i]! * scale * weight[i]!
}

/** RoPE inverse frequencies, including Llama 3 scaling (transformers' _compute_llama3_parameters). */
function inverseFrequencies(weights: DecoderWeights): Float64Array {
  const c = weights.config
  const dim = c.headDim
  const out = new Float64Array(dim / 2)
  for (let i = 0; i < dim / 2; i++) {
    // float32 as in torch: base ** (arange(0, dim, 2).float() / dim)
    let f = Math.fround(1 / Math.fround(c.ropeTheta ** Math.fround((2 * i) / dim)))
    const s = c.ropeScaling
    if (s) {
      const lowWavelength = s.originalMaxPositionEmbeddings / s.lowFreqFactor
      const highWavelength = s.originalMaxPositionEmbeddings / s.highFreqFactor
      const wavelength = (2 * Math.PI) / f
      if (wavelength > lowWavelength) f = f / s.factor
      else if (wavelength >= highWavelength) {
        const smooth =
          (s.originalMaxPositionEmbeddings / wavelength - s.lowFreqFactor) /
          (s.highFreqFactor - s.lowFreqFactor)
        f = (1 - smooth) * (f / s.factor) + smooth * f
      }
      f = Math.fround(f)
    }
    out[i] = f
  }
  return out
}

/** rotate_half RoPE on one head vector in place: x·cos + rotate_half(x)·sin. */
function applyRope(
  x: Float64Array,
  offset: number,
  dim: number,
  position: number,
  inverse: Float64Array,
): void {
  const half = dim / 2
  for (let i = 0; i < half; i++) {
    const angle = Math.fround(position * inverse[i]!)
    const cos = Math.cos(angle)
    const sin = Math.sin(angle)
    const a = x[offset + i]!
    const b = x[offset + i + half]!
    x[offset + i] = a * cos - b * sin
    x[offset + i + half] = b * cos + a * sin
  }
}

export class ReferenceModel {
  readonly weights: DecoderWeights
  readonly #inverse: Float64Array
  /** Per layer: cached keys and values, one Float64Array (kv_heads × head_dim) per position. */
  #keys: Float64Array[][] = []
  #values: Float64Array[][] = []

  constructor(weights: DecoderWeights) {
    this.weights = weights
    this.#inverse = inverseFrequencies(weights)
    this.reset()
  }

  get length(): number {
    return this.#keys[0]?.length ?? 0
  }

  reset(): void {
    this.#keys = this.weights.layers.map(() => [])
    this.#values = this.weights.layers.map(() => [])
  }

  /** Appends tokens to the cache; returns the logits (vocab) for each of them. */
  forward(tokenIds: readonly number[]): Float32Array[] {
    return tokenIds.map((id) => this.#step(id))
  }

  #step(tokenId: number): Float32Array {
    const w = this.weights
    const c = w.config
    const position = this.length
    const hidden = c.hiddenSize
    const headDim = c.headDim
    const groups = c.numAttentionHeads / c.numKeyValueHeads
    if (tokenId < 0 || tokenId >= c.vocabSize)
      throw new RangeError(`token id ${tokenId} outside the vocabulary`)
    const x = new Float64Array(hidden)
    for (let i = 0; i < hidden; i++) x[i] = w.embedTokens.data[tokenId * hidden + i]!

    w.layers.forEach((layer, l) => {
      const h = Float64Array.from(x)
      rmsNorm(h, layer.inputLayernorm, c.rmsNormEps)
      const q = linear(layer.qProj, h)
      const k = linear(layer.kProj, h)
      const v = linear(layer.vProj, h)
      for (let head = 0; head < c.numAttentionHeads; head++) {
        if (layer.qNorm) rmsNorm(q, layer.qNorm, c.rmsNormEps, head * headDim, headDim)
        applyRope(q, head * headDim, headDim, position, this.#inverse)
      }
      for (let head = 0; head < c.numKeyValueHeads; head++) {
        if (layer.kNorm) rmsNorm(k, layer.kNorm, c.rmsNormEps, head * headDim, headDim)
        applyRope(k, head * headDim, headDim, position, this.#inverse)
      }
      this.#keys[l]!.push(k)
      this.#values[l]!.push(v)
      const keys = this.#keys[l]!
      const values = this.#values[l]!
      const attention = new Float64Array(c.numAttentionHeads * headDim)
      const scale = 1 / Math.sqrt(headDim)
      for (let head = 0; head < c.numAttentionHeads; head++) {
        const kvHead = Math.floor(head / groups)
        const scores = new Float64Array(keys.length)
        let max = Number.NEGATIVE_INFINITY
        for (let t = 0; t < keys.length; t++) {
          let dot = 0
          for (let d = 0; d < headDim; d++) dot += q[head * headDim + d]! * keys[t]![kvHead * headDim + d]!
          scores[t] = dot * scale
          if (scores[t]! > max) max = scores[t]!
        }
        let total = 0
        for (let t = 0; t < keys.length; t++) {
          scores[t] = Math.exp(scores[t]! - max)
          total += scores[t]!
        }
        for (let t = 0; t < keys.length; t++) {
          const p = scores[t]! / total
          for (let d = 0; d < headDim; d++)
            attention[head * headDim + d] += p * values[t]![kvHead * headDim + d]!
        }
      }
      const attentionOut = linear(layer.oProj, attention)
      for (let i = 0; i < hidden; i++) x[i] += attentionOut[i]!

      const m = Float64Array.from(x)
      rmsNorm(m, layer.postAttentionLayernorm, c.rmsNormEps)
      const gate = linear(layer.gateProj, m)
      const up = linear(layer.upProj, m)
      for (let i = 0; i < gate.length; i++) gate[i] = (gate[i]! / (1 + Math.exp(-gate[i]!))) * up[i]!
      const down = linear(layer.downProj, gate)
      for (let i = 0; i < hidden; i++) x[i] += down[i]!
    })

    rmsNorm(x, w.norm, c.rmsNormEps)
    const logits = linear(w.lmHead ?? w.embedTokens, x)
    return Float32Array.from(logits)
  }
}
