// One-off check: the 0.8B-shaped fp32 package (built by qwen3-5-prefill.bench.ts) against the
// reference on a few tokens, and q4 vs fp32 logit correlation.
import * as ort from 'onnxruntime-node'
import { qwen35FixtureConfig } from '../../builder/architectures/qwen3-5-fixture.ts'
import { createQwen35State, qwen35Forward } from '../../builder/architectures/qwen3-5-reference.ts'
import { randomQwen35Weights } from '../../builder/architectures/qwen3-5-weights.ts'
import { Qwen35OrtRunner } from './qwen3-5-harness.ts'

const folder = process.argv[2] ?? '/tmp/ondevice-bench/qwen3_5-0.8b-seed1'
const tokens = [9707, 11, 1879, 0, 151645]
const config = qwen35FixtureConfig('0.8b')
const weights = randomQwen35Weights(config, 1)
const started = performance.now()
const expected = qwen35Forward({ config, weights }, tokens, createQwen35State(config), {
  logits: 'last',
})[0] as Float32Array
console.log(`reference: ${((performance.now() - started) / 1000).toFixed(1)} s`)
const fp32 = await Qwen35OrtRunner.open(ort, folder, '')
const a = await fp32.run(tokens, 1)
await fp32.release()
const q4 = await Qwen35OrtRunner.open(ort, folder, '_q4')
const b = await q4.run(tokens, 1)
await q4.release()
let max = 0
let scale = 0
for (let i = 0; i < expected.length; i++) {
  max = Math.max(max, Math.abs((expected[i] as number) - (a.logits[i] as number)))
  scale = Math.max(scale, Math.abs(expected[i] as number))
}
const correlation = (x: Float32Array, y: Float32Array) => {
  let mx = 0,
    my = 0
  for (let i = 0; i < x.length; i++) {
    mx += x[i] as number
    my += y[i] as number
  }
  mx /= x.length
  my /= y.length
  let sxy = 0,
    sxx = 0,
    syy = 0
  for (let i = 0; i < x.length; i++) {
    const dx = (x[i] as number) - mx,
      dy = (y[i] as number) - my
    sxy += dx * dy
    sxx += dx * dx
    syy += dy * dy
  }
  return sxy / Math.sqrt(sxx * syy)
}
console.log(
  `0.8B fp32 graph vs reference (last of ${tokens.length} tokens): max |diff| ${max.toExponential(2)} (max |logit| ${scale.toFixed(2)})`,
)
console.log(
  `q4 vs fp32 logit correlation ${correlation(a.logits, b.logits).toFixed(4)}; fp32 vs reference correlation ${correlation(a.logits, expected).toFixed(6)}`,
)
