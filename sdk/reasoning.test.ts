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
    // The reasoning's tokens are reasoning tokens, not text tokens (all were counted as text).
    let reasoningTokens = 0
    for await (const part of ondevice.client.stream({ messages, temperature: 0 }))
      if (part.type === 'reasoning-delta') reasoningTokens += part.tokenIds.length
    expect(reasoningTokens).toBeGreaterThan(0)
    const expectedUsage = {
      outputTokens: generated.usage.outputTokens,
      reasoningTokens,
      textTokens: (generated.usage.outputTokens ?? 0) - reasoningTokens,
    }
    expect({
      outputTokens: generated.usage.outputTokens,
      reasoningTokens: generated.usage.outputTokenDetails.reasoningTokens,
      textTokens: generated.usage.outputTokenDetails.textTokens,
    }).toEqual(expectedUsage)
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
    const streamedUsage = await streamed.usage
    expect(streamedUsage.outputTokenDetails).toEqual({
      reasoningTokens,
      textTokens: expectedUsage.textTokens,
    })
    await ondevice.client.dispose()
  })
})

describe('enableThinking', () => {
  // After a thinking-off prompt (which ends in an empty `<think>` block) this model answers at once.
  const plain = thinkingScript(thinkingText)
  let plainEdge: TestEdge
  beforeAll(async () => {
    plainEdge = await startTestEdge({ session: { favor: plain } })
  })
  afterAll(async () => {
    await plainEdge.close()
  })
  const off = { ...request, enableThinking: false }

  it('false renders the thinking-off prompt on the device, on the edge and across a handoff alike', async () => {
    const device = createClient(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost({ session: { favor: plain } }) },
    )
    const thinking = await device.chat(request)
    const answer = await device.chat(off)
    await device.dispose()
    // Qwen3's template thinks by default; off, its prompt gains the empty `<think>\n\n</think>\n\n`.
    expect(answer.usage.promptTokens).toBe(thinking.usage.promptTokens + 4)
    expect(answer).toMatchObject({ text: thinkingText, route: 'device' })
    expect(answer.reasoning).toBeUndefined()

    const edgeOnly = createClient({ policy: 'edge-only', edge: { url: plainEdge.url } })
    const fromEdge = await edgeOnly.chat(off)
    await edgeOnly.dispose()
    expect(fromEdge.usage.promptTokens).toBe(answer.usage.promptTokens)
    expect(fromEdge.tokenIds).toEqual(answer.tokenIds)

    for (let k = 1; k < answer.tokenIds.length; k++) {
      const client = createClient(
        { edge: { url: plainEdge.url }, thresholds: relaxed },
        { deviceHost: createTestDeviceHost({ failAtToken: k, session: { favor: plain } }) },
      )
      const joined = await client.chat(off)
      await client.dispose()
      expect(joined.usage.route, `k=${k}`).toBe('device+edge')
      expect(joined.tokenIds, `k=${k}`).toEqual(answer.tokenIds)
      expect(joined.text, `k=${k}`).toBe(thinkingText)
    }
  })

  it('reaches the AI SDK provider through providerOptions.ondevice, and a non-boolean is refused', async () => {
    const client = createClient(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost({ session: { favor: plain } }) },
    )
    const ondevice = createOndevice({ client })
    const prompt = 'What is 6 times 7?'
    const on = await generateText({ model: ondevice(), prompt, maxOutputTokens: 20, temperature: 0 })
    const offResult = await generateText({
      model: ondevice(),
      prompt,
      maxOutputTokens: 20,
      temperature: 0,
      providerOptions: { ondevice: { enableThinking: false } },
    })
    expect(offResult.usage.inputTokens).toBe((on.usage.inputTokens ?? 0) + 4)
    expect(offResult.text).toBe(thinkingText)
    await expect(client.chat({ ...request, enableThinking: 'no' } as never)).rejects.toThrow(
      /enableThinking must be true or false/,
    )
    await client.dispose()
  })
})
