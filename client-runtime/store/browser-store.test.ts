// The browser model store in Chromium (OPFS and the Cache API), against a real static server on
// 127.0.0.1: download with progress and sha256 check, ranged reads of a stored file (what the
// engine loads weights through), isCached / delete, a corrupted file rejected
// and not kept, a missing file and a missing package as clear errors. (Interrupted-download
// resume is covered on Node in node-store.test.ts.) Two tabs loading one package at once both get
// it; a tab closed while its Web Worker downloads leaves what arrived for the next load's Range
// resume. manifest.json redirected to another origin is refused.
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type StaticServer, startStaticServer } from '../../demo/static-server.ts'
import { type LaunchedChromium, launchChromium } from '../../test/browser/chromium.ts'
import type { StoreCheck } from '../../test/client-runtime/browser-store-page/main.ts'

const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex')
const weights = new Uint8Array(200_000).map((_, index) => (index * 7919) % 251)
const config = JSON.stringify({ model_type: 'llama' })

async function writePackage(folder: string, served: Uint8Array): Promise<void> {
  await mkdir(join(folder, 'onnx'), { recursive: true })
  await writeFile(join(folder, 'config.json'), config)
  await writeFile(join(folder, 'onnx', 'model.onnx'), served)
  const files = [
    { path: 'config.json', bytes: config.length, sha256: sha256(config) },
    { path: 'onnx/model.onnx', bytes: weights.length, sha256: sha256(weights) },
    { path: 'onnx/missing.onnx', bytes: 3, sha256: sha256('abc') },
  ]
  await writeFile(join(folder, 'manifest.json'), JSON.stringify({ format: 'ondevice-package/1', files }))
}

let folder: string
let server: StaticServer
let chromium: LaunchedChromium
let results: Record<string, StoreCheck>
let flakyServer: Server | undefined
const rangeHeaders: (string | undefined)[] = []
const stallRangeHeaders: (string | undefined)[] = []
const trickleRangeHeaders: (string | undefined)[] = []
let resumeResult: StoreCheck
let redirectResult: StoreCheck
let stallResult: StoreCheck
let tabResults: StoreCheck[]
let workerTabResults: StoreCheck[]
let closedTab: StoreCheck
let insecureResult: StoreCheck
let reopenedTab: StoreCheck

/**
 * Serves the built page and a package whose first weights download breaks off after 80 KB (the
 * static server always answers whole), on one origin so the page needs no CORS.
 */
async function startFlakyServer(pageDir: string, packageDir: string, otherOrigin: string): Promise<Server> {
  let broken = false
  let stalled = false
  const flaky = createServer(async (request, response) => {
    let path = new URL(request.url ?? '/', 'http://x').pathname
    if (path === '/stall/onnx/model.onnx') stallRangeHeaders.push(request.headers.range)
    if (path === '/stall/onnx/model.onnx' && !stalled) {
      // Headers and 50 KB, then silence on an open connection (closed by the test's afterAll).
      stalled = true
      response.writeHead(200, { 'content-length': weights.length })
      response.write(weights.subarray(0, 50_000))
      return
    }
    if (path === '/trickle/onnx/model.onnx') {
      // From the asked offset in 10 KB pieces, 50 ms apart, until the tab goes away.
      trickleRangeHeaders.push(request.headers.range)
      const start = Number(/^bytes=(\d+)-$/.exec(request.headers.range ?? '')?.[1] ?? 0)
      response.writeHead(start > 0 ? 206 : 200, {
        'content-length': weights.length - start,
        'content-type': 'application/octet-stream',
        ...(start > 0 ? { 'content-range': `bytes ${start}-${weights.length - 1}/${weights.length}` } : {}),
      })
      for (let at = start; at < weights.length && !response.destroyed; at += 10_000) {
        response.write(weights.subarray(at, at + 10_000))
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      response.end()
      return
    }
    if (path === '/slow/onnx/model.onnx') {
      // The whole file in ten pieces over about a second, so two tabs' downloads overlap.
      response.writeHead(200, {
        'content-length': weights.length,
        'content-type': 'application/octet-stream',
      })
      const piece = Math.ceil(weights.length / 10)
      for (let start = 0; start < weights.length; start += piece) {
        response.write(weights.subarray(start, start + piece))
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      response.end()
      return
    }
    if (path.startsWith('/stall/') || path.startsWith('/slow/') || path.startsWith('/trickle/'))
      path = `/flaky/${path.slice(path.indexOf('/', 1) + 1)}`
    if (path === '/cross/manifest.json') {
      // To the static server: another origin (another port) that allows CORS.
      response.writeHead(302, { location: `${otherOrigin}/pkg/manifest.json` }).end()
      return
    }
    const isWeights = path === '/flaky/onnx/model.onnx' && !request.url?.startsWith('/stall/')
    const file = path.startsWith('/flaky/')
      ? join(packageDir, ...path.slice('/flaky/'.length).split('/'))
      : join(pageDir, path === '/' ? 'index.html' : path)
    const body = await readFile(file).catch(() => undefined)
    if (!body) {
      response.writeHead(404).end()
      return
    }
    if (isWeights) rangeHeaders.push(request.headers.range)
    if (isWeights && !broken) {
      broken = true
      response.writeHead(200, { 'content-length': body.length })
      response.write(body.subarray(0, 80_000), () => setTimeout(() => request.socket.destroy(), 100))
      return
    }
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '')
    const start = range ? Number(range[1]) : 0
    const type = file.endsWith('.html')
      ? 'text/html'
      : file.endsWith('.js')
        ? 'text/javascript'
        : 'application/octet-stream'
    response.writeHead(range ? 206 : 200, { 'content-length': body.length - start, 'content-type': type })
    response.end(body.subarray(start))
  })
  await new Promise<void>((done) => flaky.listen(0, '127.0.0.1', done))
  return flaky
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-browser-store-'))
  await writePackage(join(folder, 'pkg'), weights)
  const corrupted = weights.slice()
  corrupted[777] = (corrupted[777] as number) ^ 1
  await writePackage(join(folder, 'bad'), corrupted)
  await build({
    root: fileURLToPath(new URL('../../test/client-runtime/browser-store-page/', import.meta.url)),
    logLevel: 'warn',
    configFile: false,
    base: './',
    build: { outDir: join(folder, 'page'), emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
  })
  server = await startStaticServer({
    mounts: [
      { prefix: '/pkg/', directory: join(folder, 'pkg') },
      { prefix: '/bad/', directory: join(folder, 'bad') },
      { prefix: '/', directory: join(folder, 'page') },
    ],
  })
  chromium = await launchChromium({ webgpu: false })
  const page = await (await chromium.newContext()).newPage()
  await page.goto(`${server.url}/index.html`)
  await page.waitForFunction(() => 'runStoreChecks' in globalThis)
  results = await page.evaluate(() =>
    (globalThis as unknown as { runStoreChecks: () => Promise<Record<string, StoreCheck>> }).runStoreChecks(),
  )

  // The same page by a name that is not localhost over plain HTTP: not a secure context.
  const insecureChromium = await launchChromium({
    webgpu: false,
    extraArgs: ['--host-resolver-rules=MAP insecure.test 127.0.0.1'],
  })
  try {
    const insecurePage = await (await insecureChromium.newContext()).newPage()
    await insecurePage.goto(`${server.url.replace('127.0.0.1', 'insecure.test')}/index.html`)
    await insecurePage.waitForFunction(() => 'runInsecureCheck' in globalThis)
    insecureResult = await insecurePage.evaluate(() =>
      (globalThis as unknown as { runInsecureCheck: () => Promise<StoreCheck> }).runInsecureCheck(),
    )
  } finally {
    await insecureChromium.close()
  }

  flakyServer = await startFlakyServer(join(folder, 'page'), join(folder, 'pkg'), server.url)
  const flakyPage = await (await chromium.newContext()).newPage()
  await flakyPage.goto(`http://127.0.0.1:${(flakyServer.address() as AddressInfo).port}/index.html`)
  await flakyPage.waitForFunction(() => 'runResumeCheck' in globalThis)
  resumeResult = await flakyPage.evaluate(() =>
    (globalThis as unknown as { runResumeCheck: () => Promise<StoreCheck> }).runResumeCheck(),
  )
  redirectResult = await flakyPage.evaluate(() =>
    (globalThis as unknown as { runRedirectCheck: () => Promise<StoreCheck> }).runRedirectCheck(),
  )
  stallResult = await flakyPage.evaluate(() =>
    (globalThis as unknown as { runStallCheck: () => Promise<StoreCheck> }).runStallCheck(),
  )
  // Two tabs of one origin (one context, so one OPFS) loading the same package for the first time.
  const tabsContext = await chromium.newContext()
  const tabs = await Promise.all([tabsContext.newPage(), tabsContext.newPage()])
  for (const tab of tabs) {
    await tab.goto(`http://127.0.0.1:${(flakyServer.address() as AddressInfo).port}/index.html`)
    await tab.waitForFunction(() => 'runTabCheck' in globalThis)
  }
  // A tab closed while its model worker downloads, then the app opened again.
  const closing = await tabsContext.newPage()
  await closing.goto(`http://127.0.0.1:${(flakyServer.address() as AddressInfo).port}/index.html`)
  await closing.waitForFunction(() => 'runWorkerDownload' in globalThis)
  closedTab = await closing.evaluate(() =>
    (
      globalThis as unknown as { runWorkerDownload: (until: number) => Promise<StoreCheck> }
    ).runWorkerDownload(60_000),
  )
  await closing.close()
  const reopened = await tabsContext.newPage()
  await reopened.goto(`http://127.0.0.1:${(flakyServer.address() as AddressInfo).port}/index.html`)
  await reopened.waitForFunction(() => 'runWorkerDownload' in globalThis)
  reopenedTab = await reopened.evaluate(() =>
    (globalThis as unknown as { runWorkerDownload: () => Promise<StoreCheck> }).runWorkerDownload(),
  )
  tabResults = await Promise.all(
    tabs.map((tab) =>
      tab.evaluate(() => (globalThis as unknown as { runTabCheck: () => Promise<StoreCheck> }).runTabCheck()),
    ),
  )
  // The same, each tab's store in its model worker (sync access handles on the .partial files).
  const workerContext = await chromium.newContext()
  const workerTabs = await Promise.all([workerContext.newPage(), workerContext.newPage()])
  for (const tab of workerTabs) {
    await tab.goto(`http://127.0.0.1:${(flakyServer.address() as AddressInfo).port}/index.html`)
    await tab.waitForFunction(() => 'runWorkerDownload' in globalThis)
  }
  workerTabResults = await Promise.all(
    workerTabs.map((tab) =>
      tab.evaluate(() =>
        (
          globalThis as unknown as {
            runWorkerDownload: (until: undefined, path: string) => Promise<StoreCheck>
          }
        ).runWorkerDownload(undefined, '/slow/'),
      ),
    ),
  )
}, 120_000)

afterAll(async () => {
  if (flakyServer) {
    const running = flakyServer
    running.closeAllConnections()
    await new Promise((done) => running.close(done))
  }
  await chromium?.close()
  await server?.close()
  await rm(folder, { recursive: true, force: true })
})

describe.each(['opfs', 'cache'])('browser store on %s', (backend) => {
  it('downloads with progress, verifies, stores, and deletes', () => {
    const result = results[backend] as StoreCheck
    const checksum = weights.reduce((sum, value) => (sum * 31 + value) % 1_000_003, 0)
    expect(result).toMatchObject({
      before: false,
      after: true,
      afterDelete: false,
      length: weights.length,
      checksum,
      rangeMatches: true,
      pastEnd: { error: { code: 'download_failed', message: expect.stringMatching(/ends at byte 200000/) } },
      again: config,
    })
    expect(result.last).toMatchObject({
      phase: 'done',
      loadedBytes: weights.length + config.length,
      totalBytes: weights.length + config.length,
    })
    expect(result.downloads).toBeGreaterThan(0)
    expect(result.concurrentOpens).toEqual(Array(6).fill('opened'))
  })

  it('rejects a corrupted file without keeping it; missing file and missing package are clear errors', () => {
    const result = results[backend] as StoreCheck
    expect(result.corrupted).toMatchObject({ error: { name: 'StoreError', code: 'integrity_failed' } })
    expect(result.corruptedKept).toBe(false)
    expect(result.missing).toMatchObject({
      error: { code: 'model_not_found', message: expect.stringMatching(/HTTP 404/) },
    })
    expect(result.noPackage).toMatchObject({
      error: { code: 'model_not_found', message: expect.stringMatching(/No model package/) },
    })
  })
})

describe('browser store redirects', () => {
  it('refuses manifest.json redirected to another origin, even one that allows CORS, and stores nothing', () => {
    expect(redirectResult.refused).toMatchObject({
      error: {
        code: 'model_invalid',
        message: expect.stringMatching(/redirected to another origin \(http:\/\/127\.0\.0\.1:\d+\)/),
      },
    })
    expect(redirectResult.stored).toBe(false)
  })
})

describe('browser store idle timeout (OPFS)', () => {
  it('fails a download whose server stalls mid-body with a retryable download_failed, then resumes it', () => {
    expect(stallResult.first).toMatchObject({
      error: {
        code: 'download_failed',
        message: expect.stringMatching(/stalled: no bytes for 2000 ms after \d+ bytes/),
      },
    })
    expect(stallResult.firstMs).toBeGreaterThanOrEqual(1_980)
    expect(stallResult.firstMs).toBeLessThan(10_000)
    expect(stallResult.partialBytes).toBeGreaterThan(0)
    // The retry asks for the rest only, from what the stalled try kept.
    expect(stallRangeHeaders).toEqual([undefined, `bytes=${stallResult.partialBytes}-`])
    const checksum = weights.reduce((sum, value) => (sum * 31 + value) % 1_000_003, 0)
    expect(stallResult).toMatchObject({ length: weights.length, checksum })
  })
})

describe('browser store on a page that is not a secure context', () => {
  it('refuses with what to do, not a TypeError from crypto.subtle', () => {
    // It failed with "Cannot read properties of undefined (reading 'digest')".
    expect(insecureResult.isSecureContext).toBe(false)
    expect(insecureResult.opened).toMatchObject({
      error: { name: 'BackendError', code: 'backend_unavailable' },
    })
    const { message } = (insecureResult.opened as { error: { message: string } }).error
    expect(message).toMatch(/http:\/\/insecure\.test:\d+: it is not a secure context/)
    expect(message).toMatch(/over HTTPS .* or open it on localhost/)
  })
})

describe('browser store in two tabs (OPFS)', () => {
  it('loads one package in two tabs at once: both get the verified file', () => {
    // Each tab's store shares its downloads only within the tab; both wrote the same .partial
    // files, and one tab's load failed ("A FileSystemHandle cannot be moved while it is locked").
    const checksum = weights.reduce((sum, value) => (sum * 31 + value) % 1_000_003, 0)
    expect(tabResults).toEqual([
      { loaded: { length: weights.length, checksum } },
      { loaded: { length: weights.length, checksum } },
    ])
  })
})

describe('browser store in two tabs, each in its model worker (OPFS, sync access handles)', () => {
  it('loads one package in two tabs at once: both get the verified file', () => {
    const checksum = weights.reduce((sum, value) => (sum * 31 + value) % 1_000_003, 0)
    expect(workerTabResults).toEqual([
      { done: { length: weights.length, checksum } },
      { done: { length: weights.length, checksum } },
    ])
  })
})

describe('browser store: a tab closed mid-download (OPFS, in a Web Worker)', () => {
  it('resumes where the closed tab left off', () => {
    // A writable stream's bytes live in a swap file until close(): the tab closed at 60 KB of
    // 200 KB and the next load asked for the whole file again (no Range).
    expect(Number(closedTab.progress)).toBeGreaterThanOrEqual(60_000)
    expect(trickleRangeHeaders).toHaveLength(2)
    expect(trickleRangeHeaders[0]).toBeUndefined()
    expect(Number(/^bytes=(\d+)-$/.exec(trickleRangeHeaders[1] ?? '')?.[1])).toBeGreaterThanOrEqual(60_000)
    const checksum = weights.reduce((sum, value) => (sum * 31 + value) % 1_000_003, 0)
    expect(reopenedTab).toEqual({ done: { length: weights.length, checksum } })
  })
})

describe('browser store resume (OPFS)', () => {
  it('resumes an interrupted download with an HTTP Range request', () => {
    expect(resumeResult.first).toMatchObject({ error: { code: 'download_failed' } })
    expect(rangeHeaders[0]).toBeUndefined()
    expect(Number(/^bytes=(\d+)-$/.exec(rangeHeaders[1] ?? '')?.[1])).toBeGreaterThan(0)
    const checksum = weights.reduce((sum, value) => (sum * 31 + value) % 1_000_003, 0)
    expect(resumeResult).toMatchObject({ length: weights.length, checksum })
  })
})
