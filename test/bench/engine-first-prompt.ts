// How fast is a user's FIRST prompt on the WebAssembly engine, against the same prompt once the
// host has optimized every kernel? V8 (Node, Chromium, workerd) starts WebAssembly functions in its
// baseline tier and recompiles a function optimized only after it has run a while, and a call
// already running keeps the code it started with. Each row is a fresh host (a new Chromium browser
// context and page, or a new Node process): load the Qwen3.5-0.8B-shape q4 package, then run the
// same prompt (512 tokens unless `--prompt`) `--prompts` times straight away, nothing before it. "first / last" is the
// first prompt's time over the last one's; 1.00× means the first prompt already runs at full speed.
// CPU: the calling thread's CPU time per prompt (Node's threadCpuUsage, the page's main-thread
// ThreadTime from DevTools), which other processes on a shared machine disturb far less than wall time.
// Process CPU: the whole process's (Node's cpuUsage, the renderer's ProcessTime), helper threads
// included: the figure to compare for two threads.
// Rows with the engine's warm-up on and off (createEngineSession's `warmUp`) alternate, so the
// ratios between them are from the same run. A diagnostic script, not part of `npm run bench`:
//   npx node test/bench/engine-first-prompt.ts [--hosts chromium,node] [--threads 1,2] [--prompts 3]
//     [--warm-up on,off] [--prompt 512] [--repeat 1] [--js-flags "--no-liftoff"] [--cache FOLDER]
// `--js-flags` goes to V8 in both hosts (e.g. `--no-liftoff`: the optimizing tier from the start,
// the reference a warm-up aims at).
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BrowserContext, Page } from 'playwright-core'
import type { EngineBenchRequest } from './browser/engine-bench/main.ts'
import { buildEngineBenchPage } from './groups/wasm-engine-chromium.ts'
import { folderTokenizer } from './support/engines.ts'
import { defaultCacheFolder, ensurePackage, setKeepPackages } from './support/packages.ts'
import { promptOfLength } from './support/prompts.ts'

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`)
  return index < 0 ? undefined : process.argv[index + 1]
}
const list = (name: string, fallback: string): string[] => (argument(name) ?? fallback).split(',')

interface Sample {
  readonly loadMs: number
  readonly ttftMs: number[]
  /** CPU time of the calling thread per prompt (Node's threadCpuUsage, Chromium's main-thread ThreadTime): less sensitive to other processes. */
  readonly cpuMs?: number[]
  /**
   * CPU time of the whole process per prompt (Node's cpuUsage; the renderer's ProcessTime): the
   * helper threads' share too, and whatever else the process runs (V8's background compiles).
   */
  readonly processCpuMs?: number[]
}

interface NodeChildRequest {
  readonly folder: string
  readonly prompt: number[]
  readonly threads: number
  readonly prompts: number
  readonly warmUp: boolean
}

/** Runs inside the child process: one fresh Node, one session, the prompts. */
async function nodeChild(request: NodeChildRequest): Promise<Sample> {
  const { folderWeightReader, loadEngineModule, nodeEngineThreads } = await import(
    '../../wasm/engine/node.ts'
  )
  const { createEngineSession } = await import('../../wasm/engine/session.ts')
  const cpu = () => {
    const usage = process.threadCpuUsage()
    return (usage.user + usage.system) / 1000
  }
  const started = performance.now()
  const threads = await nodeEngineThreads(request.threads)
  const session = await createEngineSession({
    module: await loadEngineModule(),
    files: folderWeightReader(request.folder),
    dtype: 'q4',
    ...(threads ? { threads } : {}),
    warmUp: request.warmUp,
  })
  const loadMs = performance.now() - started
  const ttftMs: number[] = []
  const cpuMs: number[] = []
  const processCpuMs: number[] = []
  for (let round = 0; round < request.prompts; round++) {
    await session.reset()
    const wall = performance.now()
    const cpuStarted = cpu()
    const processStarted = process.cpuUsage()
    await session.append(request.prompt)
    ttftMs.push(performance.now() - wall)
    cpuMs.push(cpu() - cpuStarted)
    const used = process.cpuUsage(processStarted)
    processCpuMs.push((used.user + used.system) / 1000)
  }
  await session.dispose()
  return { loadMs, ttftMs, cpuMs, processCpuMs }
}

/** The 0.8B shape's head sizes, for the warm-up alone. */
const warmUpAloneShape = {
  dtype: 'q4',
  headDim: 256,
  rotaryDim: 64,
  linear: { keyHeadDim: 128, valueHeadDim: 128, convKernel: 4 },
}

if (process.argv.includes('--child-warm-up')) {
  // The warm-up's own cost in a fresh process: wall and this thread's CPU milliseconds.
  const { loadEngineModule } = await import('../../wasm/engine/node.ts')
  const { Kernels } = await import('../../wasm/engine/kernels.ts')
  const { warmUpKernels } = await import('../../wasm/engine/warm-up.ts')
  const kernels = await Kernels.create(await loadEngineModule())
  const before = process.threadCpuUsage()
  const wallMs = warmUpKernels(kernels, warmUpAloneShape)
  const used = process.threadCpuUsage(before)
  console.log(JSON.stringify({ wallMs, cpuMs: (used.user + used.system) / 1000 }))
  process.exit(0)
}

if (process.argv.includes('--child')) {
  const request = JSON.parse(process.argv[process.argv.indexOf('--child') + 1] as string) as NodeChildRequest
  console.log(JSON.stringify(await nodeChild(request)))
  process.exit(0)
}

const hosts = list('hosts', 'chromium,node')
const threadCounts = list('threads', '1,2').map(Number)
const prompts = Number(argument('prompts') ?? 3)
const warmUps = list('warm-up', 'on,off').map((value) => value === 'on')
const repeat = Number(argument('repeat') ?? 1)
const jsFlags = argument('js-flags')
const cacheFolder = argument('cache') ?? defaultCacheFolder()
setKeepPackages(true)

const pkg = await ensurePackage('qwen3_5-0.8b', cacheFolder, console.log, true)
const prompt = promptOfLength(folderTokenizer(pkg.folder), Number(argument('prompt') ?? 512), pkg.bosTokenId)

function runNode(threads: number, warmUp: boolean): Promise<Sample> {
  const request: NodeChildRequest = { folder: pkg.folder, prompt, threads, prompts, warmUp }
  return runChild<Sample>(['--child', JSON.stringify(request)])
}

function runChild<T>(childArgs: string[]): Promise<T> {
  const args = [...(jsFlags ? jsFlags.split(' ') : []), fileURLToPath(import.meta.url), ...childArgs]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.on('error', reject)
    child.on('close', (code) => {
      const line = output.trim().split('\n').at(-1) ?? ''
      if (code === 0) resolve(JSON.parse(line) as T)
      else reject(new Error(`the Node child exited with ${code}: ${output}`))
    })
  })
}

const rows: { host: string; threads: number; warmUp: boolean; sample: Sample }[] = []
const ms = (value: number) => `${value.toFixed(0)} ms`
const report = (row: (typeof rows)[number]) => {
  const { sample } = row
  const first = sample.ttftMs[0] as number
  const last = sample.ttftMs.at(-1) as number
  const cpu = sample.cpuMs
    ? ` | CPU ${sample.cpuMs.map((v) => v.toFixed(0)).join(' / ')} ms, first / last ${((sample.cpuMs[0] as number) / (sample.cpuMs.at(-1) as number)).toFixed(2)}×`
    : ''
  const all = sample.processCpuMs
    ? ` | process CPU ${sample.processCpuMs.map((v) => v.toFixed(0)).join(' / ')} ms`
    : ''
  console.log(
    `${row.host} ${row.threads} thread(s), warm-up ${row.warmUp ? 'on' : 'off'}: load ${ms(sample.loadMs)} | prompts ${sample.ttftMs.map((v) => v.toFixed(0)).join(' / ')} ms | first / last ${(first / last).toFixed(2)}×${cpu}${all}`,
  )
}

/**
 * The page renderer's CPU milliseconds so far, its main thread's and the whole process's
 * (DevTools' Performance metrics ThreadTime and ProcessTime).
 */
async function pageCpuTime(
  context: BrowserContext,
  page: Page,
): Promise<() => Promise<{ thread: number; process: number }>> {
  const cdp = await context.newCDPSession(page)
  await cdp.send('Performance.enable')
  return async () => {
    const { metrics } = await cdp.send('Performance.getMetrics')
    const metric = (name: string) => 1000 * (metrics.find((m) => m.name === name)?.value ?? Number.NaN)
    return { thread: metric('ThreadTime'), process: metric('ProcessTime') }
  }
}

if (hosts.includes('chromium')) {
  const pageFolder = join(cacheFolder, 'engine-bench-page')
  await buildEngineBenchPage(pageFolder)
  const { startStaticServer } = await import('../../demo/static-server.ts')
  const { launchChromium } = await import('../browser/chromium.ts')
  const server = await startStaticServer({
    mounts: [
      { prefix: `/packages/${pkg.id}/`, directory: pkg.folder },
      { prefix: '/', directory: pageFolder },
    ],
  })
  const chromium = await launchChromium({
    webgpu: false,
    ...(jsFlags ? { extraArgs: [`--js-flags=${jsFlags}`] } : {}),
  })
  try {
    // The warm-up's own cost: a fresh page each time, the warm-up alone, nothing else.
    const alone: { wallMs: number; cpuMs: number }[] = []
    for (let time = 0; time < 3; time++) {
      const context = await chromium.newContext()
      try {
        const page = await context.newPage()
        await page.goto(`${server.url}/`)
        await page.waitForSelector('body[data-ready="true"]', { state: 'attached' })
        type WarmUpPage = { prepareWarmUp(): Promise<void>; timeWarmUp(): number }
        await page.evaluate(() => (window as unknown as WarmUpPage).prepareWarmUp())
        const cpuTime = await pageCpuTime(context, page)
        const before = await cpuTime()
        const wallMs = await page.evaluate(() => (window as unknown as WarmUpPage).timeWarmUp())
        alone.push({ wallMs, cpuMs: (await cpuTime()).thread - before.thread })
      } finally {
        await context.close()
      }
    }
    console.log(
      `chromium: the warm-up alone on a fresh page: ${alone.map((v) => v.wallMs.toFixed(1)).join(' / ')} ms (main-thread CPU ${alone.map((v) => v.cpuMs.toFixed(1)).join(' / ')} ms)`,
    )
    for (let time = 0; time < repeat; time++)
      for (const threads of threadCounts)
        for (const warmUp of time % 2 === 0 ? warmUps : [...warmUps].reverse()) {
          const context = await chromium.newContext()
          try {
            const page = await context.newPage()
            await page.goto(`${server.url}/`)
            await page.waitForSelector('body[data-ready="true"]', { state: 'attached' })
            const request: EngineBenchRequest = {
              packageUrl: `/packages/${pkg.id}/`,
              runtime: 'engine',
              dtype: 'q4',
              threads,
              shortPrompt: [],
              longPrompt: prompt,
              decodeTokens: 0,
              rounds: prompts,
              warmUp,
            }
            type FirstPromptPage = {
              openFirstPrompts(r: EngineBenchRequest): Promise<number>
              runFirstPrompt(): Promise<number>
              closeFirstPrompts(): Promise<void>
            }
            const cpuTime = await pageCpuTime(context, page)
            const loadMs = await page.evaluate(
              (body) => (window as unknown as FirstPromptPage).openFirstPrompts(body),
              request,
            )
            const ttftMs: number[] = []
            const cpuMs: number[] = []
            const processCpuMs: number[] = []
            for (let round = 0; round < prompts; round++) {
              const before = await cpuTime()
              ttftMs.push(await page.evaluate(() => (window as unknown as FirstPromptPage).runFirstPrompt()))
              const after = await cpuTime()
              cpuMs.push(after.thread - before.thread)
              processCpuMs.push(after.process - before.process)
            }
            await page.evaluate(() => (window as unknown as FirstPromptPage).closeFirstPrompts())
            const sample: Sample = { loadMs, ttftMs, cpuMs, processCpuMs }
            const row = { host: 'chromium', threads, warmUp, sample }
            rows.push(row)
            report(row)
          } finally {
            await context.close()
          }
        }
  } finally {
    await chromium.close()
    await server.close()
  }
}

if (hosts.includes('node')) {
  const alone: { wallMs: number; cpuMs: number }[] = []
  for (let time = 0; time < 3; time++) alone.push(await runChild(['--child-warm-up']))
  console.log(
    `node: the warm-up alone in a fresh process: ${alone.map((v) => v.wallMs.toFixed(1)).join(' / ')} ms (CPU ${alone.map((v) => v.cpuMs.toFixed(1)).join(' / ')} ms)`,
  )
  for (let time = 0; time < repeat; time++)
    for (const threads of threadCounts)
      for (const warmUp of time % 2 === 0 ? warmUps : [...warmUps].reverse()) {
        const row = { host: 'node', threads, warmUp, sample: await runNode(threads, warmUp) }
        rows.push(row)
        report(row)
      }
}

console.log(`\n${pkg.label} q4, a ${prompt.length}-token prompt${jsFlags ? `, V8 flags ${jsFlags}` : ''}`)
