// The SDK in real Chromium keeps its HTTP/1.1 connection to the edge from one answer to the next:
// a page with an edge-only client asks the real edge app on Node (test/sdk/counting-edge.ts counts
// the TCP connections it accepts and the requests whose client went away) for answers one after
// another, and Chromium's own network events say how each request ended. The SDK used to cancel
// each answer's body at [DONE]: Chromium logged every completed answer as failed (net::ERR_ABORTED,
// DevTools' "canceled"), and wherever the body's end came a moment after that event each answer
// closed its connection (a new TCP and TLS handshake per answer) and the server saw a client that
// went away. sdk/edge-connections.test.ts does the same with Node's fetch.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Page, Request } from 'playwright-core'
import { build, defaultClientConditions } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AfterDone, type CountingEdge, startCountingEdge } from '../sdk/counting-edge.ts'
import { type LaunchedChromium, launchChromium } from './chromium.ts'
import type { AnswersRequest, AnswersResult } from './edge-connections-page/main.ts'

const answers = 5
const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript' }
let folder: string
let site: Server
let chromium: LaunchedChromium
let page: Page
/** How each request of the page to an edge ended, as Chromium tells it. */
const ended: { url: string; failure: string | undefined }[] = []

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-edge-connections-'))
  await build({
    configFile: false,
    root: fileURLToPath(new URL('./edge-connections-page/', import.meta.url)),
    base: './',
    logLevel: 'error',
    publicDir: false,
    resolve: { conditions: ['ondevice-source', ...defaultClientConditions] },
    build: { outDir: folder, emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
  })
  site = createServer((request, response) => {
    const pathname = new URL(request.url ?? '/', 'http://x').pathname
    const path = join(folder, normalize(pathname === '/' ? 'index.html' : pathname))
    readFile(path).then(
      (body) => response.writeHead(200, { 'content-type': types[extname(path)] ?? 'text/plain' }).end(body),
      () => response.writeHead(404).end('not found'),
    )
  })
  await new Promise<void>((done) => site.listen(0, '127.0.0.1', done))
  chromium = await launchChromium({ webgpu: false })
  const context = await chromium.newContext()
  const record = (request: Request) =>
    ended.push({ url: request.url(), failure: request.failure()?.errorText })
  context.on('requestfinished', record)
  context.on('requestfailed', record)
  page = await context.newPage()
  await page.goto(`http://127.0.0.1:${(site.address() as AddressInfo).port}/`)
  await page.waitForFunction(() => 'runAnswers' in globalThis)
}, 180_000)

afterAll(async () => {
  await chromium?.close()
  site?.closeAllConnections()
  await new Promise((done) => site?.close(done))
  if (folder) await rm(folder, { recursive: true, force: true })
})

async function withEdge(afterDone: AfterDone, use: (edge: CountingEdge) => Promise<void>): Promise<void> {
  const edge = await startCountingEdge(afterDone)
  try {
    await use(edge)
  } finally {
    await edge.close()
  }
}

const runAnswers = (request: AnswersRequest) =>
  page.evaluate(
    (r) => (globalThis as unknown as { runAnswers(r: AnswersRequest): Promise<AnswersResult> }).runAnswers(r),
    request,
  )

/** How the page's requests to `edge` ended, once Chromium has told all `count` of them. */
async function endings(edge: CountingEdge, count: number): Promise<string[]> {
  const of = () => ended.filter((entry) => entry.url.startsWith(edge.url))
  await expect.poll(() => of().length).toBe(count)
  return of().map((entry) => `${new URL(entry.url).pathname} ${entry.failure ?? 'finished'}`)
}

describe('an edge-only page asking for answers one after another', () => {
  it(`${answers} answers from the edge app: each request finished (not canceled), one connection`, async () => {
    // Before: 5 of 5 chat requests failed with net::ERR_ABORTED (the body's end came with [DONE]
    // here, so the connection happened to be kept).
    await withEdge({ kind: 'end' }, async (edge) => {
      const result = await runAnswers({ edgeUrl: edge.url, answers })
      expect(result.errors).toEqual([])
      expect(result.finishReasons).toEqual(Array(answers).fill('length'))
      expect(await endings(edge, answers + 1)).toEqual([
        '/v1/models finished',
        ...Array(answers).fill('/v1/chat/completions finished'),
      ])
      expect(edge.connections).toBe(1)
      expect(edge.aborted).toEqual([])
    })
  })

  it(`${answers} answers whose body ends 50 ms after [DONE]: one connection, no request the server sees abandoned`, async () => {
    // Before: 5 connections for 5 answers, and 5 chat requests aborted for the server.
    await withEdge({ kind: 'late-end', delayMs: 50 }, async (edge) => {
      const result = await runAnswers({ edgeUrl: edge.url, answers })
      expect(result.errors).toEqual([])
      expect(result.finishReasons).toEqual(Array(answers).fill('length'))
      expect(edge.connections).toBe(1)
      expect(edge.aborted).toEqual([])
      expect(await endings(edge, answers + 1)).not.toContainEqual(expect.stringContaining('ERR_'))
      expect(edge.log.filter((line) => line.status !== 200 && line.status !== 204)).toEqual([])
    })
  })

  it('the model list and /healthz, read three times each: every request finished, one connection', async () => {
    await withEdge({ kind: 'end' }, async (edge) => {
      const read = await page.evaluate(
        (edgeUrl) =>
          (
            globalThis as unknown as { runReads(r: { edgeUrl: string; reads: number }): Promise<number> }
          ).runReads({
            edgeUrl,
            reads: 3,
          }),
        edge.url,
      )
      expect(read).toBe(3)
      expect(await endings(edge, 6)).toEqual(
        Array(3).fill(['/v1/models finished', '/healthz finished']).flat(),
      )
      expect(edge.connections).toBe(1)
      expect(edge.aborted).toEqual([])
    })
  })

  it('answers aborted at their first token still cancel their request at once: the server counts each client gone', async () => {
    await withEdge({ kind: 'end' }, async (edge) => {
      const result = await runAnswers({
        edgeUrl: edge.url,
        answers: 3,
        maxTokens: 2000,
        abortAtFirstDelta: true,
      })
      expect(result.finishReasons).toEqual(['abort', 'abort', 'abort'])
      expect(result.texts.every((text) => text !== '')).toBe(true)
      await expect.poll(() => edge.aborted).toEqual(Array(3).fill('POST /v1/chat/completions'))
      await expect
        .poll(() => edge.log.filter((line) => line.method === 'POST').map((line) => line.status))
        .toEqual([499, 499, 499])
    })
  })
})
