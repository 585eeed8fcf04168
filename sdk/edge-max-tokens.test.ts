// A maxTokens over the edge's MAX_TOKENS, against a real edge (worker/createApp over HTTP on
// 127.0.0.1, MAX_TOKENS 20, core's deterministic test session): the edge lists its limit with its
// model ids (GET /v1/models), and the SDK refuses such a request before anything runs wherever the
// edge may answer it, or take it over once the client knows the limit, instead of the edge
// refusing the handoff mid-answer (the device's text then lost). A device answer never asks the
// edge first. Where the edge is not needed (device-only, prefer-edge's device fallback) the
// request runs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../core/errors.ts'
import type { StreamPart } from '../core/stream-parts.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import { startTestEdge, type TestEdge } from '../test/sdk/test-edge.ts'
import { createClient } from './client.ts'

const messages = [{ role: 'user' as const, content: 'Tell me a story about a dragon.' }]
const sampling = { temperature: 0.9, seed: 77 }
const relaxed = { minDeviceTokensPerSecond: 1 }
const edgeMaxTokens = 20

let edge: TestEdge

beforeAll(async () => {
  edge = await startTestEdge({ limits: { maxTokens: edgeMaxTokens } })
})
afterAll(async () => {
  await edge.close()
})

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const out: StreamPart[] = []
  for await (const part of parts) out.push(part)
  return out
}

describe('maxTokens against the edge’s MAX_TOKENS', () => {
  it('the edge lists its limit with its model ids', async () => {
    const list = (await (await fetch(`${edge.url}/v1/models`)).json()) as { data: unknown[] }
    expect(list.data[0]).toMatchObject({ id: edge.modelId, ondevice: { max_tokens: edgeMaxTokens } })
    const entry = await (await fetch(`${edge.url}/v1/models/${edge.modelId}`)).json()
    expect(entry).toMatchObject({ ondevice: { max_tokens: edgeMaxTokens } })
    // Its own refusal names the setting too.
    const refused = await fetch(`${edge.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: edge.modelId, messages, max_tokens: 30 }),
    })
    expect(refused.status).toBe(400)
    expect(await refused.json()).toMatchObject({
      error: {
        param: 'max_tokens',
        message: 'max_tokens is 30; this server allows at most 20 (its MAX_TOKENS).',
      },
    })
  })

  it('prefer-device: a device answer sends nothing to the edge; once the edge has said its limit, refused before the answer starts', async () => {
    // A device that answers: nothing goes to the edge, not even GET /v1/models (offline and on
    // a bad connection the answer must not wait on it).
    const requestsBefore = edge.requests.length
    const healthy = createClient(
      { edge: { url: edge.url }, thresholds: relaxed },
      { deviceHost: createTestDeviceHost() },
    )
    const answered = await healthy.chat({ messages, ...sampling, maxTokens: 30 })
    expect(answered.route).toBe('device')
    expect(answered.usage.completionTokens).toBe(30)
    expect(edge.requests.slice(requestsBefore)).toEqual([])
    await healthy.dispose()

    // A handoff reads the edge's model list, and with it the limit: at the limit, the device's
    // failure is handed off and the answer completes; above it, refused before anything runs.
    const host = createTestDeviceHost({ failAtToken: 5 })
    const client = createClient({ edge: { url: edge.url }, thresholds: relaxed }, { deviceHost: host })
    const result = await client.chat({ messages, ...sampling, maxTokens: edgeMaxTokens })
    expect(result.route).toBe('device+edge')
    expect(result.usage.completionTokens).toBe(edgeMaxTokens)
    const chatsBefore = edge.chatBodies.length
    const loadsBefore = host.loads
    const parts = await collect(client.stream({ messages, ...sampling, maxTokens: 30 }))
    expect(parts.map((part) => part.type)).toEqual(['error'])
    await expect(client.chat({ messages, ...sampling, maxTokens: 30 })).rejects.toSatisfy(
      (error: unknown) =>
        error instanceof InvalidArgumentError &&
        error.param === 'maxTokens' &&
        error.message.includes(
          "maxTokens is 30, but the edge's answers have at most 20 tokens (its MAX_TOKENS",
        ) &&
        error.message.includes('take this answer over should the device fail mid-answer') &&
        error.message.includes("policy 'device-only'"),
    )
    expect(edge.chatBodies.length).toBe(chatsBefore)
    expect(host.loads).toBe(loadsBefore)
    await client.dispose()
  })

  it('with edge.model set, the first handoff still teaches the client the limit', async () => {
    const host = createTestDeviceHost({ failAtToken: 5 })
    const client = createClient(
      { edge: { url: edge.url, model: edge.modelId }, thresholds: relaxed },
      { deviceHost: host },
    )
    const result = await client.chat({ messages, ...sampling, maxTokens: edgeMaxTokens })
    expect(result.route).toBe('device+edge')
    const chatsBefore = edge.chatBodies.length
    await expect(client.chat({ messages, ...sampling, maxTokens: 30 })).rejects.toMatchObject({
      code: 'invalid_argument',
      param: 'maxTokens',
    })
    expect(edge.chatBodies.length).toBe(chatsBefore)
    await client.dispose()
  })

  it('edge-only: refused by the SDK with the same words; prefer-edge and device-only answer on the device', async () => {
    const edgeOnly = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    await expect(edgeOnly.chat({ messages, ...sampling, maxTokens: 30 })).rejects.toMatchObject({
      code: 'invalid_argument',
      param: 'maxTokens',
      message: expect.stringContaining('so it could not answer it'),
    })
    await edgeOnly.dispose()

    for (const policy of ['prefer-edge', 'device-only'] as const) {
      const client = createClient(
        { policy, edge: { url: edge.url }, thresholds: relaxed },
        { deviceHost: createTestDeviceHost() },
      )
      const result = await client.chat({ messages, ...sampling, maxTokens: 30 })
      expect(result.route).toBe('device')
      expect(result.usage.completionTokens).toBe(30)
      await client.dispose()
    }
  })
})
