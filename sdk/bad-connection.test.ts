// The SDK's routing and handoff when the edge is unreachable or flaky (connection refused, an
// error status, silence, reset mid-stream), against the real edge app over HTTP on 127.0.0.1 and
// a device over core's test session: clear errors (retryable where a retry can help), no hang,
// no token that was shown lost, and a slow device whose edge cannot take over still answering.

import { createServer, type Server } from 'node:http'
import { type AddressInfo, createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { serve } from '@hono/node-server'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createRuntimeDeviceHost } from '../client-runtime/device-host/index.ts'
import { BackendError, OndeviceError } from '../core/errors.ts'
import type { StreamPart } from '../core/stream-parts.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import { serveApp as serveTestApp, startTestEdge, type TestEdge, unusedUrl } from '../test/sdk/test-edge.ts'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from '../worker/app.ts'
import { createClient } from './client.ts'

const messages = [{ role: 'user' as const, content: 'Tell me about the sea, briefly.' }]
const sampling = { temperature: 0.9, topK: 40, seed: 77, maxTokens: 16 }
// A device that turns slow after its 6th step: 80 ms a token against a 15 tok/s threshold.
const slowDevice = () => createTestDeviceHost({ slowAfterCalls: 6, slowDelayMs: 80 })
const slowThresholds = { minDeviceTokensPerSecond: 15, slowDecodeWindowTokens: 3 }

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const out: StreamPart[] = []
  for await (const part of parts) out.push(part)
  return out
}
const shown = (parts: readonly StreamPart[]) =>
  parts.flatMap((part) => (part.type === 'text-delta' ? [part.text] : [])).join('')
const shownIds = (parts: readonly StreamPart[]) =>
  parts.flatMap((part) => (part.type === 'text-delta' ? part.tokenIds : []))

let edge: TestEdge
/** Answers every request with headers never sent (an edge that accepts and then says nothing). */
let silent: Server
let silentUrl: string
/** Answers every request with 503 and a JSON error (an edge that is up but failing). */
let failing: Server
let failingUrl: string
const failingRequests: string[] = []
let expected: { text: string; tokenIds: readonly number[] }

beforeAll(async () => {
  edge = await startTestEdge()
  silent = createServer(() => undefined)
  failing = createServer((request, response) => {
    failingRequests.push(`${request.method} ${request.url}`)
    request.resume()
    response.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end(
      JSON.stringify({
        error: { message: 'overloaded', type: 'server_error', code: 'overloaded', param: null },
      }),
    )
  })
  for (const server of [silent, failing])
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
  failingUrl = `http://127.0.0.1:${(failing.address() as AddressInfo).port}`
  const reference = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
  expected = await reference.chat({ messages, ...sampling })
  await reference.dispose()
})

afterAll(async () => {
  await edge?.close()
  for (const server of [silent, failing]) {
    server?.closeAllConnections()
    await new Promise((done) => server?.close(done))
  }
})

describe('a device that slows mid-answer, and an edge that cannot take over', () => {
  for (const [name, url] of [
    ['refuses connections', () => unusedUrl()],
    ['answers 503', async () => failingUrl],
    ['accepts and never answers', async () => silentUrl],
  ] as const) {
    it(`edge ${name}: the device, which kept going, finishes the answer; no token lost or repeated`, async () => {
      const client = createClient(
        { edge: { url: await url(), connectTimeoutMs: 300 }, thresholds: slowThresholds },
        { deviceHost: slowDevice() },
      )
      const started = performance.now()
      const parts = await collect(client.stream({ messages, ...sampling }))
      await client.dispose()
      expect(performance.now() - started).toBeLessThan(10_000)
      const finish = parts.at(-1)
      if (finish?.type !== 'finish') throw new Error(`ended with ${JSON.stringify(finish)}`)
      expect(parts.some((part) => part.type === 'handoff')).toBe(false)
      expect(finish.text).toBe(expected.text)
      expect(finish.tokenIds).toEqual(expected.tokenIds)
      expect(shown(parts)).toBe(expected.text)
      expect(shownIds(parts)).toEqual(expected.tokenIds)
      expect(finish.usage.route).toBe('device')
      expect(finish.usage.routeReason).toMatch(
        /the device slowed \(decode ran at .*\) but the edge could not take over .*: the device finished the answer/,
      )
    })
  }

  it('aborted while the edge is asked to take over: no handoff, the device ends it as aborted with what it showed, at once', async () => {
    const client = createClient(
      { edge: { url: silentUrl, connectTimeoutMs: 5_000 }, thresholds: slowThresholds },
      { deviceHost: slowDevice() },
    )
    const controller = new AbortController()
    const parts: StreamPart[] = []
    let abortedAt = 0
    // The abort comes once the edge has been asked (its first request), while it says nothing.
    silent.once('request', () =>
      setTimeout(() => {
        abortedAt = performance.now()
        controller.abort()
      }, 200),
    )
    for await (const part of client.stream({ messages, ...sampling, signal: controller.signal }))
      parts.push(part)
    const endedAfterAbort = performance.now() - abortedAt
    await client.dispose()
    expect(parts.some((part) => part.type === 'handoff')).toBe(false)
    const finish = parts.at(-1)
    if (finish?.type !== 'finish') throw new Error(`ended with ${JSON.stringify(finish)}`)
    expect(finish.finishReason).toBe('abort')
    expect(finish.usage.route).toBe('device')
    expect(finish.usage.routeReason).toMatch(/the answer was aborted before the edge took over/)
    expect(finish.text).toBe(shown(parts))
    expect(finish.tokenIds).toEqual(shownIds(parts))
    expect(finish.usage.completionTokens).toBe(shownIds(parts).length)
    // Not after the edge's 5 s connect timeout.
    expect(endedAfterAbort).toBeLessThan(2_000)
  })

  it('the device finishes while a silent edge is asked: the answer ends then, not after the connect timeout', async () => {
    // The slowdown is seen at the 9th token; the device needs three more (80 ms each).
    const short = { ...sampling, maxTokens: 12 }
    const reference = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const alone = await reference.chat({ messages, ...short })
    await reference.dispose()
    const client = createClient(
      { edge: { url: silentUrl, connectTimeoutMs: 5_000 }, thresholds: slowThresholds },
      { deviceHost: slowDevice() },
    )
    const started = performance.now()
    const parts = await collect(client.stream({ messages, ...short }))
    const elapsed = performance.now() - started
    await client.dispose()
    const finish = parts.at(-1)
    if (finish?.type !== 'finish') throw new Error(`ended with ${JSON.stringify(finish)}`)
    expect(parts.some((part) => part.type === 'handoff')).toBe(false)
    expect(finish.usage.route).toBe('device')
    expect(finish.usage.routeReason).toMatch(/the device finished the answer before the edge answered/)
    expect(finish.tokenIds).toEqual(alone.tokenIds)
    expect(shown(parts)).toBe(alone.text)
    // It waited 5 s for the silent edge before.
    expect(elapsed).toBeLessThan(3_500)
  })

  it('once the edge takes a slowed answer over, the device stops (it generated, unseen, until the edge had streamed it all)', async () => {
    // An edge that takes ~2 s to stream 90 tokens, against a device at 80 ms a token meanwhile.
    const slowEdge = await startTestEdge({ session: { delayMs: 20 } })
    let deviceSteps = 0
    let stepsAtHandoff = -1
    const deviceHost = createTestDeviceHost({
      slowAfterCalls: 6,
      slowDelayMs: 80,
      session: {
        favor: () => {
          deviceSteps++
          return undefined
        },
      },
    })
    const client = createClient({ edge: { url: slowEdge.url }, thresholds: slowThresholds }, { deviceHost })
    try {
      const parts: StreamPart[] = []
      for await (const part of client.stream({ messages, ...sampling, maxTokens: 100 })) {
        parts.push(part)
        if (part.type === 'handoff') stepsAtHandoff = deviceSteps
      }
      const finish = parts.at(-1)
      if (finish?.type !== 'finish') throw new Error('no finish')
      expect(finish.usage.route).toBe('device+edge')
      expect(stepsAtHandoff).toBeGreaterThan(0)
      // At most a step already under way when the edge answered (it ran ~25 more before).
      expect(deviceSteps - stepsAtHandoff).toBeLessThanOrEqual(1)
    } finally {
      await client.dispose()
      await slowEdge.close()
    }
  })

  it('a reachable edge still takes a slowed answer over, the handoff part just before its text', async () => {
    const client = createClient(
      { edge: { url: edge.url }, thresholds: slowThresholds },
      { deviceHost: slowDevice() },
    )
    const parts = await collect(client.stream({ messages, ...sampling }))
    await client.dispose()
    const handoffAt = parts.findIndex((part) => part.type === 'handoff')
    expect(handoffAt).toBeGreaterThan(0)
    const finish = parts.at(-1)
    if (finish?.type !== 'finish') throw new Error('no finish')
    expect(finish.usage.route).toBe('device+edge')
    expect(finish.tokenIds).toEqual(expected.tokenIds)
    expect(shown(parts)).toBe(expected.text)
  })
})

describe('the device fails mid-answer and the edge is flaky', () => {
  it('the edge dies in the middle of the continuation: every token shown stays, then a retryable error', async () => {
    const app = createApp({ modelHost: createTestHost({ session: { delayMs: 30 } }), log: () => undefined })
    const instance = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(started))
    })
    const url = `http://127.0.0.1:${(instance.address() as AddressInfo).port}`
    const client = createClient(
      {
        edge: { url, connectTimeoutMs: 500, idleTimeoutMs: 2_000 },
        thresholds: { minDeviceTokensPerSecond: 1 },
      },
      { deviceHost: createTestDeviceHost({ failAtToken: 4 }) },
    )
    const parts: StreamPart[] = []
    const started = performance.now()
    let afterHandoff = 0
    for await (const part of client.stream({ messages, ...sampling })) {
      parts.push(part)
      if (
        parts.some((item) => item.type === 'handoff') &&
        part.type === 'text-delta' &&
        ++afterHandoff === 2
      ) {
        ;(instance as unknown as { closeAllConnections(): void }).closeAllConnections()
        instance.close()
      }
    }
    await client.dispose()
    expect(performance.now() - started).toBeLessThan(10_000)
    const error = parts.at(-1)
    if (error?.type !== 'error') throw new Error(`ended with ${JSON.stringify(error)}`)
    expect(error.error.isRetryable).toBe(true)
    expect(['edge_failed', 'edge_unavailable']).toContain(error.error.code)
    // What was shown, device and edge parts alike, is the start of the uninterrupted answer.
    const ids = shownIds(parts)
    expect(ids.length).toBeGreaterThanOrEqual(5)
    expect(ids).toEqual(expected.tokenIds.slice(0, ids.length))
    expect(expected.text.startsWith(shown(parts))).toBe(true)
  })

  it('the device cannot load and the edge refuses connections: one clear, retryable error at once', async () => {
    const client = createClient(
      {
        edge: { url: await unusedUrl(), connectTimeoutMs: 300 },
        thresholds: { minDeviceTokensPerSecond: 1 },
      },
      {
        deviceHost: createTestDeviceHost({
          loadError: new BackendError('backend_unavailable', 'no WebAssembly here'),
        }),
      },
    )
    const started = performance.now()
    const error = await client.chat({ messages, ...sampling }).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    await client.dispose()
    expect(performance.now() - started).toBeLessThan(5_000)
    expect(error).toBeInstanceOf(OndeviceError)
    expect((error as OndeviceError).isRetryable).toBe(true)
    expect((error as OndeviceError).message).toMatch(/no WebAssembly here/)
    expect((error as OndeviceError).message).toMatch(/Could not reach the edge/)
  })
})

describe('an edge that fails, then recovers', () => {
  // One failure used to keep the edge out of routing for a flat 30 s: an edge behind a load
  // balancer whose one instance was restarting (or still loading) lost every request it could
  // have answered meanwhile. Now: its Retry-After when it sends one, else a short backoff doubled
  // per failure in a row; then the edge is tried again.
  const chatCount = (edgeUnderTest: TestEdge) =>
    edgeUnderTest.requests.filter((request) => request === 'POST /v1/chat/completions').length

  it('its Retry-After (an edge still loading its model: 503 + Retry-After 5) is honoured, then the edge answers again, not 30 s later', async () => {
    const modelHost = createTestHost({ loadDelayMs: 3000 })
    void modelHost.preload?.()
    const app = createApp({ modelHost, log: () => {} })
    const loading = await serveTestApp(app.fetch, modelHost.modelId)
    const client = createClient(
      { policy: 'prefer-edge', edge: { url: loading.url }, thresholds: { minDeviceTokensPerSecond: 1 } },
      { deviceHost: createTestDeviceHost() },
    )
    try {
      const first = await client.chat({ messages, ...sampling })
      const failedAt = Date.now()
      expect(first.route).toBe('device')
      expect(first.routeReason).toMatch(
        /the edge failed \(The edge answered HTTP 503: The model is still loading/,
      )
      expect(chatCount(loading)).toBe(1)
      // Within its Retry-After: not asked, and the reason says it is starting, not unreachable.
      const second = await client.chat({ messages, ...sampling })
      expect(second.route).toBe('device')
      expect(second.routeReason).toMatch(/the edge is starting/)
      expect((await client.status()).edge.leftOut).toMatch(/the edge is starting/)
      expect(chatCount(loading)).toBe(1)
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, failedAt + 5_100 - Date.now())))
      const again = await client.chat({ messages, ...sampling })
      expect(again.route).toBe('edge')
      expect(chatCount(loading)).toBe(2)
    } finally {
      await client.dispose()
      await loading.close()
    }
  }, 30_000)

  it('without a Retry-After (connections cut): tried again after 2 s, then 4 s while it keeps failing, and used once it is back', async () => {
    let attempts = 0
    const cutting = createNetServer((socket) => {
      attempts++
      socket.destroy()
    })
    await new Promise<void>((done) => cutting.listen(0, '127.0.0.1', done))
    const port = (cutting.address() as AddressInfo).port
    const client = createClient(
      {
        policy: 'prefer-edge',
        edge: { url: `http://127.0.0.1:${port}` },
        thresholds: { minDeviceTokensPerSecond: 1 },
      },
      { deviceHost: createTestDeviceHost() },
    )
    let back: TestEdge | undefined
    const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
    try {
      expect((await client.chat({ messages, ...sampling })).route).toBe('device')
      const tried = attempts
      expect(tried).toBeGreaterThan(0)
      expect((await client.chat({ messages, ...sampling })).route).toBe('device')
      expect(attempts).toBe(tried)
      await wait(2_200)
      // Half-open: one more try, which fails; the next wait is 4 s.
      expect((await client.chat({ messages, ...sampling })).route).toBe('device')
      const triedAgainAt = Date.now()
      expect(attempts).toBeGreaterThan(tried)
      const retried = attempts
      await wait(2_200)
      expect((await client.chat({ messages, ...sampling })).route).toBe('device')
      expect(attempts).toBe(retried)
      // The edge comes back on the same address.
      await new Promise<void>((done) => cutting.close(() => done()))
      const modelHost = createTestHost()
      back = await serveTestApp(createApp({ modelHost, log: () => {} }).fetch, modelHost.modelId, port)
      await wait(Math.max(0, triedAgainAt + 4_100 - Date.now()))
      const answer = await client.chat({ messages, ...sampling })
      expect(answer.route).toBe('edge')
    } finally {
      await client.dispose()
      if (cutting.listening) await new Promise<void>((done) => cutting.close(() => done()))
      await back?.close()
    }
  }, 30_000)

  it('the wait is the same however the wall clock moves (set back a day: the edge stayed out for a day)', async () => {
    // A real clock change cannot be made in a test (NTP, a user, a phone syncing its time): Date.now
    // is what moves here, as in device-slot.test.ts.
    let attempts = 0
    const cutting = createNetServer((socket) => {
      attempts++
      socket.destroy()
    })
    await new Promise<void>((done) => cutting.listen(0, '127.0.0.1', done))
    const client = createClient(
      {
        policy: 'prefer-edge',
        edge: { url: `http://127.0.0.1:${(cutting.address() as AddressInfo).port}` },
        thresholds: { minDeviceTokensPerSecond: 1 },
      },
      { deviceHost: createTestDeviceHost() },
    )
    try {
      expect((await client.chat({ messages, ...sampling })).route).toBe('device')
      const tried = attempts
      const realNow = Date.now.bind(Date)
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 86_400_000)
      await new Promise((resolve) => setTimeout(resolve, 2_200))
      expect((await client.chat({ messages, ...sampling })).route).toBe('device')
      expect(attempts).toBeGreaterThan(tried)
    } finally {
      vi.restoreAllMocks()
      await client.dispose()
      await new Promise<void>((done) => cutting.close(() => done()))
    }
  }, 30_000)

  it('a device failing mid-answer while the edge is left out (within its Retry-After) is still handed off: nothing else could answer', async () => {
    // A chat app's answer failed on the device while the edge was still loading (503, Retry-After
    // 5): that answer ends in an error that keeps its text. The user's next answer fails on the
    // device too, a second later, with the edge up again but left out for its Retry-After: it
    // ended in an error (backend_failed) without the edge being asked, though the router's rule
    // is that an edge left out is still tried when nothing else could answer.
    const modelHost = createTestHost({ loadDelayMs: 1_000 })
    void modelHost.preload?.()
    const loading = await serveTestApp(createApp({ modelHost, log: () => {} }).fetch, modelHost.modelId)
    const client = createClient(
      { edge: { url: loading.url }, thresholds: { minDeviceTokensPerSecond: 1 } },
      { deviceHost: createTestDeviceHost({ failAtToken: 4 }) },
    )
    try {
      const first = await client.chat({ messages, ...sampling }).catch((error: unknown) => error)
      expect(first).toBeInstanceOf(OndeviceError)
      expect(first).toMatchObject({ code: 'edge_starting', isRetryable: true })
      expect((first as Error).message).toMatch(/still loading/)
      const partial = (first as OndeviceError).partialAnswer
      expect(partial?.tokenIds.length).toBeGreaterThanOrEqual(3)
      expect(partial?.tokenIds).toEqual(expected.tokenIds.slice(0, partial?.tokenIds.length))
      expect(expected.text.startsWith(partial?.text ?? '-')).toBe(true)
      // The edge has loaded; its Retry-After (5 s) is not over.
      await new Promise((resolve) => setTimeout(resolve, 1_500))
      const second = await client.chat({ messages, ...sampling })
      expect(second.route).toBe('device+edge')
      expect(second.tokenIds).toEqual(expected.tokenIds)
      expect(second.text).toBe(expected.text)
    } finally {
      await client.dispose()
      await loading.close()
    }
  }, 30_000)

  /** An edge (or a proxy in front of one) answering every chat with 503 and this Retry-After. */
  async function refusing(
    retryAfter: string,
  ): Promise<{ url: string; chats: () => number; close: () => Promise<void> }> {
    let chats = 0
    const server = createServer((request, response) => {
      if (request.url === '/v1/chat/completions') chats++
      request.resume()
      if (request.url === '/v1/models') {
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ object: 'list', data: [{ id: 'm', object: 'model' }] }))
        return
      }
      response.writeHead(503, { 'content-type': 'application/json', 'retry-after': retryAfter }).end(
        JSON.stringify({
          error: { message: 'unavailable', type: 'server_error', code: 'edge_unavailable', param: null },
        }),
      )
    })
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      chats: () => chats,
      close: () => {
        server.closeAllConnections()
        return new Promise<void>((done) => server.close(() => done()))
      },
    }
  }

  it('a busy edge (429 overloaded with Retry-After) is left out for its Retry-After like a 503, then answers again', async () => {
    // A 429 used to leave the edge in: every next request went to the busy edge, was refused
    // again and fell back, its Retry-After unread.
    const busy = await startTestEdge({
      session: { delayMs: 40 },
      // Queue full at once; its 429 says Retry-After 2 (half of QUEUE_TIMEOUT_MS).
      limits: { maxConcurrent: 1, maxQueue: 0, queueTimeoutMs: 4_000 },
    })
    const holder = new AbortController()
    const client = createClient(
      { policy: 'prefer-edge', edge: { url: busy.url }, thresholds: { minDeviceTokensPerSecond: 1 } },
      { deviceHost: createTestDeviceHost() },
    )
    try {
      // Another client's long answer holds the edge's one slot.
      const response = await fetch(`${busy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: busy.modelId, messages, max_tokens: 500, stream: true }),
        signal: holder.signal,
      })
      const reader = response.body?.getReader()
      await reader?.read()
      const first = await client.chat({ messages, ...sampling })
      const refusedAt = Date.now()
      expect(first.route).toBe('device')
      expect(first.routeReason).toMatch(/the edge failed \(The edge answered HTTP 429: The server is busy/)
      expect(chatCount(busy)).toBe(2)
      // Within its Retry-After: not asked, and the reason says it is busy (it said unreachable).
      const second = await client.chat({ messages, ...sampling })
      expect(second.route).toBe('device')
      expect(second.routeReason).toContain('the edge is busy (it answered 429 overloaded)')
      expect(second.routeReason).not.toContain('unreachable')
      expect(chatCount(busy)).toBe(2)
      holder.abort()
      await reader?.cancel().catch(() => undefined)
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, refusedAt + 2_100 - Date.now())))
      expect((await client.chat({ messages, ...sampling })).route).toBe('edge')
    } finally {
      holder.abort()
      await client.dispose()
      await busy.close()
    }
  }, 30_000)

  it('an edge left out after a 429 is still asked when the device cannot use the package: nothing else could answer', async () => {
    // The router tries an edge it left out when nothing else could answer, but a package the
    // device could not open skipped that: the device's error was thrown without asking the edge.
    // Since a 429 (and a starting edge's 503) leaves the edge out too, one busy moment made every
    // request of a page whose device cannot open the package fail with model_not_found for the
    // edge's Retry-After (up to 5 minutes for a rate limit), the edge free again or not.
    const busy = await startTestEdge({
      session: { delayMs: 40 },
      // Queue full at once; its 429 says Retry-After 2 (half of QUEUE_TIMEOUT_MS).
      limits: { maxConcurrent: 1, maxQueue: 0, queueTimeoutMs: 4_000 },
    })
    const holder = new AbortController()
    const client = createClient(
      { model: join(tmpdir(), 'ondevice-no-such-package'), edge: { url: busy.url } },
      { deviceHost: createRuntimeDeviceHost() },
    )
    try {
      const response = await fetch(`${busy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: busy.modelId, messages, max_tokens: 500, stream: true }),
        signal: holder.signal,
      })
      const reader = response.body?.getReader()
      await reader?.read()
      // The edge is the only route and it is busy: its own 429 comes back.
      await expect(client.chat({ messages, ...sampling })).rejects.toMatchObject({ code: 'overloaded' })
      expect(chatCount(busy)).toBe(2)
      holder.abort()
      await reader?.cancel().catch(() => undefined)
      // Within the Retry-After, the edge is free again and still the only route: it is asked.
      const result = await client.chat({ messages, ...sampling })
      expect(result.route).toBe('edge')
      expect(result.routeReason).toMatch(/the device can't use the package/)
      expect(chatCount(busy)).toBe(3)
    } finally {
      holder.abort()
      await client.dispose()
      await busy.close()
    }
  }, 30_000)

  it("'Retry-After: 0' from an edge that keeps failing does not cut the backoff: the next request does not ask it at once", async () => {
    const edge0 = await refusing('0')
    const client = createClient(
      { policy: 'prefer-edge', edge: { url: edge0.url }, thresholds: { minDeviceTokensPerSecond: 1 } },
      { deviceHost: createTestDeviceHost() },
    )
    try {
      expect((await client.chat({ messages, ...sampling })).route).toBe('device')
      expect(edge0.chats()).toBe(1)
      expect((await client.chat({ messages, ...sampling })).route).toBe('device')
      expect(edge0.chats()).toBe(1)
      await new Promise((resolve) => setTimeout(resolve, 2_200))
      expect((await client.chat({ messages, ...sampling })).route).toBe('device')
      expect(edge0.chats()).toBe(2)
    } finally {
      await client.dispose()
      await edge0.close()
    }
  }, 30_000)

  it("'Retry-After: 3600' (a misconfigured proxy) leaves the edge out for 5 minutes, not an hour", async () => {
    const hour = await refusing('3600')
    const client = createClient(
      { policy: 'prefer-edge', edge: { url: hour.url }, thresholds: { minDeviceTokensPerSecond: 1 } },
      { deviceHost: createTestDeviceHost() },
    )
    try {
      const first = await client.chat({ messages, ...sampling }).catch((error: unknown) => error)
      expect(first).toMatchObject({ route: 'device' })
      expect(hour.chats()).toBe(1)
      // The router's clock (performance.now, not the wall clock) moves on 4 minutes: still out.
      const realNow = performance.now.bind(performance)
      const spy = vi.spyOn(performance, 'now').mockImplementation(() => realNow() + 240_000)
      expect((await client.chat({ messages, ...sampling })).route).toBe('device')
      expect(hour.chats()).toBe(1)
      // 5 minutes and a second: asked again (and refused again).
      spy.mockImplementation(() => realNow() + 301_000)
      expect((await client.chat({ messages, ...sampling })).route).toBe('device')
      expect(hour.chats()).toBe(2)
    } finally {
      vi.restoreAllMocks()
      await client.dispose()
      await hour.close()
    }
  }, 30_000)

  it('answers in flight that the same outage cuts count as one failure: the edge is tried again after 2 s, not 16 s', async () => {
    // Four requests sent while the edge was up all fail with its one outage. Each one counted as
    // a failure in a row, so the wait doubled three more times (16 s) before anything was tried
    // again: one restart behind a load balancer cost a busy app the edge for 16 s.
    let attempts = 0
    const cutting = createNetServer((socket) => {
      attempts++
      socket.destroy()
    })
    await new Promise<void>((done) => cutting.listen(0, '127.0.0.1', done))
    const port = (cutting.address() as AddressInfo).port
    const client = createClient(
      {
        policy: 'prefer-edge',
        edge: { url: `http://127.0.0.1:${port}` },
        thresholds: { minDeviceTokensPerSecond: 1 },
      },
      { deviceHost: createTestDeviceHost() },
    )
    try {
      const answers = await Promise.all(
        Array.from({ length: 4 }, () => client.chat({ messages, ...sampling })),
      )
      const failedBy = Date.now()
      expect(answers.map((answer) => answer.route)).toEqual(['device', 'device', 'device', 'device'])
      const tried = attempts
      expect(tried).toBeGreaterThan(0)
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, failedBy + 2_200 - Date.now())))
      expect((await client.chat({ messages, ...sampling })).route).toBe('device')
      expect(attempts).toBeGreaterThan(tried)
    } finally {
      await client.dispose()
      await new Promise<void>((done) => cutting.close(() => done()))
    }
  }, 30_000)
})
