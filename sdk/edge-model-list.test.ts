// The edge's model list (GET /v1/models) is not on the critical path of an answer: without
// edge.model the client learns the edge's model id once (from the list, or from a chat request
// the edge accepted) and never needs the list again, and a handoff whose list fails (an error
// status, a list that never comes) asks for the device's model id, the one an exact
// continuation needs anyway, instead of failing before its chat request is sent. Against the
// real edge app over HTTP on 127.0.0.1 (its /v1/models broken in front of it) and a device over
// core's test session, both the same model ('test-model').
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { OndeviceError } from '../core/errors.ts'
import type { StreamPart } from '../core/stream-parts.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import { serveApp, type TestEdge } from '../test/sdk/test-edge.ts'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from '../worker/app.ts'
import { createClient } from './client.ts'
import { EdgeClient } from './edge-client.ts'

const messages = [{ role: 'user' as const, content: 'Tell me about the sea, briefly.' }]
const sampling = { temperature: 0.9, topK: 40, seed: 77, maxTokens: 16 }

/** How the edge's GET /v1/models behaves: as served, 503, or never answered (headers never sent). */
let list: 'ok' | 'failing' | 'stalled' = 'ok'
const stalled: (() => void)[] = []
let edge: TestEdge
let expected: { text: string; tokenIds: readonly number[] }

beforeAll(async () => {
  const app = createApp({ modelHost: createTestHost(), log: () => undefined })
  edge = await serveApp((request) => {
    if (new URL(request.url).pathname !== '/v1/models' || list === 'ok') return app.fetch(request)
    if (list === 'failing')
      return Response.json(
        { error: { message: 'blocked by a proxy', type: 'server_error', code: 'overloaded', param: null } },
        { status: 503 },
      )
    return new Promise<Response>((resolve) => stalled.push(() => resolve(new Response('[]'))))
  }, 'test-model')
  const reference = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
  expected = await reference.chat({ messages, ...sampling })
  await reference.dispose()
})
afterEach(() => {
  list = 'ok'
  for (const release of stalled.splice(0)) release()
})
afterAll(async () => {
  await edge?.close()
})

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const out: StreamPart[] = []
  for await (const part of parts) out.push(part)
  return out
}
/** The requests the edge saw from `from` on. */
const seenSince = (from: number) => edge.requests.slice(from)

/** A device that fails at its 4th token: the answer is handed off to the edge. */
const failingDevice = () => createTestDeviceHost({ failAtToken: 4 })
const handoffOptions = { edge: { url: '' }, thresholds: { minDeviceTokensPerSecond: 1 } }

describe('a handoff when the model list fails', () => {
  for (const how of ['failing', 'stalled'] as const) {
    it(`the list ${how === 'failing' ? 'answers 503' : 'never answers'}: the chat request goes out with the device's model id and continues the answer exactly`, async () => {
      list = how
      const from = edge.requests.length
      const client = createClient(
        { ...handoffOptions, edge: { url: edge.url, connectTimeoutMs: 10_000 } },
        { deviceHost: failingDevice() },
      )
      const started = performance.now()
      const parts = await collect(client.stream({ messages, ...sampling }))
      const finish = parts.at(-1)
      if (finish?.type !== 'finish') throw new Error(`ended with ${JSON.stringify(finish)}`)
      expect(parts.some((part) => part.type === 'handoff')).toBe(true)
      expect(finish.usage.route).toBe('device+edge')
      expect(finish.tokenIds).toEqual(expected.tokenIds)
      expect(finish.text).toBe(expected.text)
      expect(edge.chatBodies.at(-1)).toMatchObject({ model: 'test-model' })
      // The list was asked once (the limits lookup, which waits at most 3 s), not again for the id.
      expect(seenSince(from)).toEqual(['GET /v1/models', 'POST /v1/chat/completions'])
      expect(performance.now() - started).toBeLessThan(8_000)
      // The id the edge accepted is kept: the next answer of this client (the device, broken
      // now, fails at once and the edge answers) sends its chat request alone.
      const next = seenSince(0).length
      const again = await client.chat({ messages, ...sampling })
      expect(again.text).toBe(expected.text)
      expect(seenSince(next)).toEqual(['POST /v1/chat/completions'])
      await client.dispose()
    }, 20_000)
  }
})

describe('the model id, once learned, is not asked for again', () => {
  it('listed once, then the list breaks: later answers send their chat request alone', async () => {
    const client = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    const from = edge.requests.length
    expect((await client.chat({ messages, ...sampling })).text).toBe(expected.text)
    expect(seenSince(from)).toEqual(['GET /v1/models', 'POST /v1/chat/completions'])
    list = 'failing'
    const next = edge.requests.length
    expect((await client.chat({ messages, ...sampling })).text).toBe(expected.text)
    expect(seenSince(next)).toEqual(['POST /v1/chat/completions'])
    await client.dispose()
  })

  it('an edge answer with no model id known and no list: a clear error naming the list and edge.model', async () => {
    list = 'failing'
    const client = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    const error = await client.chat({ messages, ...sampling }).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    await client.dispose()
    expect(error).toBeInstanceOf(OndeviceError)
    expect((error as OndeviceError).isRetryable).toBe(true)
    expect((error as OndeviceError).message).toMatch(/\/v1\/models/)
    expect((error as OndeviceError).message).toMatch(/edge\.model/)
  })
})

describe("another caller's abort while the list is read", () => {
  /** Waits until the edge has seen `count` list requests since `from`. */
  const listRequests = async (from: number, count: number) => {
    for (let waited = 0; seenSince(from).filter((r) => r === 'GET /v1/models').length < count; waited++) {
      if (waited > 1000) throw new Error(`the edge saw ${JSON.stringify(seenSince(from))}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }

  it("a second answer waiting on the same list is not failed by the first one's stop", async () => {
    // Two answers of one client share the list the first one asked for. Stopping the first
    // aborted that request: the second, which nobody stopped, was refused with the first's
    // abort, and the list counted as failed, so a handoff for 30 s asked for the device's id.
    const client = new EdgeClient({ url: edge.url })
    list = 'stalled'
    const from = edge.requests.length
    const stopped = new AbortController()
    const first = client.maxTokens(stopped.signal)
    const second = client.maxTokens()
    const firstModel = client.model(stopped.signal)
    const secondModel = client.model()
    await listRequests(from, 1)
    list = 'ok'
    stopped.abort()
    await expect(first).rejects.toThrow()
    await expect(firstModel).rejects.toThrow()
    // The second asks the list again for itself and gets the edge's answer.
    await second
    await expect(secondModel).resolves.toBe('test-model')
    // And the list is not taken for a failed one: a handoff asks for the id the edge lists.
    const other = new EdgeClient({ url: edge.url })
    list = 'stalled'
    const stoppedToo = new AbortController()
    const lookup = other.maxTokens(stoppedToo.signal)
    const waiting = other.maxTokens()
    const at = edge.requests.length
    await listRequests(at, 1)
    list = 'ok'
    stoppedToo.abort()
    await expect(lookup).rejects.toThrow()
    await waiting.catch(() => undefined)
    await expect(other.model(undefined, 'the-device-package')).resolves.toBe('test-model')
  })
})
