// The SDK in real Chromium the way an app on a bad connection, or one that promises to keep text
// on the device, meets it: a page built around createClient with the runtime's device host
// (ondevice's WebAssembly engine, the package in OPFS), a package served by a server of the
// test's own on 127.0.0.1 that cuts, stalls, or answers like a captive portal, and an "edge" that
// logs every request it gets (a CORS-allowing server that lists a model and answers chats 503).
//
// Privacy: with policy 'device-only' (docs/sdk.md, Options) no request carries the prompt or the
// answer, on success and on every handoff condition (a device that fails mid-answer, a slow one, a
// request over the context), and the edge gets no request at all; the server's log and
// Chromium's own request events (URLs and bodies) are both searched. A prefer-device control run
// shows the logs do see a prompt when one is sent. Offline once stored: a new client answers on
// the device while the package's server refuses connections, stalls, or serves a login page.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BrowserContext, Page } from 'playwright-core'
import { build, defaultClientConditions } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { serveApp } from '../../test/sdk/test-edge.ts'
import { createApp } from '../../worker/app.ts'
import { createNodeModelHost } from '../../worker/node.ts'
import type { ScenarioRequest, ScenarioResult } from './bad-connection-page/main.ts'
import { type LaunchedChromium, launchChromium } from './chromium.ts'

/** What the package's server does with requests under /pkg/. */
type PackageMode = 'normal' | 'refuse' | 'stall' | 'portal' | 'stall-all'

interface Logged {
  readonly server: 'site' | 'edge'
  readonly method: string
  readonly url: string
  readonly body: string
}

const secret = 'PRIVATE-ZEBRA-4711 my diagnosis is'
let folder: string
let pageDir: string
let packageDir: string
let site: Server
let siteUrl: string
let edge: Server
let edgeUrl: string
/** Other edges a scenario gave the page (their origins): the phone-home check allows them too. */
const otherEdges: string[] = []
let chromium: LaunchedChromium
let context: BrowserContext
let page: Page
let mode: PackageMode = 'normal'
/** The edge takes requests and never answers them. */
let edgeStalls = false
/** Cut the next GET of the weights after this many bytes. */
let cutWeightsAfter: number | undefined
const serverLog: Logged[] = []
/** Chromium's own view: every request any page or worker of the context made, with its body. */
const browserLog: { url: string; body: string }[] = []

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

const types: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
}

async function handleSite(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://x')
  serverLog.push({
    server: 'site',
    method: request.method ?? 'GET',
    url: url.pathname,
    body: await readBody(request),
  })
  const inPackage = url.pathname.startsWith('/pkg/')
  if (mode === 'stall-all') return
  if (inPackage && mode === 'refuse') {
    request.socket.destroy()
    return
  }
  if (inPackage && mode === 'stall') return // no answer; the connection stays open
  if (inPackage && mode === 'portal') {
    response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>Wi-Fi login</title>')
    return
  }
  const path = inPackage
    ? join(packageDir, normalize(url.pathname.slice('/pkg/'.length)))
    : join(pageDir, normalize(url.pathname === '/' ? 'index.html' : url.pathname))
  const body = await readFile(path).catch(() => undefined)
  if (!body) {
    response.writeHead(404).end('not found')
    return
  }
  const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '')
  const start = range ? Number(range[1]) : 0
  const headers: Record<string, string | number> = {
    'content-type': types[extname(path)] ?? 'application/octet-stream',
    'content-length': body.length - start,
  }
  if (range) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`
  response.writeHead(range ? 206 : 200, headers)
  if (inPackage && url.pathname.endsWith('.onnx_data') && cutWeightsAfter !== undefined) {
    const cut = cutWeightsAfter
    cutWeightsAfter = undefined
    response.write(body.subarray(start, start + cut), () => setTimeout(() => request.socket.destroy(), 100))
    return
  }
  response.end(body.subarray(start))
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-bad-connection-'))
  pageDir = join(folder, 'page')
  packageDir = join(folder, 'package')
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: 'q8', seed: 5 })
  await build({
    configFile: false,
    root: fileURLToPath(new URL('./bad-connection-page/', import.meta.url)),
    base: './',
    logLevel: 'error',
    publicDir: false,
    optimizeDeps: { exclude: ['onnxruntime-web'] },
    resolve: { conditions: ['ondevice-source', ...defaultClientConditions] },
    build: { outDir: pageDir, emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
  })
  site = createServer((request, response) => {
    handleSite(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500)
      response.end()
    })
  })
  edge = createServer((request, response) => {
    void readBody(request).then((body) => {
      serverLog.push({ server: 'edge', method: request.method ?? 'GET', url: request.url ?? '/', body })
      if (edgeStalls) return
      const cors = {
        'access-control-allow-origin': '*',
        'access-control-allow-headers': '*',
        'access-control-allow-methods': 'GET, POST, OPTIONS',
      }
      if (request.method === 'OPTIONS') {
        response.writeHead(204, cors).end()
        return
      }
      if (request.url === '/v1/models') {
        response
          .writeHead(200, { ...cors, 'content-type': 'application/json' })
          .end(JSON.stringify({ object: 'list', data: [{ id: 'test-model', object: 'model' }] }))
        return
      }
      response.writeHead(503, { ...cors, 'content-type': 'application/json' }).end(
        JSON.stringify({
          error: { message: 'down for the test', type: 'server_error', code: 'unavailable', param: null },
        }),
      )
    })
  })
  for (const server of [site, edge]) await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`
  edgeUrl = `http://127.0.0.1:${(edge.address() as AddressInfo).port}`
  chromium = await launchChromium({ webgpu: false })
  context = await chromium.newContext()
  context.on('request', (request) => browserLog.push({ url: request.url(), body: request.postData() ?? '' }))
  page = await context.newPage()
  await page.goto(`${siteUrl}/index.html`)
  await page.waitForFunction(() => 'runScenario' in globalThis)
}, 180_000)

afterAll(async () => {
  await chromium?.close()
  for (const server of [site, edge]) {
    server?.closeAllConnections()
    await new Promise((done) => server?.close(done))
  }
  if (folder) await rm(folder, { recursive: true, force: true })
})

function run(request: ScenarioRequest): Promise<ScenarioResult> {
  return page.evaluate(
    (scenario) =>
      (globalThis as unknown as { runScenario(r: ScenarioRequest): Promise<ScenarioResult> }).runScenario(
        scenario,
      ),
    request,
  )
}

const deviceOnly = () => ({ policy: 'device-only' as const, edge: { url: edgeUrl, connectTimeoutMs: 2_000 } })

/** No request, seen by the server or by Chromium, holds any of these texts (URL or body). */
function expectNowhere(texts: readonly string[], since: { server: number; browser: number }): void {
  const seen = [
    ...serverLog
      .slice(since.server)
      .map((entry) => `${entry.server} ${entry.method} ${entry.url}\n${entry.body}`),
    ...browserLog.slice(since.browser).map((entry) => `${entry.url}\n${entry.body}`),
  ]
  for (const text of texts.filter((item) => item.trim().length >= 6)) {
    expect(seen.filter((line) => line.includes(text))).toEqual([])
  }
}

const mark = () => ({ server: serverLog.length, browser: browserLog.length })
const edgeRequests = (since: { server: number }) =>
  serverLog.slice(since.server).filter((entry) => entry.server === 'edge')

describe('device-only keeps text on the device, in Chromium', () => {
  it('downloads through a cut connection (one prepare: retried, resumed with Range), then answers; nothing reaches the edge', async () => {
    const since = mark()
    cutWeightsAfter = 40_000
    const result = await run({ client: deviceOnly(), prompt: secret, maxTokens: 12, prepare: true })
    expect(result.error).toBeUndefined()
    expect(result.route).toBe('device')
    const weights = serverLog.slice(since.server).filter((entry) => entry.url.endsWith('.onnx_data'))
    expect(weights.length).toBe(2)
    // Progress never went backwards nor past its total.
    for (const [index, event] of result.progress.entries()) {
      if (event.totalBytes !== undefined) expect(event.loadedBytes).toBeLessThanOrEqual(event.totalBytes)
      if (index > 0) expect(event.loadedBytes).toBeGreaterThanOrEqual(result.progress[index - 1]!.loadedBytes)
    }
    expect(edgeRequests(since)).toEqual([])
    expectNowhere([secret, result.text], since)
  }, 120_000)

  it('a device that fails mid-answer, a slow device and a request over the context: clear errors or answers, still nothing sent', async () => {
    const since = mark()
    const failed = await run({ client: deviceOnly(), prompt: secret, maxTokens: 12, failAtToken: 3 })
    expect(failed.error).toMatchObject({ code: 'backend_failed' })
    expect(failed.parts.some((part) => part.type === 'handoff')).toBe(false)
    const slow = await run({
      client: { ...deviceOnly(), thresholds: { minDeviceTokensPerSecond: 1_000, slowDecodeWindowTokens: 2 } },
      prompt: secret,
      maxTokens: 8,
      slow: { afterCalls: 2, delayMs: 60 },
      alsoTooLong: true,
    })
    expect(slow.error).toBeUndefined()
    expect(slow.route).toBe('device')
    expect(slow.tooLong?.code).toBe('context_length_exceeded')
    expect(edgeRequests(since)).toEqual([])
    expectNowhere([secret, failed.text, slow.text], since)
  }, 120_000)

  it('control: prefer-device hands a failing answer to the edge, and the logs see the prompt go', async () => {
    const since = mark()
    const result = await run({
      client: {
        edge: { url: edgeUrl, connectTimeoutMs: 2_000 },
        thresholds: { minDeviceTokensPerSecond: 0.01 },
      },
      prompt: secret,
      maxTokens: 12,
      failAtToken: 3,
    })
    // The logging edge answers 503: the handoff fails with a retryable error after the shown text.
    expect(result.error?.isRetryable).toBe(true)
    expect(edgeRequests(since).some((entry) => entry.body.includes(secret))).toBe(true)
    expect(browserLog.slice(since.browser).some((entry) => entry.body.includes(secret))).toBe(true)
  }, 120_000)
})

describe('a handoff from the engine in Chromium to the engine on a real edge', () => {
  it('the device failing at decode step k = 1, 3, 7: the joined answer is the uninterrupted one', async () => {
    // The page's device (ondevice's engine in Chromium, q8, temperature 0.8 with a seed) fails
    // mid-answer; the edge app on Node (the engine, the same package) continues from the tokens
    // shown: the same logit bits on both hosts make the joined text the device's own answer.
    const modelHost = createNodeModelHost({
      model: packageDir,
      modelId: 'fixture',
      backend: 'wasm',
      dtype: 'q8',
    })
    const realEdge = await serveApp(
      createApp({ modelHost, log: () => undefined, allowedOrigins: ['*'] }).fetch,
      'fixture',
    )
    otherEdges.push(new URL(realEdge.url).origin)
    try {
      const prompt = 'Tell me about rivers and their bridges.'
      const whole = await run({ client: { policy: 'device-only' }, prompt, maxTokens: 16 })
      expect(whole.error).toBeUndefined()
      expect(whole.route).toBe('device')
      const client = {
        edge: { url: realEdge.url, connectTimeoutMs: 10_000 },
        thresholds: { minDeviceTokensPerSecond: 0.01 },
      }
      for (const k of [1, 3, 7]) {
        const handed = await run({ client, prompt, maxTokens: 16, failAtToken: k })
        expect(handed.error, `k=${k}`).toBeUndefined()
        expect(handed.route, `k=${k}`).toBe('device+edge')
        expect(handed.parts.filter((part) => part.type === 'handoff')).toHaveLength(1)
        expect(handed.text, `k=${k}`).toBe(whole.text)
      }
    } finally {
      await realEdge.close()
      await modelHost.dispose()
    }
  }, 180_000)
})

describe('an edge whose CORS preflight allows a fixed list of headers, in Chromium', () => {
  it("without Prefer in it (the SDK's chat asks Prefer: wait): the chat is asked again without the header and answered", async () => {
    // An OpenAI-compatible server of another make, its preflight allowing two headers: Chromium
    // refuses a request that carries any other, which reads in the page as a network failure.
    const asked: { method: string; url: string; prefer: string | undefined }[] = []
    const strict = createServer((request, response) => {
      void readBody(request).then(() => {
        asked.push({
          method: request.method ?? 'GET',
          url: request.url ?? '/',
          prefer: request.headers['prefer'] as string | undefined,
        })
        const cors = { 'access-control-allow-origin': '*' }
        if (request.method === 'OPTIONS') {
          response
            .writeHead(204, {
              ...cors,
              'access-control-allow-headers': 'content-type, authorization',
              'access-control-allow-methods': 'GET, POST, OPTIONS',
            })
            .end()
          return
        }
        const chunk = (delta: Record<string, unknown>, finish: string | null) =>
          `data: ${JSON.stringify({
            id: 'c',
            object: 'chat.completion.chunk',
            created: 0,
            model: 'strict-model',
            choices: [{ index: 0, delta, finish_reason: finish }],
          })}\n\n`
        response
          .writeHead(200, { ...cors, 'content-type': 'text/event-stream' })
          .end(
            chunk({ role: 'assistant', content: 'Hello' }, null) +
              chunk({ content: ' there' }, null) +
              chunk({}, 'stop') +
              'data: [DONE]\n\n',
          )
      })
    })
    await new Promise<void>((done) => strict.listen(0, '127.0.0.1', done))
    const strictUrl = `http://127.0.0.1:${(strict.address() as AddressInfo).port}`
    otherEdges.push(strictUrl)
    try {
      const answered = await run({
        client: { policy: 'edge-only', edge: { url: strictUrl, model: 'strict-model' } },
        prompt: 'Hi',
        maxTokens: 4,
      })
      expect(answered.error).toBeUndefined()
      expect(answered.route).toBe('edge')
      expect(answered.text).toBe('Hello there')
      // The preflight that named prefer was refused; the chat that reached the server had none.
      const chats = asked.filter((entry) => entry.url === '/v1/chat/completions')
      expect(chats.filter((entry) => entry.method === 'POST')).toEqual([
        { method: 'POST', url: '/v1/chat/completions', prefer: undefined },
      ])
    } finally {
      strict.closeAllConnections()
      await new Promise((done) => strict.close(done))
    }
  }, 60_000)
})

describe('offline once stored, in Chromium', () => {
  for (const packageMode of ['refuse', 'stall', 'portal', 'stall-all'] as const) {
    it(`the package's server ${packageMode === 'refuse' ? 'refuses connections' : packageMode === 'stall' ? 'never answers' : packageMode === 'portal' ? 'serves a captive portal page' : "never answers, nor does the page's origin (the engine's .wasm)"}: a new client answers on the device at once`, async () => {
      mode = packageMode
      const since = mark()
      try {
        // An app's default settings: prefer-device, no edge.
        const result = await run({ client: {}, prompt: 'Hello', maxTokens: 6 })
        expect(result.error).toBeUndefined()
        expect(result.route).toBe('device')
        // No file of the package was asked for: only manifest.json, whose refresh is bounded.
        const asked = serverLog.slice(since.server).filter((entry) => entry.url.startsWith('/pkg/'))
        expect(asked.filter((entry) => !entry.url.endsWith('/manifest.json'))).toEqual([])
        // The page's idle timeout is 10 s: a load that waited it out (twice: inspect, then load) would take 20 s.
        expect(result.milliseconds).toBeLessThan(8_000)
      } finally {
        mode = 'normal'
      }
    }, 60_000)
  }

  it('an edge is configured and the network stalls (package server and edge alike): the device answers at once, waiting on neither', async () => {
    mode = 'stall-all'
    edgeStalls = true
    const since = mark()
    try {
      // The edge's connectTimeoutMs is its default (15 s): an answer that waited on it would show.
      const result = await run({ client: { edge: { url: edgeUrl } }, prompt: 'Hello', maxTokens: 6 })
      expect(result.error).toBeUndefined()
      expect(result.route).toBe('device')
      expect(result.milliseconds).toBeLessThan(8_000)
      expect(edgeRequests(since)).toEqual([])
    } finally {
      mode = 'normal'
      edgeStalls = false
    }
  }, 60_000)

  it('the browser is offline, an edge configured: a new client answers on the device', async () => {
    await context.setOffline(true)
    try {
      const result = await run({ client: { edge: { url: edgeUrl } }, prompt: 'Hello', maxTokens: 6 })
      expect(result.error).toBeUndefined()
      expect(result.route).toBe('device')
    } finally {
      await context.setOffline(false)
    }
  }, 60_000)
})

describe('by default', () => {
  it("nothing phones home: every request of every scenario above went to the page's origin or the edge it was given", () => {
    const allowed = new Set([siteUrl, edgeUrl, ...otherEdges])
    const origins = browserLog
      .filter((entry) => /^(https?|wss?):/.test(entry.url))
      .map((entry) => new URL(entry.url).origin)
    expect(origins.filter((origin) => !allowed.has(origin))).toEqual([])
  })
})
