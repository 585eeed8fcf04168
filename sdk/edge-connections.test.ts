// The edge client in Node (its fetch, undici) against the real edge app over HTTP/1.1 on
// 127.0.0.1 (test/sdk/counting-edge.ts counts the connections it accepts and the requests whose
// client went away): each answer's body is read to its end, so one connection carries every
// answer. It used to be cancelled at [DONE]: wherever the body's end came a moment after that
// event, each answer closed its connection (a new TCP and TLS handshake for the next) and the
// server saw a client that went away. test/browser/edge-connections.test.ts does the same in Chromium.
import { describe, expect, it } from 'vitest'
import type { StreamPart } from '../core/stream-parts.ts'
import { type AfterDone, type CountingEdge, startCountingEdge } from '../test/sdk/counting-edge.ts'
import { EdgeClient } from './edge-client.ts'

const answers = 5

async function withEdge<T>(afterDone: AfterDone, use: (edge: CountingEdge) => Promise<T>): Promise<T> {
  const edge = await startCountingEdge(afterDone)
  try {
    return await use(edge)
  } finally {
    await edge.close()
  }
}

async function answer(client: EdgeClient, index: number, signal?: AbortSignal): Promise<StreamPart[]> {
  const parts: StreamPart[] = []
  for await (const part of client.stream({
    messages: [{ role: 'user', content: `Question ${index}` }],
    maxTokens: 8,
    // Greedy: the checks expect answers cut at maxTokens, which a sampled one may end before.
    sampling: { temperature: 0 },
    ...(signal === undefined ? {} : { signal }),
  }))
    parts.push(part)
  return parts
}

/**
 * One turn of the event loop, as an app takes between an answer and the next question: undici
 * reuses a connection only a turn after its response ended (a request sent within the same turn
 * gets a second connection, never more).
 */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

describe('the edge client keeps its connection from one answer to the next', () => {
  it(`${answers} answers whose body ends 50 ms after [DONE]: one connection, no request the server sees abandoned`, async () => {
    // Before: two connections an answer (9 or 10 for 5), each request aborted for the server after its answer.
    await withEdge({ kind: 'late-end', delayMs: 50 }, async (edge) => {
      const client = new EdgeClient({ url: edge.url, model: 'test-model' })
      for (let index = 0; index < answers; index++) {
        const parts = await answer(client, index)
        expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'length' })
        await nextTurn()
      }
      expect(edge.connections).toBe(1)
      expect(edge.aborted).toEqual([])
      expect(edge.log.map((line) => line.status)).toEqual(Array(answers).fill(200))
    })
  })

  it('the model list and /healthz are read to their end: one connection for both, again and again', async () => {
    await withEdge({ kind: 'end' }, async (edge) => {
      for (let index = 0; index < 3; index++) {
        const client = new EdgeClient({ url: edge.url })
        expect(await client.maxTokens()).toBeGreaterThan(0)
        await nextTurn()
        expect(await client.health()).toMatchObject({ status: 'ok' })
        await nextTurn()
      }
      expect(edge.connections).toBe(1)
      expect(edge.aborted).toEqual([])
    })
  })

  it('an answer aborted mid-stream still cancels its request at once: the server counts the client gone', async () => {
    await withEdge({ kind: 'end' }, async (edge) => {
      const client = new EdgeClient({ url: edge.url, model: 'test-model' })
      const controller = new AbortController()
      const parts: StreamPart[] = []
      const stream = client.stream({
        messages: [{ role: 'user', content: 'Question' }],
        maxTokens: 2000,
        signal: controller.signal,
      })
      await expect(
        (async () => {
          for await (const part of stream) {
            parts.push(part)
            if (part.type === 'text-delta') controller.abort()
          }
        })(),
      ).rejects.toMatchObject({ code: 'aborted' })
      expect(parts.filter((part) => part.type === 'text-delta')).toHaveLength(1)
      await expect.poll(() => edge.aborted).toEqual(['POST /v1/chat/completions'])
      await expect.poll(() => edge.log.map((line) => line.status)).toEqual([499])
    })
  })
})

describe('a server that does not end the body after [DONE] does not hold the answer', () => {
  for (const afterDone of [{ kind: 'hold-open' }, { kind: 'comments' }] as const) {
    it(`${afterDone.kind}: the answer finishes, then the request is cancelled`, async () => {
      await withEdge(afterDone, async (edge) => {
        const client = new EdgeClient({ url: edge.url, model: 'test-model' })
        const parts = await answer(client, 0)
        expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'length' })
        // The answer was whole (the app logged 200); the client then closed the connection.
        await expect.poll(() => edge.aborted).toEqual(['POST /v1/chat/completions'])
        expect(edge.log.map((line) => line.status)).toEqual([200])
      })
    })
  }
})
