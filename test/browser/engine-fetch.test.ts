// ondevice's engine .wasm fetch in Chromium, as a reloaded page on a bad network meets it: a
// server that never answers the .wasm, or sends part of it and then nothing, ends the load after
// the idle timeout with a retryable error naming the file (not a load that waits forever); the
// load's AbortSignal ends the wait and the download; and once a load compiled the engine, a
// reloaded page compiles the kept copy (Cache API) when the .wasm stalls or the browser is offline.
// Each "reload" is a new page of one browser context (the compiled module is per page; the kept
// copy per origin). The page is built with Vite, as an app's is.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
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
const wasmRequests: string[] = []
/** .wasm requests left unanswered whose connection the browser closed (an aborted download). */
let closedByBrowser = 0
let folder: string
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
  server = createServer((request, response) => {
    const asked = new URL(request.url ?? '/', 'http://x').pathname
    const path = asked === '/' ? '/index.html' : asked
    void (async () => {
      const body = await readFile(join(folder, normalize(path))).catch(() => undefined)
      if (!body) return void response.writeHead(404).end('not found')
      // Always to the network (no HTTP cache), so each load meets the server's mode.
      const headers = {
        'content-type': types[extname(path)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
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
async function reload(): Promise<Page> {
  const page = await context.newPage()
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
    const first = await loadEngine(online, { idleTimeoutMs: 800 })
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
