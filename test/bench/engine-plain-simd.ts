// The engine's plain SIMD128 build (engine.wasm: what Safari/iOS WebKit and Firefox without relaxed
// SIMD run) against its relaxed-SIMD build (engine-relaxed.wasm) and onnxruntime-web q8, one
// thread each, on one package folder, in one process through the public loadModel path (as group
// 7 does): all three load, then take turns (order reversed every round) running a decode of
// `--decode` tokens after an 8-token prompt and the first token of a `--prompt`-token prompt
// (TTFT). Prints the medians and the same-run ratios, and checks that the two engine builds give
// the same greedy tokens (their logit bytes are compared by the tests). A diagnostic script, not
// part of `npm run bench`:
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
  readonly decode: number[]
  readonly ttft: number[]
  tokens?: readonly number[]
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

const contenders: Contender[] = [
  {
    label: 'engine q4, plain SIMD128 (engine.wasm)',
    engine: await openEngine('plain'),
    decode: [],
    ttft: [],
  },
  {
    label: 'engine q4, relaxed SIMD (engine-relaxed.wasm)',
    engine: await openEngine('relaxed'),
    decode: [],
    ttft: [],
  },
]
if (!values['no-ort'])
  contenders.push({
    label: 'onnxruntime-web q8',
    engine: await openOursSession({
      folder,
      dtype: 'q8',
      backend: 'ort-wasm',
      ort: await nodeOrt('wasm', 1),
    }),
    decode: [],
    ttft: [],
  })

for (const contender of contenders) await contender.engine.run(shortPrompt, 2)
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? contenders : [...contenders].reverse()
  for (const contender of order) {
    const run = await contender.engine.run(shortPrompt, decodeTokens)
    contender.decode.push(run.decodeTokensPerSecond)
    contender.tokens ??= run.tokens
    contender.ttft.push((await contender.engine.run(longPrompt, 1)).ttftMs)
  }
  console.log(
    `round ${round + 1}/${rounds} (load ${loadavg()[0]!.toFixed(1)}): ${contenders.map((c) => `${c.decode.at(-1)!.toFixed(2)} tok/s, ${c.ttft.at(-1)!.toFixed(0)} ms`).join(' | ')}`,
  )
}

const [plain, relaxed] = contenders as [Contender, Contender]
const sameTokens = JSON.stringify(plain.tokens) === JSON.stringify(relaxed.tokens)
console.log(`\ngreedy tokens, plain = relaxed: ${sameTokens}`)
console.log(
  `| engine | decode tok/s | plain build's speed ÷ this | TTFT ${values.prompt} tokens | plain build's speed ÷ this |`,
)
console.log('| --- | --- | --- | --- | --- |')
for (const contender of contenders) {
  const decode = median(contender.decode)
  const ttft = median(contender.ttft)
  console.log(
    `| ${contender.label} | ${decode.toFixed(2)} | ${(median(plain.decode) / decode).toFixed(2)}× | ${ttft.toFixed(0)} ms | ${(ttft / median(plain.ttft)).toFixed(2)}× |`,
  )
}
for (const contender of contenders) await contender.engine.dispose()
if (!sameTokens) process.exitCode = 1
