// `npm run bench:memory:workerd`: what loading and serving a package adds to a Worker's memory
// under workerd (wrangler dev), the figure docs/worker.md's isolate budget is checked against.
// wrangler dev does not enforce Cloudflare's 128 MB per isolate, so a package that would crash
// in production ("Worker exceeded memory limit") runs here: this measures how close it comes.
//
// The worker is bundled once and served as is (as `wrangler deploy` ships it), reading a seeded
// fixture from a local static server (MODEL_SOURCE=url, manifest required). Figures come from the
// workerd process (/proc: VmRSS, VmHWM reset through clear_refs): its resident memory once
// /healthz answers with nothing loaded, then the peak while the first chat loads the package
// (tokenizer, engine, weights) and answers, then after a second chat. The process also holds
// workerd itself and wrangler's proxy isolate; what the load adds is the isolate's own cost.
// The isolate's own heap + backing stores come from the DevTools protocol: after a collection
// before and after the first chat, and sampled without one while the first chat loads (its peak).
//   npm run bench:memory:workerd                                  tiny Qwen3.5 fixture, q4 and q8
//   npm run bench:memory:workerd -- --arch qwen3 --dtype q8       another fixture / format
//   npm run bench:memory:workerd -- --folder DIR --dtype q4       any package folder
//   npm run bench:memory:workerd -- --profile DIR                  the isolate's CPU profile of the first chat (no heap sampling then)
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { writeFixture } from '../../builder/index.ts'
import { bundleWorker, repositoryRoot, startWranglerDev } from '../../tools/wrangler-dev.ts'
import { estimateIsolateMemory } from '../../worker/container/choose-runtime.ts'
import { markdownTable } from './support/stats.ts'

const { values } = parseArgs({
  options: {
    arch: { type: 'string', default: 'qwen3_5' },
    dtype: { type: 'string', default: 'q4,q8' },
    folder: { type: 'string' },
    tokens: { type: 'string', default: '16' },
    profile: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
})
if (values.help) {
  console.log(
    'npm run bench:memory:workerd [-- --arch qwen3_5|qwen3] [--dtype q4[,q8]] [--folder DIR] [--tokens N]',
  )
  process.exit(0)
}
if (process.platform !== 'linux') throw new Error('This reads /proc: Linux only.')
const maxTokens = Number(values.tokens)
if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new Error('--tokens must be a positive integer')
const dtypes = values.dtype.split(',').map((entry) => entry.trim())

const work = mkdtempSync(join(tmpdir(), 'ondevice-workerd-memory-'))
const packageFolder = values.folder ? resolve(values.folder) : join(work, 'package')
if (!values.folder) {
  if (values.arch !== 'qwen3_5' && values.arch !== 'qwen3') throw new Error('--arch takes qwen3_5 or qwen3')
  console.error(`writing the tiny ${values.arch} fixture (${dtypes.join(', ')})...`)
  await writeFixture({
    arch: values.arch,
    outDir: packageFolder,
    seed: 1,
    dtype: dtypes as Parameters<typeof writeFixture>[0]['dtype'] & string[],
  })
}
const manifest = JSON.parse(readFileSync(join(packageFolder, 'manifest.json'), 'utf8')) as Parameters<
  typeof estimateIsolateMemory
>[0]

function status(pid: number): { rss: number; peak: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string) =>
    Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(text)?.[1] ?? Number.NaN) * 1024
  return { rss: field('VmRSS'), peak: field('VmHWM') }
}

/** workerd processes started under `root` (wrangler dev's process group leader). */
function workerdUnder(root: number): number[] {
  const parents = new Map<number, number>()
  const names = new Map<number, string>()
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry)
    if (!Number.isInteger(pid)) continue
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const close = stat.lastIndexOf(')')
      parents.set(pid, Number(stat.slice(close + 2).split(' ')[1]))
      names.set(pid, stat.slice(stat.indexOf('(') + 1, close))
    } catch {
      // gone meanwhile
    }
  }
  const under = (pid: number): boolean => {
    for (let at = pid, hops = 0; at > 1 && hops < 32; at = parents.get(at) ?? 0, hops++)
      if (at === root) return true
    return false
  }
  return [...names].filter(([pid, name]) => name === 'workerd' && under(pid)).map(([pid]) => pid)
}

/** wrangler dev's --inspector-port, from its command line. */
function inspectorPort(wranglerPid: number): number {
  const args = readFileSync(`/proc/${wranglerPid}/cmdline`, 'utf8').split('\0')
  const at = args.indexOf('--inspector-port')
  const port = Number(args[at + 1])
  if (at < 0 || !Number.isInteger(port)) throw new Error('wrangler dev has no --inspector-port')
  return port
}

interface HeapUsage {
  /** V8's JavaScript heap, used and reserved. */
  readonly usedSize: number
  readonly totalSize: number
  /** ArrayBuffers and WebAssembly memories the isolate holds. */
  readonly backingStorageSize: number
}

/** A DevTools protocol connection to the worker isolate (wrangler's inspector proxy). */
async function inspect(port: number): Promise<{
  call(method: string, timeoutMs?: number, params?: object): Promise<Record<string, unknown>>
  close(): void
}> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as {
    webSocketDebuggerUrl?: string
    title?: string
  }[]
  const target = targets.find((entry) => entry.webSocketDebuggerUrl && !/proxy/i.test(entry.title ?? ''))
  if (!target?.webSocketDebuggerUrl) throw new Error(`no inspector target: ${JSON.stringify(targets)}`)
  // wrangler's inspector proxy accepts DevTools clients from local origins only.
  const socket = new (WebSocket as unknown as new (url: string, init: object) => WebSocket)(
    target.webSocketDebuggerUrl,
    { headers: { Origin: 'http://127.0.0.1' } },
  )
  await new Promise((done, fail) => {
    socket.addEventListener('open', done, { once: true })
    socket.addEventListener('error', () => fail(new Error(`cannot open ${target.webSocketDebuggerUrl}`)), {
      once: true,
    })
  })
  let next = 1
  return {
    call: (method, timeoutMs = 30_000, params?: object) =>
      new Promise<Record<string, unknown>>((done, fail) => {
        const id = next++
        const timer = setTimeout(() => fail(new Error(`${method}: no answer`)), timeoutMs)
        const listener = (event: MessageEvent) => {
          const message = JSON.parse(String(event.data)) as { id?: number; result?: Record<string, unknown> }
          if (message.id !== id) return
          clearTimeout(timer)
          socket.removeEventListener('message', listener)
          done(message.result ?? {})
        }
        socket.addEventListener('message', listener)
        socket.send(JSON.stringify({ id, method, ...(params ? { params } : {}) }))
      }),
    close: () => socket.close(),
  }
}

/**
 * The worker isolate's own heap through the DevTools protocol (Runtime.getHeapUsage): what V8
 * holds for this isolate alone, JavaScript heap and backing stores (ArrayBuffers, WebAssembly
 * memory), without workerd's process around it. A point in time, not a peak.
 */
async function heapUsage(port: number): Promise<HeapUsage> {
  const inspector = await inspect(port)
  try {
    // A full collection first where the inspector allows it (wrangler's proxy may not answer it):
    // otherwise the figure includes garbage the collector has not taken yet.
    await inspector.call('HeapProfiler.collectGarbage', 3_000).catch(() => ({}))
    return (await inspector.call('Runtime.getHeapUsage')) as unknown as HeapUsage
  } finally {
    inspector.close()
  }
}

/**
 * The isolate's largest heap + backing stores while `work` runs, sampled as fast as the inspector
 * answers (no collection forced: garbage the collector has not taken yet counts, as it does
 * against an isolate's limit). The sample that comes closest to the load's true peak is what
 * the router's estimate must cover.
 */
async function peakHeapDuring<T>(
  port: number,
  work: Promise<T>,
): Promise<{ result: T; peak: number; samples: number }> {
  const inspector = await inspect(port)
  let peak = 0
  let samples = 0
  let running = true
  const sampling = (async () => {
    while (running) {
      const usage = (await inspector.call('Runtime.getHeapUsage', 10_000)) as unknown as Partial<HeapUsage>
      const total = (usage.usedSize ?? Number.NaN) + (usage.backingStorageSize ?? Number.NaN)
      // An isolate busy in a long synchronous step answers late, or (through the proxy) not at all.
      if (!Number.isFinite(total)) continue
      peak = Math.max(peak, total)
      samples++
    }
  })()
  try {
    const result = await work
    return { result, peak, samples }
  } finally {
    running = false
    await sampling.catch(() => undefined)
    inspector.close()
  }
}

async function chat(url: string): Promise<{ ok: boolean; detail: string }> {
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'memory',
      messages: [{ role: 'user', content: 'Name three rivers and say one thing about each.' }],
      max_tokens: maxTokens,
      temperature: 0,
    }),
    signal: AbortSignal.timeout(300_000),
  })
  const body = (await response.json()) as {
    usage?: { completion_tokens?: number; backend?: string; dtype?: string }
  }
  return {
    ok: response.ok,
    detail: response.ok
      ? `${body.usage?.completion_tokens} tokens, ${body.usage?.backend} ${body.usage?.dtype}`
      : `HTTP ${response.status}: ${JSON.stringify(body).slice(0, 300)}`,
  }
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`
const { startStaticServer } = await import('../../demo/static-server.ts')
const files = await startStaticServer({ mounts: [{ prefix: '/', directory: packageFolder }] })
const rows: string[][] = []
const started = performance.now()
const startLoad = loadavg()[0]?.toFixed(1)
try {
  for (const dtype of dtypes) {
    const folder = join(work, `worker-${dtype}`)
    mkdirSync(folder, { recursive: true })
    const config = {
      name: 'ondevice-memory-bench',
      main: join(repositoryRoot, 'worker/index.ts'),
      compatibility_date: '2025-09-01',
      compatibility_flags: ['enable_request_signal'],
      rules: [{ type: 'CompiledWasm', globs: ['**/*.wasm'], fallthrough: true }],
      vars: {
        MODEL_SOURCE: 'url',
        MODEL_URL: `${files.url}/`,
        MODEL_ID: 'memory',
        MODEL_DTYPE: dtype,
        MODEL_REQUIRE_MANIFEST: 'true',
        // The isolate answers whatever its size: this measures, the router does not decide here.
        EDGE_RUNTIME: 'isolate',
      },
    }
    const configPath = join(folder, 'wrangler.json')
    writeFileSync(configPath, JSON.stringify(config))
    console.error(`${dtype}: bundling the worker...`)
    await bundleWorker({ configPath, outDir: join(folder, 'bundle') })
    const bundled = join(folder, 'wrangler-bundled.json')
    writeFileSync(
      bundled,
      JSON.stringify({ ...config, main: join(folder, 'bundle', 'index.js'), no_bundle: true }),
    )
    const server = await startWranglerDev({
      configPath: bundled,
      noBundle: true,
      stateDir: join(folder, 'state'),
      logLevel: 'warn',
      timeoutMs: 120_000,
      keepOutputChars: 8000,
    })
    try {
      // wrangler dev runs more than one workerd (its proxy too): each is measured, and the
      // worker's is the one the chats make grow.
      const pids = workerdUnder(server.pid)
      if (pids.length === 0) throw new Error('found no workerd under wrangler dev')
      const health = (await (await fetch(`${server.url}/healthz`)).json()) as { loaded?: boolean }
      if (health.loaded)
        throw new Error('the model loaded before the first chat: the baseline would include it')
      await new Promise((done) => setTimeout(done, 1000))
      const port = inspectorPort(server.pid)
      const heapIdle = await heapUsage(port).catch((error: unknown) => {
        console.error(`inspector: ${String(error)}`)
        return undefined
      })
      const idle = new Map(pids.map((pid) => [pid, status(pid).rss]))
      const reset = () => {
        for (const pid of pids) writeFileSync(`/proc/${pid}/clear_refs`, '5')
      }
      reset()
      // A CPU profile of the first chat (the load) where asked: the isolate's own, through DevTools.
      const profiler = values.profile ? await inspect(port) : undefined
      if (profiler) {
        await profiler.call('Profiler.enable')
        await profiler.call('Profiler.setSamplingInterval', 10_000, { interval: 500 })
        await profiler.call('Profiler.start')
      }
      const sampled = await (profiler
        ? chat(server.url).then((result) => ({ result, peak: 0, samples: 0 }))
        : peakHeapDuring(port, chat(server.url))
      ).catch((error: unknown) => {
        console.error(`inspector: ${String(error)}`)
        return undefined
      })
      if (profiler) {
        const { profile } = (await profiler.call('Profiler.stop', 60_000)) as { profile: unknown }
        writeFileSync(
          join(resolve(values.profile as string), `workerd-${dtype}.cpuprofile`),
          JSON.stringify(profile),
        )
        profiler.close()
      }
      const first = sampled?.result ?? { ok: false, detail: 'the first chat could not be sampled' }
      const afterFirst = new Map(pids.map((pid) => [pid, status(pid)]))
      const heapLoaded = await heapUsage(port).catch((error: unknown) => {
        console.error(`inspector: ${String(error)}`)
        return undefined
      })
      reset()
      const second = await chat(server.url)
      const afterSecond = new Map(pids.map((pid) => [pid, status(pid)]))
      // How long the isolate took to load the model (workerd's clocks advance at I/O, which a load is mostly).
      const loadMs = ((await (await fetch(`${server.url}/healthz`)).json()) as { load_ms?: number }).load_ms
      if (!first.ok || !second.ok)
        throw new Error(`a chat failed: ${first.detail}; ${second.detail}\n${server.output()}`)
      const grew = (pid: number) => afterFirst.get(pid)!.peak - idle.get(pid)!
      const pid = pids.reduce((best, candidate) => (grew(candidate) > grew(best) ? candidate : best))
      const others = pids.filter((other) => other !== pid).map((other) => mib(grew(other)))
      console.error(`${dtype}: workerd ${pid} grew; the other(s) by ${others.join(', ') || 'none'}`)
      const base = idle.get(pid)!
      const estimate = estimateIsolateMemory(manifest, dtype)
      // This run's source (a URL whose server answers Range) streams the weights as R2 does.
      const streamedEstimate = estimateIsolateMemory(manifest, dtype, undefined, ['wasm'], 'ranges')
      const chunksEstimate = estimateIsolateMemory(manifest, dtype, undefined, ['wasm'], 'chunks')
      rows.push([
        dtype,
        mib(base),
        mib(afterFirst.get(pid)!.peak - base),
        mib(afterFirst.get(pid)!.rss - base),
        mib(afterSecond.get(pid)!.peak - base),
        heapIdle && heapLoaded
          ? `${mib(heapIdle.usedSize)} + ${mib(heapIdle.backingStorageSize)} → ${mib(heapLoaded.usedSize)} + ${mib(heapLoaded.backingStorageSize)}`
          : '—',
        sampled ? `${mib(sampled.peak)} (${sampled.samples} samples)` : '—',
        [estimate, streamedEstimate, chunksEstimate]
          .map((value) => (value === undefined ? '—' : mib(value.bytes)))
          .join(' / '),
        first.detail,
        loadMs === undefined ? '—' : `${loadMs} ms`,
      ])
    } finally {
      await server.stop()
    }
  }
} finally {
  await files.close()
  rmSync(work, { recursive: true, force: true })
}
console.log(
  markdownTable({
    title: `workerd (wrangler dev): memory a Worker adds to load and serve ${values.folder ?? `the tiny ${values.arch} fixture`} (real Qwen3 tokenizer)`,
    columns: [
      'dtype',
      'workerd resident, idle',
      'peak added: load + 1st chat',
      'resident added after it',
      'peak added: 2nd chat',
      'isolate heap + backing stores: idle → loaded',
      'isolate heap + backing stores: peak while loading',
      "isolate estimate (router): a URL's whole files / R2's ranges / static assets' chunks",
      'answer',
      'load (/healthz load_ms)',
    ],
    rows,
    notes: [
      'added = the workerd process above its resident size once /healthz answered with nothing loaded (VmHWM reset before each chat)',
      "isolate heap: the worker's own V8 heap (used, garbage not yet collected included) and backing stores (ArrayBuffers, WebAssembly memory) through the DevTools protocol (Runtime.getHeapUsage), before the first chat and after the first",
      "isolate peak while loading: the largest heap + backing stores sampled through the DevTools protocol while the first chat loads the package and answers (no collection forced: uncollected garbage counts, as it does against the isolate's limit); a sampled peak, so the true one may be a little higher",
      'isolate estimate: worker/container/choose-runtime.ts estimateIsolateMemory, what EDGE_RUNTIME="auto" compares with the 128 MB isolate',
      `${((performance.now() - started) / 1000).toFixed(0)} s, load average ${startLoad} at the start, ${loadavg()[0]?.toFixed(1)} at the end`,
    ],
  }),
)
