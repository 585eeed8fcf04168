// A request body sent over a slow link. The SDK's connectTimeoutMs waits for the edge's response
// headers, and no platform's fetch says how much of a body is sent, so a large conversation over
// a bad phone connection used to be given up on while the edge was still reading it (a retryable
// error, then the same upload again). Here a real TCP proxy passes the client's bytes at 16 KB/s to
// the real edge app over HTTP on 127.0.0.1, and the edge must answer the 40 KB request.

import type { AddressInfo } from 'node:net'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EdgeError } from '../core/errors.ts'
import { startTestEdge, type TestEdge } from '../test/sdk/test-edge.ts'
import { createClient } from './client.ts'
import { headersTimeoutMs } from './edge-client.ts'

const bytesPerTick = 800
const tickMs = 50 // 16 KB/s

/** Passes what the client sends at 16 KB/s, and what the edge sends back at once. */
function throttlingProxy(targetPort: number): Server {
  return createServer((client: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1')
    const pending: Buffer[] = []
    const timer = setInterval(() => {
      let budget = bytesPerTick
      while (budget > 0 && pending.length > 0) {
        const head = pending[0]!
        const piece = head.subarray(0, budget)
        upstream.write(piece)
        budget -= piece.byteLength
        if (piece.byteLength === head.byteLength) pending.shift()
        else pending[0] = head.subarray(piece.byteLength)
      }
    }, tickMs)
    client.on('data', (chunk: Buffer) => pending.push(chunk))
    upstream.pipe(client)
    const close = () => {
      clearInterval(timer)
      client.destroy()
      upstream.destroy()
    }
    client.on('close', close)
    upstream.on('close', close)
    client.on('error', close)
    upstream.on('error', close)
  })
}

let edge: TestEdge
let proxy: Server
let proxyUrl: string

beforeAll(async () => {
  edge = await startTestEdge({ limits: { maxPromptCharacters: 100_000 } })
  proxy = throttlingProxy(Number(new URL(edge.url).port))
  await new Promise<void>((done) => proxy.listen(0, '127.0.0.1', done))
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise((done) => proxy.close(done))
  await edge.close()
})

// ~40 KB of conversation: 2.5 s through the proxy, where connectTimeoutMs is 1 s.
const longConversation = [
  {
    role: 'user' as const,
    // Runs of spaces are few tokens and many bytes: within the model's context, long on the wire.
    content: `Summarise these notes. ${`tide${' '.repeat(124)}`.repeat(320)}`,
  },
]

describe('a request body over a slow link', () => {
  it('is given time to be sent: the edge answers a 40 KB request that takes 2.5 s to arrive, with connectTimeoutMs 1 s', async () => {
    const client = createClient({
      policy: 'edge-only',
      edge: { url: proxyUrl, model: edge.modelId, connectTimeoutMs: 1_000 },
    })
    // The same request straight to the edge first, so the time below is the upload's, not the
    // edge's first tokenizer load.
    const direct = createClient({ policy: 'edge-only', edge: { url: edge.url, model: edge.modelId } })
    const expected = await direct.chat({ messages: longConversation, temperature: 0, maxTokens: 4 })
    const started = performance.now()
    const result = await client.chat({ messages: longConversation, temperature: 0, maxTokens: 4 })
    const tookMs = performance.now() - started
    expect(result.route).toBe('edge')
    expect(result.text).toBe(expected.text)
    // The proxy made the upload slower than connectTimeoutMs: the case this test is about.
    expect(tookMs).toBeGreaterThan(1_000)
  })

  it('a body that does not arrive in that time is still given up on, naming the allowance', async () => {
    // 40 KB is given 1 s + 10 s; the proxy never passes it: the edge waits for the rest.
    const stalled = createServer((socket) => socket.on('data', () => undefined))
    await new Promise<void>((done) => stalled.listen(0, '127.0.0.1', done))
    try {
      const port = (stalled.address() as AddressInfo).port
      const client = createClient({
        policy: 'edge-only',
        // A model named: no model list asked first (which this server would not answer either).
        edge: { url: `http://127.0.0.1:${port}`, model: edge.modelId, connectTimeoutMs: 1_000 },
      })
      const error = await client
        .chat({ messages: longConversation, temperature: 0, maxTokens: 4 })
        .catch((caught: unknown) => caught)
      expect(error).toBeInstanceOf(EdgeError)
      expect((error as EdgeError).code).toBe('edge_unavailable')
      expect((error as EdgeError).isRetryable).toBe(true)
      expect((error as EdgeError).message).toMatch(/a second per 4 KiB of the \d+-byte request/)
    } finally {
      stalled.close()
    }
  }, 30_000)

  it('is at most a minute more, however large the body: a hung edge is still given up on', () => {
    expect(headersTimeoutMs(15_000, 0)).toBe(15_000)
    expect(headersTimeoutMs(15_000, 40 * 1024)).toBe(25_000)
    expect(headersTimeoutMs(15_000, 240 * 1024)).toBe(75_000)
    expect(headersTimeoutMs(15_000, 1024 * 1024)).toBe(75_000)
  })
})
