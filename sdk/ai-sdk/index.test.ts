// The provider driven by the real `ai` package (generateText, streamText), on the device path
// (core's test session behind the DeviceHost interface, real Qwen3 tokenizer).
import { generateObject, generateText, jsonSchema, stepCountIs, streamObject, streamText, tool } from 'ai'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { InvalidArgumentError } from '../../core/errors.ts'
import { startOpenAICompatibleEdge } from '../../test/sdk/openai-compatible-edge.ts'
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

  it('generateObject / streamObject: the object follows the schema (random logits: only the mask makes it valid)', async () => {
    const ondevice = createOndevice({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const schema = jsonSchema<{ name: string; age: number; tags: string[] }>({
      type: 'object',
      properties: {
        name: { type: 'string', maxLength: 10 },
        age: { type: 'integer', minimum: 0, maximum: 120 },
        tags: { type: 'array', items: { type: 'string', maxLength: 6 }, maxItems: 2 },
      },
      required: ['name', 'age', 'tags'],
      additionalProperties: false,
    })
    const { object, finishReason } = await generateObject({
      model: ondevice(),
      schema,
      prompt: 'A person.',
      maxOutputTokens: 80,
      seed: 9,
      temperature: 1,
    })
    expect(finishReason).toBe('stop')
    expect(Object.keys(object)).toEqual(['name', 'age', 'tags'])
    expect(Number.isInteger(object.age) && object.age >= 0 && object.age <= 120).toBe(true)
    const streamed = streamObject({
      model: ondevice(),
      schema,
      prompt: 'A person.',
      maxOutputTokens: 80,
      seed: 9,
      temperature: 1,
    })
    let partials = 0
    for await (const _ of streamed.partialObjectStream) partials++
    expect(partials).toBeGreaterThan(1)
    expect(await streamed.object).toEqual(object)
  })

  it('zod tuples and enum-keyed records (draft-07 JSON Schema from the ai package) are enforced, not refused', async () => {
    const ondevice = createOndevice({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const schema = z.object({
      pair: z.tuple([z.string().max(2), z.number().int().min(0).max(9)]),
      flags: z.record(z.enum(['a', 'b']), z.boolean()),
    })
    for (const seed of [1, 2, 3]) {
      const { object, finishReason } = await generateObject({
        model: ondevice(),
        schema,
        prompt: 'Fill it.',
        maxOutputTokens: 60,
        seed,
        temperature: 1,
      })
      expect(finishReason).toBe('stop')
      // generateObject validated it with zod; the shape is checked here too.
      expect(object.pair).toHaveLength(2)
      expect(Object.keys(object.flags)).toEqual(['a', 'b'])
    }
  })

  it("tools with the ai package's loop: a required call is executed, its result fed back, then a text answer", async () => {
    const ondevice = createOndevice({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const calls: string[] = []
    const result = await generateText({
      model: ondevice(),
      prompt: 'Weather in Paris?',
      maxOutputTokens: 40,
      seed: 3,
      temperature: 1,
      tools: {
        weather: tool({
          description: 'Current weather of a city',
          inputSchema: jsonSchema<{ city: string }>({
            type: 'object',
            properties: { city: { type: 'string', maxLength: 8 } },
            required: ['city'],
            additionalProperties: false,
          }),
          execute: async ({ city }) => {
            calls.push(city)
            return { city, celsius: 21 }
          },
        }),
      },
      stopWhen: stepCountIs(2),
      prepareStep: ({ stepNumber }) => ({ toolChoice: stepNumber === 0 ? 'required' : 'none' }),
    })
    expect(result.steps).toHaveLength(2)
    expect(result.steps[0]?.finishReason).toBe('tool-calls')
    expect(result.steps[0]?.toolCalls.map((call) => call.toolName)).toEqual(['weather'])
    expect(calls).toHaveLength(1)
    expect(result.steps[0]?.toolResults[0]?.output).toEqual({ city: calls[0], celsius: 21 })
    // The second step's prompt carries the call and its result, rendered by the template.
    const body = result.steps[1]?.request.body as { messages: { role: string; content: string }[] }
    expect(body.messages.map((message) => message.role)).toEqual(['user', 'assistant', 'tool'])
    expect(body.messages[2]?.content).toContain('21')
    expect(result.steps[1]?.toolCalls).toHaveLength(0)
  })

  it('providerOptions.ondevice.parallelToolCalls: false allows one call (it was dropped silently); an unknown setting is refused', async () => {
    const ondevice = createOndevice({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const tools = {
      unit: tool({
        inputSchema: jsonSchema<{ unit: 'c' | 'f' }>({
          type: 'object',
          properties: { unit: { enum: ['c', 'f'] } },
          required: ['unit'],
          additionalProperties: false,
        }),
      }),
    }
    const counts = async (parallelToolCalls?: boolean) => {
      const found: number[] = []
      for (const seed of [1, 2, 3, 4]) {
        const result = await generateText({
          model: ondevice(),
          prompt: 'Which unit?',
          tools,
          toolChoice: 'required',
          maxOutputTokens: 60,
          seed,
          temperature: 1,
          ...(parallelToolCalls === undefined
            ? {}
            : { providerOptions: { ondevice: { parallelToolCalls } } }),
        })
        found.push(result.toolCalls.length)
      }
      return found
    }
    // The random logits go on calling while they may: several calls per answer by default.
    expect(Math.max(...(await counts()))).toBeGreaterThan(1)
    expect(await counts(false)).toEqual([1, 1, 1, 1])
    await expect(
      generateText({
        model: ondevice(),
        prompt: 'Hi',
        maxOutputTokens: 2,
        providerOptions: { ondevice: { parallel_tool_calls: false } },
      }),
    ).rejects.toMatchObject({ param: 'providerOptions.ondevice.parallel_tool_calls' })
  })

  it("a tool's multi-part result (type 'content') goes back as its text; a file in it is refused", () => {
    const result = (value: unknown) =>
      convertPrompt([
        {
          role: 'tool',
          content: [
            { type: 'tool-result', toolCallId: 'c1', toolName: 't', output: { type: 'content', value } },
          ],
        },
      ] as Parameters<typeof convertPrompt>[0])
    // It was the JSON of the whole output object: {"type":"content","value":[...]}.
    expect(
      result([
        { type: 'text', text: '21 ' },
        { type: 'text', text: 'degrees' },
      ]).messages,
    ).toEqual([{ role: 'tool', content: '21 degrees', toolCallId: 'c1', name: 't' }])
    expect(() => result([{ type: 'image-data', data: 'AA==', mediaType: 'image/png' }])).toThrow(
      /text only.*image-data.*image\/png/,
    )
  })

  it('a provider-defined tool is refused clearly', async () => {
    const ondevice = createOndevice({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    await expect(
      ondevice().doGenerate({
        prompt: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
        tools: [{ type: 'provider', id: 'openai.web_search', name: 'web_search', args: {} }],
      }),
    ).rejects.toMatchObject({ param: 'tools' })
  })

  it('a schema the grammar cannot enforce rejects doGenerate and doStream themselves, before anything runs', async () => {
    const host = createTestDeviceHost()
    const model = createOndevice({ policy: 'device-only' }, { deviceHost: host })()
    const call = {
      prompt: [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'Hi' }] }],
      responseFormat: { type: 'json' as const, schema: { type: 'string' as const, format: 'regex' } },
    }
    const refused = { constructor: InvalidArgumentError, param: 'responseFormat.schema.format' }
    await expect(model.doStream(call)).rejects.toMatchObject(refused)
    await expect(model.doGenerate(call)).rejects.toMatchObject(refused)
    expect(host.loads).toBe(0)
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

describe('usage the prompt was not counted in', () => {
  // An OpenAI-compatible edge that ignores stream_options.include_usage streams the answer with
  // no counts: the SDK says promptTokensCounted: false (promptTokens 0 is not the prompt's size),
  // and the provider passed the 0 on as inputTokens, where the AI SDK's usage has undefined for
  // a count not known (and totals only what is).
  const uncountedEdge = () =>
    startOpenAICompatibleEdge(
      'other-model',
      (chunk) =>
        `${chunk({ role: 'assistant', content: 'Hello' }, null)}${chunk({ content: ' there' }, null)}${chunk({}, 'stop')}`,
    )

  it('generateText and streamText report inputTokens as unknown (undefined), not 0; the output as counted', async () => {
    const edge = await uncountedEdge()
    const ondevice = createOndevice({ policy: 'edge-only', edge: { url: edge.url } })
    try {
      const generated = await generateText({ model: ondevice(), prompt: 'Hi.', maxOutputTokens: 8 })
      const streamed = streamText({ model: ondevice(), prompt: 'Hi.', maxOutputTokens: 8 })
      await streamed.consumeStream()
      for (const usage of [generated.usage, await streamed.usage]) {
        expect(usage.inputTokens).toBeUndefined()
        expect(usage.inputTokenDetails.noCacheTokens).toBeUndefined()
        expect(usage.outputTokens).toBe(2)
        expect(usage.totalTokens).toBe(2)
        expect(usage.raw).toMatchObject({ promptTokens: 0, promptTokensCounted: false })
      }
    } finally {
      await ondevice.client.dispose()
      await edge.close()
    }
  })
})

describe('settings the provider would not use', () => {
  const prompt = [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'Hi' }] }]

  it("per-call headers come back as an 'unsupported' warning (they were dropped without one); the ai package's own user-agent does not", async () => {
    const ondevice = createOndevice({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    try {
      const plain = await generateText({ model: ondevice(), prompt: 'Hi', maxOutputTokens: 2 })
      expect(plain.warnings).toEqual([])
      const withHeaders = await ondevice().doGenerate({
        prompt,
        maxOutputTokens: 2,
        headers: { 'x-trace-id': '1', 'user-agent': 'ai/6' },
      })
      expect(withHeaders.warnings).toEqual([
        expect.objectContaining({ type: 'unsupported', feature: 'headers' }),
      ])
      expect(JSON.stringify(withHeaders.warnings)).toContain('x-trace-id')
      expect(JSON.stringify(withHeaders.warnings)).toContain('edge.headers')
    } finally {
      await ondevice.client.dispose()
    }
  })

  it('providerOptions.ondevice: minP and repetitionPenalty reach the answer; a bad value is named at its path, a misspelt or misplaced name with the fix', async () => {
    const deviceHost = createTestDeviceHost()
    const ondevice = createOndevice({ policy: 'device-only' }, { deviceHost })
    const client = createClient({ policy: 'device-only' }, { deviceHost })
    try {
      const settings = { minP: 0.2, repetitionPenalty: 1.3 }
      const request = { prompt, maxOutputTokens: 12, seed: 4, temperature: 1 }
      const viaProvider = await ondevice().doGenerate({ ...request, providerOptions: { ondevice: settings } })
      const messages = [{ role: 'user' as const, content: 'Hi' }]
      const direct = await client.chat({ messages, maxTokens: 12, seed: 4, temperature: 1, ...settings })
      const without = await client.chat({ messages, maxTokens: 12, seed: 4, temperature: 1 })
      expect(direct.tokenIds).not.toEqual(without.tokenIds)
      expect(viaProvider.content).toEqual([{ type: 'text', text: direct.text }])
      const refusal = async (ondeviceOptions: Record<string, unknown>): Promise<unknown> => {
        try {
          await ondevice().doGenerate({ ...request, providerOptions: { ondevice: ondeviceOptions as never } })
        } catch (error) {
          return error
        }
      }
      // The sampler named a bad value `minP` alone: the app wrote providerOptions.ondevice.minP.
      for (const [options, param, words] of [
        [{ minP: 2 }, 'providerOptions.ondevice.minP', /providerOptions\.ondevice\.minP/],
        [{ repetitionPenalty: 0 }, 'providerOptions.ondevice.repetitionPenalty', /repetitionPenalty/],
        [{ min_p: 0.1 }, 'providerOptions.ondevice.min_p', /did you mean "minP"\?/],
        [
          { enable_thinking: false },
          'providerOptions.ondevice.enable_thinking',
          /did you mean "enableThinking"\?/,
        ],
        // The AI SDK's own settings: in providerOptions they would be a second place to set them.
        [{ topK: 5 }, 'providerOptions.ondevice.topK', /the AI SDK's own setting: pass topK to generateText/],
        [{ maxTokens: 5 }, 'providerOptions.ondevice.maxTokens', /maxOutputTokens/],
      ] as const) {
        const error = await refusal(options)
        expect(error, param).toBeInstanceOf(InvalidArgumentError)
        expect(error, param).toMatchObject({ param })
        expect((error as Error).message, param).toMatch(words)
      }
    } finally {
      await ondevice.client.dispose()
      await client.dispose()
    }
  })

  it("ondevice('another-model') is refused: the provider runs createOndevice's model (it answered with that one, labelled as asked)", async () => {
    const ondevice = createOndevice({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    try {
      expect(() => ondevice('gpt-4o-mini')).toThrow(InvalidArgumentError)
      expect(() => ondevice.languageModel('/models/other/')).toThrow(/createOndevice\(\{ model \}\)/)
      expect(ondevice().modelId).toBe('ondevice-default')
      expect(ondevice('ondevice-default').modelId).toBe('ondevice-default')
    } finally {
      await ondevice.client.dispose()
    }
  })

  it('createOndevice({ client, ...options }) is refused: the options were ignored for the given client', async () => {
    const client = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    try {
      expect(() => createOndevice({ client, policy: 'edge-only' } as never)).toThrow(InvalidArgumentError)
      expect(() => createOndevice({ client, policy: 'edge-only' } as never)).toThrow(/policy/)
      expect(createOndevice({ client }).client).toBe(client)
    } finally {
      await client.dispose()
    }
  })

  it("a misspelt createOndevice option is refused as createOndevice's, with the fix, and client among the names it takes", () => {
    let caught: unknown
    try {
      createOndevice({ modle: 'model' } as never)
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError)
    expect((caught as InvalidArgumentError).param).toBe('modle')
    // It said "Unknown createClient option", a call the app never wrote, and left out client.
    expect((caught as Error).message).toBe(
      'Unknown createOndevice option "modle": did you mean "model"? It takes model, edge, policy, thresholds, backend, dtype, runtimeUrl, numThreads, cacheDir, cacheQuotaBytes, defaults, client.',
    )
    expect(() => createOndevice({ clinet: {} } as never)).toThrow(/did you mean "client"\?/)
  })
})
