// The README snippet as a developer runs it: `ondevice serve` (the real CLI, a child process on
// 127.0.0.1, the embedded default package on onnxruntime-node) as the edge, and createClient with
// no model (the same default package on the same backend in this process) as the device. The
// device answers; the edge alone gives the same answer; a device failure mid-answer is finished
// by the edge, token for token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ServeProcess, startServeProcess } from '../test/cli/serve-process.ts'
import { withFaults } from '../test/sdk/test-device-host.ts'
import { createClient } from './client.ts'
import { createNodeDeviceHost } from './node-device.ts'

const apiKey = 'sdk-serve-test-key-0123456789'
const messages = [
  { role: 'system' as const, content: 'You are a helpful assistant.' },
  { role: 'user' as const, content: 'What is the capital of France?' },
]
const request = { messages, maxTokens: 12, temperature: 0.7, seed: 1 }
// A shared 2-core CI box must not make the probe send the device's requests to the edge.
const thresholds = { minDeviceTokensPerSecond: 1 }

let server: ServeProcess
let url: string

beforeAll(async () => {
  server = await startServeProcess({
    args: ['--port', '0', '--host', '127.0.0.1'],
    env: { API_KEYS: apiKey },
  })
  url = server.url
}, 180_000)

afterAll(async () => {
  await server?.stop()
})

describe('createClient against ondevice serve', () => {
  let device: { text: string; tokenIds: readonly number[] }

  it('the snippet: prefer-device answers on the device, with where and why', async () => {
    const ai = createClient({ edge: { url, apiKey }, policy: 'prefer-device', thresholds })
    const { text, usage, route, routeReason, tokenIds } = await ai.chat(request)
    expect(route).toBe('device')
    expect(routeReason).toContain('the package is cached')
    expect(usage).toMatchObject({ route: 'device', backend: 'native', completionTokens: 12 })
    expect(text.length).toBeGreaterThan(0)
    device = { text, tokenIds }
    await ai.dispose()
  })

  it('edge-only gets the same answer from ondevice serve (same package, same backend, same seed)', async () => {
    const ai = createClient({ edge: { url, apiKey }, policy: 'edge-only' })
    const result = await ai.chat(request)
    expect(result.route).toBe('edge')
    expect(result.usage.backend).toBe('native')
    expect(result.tokenIds).toEqual(device.tokenIds)
    expect(result.text).toBe(device.text)
  })

  it('a tool call cut by maxTokens: no markup, the same tokens, text and partial answer on the device and the edge, streamed or not', async () => {
    const cut = {
      messages: [{ role: 'user' as const, content: 'Weather in Paris?' }],
      tools: [
        {
          name: 'get_weather',
          parameters: {
            type: 'object',
            properties: { city: { type: 'string', maxLength: 8 } },
            required: ['city'],
            additionalProperties: false,
          },
        },
      ],
      toolChoice: 'required' as const,
      maxTokens: 4,
      temperature: 0,
    }
    const answers: (readonly number[])[] = []
    for (const policy of ['device-only', 'edge-only'] as const) {
      const ai = createClient({ edge: { url, apiKey }, policy, thresholds })
      const result = await ai.chat(cut)
      expect(result, policy).toMatchObject({ text: '', partial: true, finishReason: 'length' })
      expect(result.toolCalls).toBeUndefined()
      const parts = []
      for await (const part of ai.stream(cut)) parts.push(part)
      expect(parts.filter((part) => part.type === 'text-delta' || part.type === 'tool-call')).toEqual([])
      expect(parts.at(-1)).toMatchObject({ type: 'finish', text: '', partial: true, finishReason: 'length' })
      expect(parts.at(-1)?.type === 'finish' && parts.at(-1)).toMatchObject({ tokenIds: result.tokenIds })
      answers.push(result.tokenIds)
      await ai.dispose()
    }
    expect(answers[0]).toHaveLength(4)
    expect(answers[1]).toEqual(answers[0])
  })

  it('the device fails after 4 tokens: ondevice serve finishes the answer, identical', async () => {
    const ai = createClient(
      { edge: { url, apiKey }, thresholds },
      {
        deviceHost: createNodeDeviceHost({
          wrapSession: (session) => withFaults(session, { failAtToken: 4 }),
        }),
      },
    )
    const handoffs: number[] = []
    ai.on('handoff', (part) => handoffs.push(part.completedTokens))
    const result = await ai.chat(request)
    expect(handoffs).toEqual([4])
    expect(result.handoff?.completedTokens).toBe(4)
    expect(result.route).toBe('device+edge')
    expect(result.tokenIds).toEqual(device.tokenIds)
    expect(result.text).toBe(device.text)
    await ai.dispose()
  })
})
