// The provider driven by the real `ai` package (generateText, streamText), on the device path
// (core's test session behind the DeviceHost interface, real Qwen3 tokenizer).
import { generateText, jsonSchema, streamText, tool } from 'ai'
import { describe, expect, it } from 'vitest'
import { createTestDeviceHost } from '../../test/sdk/test-device-host.ts'
import { startTestEdge } from '../../test/sdk/test-edge.ts'
import { createClient } from '../client.ts'
import { convertPrompt, createOndevice } from './index.ts'

describe('ondevice/ai-sdk with the real ai package', () => {
  it('generateText: text, usage, finish reason and where it ran', async () => {
    const deviceHost = createTestDeviceHost()
    const ondevice = createOndevice({ policy: 'device-only' }, { deviceHost })
    const result = await generateText({
      model: ondevice(),
      system: 'Be brief.',
      prompt: 'Name a colour.',
      maxOutputTokens: 8,
      seed: 5,
      temperature: 0.7,
    })
    // The same request through the client directly: the provider adds nothing and drops nothing.
    const direct = await createClient({ policy: 'device-only' }, { deviceHost }).chat({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Name a colour.' },
      ],
      maxTokens: 8,
      seed: 5,
      temperature: 0.7,
    })
    expect(result.text).toBe(direct.text)
    expect(result.finishReason).toBe('length')
    expect(result.usage.outputTokens).toBe(8)
    expect(result.usage.inputTokens).toBe(direct.usage.promptTokens)
    expect(result.providerMetadata?.['ondevice']).toMatchObject({ route: 'device', backend: 'test' })
    expect(result.warnings ?? []).toEqual([])
  })

  it('streamText: the text stream adds up to the text; usage and metadata arrive with the finish', async () => {
    const ondevice = createOndevice({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const result = streamText({ model: ondevice(), prompt: 'Count.', maxOutputTokens: 10, seed: 9 })
    const chunks: string[] = []
    for await (const chunk of result.textStream) chunks.push(chunk)
    expect(chunks.length).toBeGreaterThan(1)
    expect(chunks.join('')).toBe(await result.text)
    expect(await result.finishReason).toBe('length')
    expect((await result.usage).outputTokens).toBe(10)
    const metadata = (await result.providerMetadata)?.['ondevice']
    expect(metadata).toMatchObject({ route: 'device' })
    expect(typeof metadata?.['routeReason']).toBe('string')
  })

  it('unsupported settings come back as warnings, not silence', async () => {
    const ondevice = createOndevice({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const result = await generateText({
      model: ondevice(),
      prompt: 'Hi',
      maxOutputTokens: 2,
      toolChoice: 'auto',
      tools: {
        weather: tool({
          description: 'Weather',
          inputSchema: jsonSchema({ type: 'object', properties: {} }),
        }),
      },
    })
    const features = (result.warnings ?? []).map((warning) =>
      'feature' in warning ? warning.feature : warning.type,
    )
    expect(features).toContain('tools')
  })

  it('abort mid-stream stops the answer and the AI SDK reports it as aborted', async () => {
    const ondevice = createOndevice(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost({ session: { delayMs: 5 } }) },
    )
    const controller = new AbortController()
    let aborted = false
    const result = streamText({
      model: ondevice(),
      prompt: 'Go on forever.',
      maxOutputTokens: 500,
      abortSignal: controller.signal,
      onAbort: () => {
        aborted = true
      },
    })
    let chunks = 0
    for await (const _ of result.textStream) {
      chunks++
      if (chunks === 3) controller.abort()
    }
    expect(aborted).toBe(true)
    expect(chunks).toBeLessThan(10)
  })

  it('a file in the prompt is refused with a clear error', () => {
    expect(() =>
      convertPrompt([
        { role: 'user', content: [{ type: 'file', data: new Uint8Array([1]), mediaType: 'image/png' }] },
      ]),
    ).toThrow(/text only.*image\/png/)
  })

  it('a handoff mid-stream stays one text stream; metadata says device+edge and why', async () => {
    const edge = await startTestEdge()
    try {
      const reference = await generateText({
        model: createOndevice({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })(),
        prompt: 'Tell a story.',
        maxOutputTokens: 12,
        seed: 3,
      })
      const ondevice = createOndevice(
        { edge: { url: edge.url } },
        { deviceHost: createTestDeviceHost({ failAtToken: 5 }) },
      )
      const result = streamText({ model: ondevice(), prompt: 'Tell a story.', maxOutputTokens: 12, seed: 3 })
      let text = ''
      for await (const chunk of result.textStream) text += chunk
      expect(text).toBe(reference.text)
      expect((await result.usage).outputTokens).toBe(12)
      const metadata = (await result.providerMetadata)?.['ondevice']
      expect(metadata).toMatchObject({ route: 'device+edge', handoff: { completedTokens: 5 } })
    } finally {
      await edge.close()
    }
  })

  it('an edge that fails surfaces as an error the AI SDK reports', async () => {
    const ondevice = createOndevice({ policy: 'edge-only', edge: { url: 'http://127.0.0.1:9', model: 'x' } })
    await expect(generateText({ model: ondevice(), prompt: 'Hi', maxRetries: 0 })).rejects.toThrow(
      /Could not reach the edge/,
    )
  })

  it('after streamText, the next call and dispose() settle (the client stream is closed at finish)', async () => {
    const ondevice = createOndevice({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const within = <T>(promise: PromiseLike<T>, what: string): Promise<T> =>
      Promise.race([
        Promise.resolve(promise),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`${what} did not settle within 10 s`)), 10_000),
        ),
      ])
    const first = streamText({ model: ondevice(), prompt: 'Count.', maxOutputTokens: 4, seed: 1 })
    let streamed = ''
    for await (const chunk of first.textStream) streamed += chunk
    expect(streamed).toBe(await first.text)
    const second = await within(
      generateText({ model: ondevice(), prompt: 'Count.', maxOutputTokens: 4, seed: 1 }),
      'generateText after streamText',
    )
    expect(second.text).toBe(streamed)
    const third = streamText({ model: ondevice(), prompt: 'Again.', maxOutputTokens: 3, seed: 2 })
    expect((await within(third.usage, 'a second streamText')).outputTokens).toBe(3)
    await within(ondevice.client.dispose(), 'dispose()')
  })
})
