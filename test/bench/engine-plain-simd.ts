// The engine's plain SIMD128 build (engine.wasm: what Safari/iOS WebKit and Firefox without relaxed
// SIMD run) against its relaxed-SIMD build (engine-relaxed.wasm) and onnxruntime-web q8, one
// thread each, on one package folder, in one process through the public loadModel path (as group
// 7 does): all three load, then take turns (order reversed every round) running a decode of
// `--decode` tokens after an 8-token prompt and the first token of a `--prompt`-token prompt
// (TTFT). Prints the medians and the same-run ratios, and checks that the two engine builds give
// the same greedy tokens (their logit bytes are compared by the tests). Beside wall time it takes
// this thread's CPU time (process.threadCpuUsage; onnxruntime-web on one thread runs on the calling
// thread too): decode as the CPU of a run of `--decode` tokens less that of a one-token run, TTFT
// as the CPU of the long prompt's run, so the load of other processes on a shared machine counts
// less. A diagnostic script, not part of `npm run bench`:
//
//   npx ondevice fixture --arch qwen3_5 --size 0.8b --dtype q4,q8 --out /tmp/q35-08b
//   npx node test/bench/engine-plain-simd.ts --folder /tmp/q35-08b [--rounds 3] [--decode 24] [--prompt 512]
//     [--no-ort]
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { EngineSession } from '../../wasm/engine/session.ts'
import { type BenchEngine, folderTokenizer, nodeOrt, openOurs, openOursSession } from './support/engines.ts'
import { promptOfLength } from './support/prompts.ts'
import { median } from './support/stats.ts'

const { values } = parseArgs({
  options: {
    folder: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    decode: { type: 'string', default: '24' },
    prompt: { type: 'string', default: '512' },
    'no-ort': { type: 'boolean', default: false },
  },
})
if (!values.folder) throw new Error('--folder DIR (a Qwen3.5 package with q4 and q8) is required')
const folder = values.folder
const rounds = Number(values.rounds)
const decodeTokens = Number(values.decode)
const cacheFolder = join(tmpdir(), 'ondevice-engine-plain-simd')

const tokenizer = folderTokenizer(folder)
const shortPrompt = promptOfLength(tokenizer, 8, undefined)
const longPrompt = promptOfLength(tokenizer, Number(values.prompt), undefined)

interface Contender {
  readonly label: string
  readonly engine: BenchEngine
  /** tok/s from wall time, tok/s from CPU time, TTFT wall ms, TTFT CPU ms: one per round. */
  readonly figures: { decode: number[]; decodeCpu: number[]; ttft: number[]; ttftCpu: number[] }
  tokens?: readonly number[]
}

/** Milliseconds of CPU time of this thread. */
function cpu(): number {
  const usage = process.threadCpuUsage()
  return (usage.user + usage.system) / 1000
}

/** The engine with ONDEVICE_ENGINE_SIMD set to `simd` while it loads (the module is picked then). */
async function openEngine(simd: 'plain' | 'relaxed') {
  process.env.ONDEVICE_ENGINE_SIMD = simd
  try {
    const engine = await openOurs({ folder, dtype: 'q4', backend: 'wasm', cacheFolder, numThreads: 1 })
    const build = (engine.session as unknown as EngineSession).build
    if (build.simd !== simd) throw new Error(`asked for the ${simd} build, ${build.simd} runs`)
    return engine
  } finally {
    delete process.env.ONDEVICE_ENGINE_SIMD
  }
}

const contender = (label: string, engine: BenchEngine): Contender => ({
  label,
  engine,
  figures: { decode: [], decodeCpu: [], ttft: [], ttftCpu: [] },
})
const contenders: Contender[] = [
  contender('engine q4, plain SIMD128 (engine.wasm)', await openEngine('plain')),
  contender('engine q4, relaxed SIMD (engine-relaxed.wasm)', await openEngine('relaxed')),
]
if (!values['no-ort'])
  contenders.push(
    contender(
      'onnxruntime-web q8',
      await openOursSession({ folder, dtype: 'q8', backend: 'ort-wasm', ort: await nodeOrt('wasm', 1) }),
    ),
  )

for (const { engine } of contenders) await engine.run(shortPrompt, 2)
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? contenders : [...contenders].reverse()
  for (const entry of order) {
    const { engine, figures } = entry
    let started = cpu()
    await engine.run(shortPrompt, 1)
    const oneToken = cpu() - started
    started = cpu()
    const run = await engine.run(shortPrompt, decodeTokens)
    figures.decodeCpu.push((decodeTokens - 1) / ((cpu() - started - oneToken) / 1000))
    figures.decode.push(run.decodeTokensPerSecond)
    entry.tokens ??= run.tokens
    started = cpu()
    figures.ttft.push((await engine.run(longPrompt, 1)).ttftMs)
    figures.ttftCpu.push(cpu() - started)
  }
  const last = (values: number[], digits: number) => values.at(-1)!.toFixed(digits)
  console.log(
    `round ${round + 1}/${rounds} (load ${loadavg()[0]!.toFixed(1)}): ${contenders
      .map(
        ({ figures: f }) =>
          `${last(f.decode, 2)} tok/s (CPU ${last(f.decodeCpu, 2)}), ${last(f.ttft, 0)} ms (CPU ${last(f.ttftCpu, 0)})`,
      )
      .join(' | ')}`,
  )
}

const [plain, relaxed] = contenders as [Contender, Contender]
const sameTokens = JSON.stringify(plain.tokens) === JSON.stringify(relaxed.tokens)
console.log(`\ngreedy tokens, plain = relaxed: ${sameTokens}`)
console.log(
  `| engine | decode tok/s, wall | plain's speed ÷ this | decode tok/s, CPU | plain ÷ this | TTFT ${values.prompt} tokens, wall | plain ÷ this | TTFT, CPU | plain ÷ this |`,
)
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
const p = plain.figures
for (const { label, figures: f } of contenders) {
  const cells = [
    `${median(f.decode).toFixed(2)}`,
    `${(median(p.decode) / median(f.decode)).toFixed(2)}×`,
    `${median(f.decodeCpu).toFixed(2)}`,
    `${(median(p.decodeCpu) / median(f.decodeCpu)).toFixed(2)}×`,
    `${median(f.ttft).toFixed(0)} ms`,
    `${(median(f.ttft) / median(p.ttft)).toFixed(2)}×`,
    `${median(f.ttftCpu).toFixed(0)} ms`,
    `${(median(f.ttftCpu) / median(p.ttftCpu)).toFixed(2)}×`,
  ]
  console.log(`| ${label} | ${cells.join(' | ')} |`)
}
for (const { engine } of contenders) await engine.dispose()
if (!sameTokens) process.exitCode = 1
