// Prefill benchmark for Qwen3.5: a 512-token prompt in ONE decoder run (fused CausalConvWithState
// + LinearAttention, chunked inside the op) against the same prompt fed token by token (512 runs,
// what a per-position export costs), on the same package. Also q4 vs fp32 top-1 agreement.
//
//   npx node test/bench/qwen3-5-prefill.bench.ts [--size 0.8b|tiny] [--tokens 512] [--backend node|wasm]
//     [--dtype q4|q8|fp32] [--step-tokens N] [--threads N] [--agreement | --agreement-only] [--dir <cache folder>]
//
// The 0.8B-shaped package (random weights, q4) is built on first use into the cache folder
// (default: $TMPDIR/ondevice-bench/qwen3_5-<size>-seed1) and reused afterwards.

import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import * as ortNode from 'onnxruntime-node'
import { writeQwen35Fixture } from '../../builder/architectures/qwen3-5-fixture.ts'
import { seededRandom } from '../../builder/architectures/qwen3-5-weights.ts'
import { loadOrtWebForNode } from '../../wasm/node.ts'
import { Qwen35OrtRunner } from './qwen3-5-harness.ts'

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '0.8b' },
    tokens: { type: 'string', default: '512' },
    backend: { type: 'string', default: 'node' },
    'step-tokens': { type: 'string' },
    threads: { type: 'string' },
    agreement: { type: 'boolean', default: false },
    'agreement-only': { type: 'boolean', default: false },
    dir: { type: 'string' },
    dtype: { type: 'string', default: 'q4' },
  },
})
const size = values.size === 'tiny' ? 'tiny' : '0.8b'
const tokenCount = Number(values.tokens)
const stepTokens = Number(values['step-tokens'] ?? tokenCount)
const threads = values.threads ? Number(values.threads) : undefined
const folder = values.dir ?? join(tmpdir(), 'ondevice-bench', `qwen3_5-${size}-seed1`)
const suffixes = { fp32: '', q4: '_q4', q8: '_quantized' } as const
const dtype = values.dtype === 'fp32' || values.dtype === 'q8' ? values.dtype : 'q4'
const suffix = suffixes[dtype]
const dtypes: (keyof typeof suffixes)[] =
  values.agreement || values['agreement-only'] ? ['q4', 'fp32'] : [dtype]

if (
  !dtypes.every((dtype) => existsSync(join(folder, 'onnx', `decoder_model_merged${suffixes[dtype]}.onnx`)))
) {
  const started = performance.now()
  console.log(`building the ${size} package (${dtypes.join(' + ')}) in ${folder} ...`)
  await writeQwen35Fixture({ outDir: folder, size, seed: 1, dtypes: [...dtypes] })
  console.log(`built in ${((performance.now() - started) / 1000).toFixed(1)} s`)
}

const ort =
  values.backend === 'wasm'
    ? ((await loadOrtWebForNode(threads ? { numThreads: threads } : {})).ort as unknown as typeof ortNode)
    : ortNode
const sessionOptions = values.backend === 'wasm' || !threads ? {} : { intraOpNumThreads: threads }
const random = seededRandom(5)
const prompt = Array.from({ length: tokenCount }, () => Math.floor(random() * 150_000))

if (!values['agreement-only']) {
  const runner = await Qwen35OrtRunner.open(ort, folder, suffix, sessionOptions)
  console.log(
    `backend ${values.backend}${threads ? `, ${threads} thread(s)` : ''}; package ${folder} (${dtype})`,
  )

  // Warm-up: one short run so session start-up costs stay out of the figures.
  await runner.run(prompt.slice(0, 8), 1)

  runner.reset()
  let started = performance.now()
  const whole = await runner.run(prompt, 1)
  const wholeSeconds = (performance.now() - started) / 1000
  console.log(
    `one-run prefill: ${tokenCount} tokens in ${wholeSeconds.toFixed(2)} s = ${(tokenCount / wholeSeconds).toFixed(1)} tokens/s`,
  )

  runner.reset()
  started = performance.now()
  let last: Float32Array = new Float32Array(0)
  for (const token of prompt.slice(0, stepTokens)) last = (await runner.run([token], 1)).logits
  const stepSeconds = (performance.now() - started) / 1000
  console.log(
    `token-by-token prefill: ${stepTokens} tokens in ${stepSeconds.toFixed(2)} s = ${(stepTokens / stepSeconds).toFixed(1)} tokens/s` +
      (stepTokens === tokenCount
        ? ''
        : ` (extrapolated to ${tokenCount}: ${((stepSeconds * tokenCount) / stepTokens).toFixed(1)} s)`),
  )
  console.log(
    `speed-up of one-run prefill: ${((stepSeconds * tokenCount) / stepTokens / wholeSeconds).toFixed(1)}x`,
  )
  if (stepTokens === tokenCount) {
    let max = 0
    for (let j = 0; j < last.length; j++)
      max = Math.max(max, Math.abs((last[j] as number) - (whole.logits[j] as number)))
    console.log(`last-position logits, one run vs token by token: max |diff| = ${max.toExponential(2)}`)
  }
  await runner.release()
}

if (values.agreement || values['agreement-only']) {
  // q4 vs fp32 next-token agreement over every position of the prompt (random weights: see report).
  const positions = Math.min(tokenCount, 128)
  const q4 = await Qwen35OrtRunner.open(ort, folder, '_q4', sessionOptions)
  const a = await q4.run(prompt.slice(0, positions))
  await q4.release()
  const fp32 = await Qwen35OrtRunner.open(ort, folder, '', sessionOptions)
  const b = await fp32.run(prompt.slice(0, positions))
  await fp32.release()
  const vocabulary = a.vocabularySize
  let agree = 0
  let top5 = 0
  for (let t = 0; t < positions; t++) {
    const rowA = a.logits.subarray(t * vocabulary, (t + 1) * vocabulary)
    const rowB = b.logits.subarray(t * vocabulary, (t + 1) * vocabulary)
    const order = (row: Float32Array) =>
      Array.from(row.keys())
        .sort((x, y) => (row[y] as number) - (row[x] as number))
        .slice(0, 5)
    const topA = order(rowA)
    const topB = order(rowB)
    if (topA[0] === topB[0]) agree++
    if (topB.includes(topA[0] as number)) top5++
  }
  console.log(
    `q4 vs fp32 top-1 agreement: ${agree}/${positions} (${((100 * agree) / positions).toFixed(1)} %); q4 top-1 within fp32 top-5: ${top5}/${positions}`,
  )
}
