// ondevice's engine .wasm fetch in Chromium, as a reloaded page on a bad network meets it: a
// server that never answers the .wasm, or sends part of it and then nothing, ends the load after
// the idle timeout with a retryable error naming the file (not a load that waits forever); the
// load's AbortSignal ends the wait and the download; and once a load compiled the engine, a
// reloaded page compiles the kept copy (Cache API) when the .wasm stalls or the browser is offline.
// Each "reload" is a new page of one browser context (the compiled module is per page; the kept
// copy per origin). The page is built with Vite, as an app's is.
//
// Deploys: an app that serves the engine under a fixed name (no content hash) ships each version's
// .wasm under the same URL. A kept copy, or a served file, of an earlier deploy's build must never
// run with the next deploy's scripts (they may call kernels it lacks, or pass arguments it reads
// otherwise): only the build the scripts name runs.
import { createHash } from 'node:crypto'
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BrowserContext, Page } from 'playwright-core'
import { build, defaultClientConditions } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type LaunchedChromium, launchChromium } from './chromium.ts'
import type { EngineFetchRequest, EngineFetchResult } from './engine-fetch-page/main.ts'

/** What the server does with a .wasm request. */
let wasmMode: 'normal' | 'stall' | 'stall-body' = 'normal'
/** A Content-Security-Policy sent with the page, when set. */
let pagePolicy: string | undefined
const wasmRequests: string[] = []
/** .wasm requests left unanswered whose connection the browser closed (an aborted download). */
let closedByBrowser = 0
let folder: string
/** The folder the server answers from: `folder`, or one deploy of the fixed-name build. */
let root: string
let server: Server
let url: string
let chromium: LaunchedChromium
let context: BrowserContext

const types: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-engine-fetch-'))
  const [launched] = await Promise.all([
    launchChromium({ webgpu: false }),
    build({
      configFile: false,
      root: fileURLToPath(new URL('./engine-fetch-page/', import.meta.url)),
      base: './',
      logLevel: 'error',
      publicDir: false,
      resolve: { conditions: ['ondevice-source', ...defaultClientConditions] },
      build: { outDir: folder, emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
    }),
  ])
  chromium = launched
  root = folder
  server = createServer((request, response) => {
    const asked = new URL(request.url ?? '/', 'http://x').pathname
    const path = asked === '/' ? '/index.html' : asked
    void (async () => {
      const body = await readFile(join(root, normalize(path))).catch(() => undefined)
      if (!body) return void response.writeHead(404).end('not found')
      // Always to the network (no HTTP cache), so each load meets the server's mode.
      const headers = {
        'content-type': types[extname(path)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
        ...(pagePolicy && extname(path) === '.html' ? { 'content-security-policy': pagePolicy } : {}),
      }
      if (extname(path) === '.wasm') {
        wasmRequests.push(`${wasmMode} ${path}`)
        if (wasmMode !== 'normal') {
          request.socket.on('close', () => closedByBrowser++)
          if (wasmMode === 'stall-body') {
            response.writeHead(200, { ...headers, 'content-length': body.length })
            response.write(body.subarray(0, 1000))
          }
          return // nothing more: the connection stays open
        }
      }
      response.writeHead(200, headers).end(body)
    })()
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  context = await chromium.newContext()
}, 120_000)

afterAll(async () => {
  await context?.close()
  await chromium?.close()
  server?.closeAllConnections()
  await new Promise((done) => server?.close(done))
  if (folder) await rm(folder, { recursive: true, force: true })
})

/** A reload: a new page of the context (a fresh module map; the Cache API is the context's). */
async function reload(into: BrowserContext = context): Promise<Page> {
  const page = await into.newPage()
  await page.goto(url)
  await page.waitForSelector('body[data-ready="true"]')
  return page
}

async function loadEngine(page: Page, request: EngineFetchRequest): Promise<EngineFetchResult> {
  return page.evaluate(
    (body) =>
      (window as unknown as { loadEngine(r: EngineFetchRequest): Promise<EngineFetchResult> }).loadEngine(
        body,
      ),
    request,
  )
}

describe("the engine's .wasm fetch on a bad network, in Chromium", () => {
  it('no copy kept yet: a .wasm that never answers, or stops mid-body, is a retryable error naming the file after the idle timeout', async () => {
    for (const mode of ['stall', 'stall-body'] as const) {
      wasmMode = mode
      const page = await reload()
      const result = await loadEngine(page, { idleTimeoutMs: 800 })
      await page.close()
      expect(result.exports, mode).toBeUndefined()
      expect(result.error).toMatchObject({
        name: 'BackendError',
        code: 'backend_unavailable',
        isRetryable: true,
      })
      expect(result.error?.message).toMatch(
        /WebAssembly engine \(http:\/\/127\.0\.0\.1:\d+\/assets\/engine-relaxed-[\w-]+\.wasm\) stalled: no bytes for 800 ms/,
      )
      expect(result.error?.message).toMatch(
        mode === 'stall-body' ? /after 1000 bytes/ : /kept the connection open/,
      )
      expect(result.error?.message).toMatch(/no copy of it is kept in this browser/)
      expect(result.milliseconds).toBeGreaterThanOrEqual(700)
      expect(result.milliseconds).toBeLessThan(5_000)
    }
  }, 30_000)

  it("a page whose Content-Security-Policy forbids compiling WebAssembly is told to add 'wasm-unsafe-eval'", async () => {
    wasmMode = 'normal'
    pagePolicy = "default-src 'self'"
    try {
      const page = await reload()
      const result = await loadEngine(page, { idleTimeoutMs: 5_000 })
      await page.close()
      // It was an OndeviceError 'internal' carrying only the browser's CompileError.
      expect(result.error).toMatchObject({ name: 'BackendError', code: 'backend_unavailable' })
      expect(result.error?.message).toMatch(
        /Content-Security-Policy .* add 'wasm-unsafe-eval' to its script-src/,
      )
    } finally {
      pagePolicy = undefined
    }
    const allowed = await reload()
    expect((await loadEngine(allowed, { idleTimeoutMs: 5_000 })).error).toBeUndefined()
    await allowed.close()
  }, 30_000)

  it("the load's signal ends the wait at once and stops the download", async () => {
    wasmMode = 'stall'
    const page = await reload()
    const closedBefore = closedByBrowser
    const result = await loadEngine(page, { abortAfterMs: 300 })
    expect(result.error).toMatchObject({ name: 'AbortedError', code: 'aborted' })
    expect(result.error?.message).toMatch(/engine-relaxed-[\w-]+\.wasm\) was aborted/)
    expect(result.milliseconds).toBeLessThan(3_000)
    // The browser closed the request's connection (the fetch was aborted, not left to hang).
    await expect.poll(() => closedByBrowser - closedBefore, { timeout: 5_000 }).toBeGreaterThan(0)
    await page.close()
  }, 30_000)

  it('a load started just after the only other one was aborted gets the engine, not that abort (it shared the aborted download)', async () => {
    wasmMode = 'normal'
    const page = await reload()
    const result = await loadEngine(page, { abortedLoadFirst: true, idleTimeoutMs: 5_000 })
    await page.close()
    expect(result.error).toBeUndefined()
    expect(result.exports).toContain('gemm_q4_relaxed')
  }, 30_000)

  it('once a load compiled it, a reload whose .wasm stalls, or that is offline, compiles the kept copy', async () => {
    wasmMode = 'normal'
    const online = await reload()
    // Not the stall's 800 ms: this download must not be taken for one when the test's process,
    // which serves it, is left without a core for a while on a loaded machine.
    const first = await loadEngine(online, { idleTimeoutMs: 5_000 })
    await online.close()
    expect(first.error).toBeUndefined()
    expect(first.exports).toContain('gemm_q4_relaxed')
    // The network stalls: the kept copy after the idle timeout, the same module.
    wasmMode = 'stall'
    const stalled = await reload()
    const fromStall = await loadEngine(stalled, { idleTimeoutMs: 800 })
    await stalled.close()
    expect(fromStall.error).toBeUndefined()
    expect(fromStall.exports).toEqual(first.exports)
    expect(fromStall.milliseconds).toBeGreaterThanOrEqual(700)
    // Offline (the page's own files at hand, as a service worker or the HTTP cache would give
    // them): the fetch fails at once and the kept copy compiles, no timeout waited.
    wasmMode = 'normal'
    const offline = await reload()
    const requestsBefore = wasmRequests.length
    await context.setOffline(true)
    try {
      const fromCache = await loadEngine(offline, {})
      expect(fromCache.error).toBeUndefined()
      expect(fromCache.exports).toEqual(first.exports)
      expect(fromCache.milliseconds).toBeLessThan(5_000)
      expect(wasmRequests.length).toBe(requestsBefore)
    } finally {
      await context.setOffline(false)
      await offline.close()
    }
  }, 60_000)
})

/** Unsigned LEB128, as WebAssembly writes sizes. */
function leb128(value: number): number[] {
  const out: number[] = []
  let rest = value
  do {
    const byte = rest & 0x7f
    rest >>>= 7
    out.push(rest === 0 ? byte : byte | 0x80)
  } while (rest !== 0)
  return out
}

/** `bytes` with a custom section `name` holding `text` appended: another build, same code. */
function withCustomSection(bytes: Uint8Array, name: string, text: string): Uint8Array {
  const encodedName = new TextEncoder().encode(name)
  const content = [...leb128(encodedName.length), ...encodedName, ...new TextEncoder().encode(text)]
  return new Uint8Array([...bytes, 0, ...leb128(content.length), ...content])
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

describe('deploys of an app that serves the engine under a fixed name, in Chromium', () => {
  /** The next deploy: this version's scripts and .wasm. */
  let next: string
  /** The deploy before: scripts whose engine-relaxed.wasm is another build (marked 'earlier'). */
  let earlier: string
  /** The next deploy's scripts with the earlier deploy's engine-relaxed.wasm (a stale CDN or HTTP cache). */
  let mixed: string
  let deployContext: BrowserContext

  beforeAll(async () => {
    next = await mkdtemp(join(tmpdir(), 'ondevice-engine-deploy-'))
    await build({
      configFile: false,
      root: fileURLToPath(new URL('./engine-fetch-page/', import.meta.url)),
      base: './',
      logLevel: 'error',
      publicDir: false,
      resolve: { conditions: ['ondevice-source', ...defaultClientConditions] },
      build: {
        outDir: next,
        emptyOutDir: true,
        target: 'es2022',
        reportCompressedSize: false,
        rolldownOptions: { output: { assetFileNames: 'assets/[name][extname]' } },
      },
    })
    const wasmPath = join('assets', 'engine-relaxed.wasm')
    const current = new Uint8Array(await readFile(join(next, wasmPath)))
    const other = withCustomSection(current, 'ondevice-test-deploy', 'earlier')
    earlier = `${next}-earlier`
    mixed = `${next}-mixed`
    await cp(next, earlier, { recursive: true })
    await cp(next, mixed, { recursive: true })
    await writeFile(join(earlier, wasmPath), other)
    await writeFile(join(mixed, wasmPath), other)
    // The earlier deploy's scripts name its own build's sha256 (where scripts name one at all).
    for (const file of await readdir(join(earlier, 'assets'))) {
      if (!file.endsWith('.js')) continue
      const script = await readFile(join(earlier, 'assets', file), 'utf8')
      await writeFile(join(earlier, 'assets', file), script.replaceAll(sha256(current), sha256(other)))
    }
    deployContext = await chromium.newContext()
  }, 120_000)

  afterAll(async () => {
    root = folder
    await deployContext?.close()
    for (const deploy of [next, earlier, mixed])
      if (deploy) await rm(deploy, { recursive: true, force: true })
  })

  /** A reload of the page `deploy` serves; the load offline when asked (the page itself came online). */
  async function loadFrom(
    deploy: string,
    options: { offline?: boolean; into?: BrowserContext } = {},
  ): Promise<EngineFetchResult> {
    wasmMode = 'normal'
    root = deploy
    const into = options.into ?? deployContext
    const page = await reload(into)
    if (options.offline) await into.setOffline(true)
    try {
      return await loadEngine(page, { idleTimeoutMs: 2_000 })
    } finally {
      if (options.offline) await into.setOffline(false)
      await page.close()
    }
  }

  const keptKeys = async (): Promise<string[]> => {
    const page = await deployContext.newPage()
    await page.goto(url)
    const keys = await page.evaluate(async () =>
      (await (await caches.open('ondevice-engine')).keys()).map((request) => request.url),
    )
    await page.close()
    return keys
  }

  it("offline, the next deploy's scripts do not run the earlier deploy's kept .wasm: a retryable error says why; online, its own build is kept and the earlier one dropped", async () => {
    const first = await loadFrom(earlier)
    expect(first.error).toBeUndefined()
    expect(first.deploy).toBe('earlier')

    const offline = await loadFrom(next, { offline: true })
    expect(offline.deploy, "the earlier deploy's engine ran with the next deploy's scripts").toBeUndefined()
    expect(offline.error).toMatchObject({
      name: 'BackendError',
      code: 'backend_unavailable',
      isRetryable: true,
    })
    expect(offline.error?.message).toMatch(
      /Could not fetch ondevice's WebAssembly engine \(.*\/assets\/engine-relaxed\.wasm\)/,
    )
    expect(offline.error?.message).toMatch(
      /The copy of engine-relaxed\.wasm this browser kept was of another build \(an earlier deploy's\), which this page's scripts cannot run; it was dropped: load the page once online/,
    )

    // The earlier deploy keeps its copy again (and a copy as versions before the sha256 keys kept
    // it lies beside it); the next deploy online fetches its own, keeps it and drops both.
    expect((await loadFrom(earlier)).deploy).toBe('earlier')
    const seed = await deployContext.newPage()
    await seed.goto(url)
    await seed.evaluate(async (source) => {
      const cache = await caches.open('ondevice-engine')
      const [kept] = await cache.keys()
      const bytes = await (await cache.match(kept as Request))?.arrayBuffer()
      await cache.put(
        'https://ondevice.invalid/engine/engine-relaxed.wasm',
        new Response(bytes, { headers: { 'content-type': 'application/wasm', 'x-ondevice-source': source } }),
      )
    }, `${url}assets/engine-relaxed.wasm`)
    await seed.close()
    expect(await keptKeys()).toHaveLength(2)
    const online = await loadFrom(next)
    expect(online.error).toBeUndefined()
    expect(online.deploy).toBeUndefined()
    expect(online.exports).toContain('gemm_q4_relaxed')
    const keys = await keptKeys()
    expect(keys).toHaveLength(1)
    expect(keys[0]).toMatch(/\/engine-relaxed\.wasm$/)

    const again = await loadFrom(next, { offline: true })
    expect(again.error).toBeUndefined()
    expect(again.deploy).toBeUndefined()
    expect(again.exports).toEqual(online.exports)
  }, 60_000)

  it("storage nearly full (the model's files fill the origin's quota): the next deploy's copy is kept in place of the earlier deploy's, not refused beside it", async () => {
    // Keeping the next build's copy put it first and dropped the earlier deploy's after: with the
    // quota nearly used up (as a stored model leaves it), the put failed, the earlier copy stayed
    // (unusable by these scripts) and the next deploy had no copy, so the app failed offline.
    const full = await chromium.newContext()
    try {
      expect((await loadFrom(earlier, { into: full })).deploy).toBe('earlier')
      const page = await full.newPage()
      await page.goto(url)
      const { usage } = await page.evaluate(() => navigator.storage.estimate())
      // Room for less than one more copy of the engine (88 KB), more than nothing.
      const cdp = await full.newCDPSession(page)
      await cdp.send('Storage.overrideQuotaForOrigin', {
        origin: new URL(url).origin,
        quotaSize: (usage ?? 0) + 40_000,
      })
      const online = await loadFrom(next, { into: full })
      expect(online.error).toBeUndefined()
      const keys = await page.evaluate(async () =>
        (await (await caches.open('ondevice-engine')).keys()).map((request) => request.url),
      )
      expect(keys).toHaveLength(1)
      const offline = await loadFrom(next, { into: full, offline: true })
      expect(offline.error).toBeUndefined()
      expect(offline.deploy).toBeUndefined()
      await page.close()
    } finally {
      await full.close()
    }
  }, 60_000)

  it("a served .wasm of another build than the page's scripts (a stale CDN or HTTP cache) is refused: the kept copy of the right build runs, else a retryable error names both", async () => {
    // The context above keeps the next deploy's build.
    const requestsBefore = wasmRequests.length
    const withCopy = await loadFrom(mixed)
    expect(withCopy.error).toBeUndefined()
    expect(withCopy.deploy, "the served earlier build ran with the next deploy's scripts").toBeUndefined()
    // Asked twice: the second time past the HTTP cache.
    expect(wasmRequests.length - requestsBefore).toBe(2)

    const fresh = await chromium.newContext()
    try {
      const result = await loadFrom(mixed, { into: fresh })
      expect(result.deploy, "the served earlier build ran with the next deploy's scripts").toBeUndefined()
      expect(result.error).toMatchObject({
        name: 'BackendError',
        code: 'backend_unavailable',
        isRetryable: true,
      })
      expect(result.error?.message).toMatch(
        /engine \(.*\/assets\/engine-relaxed\.wasm\) is another build than this page's scripts were built with: its sha256 is [0-9a-f]{64}, they run engine-relaxed\.wasm with sha256 [0-9a-f]{64}/,
      )
      expect(result.error?.message).toMatch(
        /Deploy the scripts and the engine\*\.wasm files of one build together/,
      )
    } finally {
      await fresh.close()
    }
  }, 60_000)
})
