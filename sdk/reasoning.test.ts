// A thinking model's reasoning through the SDK: chat() and stream() carry it apart from the text
// on the device, on the edge (its `reasoning_content` deltas) and across a handoff inside or
// around the reasoning, and the ondevice/ai-sdk provider gives the AI SDK reasoning parts. Device
// and edge are core's test session scripted to answer like Qwen3, with the real tokenizer.
import { generateText, streamText } from 'ai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StreamPart } from '../core/stream-parts.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import { startTestEdge, type TestEdge } from '../test/sdk/test-edge.ts'
import { thinkingReasoning, thinkingScript, thinkingText } from '../test/support/thinking-script.ts'
import { createOndevice } from './ai-sdk/index.ts'
import { createClient } from './client.ts'

const messages = [{ role: 'user' as const, content: 'What is 6 times 7?' }]
const request = { messages, maxTokens: 60, temperature: 0 }
const relaxed = { minDeviceTokensPerSecond: 1 }
const favor = thinkingScript()

let edge: TestEdge
beforeAll(async () => {
  edge = await startTestEdge({ session: { favor } })
})
afterAll(async () => {
  await edge.close()
})

/** The deltas' text by kind, and every token id they carry. */
async function read(parts: AsyncIterable<StreamPart>) {
  let reasoning = ''
  let text = ''
  const tokenIds: number[] = []
  const kinds: string[] = []
  let finish: Extract<StreamPart, { type: 'finish' }> | undefined
  for await (const part of parts) {
    kinds.push(part.type)
    if (part.type === 'reasoning-delta') reasoning += part.text
    if (part.type === 'text-delta') text += part.text
    if (part.type === 'reasoning-delta' || part.type === 'text-delta') tokenIds.push(...part.tokenIds)
    if (part.type === 'finish') finish = part
  }
  return { reasoning, text, tokenIds, kinds, finish }
}

describe('reasoning through the SDK', () => {
  it('device, edge and a handoff at any token give the same reasoning and text, apart', async () => {
    const device = createClient(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost({ session: { favor } }) },
    )
    const result = await device.chat(request)
    expect(result).toMatchObject({ reasoning: thinkingReasoning, text: thinkingText, route: 'device' })
    const streamed = await read(device.stream(request))
    expect(streamed).toMatchObject({ reasoning: thinkingReasoning, text: thinkingText })
    // Every token once, in order (EOS, which shows nothing, only in the finish's list).
    expect(streamed.tokenIds).toEqual(result.tokenIds.slice(0, -1))
    expect(streamed.finish?.tokenIds).toEqual(result.tokenIds)
    // stream() yields deltas with text only: the reasoning's, then the answer's.
    expect(streamed.kinds.lastIndexOf('reasoning-delta')).toBeLessThan(streamed.kinds.indexOf('text-delta'))
    await device.dispose()

    const edgeOnly = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    const fromEdge = await read(edgeOnly.stream(request))
    expect(fromEdge).toMatchObject({ reasoning: thinkingReasoning, text: thinkingText })
    expect(fromEdge.tokenIds).toEqual(streamed.tokenIds)
    expect(fromEdge.finish).toMatchObject({
      reasoning: thinkingReasoning,
      text: thinkingText,
      tokenIds: result.tokenIds,
    })
    await edgeOnly.dispose()

    // A handoff after every token: on `<think>`, inside the reasoning, at `</think>`, in the text.
    for (let k = 1; k < result.tokenIds.length; k++) {
      const client = createClient(
        { edge: { url: edge.url }, thresholds: relaxed },
        { deviceHost: createTestDeviceHost({ failAtToken: k, session: { favor } }) },
      )
      const joined = await read(client.stream(request))
      expect(joined.kinds, `k=${k}`).toContain('handoff')
      expect(joined, `k=${k}`).toMatchObject({ reasoning: thinkingReasoning, text: thinkingText })
      expect(joined.tokenIds, `k=${k}`).toEqual(streamed.tokenIds)
      expect(joined.finish, `k=${k}`).toMatchObject({
        reasoning: thinkingReasoning,
        text: thinkingText,
        tokenIds: result.tokenIds,
        usage: { route: 'device+edge' },
      })
      await client.dispose()
    }
  })

  it('ondevice/ai-sdk: reasoning content and reasoning-start/delta/end stream parts', async () => {
    const ondevice = createOndevice(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost({ session: { favor } }) },
    )
    const generated = await generateText({ model: ondevice(), prompt: messages[0].content, temperature: 0 })
    expect(generated.text).toBe(thinkingText)
    expect(generated.reasoningText).toBe(thinkingReasoning)
    expect(generated.content.map((part) => part.type)).toEqual(['reasoning', 'text'])
    const streamed = streamText({ model: ondevice(), prompt: messages[0].content, temperature: 0 })
    const types: string[] = []
    let reasoning = ''
    for await (const part of streamed.fullStream) {
      types.push(part.type)
      if (part.type === 'reasoning-delta') reasoning += part.text
    }
    expect(reasoning).toBe(thinkingReasoning)
    expect(await streamed.text).toBe(thinkingText)
    expect(types.filter((type) => type === 'reasoning-start')).toHaveLength(1)
    expect(types.indexOf('reasoning-end')).toBeLessThan(types.indexOf('text-start'))
    await ondevice.client.dispose()
  })
})
