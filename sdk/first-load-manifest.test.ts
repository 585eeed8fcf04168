// A URL package's first load on a bad connection, through the whole client: the runtime's device
// host over the Node store, a real HTTP package server on 127.0.0.1 that fails manifest.json as
// scripted (a dropped connection, 503s), and the test edge. prepare() must not fail on one dropped
// connection (nothing is stored yet, so nothing stands in for the manifest: it is retried as the
// package's files are), while a request the edge can answer is not held up by those retries.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, normalize } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { createRuntimeDeviceHost } from '../client-runtime/device-host/index.ts'
import { createNodeStore } from '../client-runtime/store/node-store.ts'
import { startTestEdge, type TestEdge } from '../test/sdk/test-edge.ts'
import { createClient } from './client.ts'

type Answer = 'drop' | 'unavailable'

let workDir: string
let packageDir: string
let server: Server
let model: string
let edge: TestEdge
/** The next manifest.json requests get these answers, in order; later ones the file. */
const manifestAnswers: Answer[] = []
/** Every manifest.json request gets a 503 while set. */
let manifestDown = false
let manifestRequests = 0

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ondevice-first-load-'))
  packageDir = join(workDir, 'package')
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: 'fp32' })
  server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname.replace(/^\/pkg\//, '')
    if (path === 'manifest.json') {
      manifestRequests++
      const answer = manifestDown ? 'unavailable' : manifestAnswers.shift()
      if (answer === 'drop') return void request.socket.destroy()
      if (answer === 'unavailable') return void response.writeHead(503).end('overloaded')
    }
    void readFile(join(packageDir, normalize(path))).then(
      (body) => response.writeHead(200, { 'content-length': body.length }).end(body),
      () => response.writeHead(404).end('not found'),
    )
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  model = `http://127.0.0.1:${(server.address() as AddressInfo).port}/pkg/`
  edge = await startTestEdge()
}, 120_000)

afterAll(async () => {
  await edge?.close()
  server?.closeAllConnections()
  await new Promise((done) => server?.close(done))
  if (workDir) await rm(workDir, { recursive: true, force: true })
})

/** A client over a fresh store (nothing of the package stored): its first load. */
async function firstLoadClient(options: { edge: boolean; downloadRetryDelayMs: number }) {
  const cacheDir = await mkdtemp(join(workDir, 'cache-'))
  return createClient(
    {
      model,
      backend: 'wasm',
      policy: options.edge ? 'prefer-device' : 'device-only',
      // A 2-core CI box runs this tiny fixture slowly; the probe must not send it to the edge.
      thresholds: { minDeviceTokensPerSecond: 1 },
      ...(options.edge ? { edge: { url: edge.url } } : {}),
    },
    {
      deviceHost: createRuntimeDeviceHost({
        store: createNodeStore({ cacheDir, downloadRetryDelayMs: options.downloadRetryDelayMs }),
      }),
    },
  )
}

describe("a URL package's first load when manifest.json fails", () => {
  it('prepare() with no edge: a dropped connection, then a 503, are retried and the model loads', async () => {
    manifestAnswers.push('drop', 'unavailable')
    manifestRequests = 0
    const client = await firstLoadClient({ edge: false, downloadRetryDelayMs: 50 })
    try {
      expect(await client.prepare()).toMatchObject({ route: 'device', cached: true, loaded: true })
      expect(manifestRequests).toBeGreaterThanOrEqual(3)
    } finally {
      await client.dispose()
    }
  }, 60_000)

  it('prepare() with an edge: a dropped connection does not leave the model undownloaded', async () => {
    manifestAnswers.push('drop')
    const client = await firstLoadClient({ edge: true, downloadRetryDelayMs: 50 })
    try {
      expect(await client.prepare()).toMatchObject({ route: 'device', cached: true, loaded: true })
    } finally {
      await client.dispose()
    }
  }, 60_000)

  it('a request the edge can answer is not held up by the retries: the package is asked for once, the edge answers', async () => {
    manifestDown = true
    manifestRequests = 0
    // Pauses of a minute: a request that waited on them would time out.
    const client = await firstLoadClient({ edge: true, downloadRetryDelayMs: 60_000 })
    try {
      const started = performance.now()
      const result = await client.chat({ messages: [{ role: 'user', content: 'Hello' }], maxTokens: 4 })
      expect(result.route).toBe('edge')
      expect(result.routeReason).toMatch(
        /Could not reach http:.*\/pkg\/ \(HTTP 503\) and nothing of it is stored/,
      )
      expect(performance.now() - started).toBeLessThan(10_000)
      expect(manifestRequests).toBe(1)
    } finally {
      manifestDown = false
      await client.dispose()
    }
  }, 30_000)

  it("an abort (the request's, prepare()'s, or dispose()) ends a wait through the manifest's retries at once", async () => {
    // The retries pause for seconds to minutes (Retry-After, downloadRetryDelayMs): the router's
    // look at the package (before any load) took no signal, so a device-only request or prepare()
    // aborted meanwhile went on waiting out every pause.
    manifestDown = true
    try {
      const timed = async (
        run: (client: Awaited<ReturnType<typeof firstLoadClient>>, signal: AbortSignal) => Promise<unknown>,
        dispose = false,
      ) => {
        const client = await firstLoadClient({ edge: false, downloadRetryDelayMs: 60_000 })
        const controller = new AbortController()
        const started = performance.now()
        setTimeout(() => (dispose ? void client.dispose() : controller.abort()), 300)
        const outcome = await run(client, controller.signal).then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        )
        const ms = performance.now() - started
        await client.dispose()
        return { outcome, ms }
      }
      const streamed = await timed(async (client, signal) => {
        const parts = []
        for await (const part of client.stream({
          messages: [{ role: 'user', content: 'Hello' }],
          maxTokens: 4,
          signal,
        }))
          parts.push(part)
        return parts.at(-1)
      })
      expect(streamed.ms).toBeLessThan(5_000)
      expect(streamed.outcome).toMatchObject({ value: { type: 'finish', finishReason: 'abort' } })
      const prepared = await timed((client, signal) => client.prepare({ signal }))
      expect(prepared.ms).toBeLessThan(5_000)
      expect(prepared.outcome).toMatchObject({ error: { name: 'AbortedError' } })
      const disposed = await timed(
        (client) => client.chat({ messages: [{ role: 'user', content: 'Hello' }], maxTokens: 4 }),
        true,
      )
      expect(disposed.ms).toBeLessThan(5_000)
      expect(disposed.outcome).toMatchObject({ error: { name: 'AbortedError' } })
    } finally {
      manifestDown = false
    }
  }, 120_000)
})
