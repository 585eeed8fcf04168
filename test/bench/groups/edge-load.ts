// Group 5: the edge under load. N concurrent streaming clients (N = 1, 4, 16) against the worker
// under `wrangler dev` (workerd) and against `ondevice serve` (the same app on Node), both serving
// the tiny Qwen3.5 fixture on 127.0.0.1: requests/s, tokens/s overall, p50/p99 time to first
// token, errors. Each level runs for a fixed time and stops by itself; servers are stopped by PID.
// With Docker: `ondevice serve` in the container image, directly and through the Worker
// (EDGE_RUNTIME = "container"), which is the forwarding cost; and the container's cold start.
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  buildEdgeImage,
  type EdgeContainer,
  requireDocker,
  runEdgeContainer,
} from '../../../tools/docker/edge-container.ts'
import {
  bundleWorker,
  freePort,
  type LocalServer,
  startServerProcess,
  startWranglerDev,
} from '../../../tools/wrangler-dev.ts'
import type { BenchContext, GroupResult } from '../support/context.ts'
import { ensurePackage, repositoryRoot } from '../support/packages.ts'
import { formatNumber, median, percentile, type Table } from '../support/stats.ts'

interface Server {
  readonly url: string
  readonly modelId: string
  stop(): Promise<void>
}

/** The id the server answers to (ondevice serve names it after the package). */
async function withModelId(server: LocalServer, modelId: string): Promise<Server> {
  let id = modelId
  try {
    const models = (await (
      await fetch(`${server.url}/v1/models`, { signal: AbortSignal.timeout(10_000) })
    ).json()) as { data?: { id?: string }[] }
    id = models.data?.[0]?.id ?? modelId
  } catch {
    // keep the configured id
  }
  return { url: server.url, modelId: id, stop: () => server.stop() }
}

/** A static file server for the package (the worker reads it as MODEL_SOURCE=url). */
async function servePackage(folder: string): Promise<{ url: string; close(): Promise<void> }> {
  const { startStaticServer } = await import('../../../demo/static-server.ts')
  const server = await startStaticServer({ mounts: [{ prefix: '/', directory: folder }] })
  return { url: server.url, close: () => server.close() }
}

async function startWrangler(
  context: BenchContext,
  packageUrl: string,
  dtype: string,
  extraVars: Readonly<Record<string, string>> = {},
  name = 'wrangler',
): Promise<Server> {
  const folder = join(context.cacheFolder, name)
  mkdirSync(folder, { recursive: true })
  const config = {
    name: 'ondevice-edge-bench',
    main: join(repositoryRoot, 'worker/index.ts'),
    compatibility_date: '2025-09-01',
    compatibility_flags: ['enable_request_signal'],
    rules: [{ type: 'CompiledWasm', globs: ['**/*.wasm'], fallthrough: true }],
    vars: {
      MODEL_SOURCE: 'url',
      MODEL_URL: `${packageUrl}/`,
      MODEL_ID: 'bench',
      MODEL_DTYPE: dtype,
      MODEL_REQUIRE_MANIFEST: 'true',
      MAX_CONCURRENT: '1',
      MAX_QUEUE: '16',
      QUEUE_TIMEOUT_MS: '30000',
      ...extraVars,
    },
  }
  const configPath = join(folder, 'wrangler.json')
  writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`)
  // Bundle the worker once and serve that bundle (`--no-bundle`): `wrangler dev` on the sources
  // watches every file the worker imports and restarts the isolate (model reload, 503 "worker
  // restarted mid-request") whenever one changes. In this shared tree other engineers' saves did
  // exactly that during a run (two "Reloading local server" in wrangler's log within the N = 1
  // window: TTFT p50 7.8 s instead of ~20 ms). The bundle is also what `wrangler deploy` ships.
  const bundleFolder = join(folder, 'bundle')
  rmSync(bundleFolder, { recursive: true, force: true })
  await bundleWorker({ configPath, outDir: bundleFolder })
  const bundledConfigPath = join(folder, 'wrangler-bundled.json')
  writeFileSync(
    bundledConfigPath,
    `${JSON.stringify({ ...config, main: join(bundleFolder, 'index.js'), no_bundle: true }, null, 2)}\n`,
  )
  const server = await startWranglerDev({
    configPath: bundledConfigPath,
    noBundle: true,
    stateDir: join(folder, 'state'),
    logLevel: 'warn',
    timeoutMs: 120_000,
    keepOutputChars: 8000,
  })
  return withModelId(server, 'bench')
}

/** One container of the edge image (open: no key, loopback only), the same limits as the others. */
async function startContainer(context: BenchContext, packageFolder: string): Promise<EdgeContainer> {
  await requireDocker()
  const image = await buildEdgeImage({ tag: 'ondevice-edge:bench' })
  context.log(
    `  image ${image.tag}: ${Math.round(image.sizeBytes / 1e6)} MB, built in ${(image.buildMs / 1000).toFixed(1)} s`,
  )
  const container = await runEdgeContainer({
    image: image.tag,
    modelDir: packageFolder,
    env: { MODEL_ID: 'bench', MAX_CONCURRENT: '1', MAX_QUEUE: '16', QUEUE_TIMEOUT_MS: '30000' },
    restart: false,
  })
  context.log(`  container cold start (docker run -> /healthz 200): ${container.startMs} ms`)
  return container
}

async function startNodeServe(packageFolder: string): Promise<Server> {
  const port = await freePort()
  const server = await startServerProcess({
    args: [
      // bin.js, not main.ts: it adds the 'ondevice-source' resolve condition the sources need.
      join(repositoryRoot, 'cli/bin.js'),
      'serve',
      '--model',
      packageFolder,
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
    ],
    url: `http://127.0.0.1:${port}`,
    timeoutMs: 120_000,
    keepOutputChars: 8000,
  })
  return withModelId(server, 'bench')
}

interface LevelResult {
  clients: number
  seconds: number
  completed: number
  errors: number
  errorKinds: Record<string, number>
  tokens: number
  ttftMs: number[]
  decodeTokensPerSecond: number[]
  answerMs: number[]
  serverDecodeTokensPerSecond: number[]
}

/** One streaming chat completion; resolves with its first-token time and token count. */
async function streamOnce(
  server: Server,
  maxTokens: number,
  signal: AbortSignal,
): Promise<{
  ttftMs: number
  tokens: number
  decodeTokensPerSecond: number
  answerMs: number
  serverDecodeTokensPerSecond: number
}> {
  const started = performance.now()
  const response = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: server.modelId,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: maxTokens,
      temperature: 0,
      messages: [{ role: 'user', content: 'Tell me a short story about a boat.' }],
    }),
    signal,
  })
  if (!response.ok || !response.body) {
    const body = await response.text().catch(() => '')
    let reason = ''
    try {
      reason = (JSON.parse(body) as { error?: { code?: string; message?: string } }).error?.code ?? ''
    } catch {
      reason = body.slice(0, 40)
    }
    throw new Error(`HTTP ${response.status}${reason ? ` ${reason}` : ''}`)
  }
  const decoder = new TextDecoder()
  let buffer = ''
  let ttftMs = Number.NaN
  let lastContentMs = Number.NaN
  let contentChunks = 0
  let usageTokens: number | undefined
  let serverDecodeTokensPerSecond = Number.NaN
  const reader = response.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    buffer += decoder.decode(value, { stream: true })
    let newline = buffer.indexOf('\n')
    while (newline >= 0) {
      const line = buffer.slice(0, newline).trim()
      buffer = buffer.slice(newline + 1)
      newline = buffer.indexOf('\n')
      if (!line.startsWith('data:')) continue
      const data = line.slice(5).trim()
      if (data === '[DONE]') continue
      const parsed = JSON.parse(data) as {
        choices?: { delta?: { content?: string } }[]
        usage?: { completion_tokens?: number; decode_tokens_per_second?: number }
        error?: { message?: string }
      }
      if (parsed.error) throw new Error(`stream error: ${parsed.error.message}`)
      if (parsed.choices?.[0]?.delta?.content) {
        lastContentMs = performance.now() - started
        if (Number.isNaN(ttftMs)) ttftMs = lastContentMs
        contentChunks++
      }
      if (parsed.usage?.completion_tokens !== undefined) usageTokens = parsed.usage.completion_tokens
      if (parsed.usage?.decode_tokens_per_second !== undefined)
        serverDecodeTokensPerSecond = parsed.usage.decode_tokens_per_second
    }
  }
  const tokens = usageTokens ?? contentChunks
  // As the client sees it: tokens after the first over the time from the first content chunk to
  // the last (a chunk per token here).
  const decodeTokensPerSecond =
    contentChunks > 1 && lastContentMs > ttftMs
      ? ((contentChunks - 1) * 1000) / (lastContentMs - ttftMs)
      : Number.NaN
  return {
    ttftMs,
    tokens,
    decodeTokensPerSecond,
    answerMs: performance.now() - started,
    serverDecodeTokensPerSecond,
  }
}

async function runLevel(
  server: Server,
  clients: number,
  seconds: number,
  maxTokens: number,
): Promise<LevelResult> {
  const stopAt = performance.now() + seconds * 1000
  const result: LevelResult = {
    clients,
    seconds: 0,
    completed: 0,
    errors: 0,
    errorKinds: {},
    tokens: 0,
    ttftMs: [],
    decodeTokensPerSecond: [],
    answerMs: [],
    serverDecodeTokensPerSecond: [],
  }
  const started = performance.now()
  // A hard stop well past the window, so a stuck request can't hold the run.
  const hardStop = AbortSignal.timeout((seconds + 120) * 1000)
  const client = async (): Promise<void> => {
    while (performance.now() < stopAt && !hardStop.aborted) {
      try {
        const { ttftMs, tokens, decodeTokensPerSecond, answerMs, serverDecodeTokensPerSecond } =
          await streamOnce(server, maxTokens, hardStop)
        result.answerMs.push(answerMs)
        if (Number.isFinite(serverDecodeTokensPerSecond))
          result.serverDecodeTokensPerSecond.push(serverDecodeTokensPerSecond)
        result.completed++
        result.tokens += tokens
        if (Number.isFinite(ttftMs)) result.ttftMs.push(ttftMs)
        if (Number.isFinite(decodeTokensPerSecond)) result.decodeTokensPerSecond.push(decodeTokensPerSecond)
      } catch (error) {
        result.errors++
        const kind = (error as Error).message.slice(0, 60)
        result.errorKinds[kind] = (result.errorKinds[kind] ?? 0) + 1
        // Back off as a real client would after a 429/503.
        await new Promise((resolveWait) => setTimeout(resolveWait, 250))
      }
    }
  }
  await Promise.all(Array.from({ length: clients }, client))
  return { ...result, seconds: (performance.now() - started) / 1000 }
}

async function measureServer(
  context: BenchContext,
  name: string,
  server: Server,
  levels: readonly number[],
  seconds: number,
  maxTokens: number,
  rows: string[][],
  data: unknown[],
): Promise<void> {
  const target = { name }
  // Warm-up: the first request loads the model into the isolate / process.
  const warm = performance.now()
  await streamOnce(server, 4, AbortSignal.timeout(180_000))
  context.log(
    `  ${target.name}: model loaded and first answer in ${((performance.now() - warm) / 1000).toFixed(1)} s`,
  )
  for (const clients of levels) {
    const level = await runLevel(server, clients, seconds, maxTokens)
    context.log(`  ${target.name} N=${clients}: ${level.completed} requests, ${level.errors} errors`)
    rows.push([
      target.name,
      String(clients),
      formatNumber(level.completed / level.seconds),
      formatNumber(level.tokens / level.seconds),
      formatNumber(percentile(level.ttftMs, 50)),
      formatNumber(percentile(level.ttftMs, 99)),
      String(level.completed),
      level.errors === 0
        ? '0'
        : `${level.errors} (${Object.entries(level.errorKinds)
            .map(([kind, count]) => `${count}× ${kind}`)
            .join('; ')})`,
    ])
    data.push({ server: target.name, ...level, medianTtftMs: median(level.ttftMs) })
  }
}

export async function edgeLoad(context: BenchContext): Promise<GroupResult> {
  const title = 'Edge under load (tiny Qwen3.5 fixture, loopback)'
  const levels = context.quick ? [1, 4] : [1, 4, 16]
  const seconds = context.quick ? 5 : 15
  const maxTokens = 32
  const dtype = 'q8'
  const pkg = await ensurePackage('qwen3_5-tiny', context.cacheFolder, context.log)
  const packageServer = await servePackage(pkg.folder)
  const rows: string[][] = []
  const data: unknown[] = []
  const targets: { name: string; start: () => Promise<Server>; missing?: string }[] = [
    { name: 'wrangler dev (workerd, WASM)', start: () => startWrangler(context, packageServer.url, dtype) },
    {
      name: 'ondevice serve (Node)',
      start: () => startNodeServe(pkg.folder),
      ...(existsSync(join(repositoryRoot, 'cli/commands/serve.ts'))
        ? {}
        : { missing: '`ondevice serve` has not landed (cli/commands/serve.ts missing)' }),
    },
  ]
  try {
    for (const target of targets) {
      if (target.missing) {
        rows.push([target.name, '—', '—', '—', '—', '—', '—', `not run: ${target.missing}`])
        data.push({ server: target.name, skipped: target.missing })
        continue
      }
      context.log(`group 5: starting ${target.name}`)
      let server: Server
      try {
        server = await target.start()
      } catch (error) {
        const message = (error as Error).message.split('\n')[0] ?? ''
        rows.push([target.name, '—', '—', '—', '—', '—', '—', `failed to start: ${message.slice(0, 200)}`])
        data.push({ server: target.name, error: (error as Error).message })
        continue
      }
      try {
        await measureServer(context, target.name, server, levels, seconds, maxTokens, rows, data)
      } catch (error) {
        const message = (error as Error).message.split('\n')[0] ?? ''
        rows.push([target.name, '—', '—', '—', '—', '—', '—', `failed: ${message.slice(0, 200)}`])
        data.push({ server: target.name, error: (error as Error).message })
      } finally {
        await server.stop()
      }
    }
  } finally {
    await packageServer.close()
  }
  const forwarding = await forwardingCost(context, pkg.folder, dtype, maxTokens)
  const table: Table = {
    title: `Group 5: ${title}`,
    columns: [
      'server',
      'clients',
      'requests/s',
      'tokens/s overall',
      'TTFT p50 ms',
      'TTFT p99 ms',
      'completed',
      'errors',
    ],
    rows,
    notes: [
      `Each level: N clients each streaming chat completions back to back for ${seconds} s (max_tokens ${maxTokens}, temperature 0, one short user message), after one warm-up request; ${dtype} weights; 1 generation at a time and a queue of 16 (MAX_CONCURRENT, MAX_QUEUE; QUEUE_TIMEOUT_MS 30 s). wrangler dev serves a bundle of the worker built first (\`wrangler deploy --dry-run\`, then \`dev --no-bundle\`), so edits elsewhere in the tree can't restart it mid-run.`,
      'TTFT: from sending the request to the first content chunk (queueing included). Errors: HTTP errors (429/503 when the queue is full) and stream errors; a client backs off 250 ms after one.',
    ],
  }
  return { group: 5, title, tables: [table, ...forwarding.tables], data: [...data, ...forwarding.data] }
}

interface Side {
  completed: number
  errors: number
  seconds: number
  ttftMs: number[]
  answerMs: number[]
  decodeTokensPerSecond: number[]
  serverDecodeTokensPerSecond: number[]
}

const emptySide = (): Side => ({
  completed: 0,
  errors: 0,
  seconds: 0,
  ttftMs: [],
  answerMs: [],
  decodeTokensPerSecond: [],
  serverDecodeTokensPerSecond: [],
})

function addLevel(side: Side, level: LevelResult): void {
  side.completed += level.completed
  side.errors += level.errors
  side.seconds += level.seconds
  side.ttftMs.push(...level.ttftMs)
  side.answerMs.push(...level.answerMs)
  side.decodeTokensPerSecond.push(...level.decodeTokensPerSecond)
  side.serverDecodeTokensPerSecond.push(...level.serverDecodeTokensPerSecond)
}

/**
 * The forwarding cost: one container of the edge image, measured directly and through the Worker
 * (wrangler dev, EDGE_RUNTIME = "container", CONTAINER_URLS) in front of that same container, in
 * alternating short windows at each level (which side goes first alternates by round), so both
 * sides see the same machine load; then the cold start of the real-size package.
 */
async function forwardingCost(
  context: BenchContext,
  tinyFolder: string,
  dtype: string,
  maxTokens: number,
): Promise<{ tables: Table[]; data: unknown[] }> {
  const levels = context.quick ? [1, 4] : [1, 4, 16]
  // N = 16 queues behind one slot, so each window runs past its end by the queue's drain: fewer rounds.
  const roundsFor = (clients: number) => (context.quick ? 2 : clients >= 16 ? 2 : 4)
  const windowSeconds = context.quick ? 2 : 4
  const data: unknown[] = []
  const rows: string[][] = []
  const coldRows: string[][] = []
  let container: EdgeContainer | undefined
  let worker: Server | undefined
  try {
    container = await startContainer(context, tinyFolder)
    coldRows.push(['Qwen3.5 tiny fixture (q4 loaded)', String(container.startMs)])
    const direct: Server = { url: container.url, modelId: 'bench', stop: async () => {} }
    const packageServer = await servePackage(tinyFolder)
    try {
      worker = await startWrangler(
        context,
        packageServer.url,
        dtype,
        { EDGE_RUNTIME: 'container', CONTAINER_URLS: container.url },
        'wrangler-container',
      )
    } finally {
      await packageServer.close()
    }
    for (const server of [direct, worker]) await streamOnce(server, 4, AbortSignal.timeout(180_000))
    for (const clients of levels) {
      const sides = { direct: emptySide(), forwarded: emptySide() }
      for (let round = 0; round < roundsFor(clients); round++) {
        const order =
          round % 2 === 0 ? (['direct', 'forwarded'] as const) : (['forwarded', 'direct'] as const)
        for (const name of order) {
          addLevel(
            sides[name],
            await runLevel(name === 'direct' ? direct : worker, clients, windowSeconds, maxTokens),
          )
        }
      }
      const summary = (side: Side) => ({
        requestsPerSecond: side.completed / side.seconds,
        ttftP50: percentile(side.ttftMs, 50),
        ttftP95: percentile(side.ttftMs, 95),
        answerP50: percentile(side.answerMs, 50),
        decode: median(side.decodeTokensPerSecond),
        serverDecode: median(side.serverDecodeTokensPerSecond),
        completed: side.completed,
        errors: side.errors,
      })
      const a = summary(sides.direct)
      const b = summary(sides.forwarded)
      const signed = (value: number) => `${value >= 0 ? '+' : ''}${formatNumber(value)}`
      context.log(
        `  forwarding N=${clients}: TTFT p50 ${a.ttftP50.toFixed(1)} / ${b.ttftP50.toFixed(1)} ms, decode ${a.decode.toFixed(1)} / ${b.decode.toFixed(1)} tok/s, container decode ${a.serverDecode.toFixed(1)} / ${b.serverDecode.toFixed(1)} tok/s (direct / forwarded)`,
      )
      rows.push([
        String(clients),
        `${formatNumber(a.requestsPerSecond)} / ${formatNumber(b.requestsPerSecond)}`,
        formatNumber(b.requestsPerSecond / a.requestsPerSecond),
        `${formatNumber(a.ttftP50)} / ${formatNumber(b.ttftP50)}`,
        signed(b.ttftP50 - a.ttftP50),
        `${formatNumber(a.ttftP95)} / ${formatNumber(b.ttftP95)}`,
        `${formatNumber(a.answerP50)} / ${formatNumber(b.answerP50)}`,
        `${formatNumber(a.decode)} / ${formatNumber(b.decode)}`,
        `${signed((b.decode / a.decode - 1) * 100)} %`,
        `${formatNumber(a.serverDecode)} / ${formatNumber(b.serverDecode)}`,
        `${signed((b.serverDecode / a.serverDecode - 1) * 100)} %`,
        `${a.completed} / ${b.completed}`,
        `${a.errors} / ${b.errors}`,
      ])
      data.push({ forwarding: clients, direct: a, forwarded: b })
    }
  } catch (error) {
    const message = (error as Error).message.split('\n')[0] ?? ''
    rows.push([...Array.from({ length: 12 }, () => '—'), `failed: ${message.slice(0, 200)}`])
    data.push({ forwarding: 'failed', error: (error as Error).message })
  } finally {
    await worker?.stop()
    await container?.stop()
  }
  // Cold start at the real size: docker run -> /healthz 200 with the 0.8B q4 package mounted
  // (`ondevice serve` listens once the model is loaded). Skipped with --quick (a 0.6 GB build).
  if (!context.quick) {
    let big: EdgeContainer | undefined
    try {
      const pkg = await ensurePackage('qwen3_5-0.8b', context.cacheFolder, context.log)
      big = await startContainer(context, pkg.folder)
      coldRows.push(['Qwen3.5-0.8B shape (q4 loaded, 0.6 GB)', String(big.startMs)])
      data.push({ coldStart: 'qwen3_5-0.8b', ms: big.startMs })
    } catch (error) {
      coldRows.push([
        'Qwen3.5-0.8B shape',
        `failed: ${((error as Error).message.split('\n')[0] ?? '').slice(0, 200)}`,
      ])
    } finally {
      await big?.stop()
    }
  }
  return {
    data,
    tables: [
      {
        title:
          'Group 5b: Forwarding cost, Worker -> container vs the same container directly (tiny Qwen3.5 fixture)',
        columns: [
          'clients',
          'requests/s direct / forwarded',
          'ratio',
          'TTFT p50 ms direct / forwarded',
          'TTFT p50 added ms',
          'TTFT p95 ms direct / forwarded',
          'answer p50 ms direct / forwarded',
          'decode tok/s at the client, direct / forwarded',
          'change',
          'decode tok/s in the container (usage), direct / forwarded',
          'change',
          'completed',
          'errors',
        ],
        rows,
        notes: [
          `One container of the edge image (\`ondevice serve\`, onnxruntime-node, MAX_CONCURRENT 1, MAX_QUEUE 16) measured directly and through the Worker under wrangler dev (EDGE_RUNTIME container, CONTAINER_URLS) in alternating rounds of ${windowSeconds} s per side and level (${roundsFor(1)} rounds at N = 1 and 4, ${roundsFor(16)} at 16; which side goes first alternates), so both sides share the machine's load. max_tokens ${maxTokens}, temperature 0, one short message. TTFT: from sending to the first content chunk (queueing included); answer: sending to the last chunk; decode at the client: per request, tokens after the first over the time from the first to the last content chunk (chunks that arrive together shorten it); decode in the container: its own usage.decode_tokens_per_second, which drops only when the forwarding takes CPU from the model (here the Worker, the container and the clients share 2 cores; on Cloudflare the Worker runs elsewhere). Target: forwarding adds < 5 ms to TTFT and < 3 % to decode.`,
        ],
      },
      {
        title: 'Group 5c: Container cold start (docker run -> /healthz 200, package mounted, model loaded)',
        columns: ['package', 'ms'],
        rows: coldRows,
        notes: [
          'The image is built (or found cached) first; the time covers container start, Node start and the model load.',
        ],
      },
    ],
  }
}
