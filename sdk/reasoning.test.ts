// A thinking model's reasoning through the SDK: chat() and stream() carry it apart from the text
// on the device, on the edge (its `reasoning_content` deltas) and across a handoff inside or
// around the reasoning, and the ondevice/ai-sdk provider gives the AI SDK reasoning parts. Device
// and edge are core's test session scripted to answer like Qwen3, with the real tokenizer.
import { generateText, streamText } from 'ai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StreamPart } from '../core/stream-parts.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import { startTestEdge, type TestEdge } from '../test/sdk/test-edge.ts'
import {
  thinkingReasoning,
  thinkingReasoningTokens,
  thinkingScript,
  thinkingText,
} from '../test/support/thinking-script.ts'
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
    // The think block, its two tags included: not the `\n\n` after it, not the reply, not EOS.
    expect(result.usage.reasoningTokens).toBe(thinkingReasoningTokens)
    expect(result.usage.completionTokens).toBeGreaterThan(thinkingReasoningTokens + 2)
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
      usage: { reasoningTokens: thinkingReasoningTokens, completionTokens: result.usage.completionTokens },
    })
    expect((await edgeOnly.chat(request)).usage.reasoningTokens).toBe(thinkingReasoningTokens)
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
        // The device's share and the edge's add up to the same count wherever the cut fell.
        usage: {
          route: 'device+edge',
          reasoningTokens: thinkingReasoningTokens,
          completionTokens: result.usage.completionTokens,
        },
      })
      await client.dispose()
    }
  })

  it('an aborted answer counts the reasoning tokens it showed, alike on the device, the edge and after a handoff', async () => {
    // Aborted inside the reasoning (at its first text; after a handoff, the edge's first) and at the reply's first text. The finish
    // lists the tokens shown (and any the reader had not been shown yet); its reasoningTokens are
    // those of them in the think block, `<think>` and `</think>` (which show no text) included.
    const slowEdge = await startTestEdge({ session: { favor, delayMs: 20 } })
    try {
      for (const at of ['reasoning-delta', 'text-delta'] as const) {
        const routes = {
          device: createClient(
            { policy: 'device-only' },
            { deviceHost: createTestDeviceHost({ session: { favor, delayMs: 20 } }) },
          ),
          edge: createClient({ policy: 'edge-only', edge: { url: slowEdge.url } }),
          'device+edge': createClient(
            { edge: { url: slowEdge.url }, thresholds: relaxed },
            { deviceHost: createTestDeviceHost({ failAtToken: 2, session: { favor } }) },
          ),
        }
        for (const [route, client] of Object.entries(routes)) {
          const controller = new AbortController()
          let finish: Extract<StreamPart, { type: 'finish' }> | undefined
          // After a handoff, the abort falls on the edge's part of the answer.
          let handedOff = route !== 'device+edge'
          for await (const part of client.stream({ ...request, signal: controller.signal })) {
            if (part.type === 'handoff') handedOff = true
            if (handedOff && part.type === at) controller.abort()
            if (part.type === 'finish') finish = part
          }
          await client.dispose()
          const where = `${route} at the first ${at}`
          expect(finish?.finishReason, where).toBe('abort')
          const tokens = finish?.usage.completionTokens ?? 0
          expect(tokens, where).toBeLessThan(19)
          expect(finish?.usage.route, where).toBe(route)
          expect(finish?.usage.reasoningTokens, where).toBe(Math.min(tokens, thinkingReasoningTokens))
          if (at === 'text-delta') expect(finish?.usage.reasoningTokens, where).toBe(thinkingReasoningTokens)
          else expect(tokens, where).toBeLessThan(thinkingReasoningTokens)
        }
      }
    } finally {
      await slowEdge.close()
    }
  }, 30_000)

  it('ondevice/ai-sdk: reasoning content and reasoning-start/delta/end stream parts', async () => {
    const ondevice = createOndevice(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost({ session: { favor } }) },
    )
    const generated = await generateText({ model: ondevice(), prompt: messages[0].content, temperature: 0 })
    expect(generated.text).toBe(thinkingText)
    expect(generated.reasoningText).toBe(thinkingReasoning)
    expect(generated.content.map((part) => part.type)).toEqual(['reasoning', 'text'])
    // The reasoning's tokens are reasoning tokens, not text tokens (all were counted as text), and
    // the same number as the SDK's usage (and the wire's reasoning_tokens).
    const reasoningTokens = (await ondevice.client.chat({ messages, temperature: 0 })).usage.reasoningTokens
    expect(reasoningTokens).toBe(thinkingReasoningTokens)
    const expectedUsage = {
      outputTokens: generated.usage.outputTokens,
      reasoningTokens,
      textTokens: (generated.usage.outputTokens ?? 0) - thinkingReasoningTokens,
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
    expect(answer.usage.reasoningTokens).toBe(0)

    const edgeOnly = createClient({ policy: 'edge-only', edge: { url: plainEdge.url } })
    const fromEdge = await edgeOnly.chat(off)
    await edgeOnly.dispose()
    expect(fromEdge.usage.promptTokens).toBe(answer.usage.promptTokens)
    expect(fromEdge.tokenIds).toEqual(answer.tokenIds)
    expect(fromEdge.usage.reasoningTokens).toBe(0)

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
      expect(joined.usage.reasoningTokens, `k=${k}`).toBe(0)
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
