// Where does the WebAssembly engine's prefill spend its time? Loads a bench package on the engine
// (one thread), feeds a prompt of N tokens, and charges the calling thread's CPU time
// (process.threadCpuUsage, so other processes on a loaded machine count less than in wall time)
// to each kernel call, keyed by kernel and, for the matrix products, by their shape. What is left
// (the TypeScript between calls) is reported as "outside the kernels". A diagnostic script, not
// part of `npm run bench`:
//   npx node test/bench/profile-engine-prefill.ts [--package qwen3_5-0.8b | --folder DIR] [--dtype q4]
//     [--prompt 512] [--rounds 2] [--cache FOLDER]
// (ONDEVICE_ENGINE_SIMD=plain profiles the plain SIMD128 build, engine.wasm.)
import { folderWeightReader, loadEngineModule } from '../../wasm/engine/node.ts'
import { createEngineSession } from '../../wasm/engine/session.ts'
import { watchKernelCalls } from '../support/engine-kernel-calls.ts'
import { folderTokenizer } from './support/engines.ts'
import { defaultCacheFolder, ensurePackage, type PackageId } from './support/packages.ts'
import { promptOfLength } from './support/prompts.ts'

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`)
  return index < 0 ? undefined : process.argv[index + 1]
}

const packageId = (argument('package') ?? 'qwen3_5-0.8b') as PackageId
const dtype = argument('dtype') ?? 'q4'
const promptLength = Number(argument('prompt') ?? 512)
const rounds = Number(argument('rounds') ?? 2)
const cacheFolder = argument('cache') ?? defaultCacheFolder()

/** Microseconds of CPU time of this thread. */
function cpu(): number {
  const usage = process.threadCpuUsage()
  return usage.user + usage.system
}

interface Entry {
  calls: number
  micros: number
}
const entries = new Map<string, Entry>()
let recording = false

/** The matrix products' arguments that tell layers apart: n (output rows) and blocks (k / 32). */
const shapeOf: Record<string, (args: number[]) => string> = {
  gemm_q4: (a) => `n ${a[3]} k ${a[4]! * 32}`,
  gemm_q8: (a) => `n ${a[2]} k ${a[3]! * 32}`,
  gemm_panel_q4: (a) => `n ${a[3]} k ${a[4]! * 32}`,
  gemm_panel_q8: (a) => `n ${a[2]} k ${a[3]! * 32}`,
  gemm_q4_relaxed: (a) => `n ${a[3]} k ${a[4]! * 32}`,
  gemm_panel_q4_relaxed: (a) => `n ${a[3]} k ${a[4]! * 32}`,
  gemm_q4_relaxed_dot_add: (a) => `n ${a[3]} k ${a[4]! * 32}`,
  gemm_panel_q4_relaxed_dot_add: (a) => `n ${a[3]} k ${a[4]! * 32}`,
  gemm_f32: (a) => `n ${a[1]} k ${a[2]}`,
}

// Every kernel call of every instance the engine creates is timed.
watchKernelCalls((name, args, call) => {
  if (!recording) return call()
  const started = cpu()
  const result = call()
  const key = shapeOf[name] ? `${name} ${shapeOf[name](args)}` : name
  const entry = entries.get(key) ?? { calls: 0, micros: 0 }
  entry.calls++
  entry.micros += cpu() - started
  entries.set(key, entry)
  return result
})

const folder = argument('folder')
const pkg = folder
  ? { folder, label: folder, bosTokenId: undefined }
  : await ensurePackage(packageId, cacheFolder, console.log, true)
const session = await createEngineSession({
  module: await loadEngineModule(),
  files: folderWeightReader(pkg.folder),
  dtype,
})
// The relaxed builds' 4-bit product forms (ONDEVICE_ENGINE_DOT=pairs|dot-add forces one) and the probe.
if ('build' in session) console.log(`engine build: ${JSON.stringify(session.build)}`)
const prompt = promptOfLength(folderTokenizer(pkg.folder), promptLength, pkg.bosTokenId)
await session.append(prompt.slice(0, 8))
let total = 0
let wall = 0
for (let round = 0; round < rounds; round++) {
  await session.reset()
  recording = true
  const started = cpu()
  const wallStarted = performance.now()
  await session.append(prompt)
  total += cpu() - started
  wall += performance.now() - wallStarted
  recording = false
}
await session.dispose()

const rows = [...entries.entries()].sort((a, b) => b[1].micros - a[1].micros)
const inKernels = rows.reduce((sum, [, entry]) => sum + entry.micros, 0)
console.log(
  `\n${pkg.label} ${dtype}: ${promptLength}-token prefill, ${rounds} rounds; per prefill: CPU ${(total / rounds / 1000).toFixed(0)} ms, wall ${(wall / rounds).toFixed(0)} ms\n`,
)
console.log('| kernel | calls | CPU ms per prefill | share |')
console.log('| --- | --- | --- | --- |')
for (const [key, entry] of rows)
  console.log(
    `| ${key} | ${entry.calls / rounds} | ${(entry.micros / rounds / 1000).toFixed(1)} | ${((100 * entry.micros) / total).toFixed(1)} % |`,
  )
console.log(
  `| outside the kernels (TypeScript, timers) | | ${((total - inKernels) / rounds / 1000).toFixed(1)} | ${((100 * (total - inKernels)) / total).toFixed(1)} % |`,
)
