// The SDK's responseFormat and tools across both sides: the device (core's test session with the
// real Qwen3 tokenizer) and a real edge (worker/createApp over HTTP) mask alike, so an answer
// handed off in the middle of a JSON document continues token for token, and tool calls come back
// as the result's toolCalls and as 'tool-call' stream parts, on every route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../core/errors.ts'
import type { StreamPart } from '../core/stream-parts.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import { startTestEdge, type TestEdge } from '../test/sdk/test-edge.ts'
import { createClient } from './client.ts'

const messages = [{ role: 'user' as const, content: 'Describe a city as JSON.' }]
const schema = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 12 },
    population: { type: 'integer', minimum: 0, maximum: 99999999 },
    districts: {
      type: 'array',
      maxItems: 3,
      items: { type: 'array', maxItems: 2, items: { type: 'number', minimum: 0, maximum: 10 } },
    },
  },
  required: ['name', 'population', 'districts'],
  additionalProperties: false,
}
const request = {
  messages,
  responseFormat: { type: 'json_schema' as const, schema },
  temperature: 1,
  seed: 99,
  maxTokens: 80,
}
const relaxed = { minDeviceTokensPerSecond: 1 }
const tools = [
  {
    name: 'get_weather',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 10 } },
      required: ['city'],
      additionalProperties: false,
    },
  },
]

let edge: TestEdge
beforeAll(async () => {
  edge = await startTestEdge()
})
afterAll(async () => {
  await edge.close()
})

describe('structured output through the SDK', () => {
  it('a JSON schema answer: the same on the device and the edge, and across a handoff at any token', async () => {
    const device = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const reference = await device.chat(request)
    await device.dispose()
    expect(reference.finishReason).toBe('stop')
    const value = JSON.parse(reference.text) as Record<string, unknown>
    expect(Object.keys(value)).toEqual(['name', 'population', 'districts'])

    const onEdge = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    const fromEdge = await onEdge.chat(request)
    await onEdge.dispose()
    expect(fromEdge.tokenIds).toEqual(reference.tokenIds)

    // Cut inside the name string, inside the number, inside the nested array.
    for (const k of [4, Math.floor(reference.tokenIds.length / 2), reference.tokenIds.length - 3]) {
      const client = createClient(
        { policy: 'prefer-device', edge: { url: edge.url }, thresholds: relaxed },
        { deviceHost: createTestDeviceHost({ failAtToken: k }) },
      )
      const result = await client.chat(request)
      await client.dispose()
      expect(result.route, `k=${k}`).toBe('device+edge')
      expect(result.tokenIds, `k=${k}`).toEqual(reference.tokenIds)
      expect(result.text).toBe(reference.text)
    }
  }, 60_000)

  it('tool calls: toolCalls on the result and tool-call parts, no call markup in the text, device and edge alike', async () => {
    for (const options of [
      { policy: 'device-only' as const },
      { policy: 'edge-only' as const, edge: { url: edge.url } },
    ]) {
      const client = createClient(options, { deviceHost: createTestDeviceHost() })
      const result = await client.chat({
        messages,
        tools,
        toolChoice: 'required',
        parallelToolCalls: false,
        temperature: 1,
        seed: 5,
        maxTokens: 60,
      })
      expect(result.finishReason, options.policy).toBe('tool-calls')
      expect(result.toolCalls).toHaveLength(1)
      expect(result.toolCalls?.[0]?.name).toBe('get_weather')
      expect(typeof (JSON.parse(result.toolCalls?.[0]?.arguments ?? '') as { city: unknown }).city).toBe(
        'string',
      )
      expect(result.text).toBe('')
      const parts: StreamPart[] = []
      for await (const part of client.stream({
        messages,
        tools,
        toolChoice: { name: 'get_weather' },
        parallelToolCalls: false,
        temperature: 1,
        seed: 5,
        maxTokens: 60,
      }))
        parts.push(part)
      expect(
        parts
          .filter((part) => part.type === 'text-delta')
          .map((part) => (part.type === 'text-delta' ? part.text : ''))
          .join(''),
      ).toBe('')
      const calls = parts.filter((part) => part.type === 'tool-call')
      expect(calls).toHaveLength(1)
      expect(calls[0]?.type === 'tool-call' && calls[0].toolCall).toEqual(result.toolCalls?.[0])
      await client.dispose()
    }
  }, 60_000)

  it('a keyword the grammar cannot enforce is an InvalidArgumentError naming it, before anything runs', async () => {
    const client = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    await expect(
      client.chat({
        messages,
        responseFormat: { type: 'json_schema', schema: { type: 'string', format: 'hostname' } },
      }),
    ).rejects.toMatchObject({
      constructor: InvalidArgumentError,
      param: 'responseFormat.schema.format',
    })
    await expect(client.chat({ messages, tools, toolChoice: { name: 'nope' } })).rejects.toMatchObject({
      param: 'toolChoice.name',
    })
    await client.dispose()
  })
})
