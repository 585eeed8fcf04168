// The engine of another checkout (before a kernel change) against this one (after), on one package
// in one process: both sessions load, then take turns (one decode step each per round, the order
// swapped every round), so the load of other processes falls on both alike and only the ratio is
// read. Also checks that the two give the same logit bytes for the prompt and every step, which a
// change that claims to keep the bits must. A diagnostic script, not part of `npm run bench`:
//
//   git worktree add /tmp/engine-before <commit>    (or git archive <commit> | tar -x -C DIR, then
//                                                   link node_modules into it)
//   npx node --conditions=ondevice-source test/bench/engine-before-after.ts --before /tmp/engine-before \
//     [--package qwen3_5-0.8b | --folder DIR] [--dtype q8] [--steps 24] [--prompt 8] [--threads N]
//     [--prefills N] [--in-worker]
// --prefills N runs the prompt N times on each side, alternating (the first's logits are checked),
// and prints the medians of wall and this thread's CPU time (process.threadCpuUsage: the load of
// other processes counts less there). ONDEVICE_ENGINE_SIMD=plain makes both sides run engine.wasm.
// --in-worker runs it all in a worker_thread, where the engine's prefill passes take 128 tokens
// (wasm/engine/models/pass-size.ts) as in a browser's Web Worker.
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { isMainThread, Worker } from 'node:worker_threads'
import {
  defaultCacheFolder,
  ensurePackage,
  type PackageId,
  packageIds,
  repositoryRoot,
} from './support/packages.ts'
import { median } from './support/stats.ts'

const { values } = parseArgs({
  options: {
    before: { type: 'string' },
    package: { type: 'string', default: 'qwen3_5-0.8b' },
    folder: { type: 'string' },
    dtype: { type: 'string', default: 'q8' },
    steps: { type: 'string', default: '24' },
    prompt: { type: 'string', default: '8' },
    threads: { type: 'string', default: '1' },
    prefills: { type: 'string', default: '1' },
    'keep-packages': { type: 'boolean', default: false },
    'in-worker': { type: 'boolean', default: false },
  },
})
if (values['in-worker'] && isMainThread) {
  const worker = new Worker(new URL(import.meta.url), {
    argv: process.argv.slice(2),
    execArgv: process.execArgv,
  })
  worker.on('error', (error) => {
    console.error(error)
    process.exitCode = 1
  })
  worker.on('exit', (code) => {
    process.exitCode ||= code
  })
  await new Promise((resolve) => worker.once('exit', resolve))
  process.exit()
}
const before = values.before && resolve(values.before)
if (!before || !existsSync(join(before, 'wasm/engine/session.ts'))) {
  console.error(
    '--before DIR: a checkout of the commit to compare against (with node_modules), holding wasm/engine/.',
  )
  process.exit(2)
}
const positive = (text: string, name: string): number => {
  const value = Number(text)
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a positive integer, got ${text}.`)
    process.exit(2)
  }
  return value
}
const steps = positive(values.steps, 'steps')
const promptLength = positive(values.prompt, 'prompt')
const threads = positive(values.threads, 'threads')
const prefills = positive(values.prefills, 'prefills')
if (!values.folder && !(packageIds as readonly string[]).includes(values.package)) {
  console.error(`--package ${values.package}: packages are ${packageIds.join(', ')}.`)
  process.exit(2)
}
const folder =
  values.folder ??
  (
    await ensurePackage(
      values.package as PackageId,
      defaultCacheFolder(),
      console.log,
      values['keep-packages'],
    )
  ).folder

interface Side {
  readonly name: 'before' | 'after'
  readonly session: {
    append(tokens: readonly number[]): Promise<Float32Array>
    reset(): Promise<void>
    dispose(): Promise<void>
  }
  readonly loadMs: number
  readonly digest: ReturnType<typeof createHash>
  readonly stepMs: number[]
  readonly stepCpuMs: number[]
  readonly prefillMs: number[]
  readonly prefillCpuMs: number[]
}

/** Milliseconds of CPU time of this thread. */
function cpu(): number {
  const usage = process.threadCpuUsage()
  return (usage.user + usage.system) / 1000
}

async function open(name: Side['name'], root: string): Promise<Side> {
  const node = await import(pathToFileURL(join(root, 'wasm/engine/node.ts')).href)
  const { createEngineSession } = await import(pathToFileURL(join(root, 'wasm/engine/session.ts')).href)
  const started = performance.now()
  const session = await createEngineSession({
    module: await node.loadEngineModule(),
    files: node.folderWeightReader(folder),
    dtype: values.dtype,
    contextLength: promptLength + steps + 8,
    threads: await node.nodeEngineThreads(threads),
  })
  return {
    name,
    session,
    loadMs: performance.now() - started,
    digest: createHash('sha256'),
    stepMs: [],
    stepCpuMs: [],
    prefillMs: [],
    prefillCpuMs: [],
  }
}

console.log(`load average at the start: ${loadavg()[0]!.toFixed(1)}`)
const sides = [await open('before', before), await open('after', repositoryRoot)]
const prompt = Array.from({ length: promptLength }, (_, i) => (i * 7919 + 11) % 150_000)
const record = (side: Side, logits: Float32Array) =>
  side.digest.update(new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength))
for (let round = 0; round < prefills; round++)
  for (const side of round % 2 ? [...sides].reverse() : sides) {
    await side.session.reset()
    const started = performance.now()
    const startedCpu = cpu()
    const logits = await side.session.append(prompt)
    side.prefillCpuMs.push(cpu() - startedCpu)
    side.prefillMs.push(performance.now() - started)
    if (round === 0) record(side, logits)
  }
let next = 17
for (let step = 0; step < steps; step++) {
  for (const side of step % 2 ? [...sides].reverse() : sides) {
    const started = performance.now()
    const startedCpu = cpu()
    const logits = await side.session.append([next])
    side.stepCpuMs.push(cpu() - startedCpu)
    side.stepMs.push(performance.now() - started)
    record(side, logits)
  }
  next = (next * 31 + 7) % 150_000
}
const [first, second] = sides as [Side, Side]
const same = first.digest.digest('hex') === second.digest.digest('hex')
const rate = (side: Side) => 1000 / median(side.stepMs)
console.log(
  `${folder} ${values.dtype}, ${threads} thread(s), ${promptLength}-token prompt, ${steps} decode steps alternating`,
)
console.log(`logit bytes (prompt and every step): ${same ? 'identical' : 'DIFFERENT'}`)
for (const side of sides)
  console.log(
    `${side.name}: decode ${rate(side).toFixed(2)} tok/s (median step ${median(side.stepMs).toFixed(1)} ms, CPU ${median(side.stepCpuMs).toFixed(1)} ms), prefill ${median(side.prefillMs).toFixed(0)} ms (${side.prefillMs.map((ms) => ms.toFixed(0)).join(', ')}; CPU ${median(side.prefillCpuMs).toFixed(0)} ms: ${side.prefillCpuMs.map((ms) => ms.toFixed(0)).join(', ')}), load ${(side.loadMs / 1000).toFixed(1)} s`,
  )
console.log(
  `after / before: decode ${(rate(second) / rate(first)).toFixed(2)}x (CPU ${(median(first.stepCpuMs) / median(second.stepCpuMs)).toFixed(2)}x), prefill ${(median(first.prefillMs) / median(second.prefillMs)).toFixed(2)}x faster (CPU ${(median(first.prefillCpuMs) / median(second.prefillCpuMs)).toFixed(2)}x)`,
)
console.log(`load average at the end: ${loadavg()[0]!.toFixed(1)}`)
for (const side of sides) await side.session.dispose()
if (!same) process.exit(1)
