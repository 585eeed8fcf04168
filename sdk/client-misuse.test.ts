// What apps do to a client by accident: change the request's objects while the answer runs, read
// slowly, dispose mid-answer. Each case failed before its fix (the comment says how). The device is
// core's deterministic test session behind the DeviceHost interface with the real Qwen3
// tokenizer; the edge is the real worker app over HTTP on the same test session.
import { EventEmitter } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChatMessage } from '../core/chat-template.ts'
import { ContextLengthError, deserializeError, InvalidArgumentError } from '../core/errors.ts'
import { validateChatCompletionRequest } from '../core/protocol/validate.ts'
import type { StreamPart } from '../core/stream-parts.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import { startTestEdge, type TestEdge } from '../test/sdk/test-edge.ts'
import { createClient } from './client.ts'
import type { ChatRequest } from './options.ts'

const question = (): ChatMessage[] => [{ role: 'user', content: 'Tell me about the sea.' }]

let edge: TestEdge
beforeAll(async () => {
  edge = await startTestEdge()
})
afterAll(async () => {
  await edge.close()
})

describe('the request is taken as it was when chat()/stream() was called', () => {
  it('messages changed after chat() do not change the answer (they did: the run read them later)', async () => {
    const ai = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const expected = await ai.chat({ messages: question(), maxTokens: 12, seed: 5 })
    const messages = question()
    const pending = ai.chat({ messages, maxTokens: 12, seed: 5 })
    // What a chat UI does next: show the question as edited, append the answer's placeholder.
    ;(messages[0] as { content: string }).content = 'Something else entirely.'
    messages.push({ role: 'assistant', content: '' })
    expect((await pending).tokenIds).toEqual(expected.tokenIds)
    await ai.dispose()
  })

  it('a handoff sends the conversation as asked, while the app appends the streamed answer to it', async () => {
    const uninterrupted = await createClient(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost() },
    ).chat({ messages: question(), maxTokens: 16, seed: 9 })

    const ai = createClient(
      { edge: { url: edge.url }, policy: 'prefer-device' },
      { deviceHost: createTestDeviceHost({ failAtToken: 6 }) },
    )
    await ai.prepare()
    const sentBefore = edge.chatBodies.length
    const messages = question()
    const answer: ChatMessage = { role: 'assistant', content: '' }
    let finish: Extract<StreamPart, { type: 'finish' }> | undefined
    for await (const part of ai.stream({ messages, maxTokens: 16, seed: 9 })) {
      if (part.type === 'text-delta') {
        // The usual chat UI: the answer so far lives in the conversation array itself.
        if (!messages.includes(answer)) messages.push(answer)
        ;(answer as { content: string }).content += part.text
      }
      if (part.type === 'finish') finish = part
    }
    expect(finish?.usage.route).toBe('device+edge')
    const sent = edge.chatBodies[sentBefore] as { messages: unknown[] }
    expect(sent.messages).toEqual([{ role: 'user', content: 'Tell me about the sea.' }])
    expect(finish?.tokenIds).toEqual(uninterrupted.tokenIds)
    await ai.dispose()
  })

  it('a schema or stop list changed after the call is not the one enforced', async () => {
    const ai = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const request = () => ({
      schema: { type: 'object', properties: { a: { type: 'boolean' } }, required: ['a'] } as Record<
        string,
        unknown
      >,
    })
    const asked = request()
    const expected = await ai.chat({
      messages: question(),
      maxTokens: 40,
      seed: 2,
      responseFormat: { type: 'json_schema', schema: asked.schema },
    })
    const changed = request()
    const pending = ai.chat({
      messages: question(),
      maxTokens: 40,
      seed: 2,
      responseFormat: { type: 'json_schema', schema: changed.schema },
    })
    changed.schema['properties'] = { b: { type: 'integer' } }
    changed.schema['required'] = ['b']
    const result = await pending
    expect(result.text).toBe(expected.text)
    expect(result.tokenIds).toEqual(expected.tokenIds)
    // Stop strings match free text only (never a response_format document): a plain answer shows
    // that the list changed after the call is not the one applied either.
    const plain = { messages: question(), maxTokens: 40, seed: 2, temperature: 0 }
    const whole = await ai.chat(plain)
    const letter = [...whole.text.slice(4)].find((character) => character.trim() !== '')!
    const stopAt = await ai.chat({ ...plain, stop: [letter] })
    expect(stopAt.text.length).toBeLessThan(whole.text.length)
    const stop = [letter]
    const pendingPlain = ai.chat({ ...plain, stop })
    stop[0] = '\u0000'
    expect((await pendingPlain).text).toBe(stopAt.text)
    await ai.dispose()
  })
})

describe('stop strings as OpenAI takes them', () => {
  it("a stop that is neither a string nor a list is refused in the edge's words (the SDK said 'an array of strings', though it takes one string)", async () => {
    const ai = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    for (const stop of [5, { 0: 'x' }, true]) {
      let wire: unknown
      try {
        validateChatCompletionRequest({ model: 'm', messages: question(), stop })
      } catch (error) {
        wire = error
      }
      const refusal = { name: 'InvalidArgumentError', param: 'stop', message: (wire as Error).message }
      await expect(ai.chat({ messages: question(), stop } as unknown as ChatRequest)).rejects.toMatchObject(
        refusal,
      )
      expect(() =>
        createClient(
          { defaults: { stop } as unknown as ChatRequest },
          { deviceHost: createTestDeviceHost() },
        ),
      ).toThrow(/^defaults\.stop must be a string or an array of strings\.$/)
    }
    await ai.dispose()
  })

  it('one string is a list of one, on the device and to the edge', async () => {
    const device = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const plain = { messages: question(), maxTokens: 40, seed: 2, temperature: 0 }
    const whole = await device.chat(plain)
    const letter = [...whole.text.slice(4)].find((character) => character.trim() !== '')!
    const asList = await device.chat({ ...plain, stop: [letter] })
    expect(asList.text.length).toBeLessThan(whole.text.length)
    expect((await device.chat({ ...plain, stop: letter })).text).toBe(asList.text)
    await device.dispose()
    const remote = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    const sentBefore = edge.chatBodies.length
    await remote.chat({ ...plain, stop: letter })
    expect((edge.chatBodies[sentBefore] as { stop: unknown }).stop).toEqual([letter])
    await remote.dispose()
  })

  it('a stop list with a JSON responseFormat is refused at stop; a client default stop applies to text answers only', async () => {
    const ai = createClient(
      { policy: 'device-only', defaults: { stop: '}' } },
      { deviceHost: createTestDeviceHost() },
    )
    const schema = { type: 'object', properties: { a: { type: 'boolean' } }, required: ['a'] }
    for (const responseFormat of [
      { type: 'json_object' as const },
      { type: 'json_schema' as const, schema },
    ]) {
      await expect(ai.chat({ messages: question(), stop: ['}'], responseFormat })).rejects.toMatchObject({
        name: 'InvalidArgumentError',
        param: 'stop',
      })
      // The client's default '}' would cut the document: it is left for text answers.
      const answer = await ai.chat({ messages: question(), maxTokens: 40, seed: 2, responseFormat })
      expect(answer.text.endsWith('}')).toBe(true)
      expect(() => JSON.parse(answer.text) as unknown).not.toThrow()
    }
    await ai.dispose()
  })
})

describe('a slow reader is not a slow device', () => {
  it('a reader that takes 200 ms per token keeps a fast device answering (it was handed off to the edge)', async () => {
    const ai = createClient(
      {
        edge: { url: edge.url },
        policy: 'prefer-device',
        // 5 tok/s of reading is under this threshold; the device itself runs far above it (a
        // few ms a token, tens on a loaded machine).
        thresholds: { minDeviceTokensPerSecond: 10, slowDecodeWindowTokens: 4 },
      },
      { deviceHost: createTestDeviceHost() },
    )
    await ai.prepare()
    const sentBefore = edge.chatBodies.length
    const types: string[] = []
    let finish: Extract<StreamPart, { type: 'finish' }> | undefined
    for await (const part of ai.stream({ messages: question(), maxTokens: 8, seed: 4 })) {
      types.push(part.type)
      if (part.type === 'text-delta') await new Promise((resolve) => setTimeout(resolve, 200))
      if (part.type === 'finish') finish = part
    }
    expect(types).not.toContain('handoff')
    expect(finish?.usage.route).toBe('device')
    expect(finish?.usage.completionTokens).toBe(8)
    expect(edge.chatBodies.length).toBe(sentBefore)
    await ai.dispose()
  })
})

describe('dispose() mid-answer', () => {
  it('ends the running answer at once (it ran to maxTokens, and dispose() waited for it)', async () => {
    const host = createTestDeviceHost({ session: { delayMs: 5 } })
    const ai = createClient({ policy: 'device-only' }, { deviceHost: host })
    const parts: StreamPart[] = []
    let disposed: Promise<void> | undefined
    for await (const part of ai.stream({ messages: question(), maxTokens: 2000, seed: 1 })) {
      parts.push(part)
      if (part.type === 'text-delta' && disposed === undefined) disposed = ai.dispose()
    }
    await disposed
    const finish = parts.at(-1) as Extract<StreamPart, { type: 'finish' }>
    expect(finish).toMatchObject({ type: 'finish', finishReason: 'abort' })
    expect(finish.tokenIds.length).toBeLessThan(20)
    await expect(ai.chat({ messages: question() })).rejects.toThrow(/disposed: create a new one/)
  })

  it('chat() says the client was disposed, not that the caller aborted', async () => {
    const ai = createClient(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost({ session: { delayMs: 5 } }) },
    )
    await ai.prepare()
    const pending = ai.chat({ messages: question(), maxTokens: 2000 })
    setTimeout(() => void ai.dispose(), 30)
    await expect(pending).rejects.toThrow('The client was disposed during this answer.')
  })

  it('a stream made before dispose() and read after it runs nothing (it loaded the model again and ended as aborted)', async () => {
    const host = createTestDeviceHost()
    const ai = createClient({ policy: 'device-only' }, { deviceHost: host })
    await ai.prepare()
    const stream = ai.stream({ messages: question(), maxTokens: 4 })
    await ai.dispose()
    const parts: StreamPart[] = []
    for await (const part of stream) parts.push(part)
    expect(parts).toHaveLength(1)
    expect(parts[0]).toMatchObject({
      type: 'error',
      error: { name: 'InvalidArgumentError', code: 'invalid_argument', param: 'client' },
    })
    expect(JSON.stringify(parts[0])).toMatch(/disposed: create a new one/)
    expect(host.loads).toBe(1)
  })

  it('every call after dispose() is an InvalidArgumentError (param client), also from a stream made before it (it was a plain OndeviceError with that code)', async () => {
    const ai = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    await ai.prepare()
    const madeBefore = ai.stream({ messages: question(), maxTokens: 4 })
    await ai.dispose()
    const refusals: [string, () => unknown][] = [
      ['chat()', () => ai.chat({ messages: question() })],
      ['stream()', () => ai.stream({ messages: question() })],
      ['status()', () => ai.status()],
      ['prepare()', () => ai.prepare()],
      ['on()', () => ai.on('ready', () => undefined)],
      [
        'a stream made before dispose(): its error part, rebuilt as chat() rebuilds it',
        async () => {
          for await (const part of madeBefore) if (part.type === 'error') throw deserializeError(part.error)
        },
      ],
    ]
    for (const [call, run] of refusals) {
      const error = await (async () => run())().then(
        () => undefined,
        (thrown: unknown) => thrown,
      )
      expect(error, call).toBeInstanceOf(InvalidArgumentError)
      expect(error, call).toMatchObject({
        code: 'invalid_argument',
        param: 'client',
        message: 'This client was disposed: create a new one with createClient().',
      })
    }
  })
})

describe('an answer longer than the context leaves', () => {
  const contextLength = 64
  const conversation = (): ChatMessage[] => [{ role: 'user', content: 'word '.repeat(30) }]

  it('maxTokens past the context is refused alike on the device, the edge and before a handoff (the device answered it)', async () => {
    const small = await startTestEdge({ session: { contextLength } })
    try {
      const device = createTestDeviceHost({ session: { contextLength }, failAtToken: 3 })
      const clients = {
        'device-only': createClient({ policy: 'device-only' }, { deviceHost: device }),
        'prefer-device (would hand off at token 3)': createClient(
          { edge: { url: small.url }, policy: 'prefer-device' },
          { deviceHost: device },
        ),
        'edge-only': createClient({ edge: { url: small.url }, policy: 'edge-only' }),
      }
      for (const [name, ai] of Object.entries(clients)) {
        const parts: StreamPart[] = []
        for await (const part of ai.stream({ messages: conversation(), maxTokens: 60, seed: 1 }))
          parts.push(part)
        expect(
          parts.filter((part) => part.type === 'text-delta'),
          name,
        ).toHaveLength(0)
        const error = parts.at(-1)
        expect(error, name).toMatchObject({ type: 'error', error: { code: 'context_length_exceeded' } })
        expect(JSON.stringify(error), name).toMatch(/Lower max_?[tT]okens to at most \d+/)
        await ai.dispose()
      }
    } finally {
      await small.close()
    }
  })

  it('a prompt that fills the context is refused alike on the device and the edge: ContextLengthError at messages (the device named no param)', async () => {
    const small = await startTestEdge({ session: { contextLength } })
    const long: ChatMessage[] = [{ role: 'user', content: 'word '.repeat(contextLength) }]
    const clients = [
      createClient(
        { policy: 'device-only' },
        { deviceHost: createTestDeviceHost({ session: { contextLength } }) },
      ),
      createClient({ edge: { url: small.url }, policy: 'edge-only' }),
    ]
    try {
      for (const ai of clients) {
        const error = await ai.chat({ messages: long, seed: 1 }).then(
          () => undefined,
          (thrown: unknown) => thrown,
        )
        expect(error).toBeInstanceOf(ContextLengthError)
        expect(error).toMatchObject({
          code: 'context_length_exceeded',
          param: 'messages',
          isRetryable: false,
        })
      }
    } finally {
      for (const ai of clients) await ai.dispose()
      await small.close()
    }
  })

  it('a prompt the tools fill is refused alike on the device and the edge: ContextLengthError at tools (the device named messages)', async () => {
    const small = await startTestEdge({ session: { contextLength } })
    // One short question beside a tool whose schema alone overflows the context.
    const properties = Object.fromEntries(
      Array.from({ length: 40 }, (_, index) => [`field_${index}`, { type: 'integer' }]),
    )
    const request = {
      messages: [{ role: 'user' as const, content: 'Hi' }],
      tools: [{ name: 'record', parameters: { type: 'object', properties } }],
      seed: 1,
    }
    const clients = [
      createClient(
        { policy: 'device-only' },
        { deviceHost: createTestDeviceHost({ session: { contextLength } }) },
      ),
      createClient({ edge: { url: small.url }, policy: 'edge-only' }),
    ]
    try {
      for (const ai of clients) {
        const error = await ai.chat(request).then(
          () => undefined,
          (thrown: unknown) => thrown,
        )
        expect(error).toBeInstanceOf(ContextLengthError)
        expect(error).toMatchObject({ code: 'context_length_exceeded', param: 'tools', isRetryable: false })
        expect((error as Error).message).toMatch(/fewer or shorter tools/)
      }
    } finally {
      for (const ai of clients) await ai.dispose()
      await small.close()
    }
  })

  it("without maxTokens, the device and the edge stop at the context's end with the same counts", async () => {
    const small = await startTestEdge({ session: { contextLength } })
    try {
      const onDevice = await createClient(
        { policy: 'device-only' },
        { deviceHost: createTestDeviceHost({ session: { contextLength } }) },
      ).chat({ messages: conversation(), seed: 1 })
      const onEdge = await createClient({ edge: { url: small.url }, policy: 'edge-only' }).chat({
        messages: conversation(),
        seed: 1,
      })
      expect(onDevice.finishReason).toBe('length')
      expect(onDevice.usage.promptTokens + onDevice.usage.completionTokens).toBe(contextLength)
      expect(onEdge.finishReason).toBe('length')
      expect(onEdge.usage.promptTokens).toBe(onDevice.usage.promptTokens)
      expect(onEdge.tokenIds).toEqual(onDevice.tokenIds)
    } finally {
      await small.close()
    }
  })
})

describe('streams the app stops reading', () => {
  it('a stream kept but no longer read does not hold the device (every later answer waited for ever)', async () => {
    const ai = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const iterator = ai.stream({ messages: question(), maxTokens: 200, seed: 1 })[Symbol.asyncIterator]()
    await iterator.next() // the route
    await iterator.next() // the first text
    const next = await ai.chat({ messages: question(), maxTokens: 3, seed: 1 })
    expect(next.finishReason).toBe('length')
    await ai.dispose()
  })

  it('two streams read in turns give the answers they give alone (the reader of the second waited for ever)', async () => {
    const ai = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const alone = [
      await ai.chat({ messages: question(), maxTokens: 6, seed: 1 }),
      await ai.chat({ messages: question(), maxTokens: 6, seed: 2 }),
    ].map((result) => result.tokenIds)
    const iterators = [1, 2].map((seed) =>
      ai.stream({ messages: question(), maxTokens: 6, seed })[Symbol.asyncIterator](),
    )
    const finished: (readonly number[])[] = [[], []]
    const open = [true, true]
    while (open[0] || open[1]) {
      for (const index of [0, 1]) {
        if (!open[index]) continue
        const step = await (iterators[index] as AsyncIterator<StreamPart>).next()
        if (step.done) open[index] = false
        else if (step.value.type === 'finish') finished[index] = step.value.tokenIds
      }
    }
    expect(finished).toEqual(alone)
    await ai.dispose()
  })
})

describe('a stream is one answer', () => {
  it('reading it twice is refused (the second read ran the whole request again)', async () => {
    const host = createTestDeviceHost()
    const ai = createClient({ policy: 'device-only' }, { deviceHost: host })
    const stream = ai.stream({ messages: question(), maxTokens: 3 })
    const first: StreamPart[] = []
    for await (const part of stream) first.push(part)
    expect(first.at(-1)?.type).toBe('finish')
    let caught: unknown
    try {
      for await (const _part of stream) {
        // not reached
      }
    } catch (error) {
      caught = error
    }
    expect(caught).toMatchObject({ code: 'invalid_argument', param: 'stream' })
    expect(String(caught)).toMatch(/read already.*Call stream\(\) again/)
    await ai.dispose()
    expect(() => ai.on('ready', () => undefined)).toThrow(/disposed/)
  })
})

describe('a long-lived signal', () => {
  it('prepare({ signal }) leaves no listener on it once it returns (one stayed per call)', async () => {
    const ai = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const signal = new AbortController().signal
    for (let call = 0; call < 5; call++) await ai.prepare({ signal })
    expect(EventEmitter.getEventListeners(signal, 'abort')).toHaveLength(0)
    await ai.dispose()
  })
})

describe('sparse arrays (a hole where an item should be)', () => {
  it("a hole in messages, a message's toolCalls or stop is an InvalidArgumentError at its index (messages crashed with a TypeError)", async () => {
    const client = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const user = { role: 'user' as const, content: 'Hi' }
    const call = { id: 'call_1', type: 'function' as const, function: { name: 'f', arguments: '{}' } }
    const cases: [unknown, string][] = [
      // biome-ignore lint/suspicious/noSparseArray: the hole is the point
      [{ messages: [, user] }, 'messages.0'],
      [
        // biome-ignore lint/suspicious/noSparseArray: the hole is the point
        { messages: [user, { role: 'assistant', content: '', toolCalls: [, call] }, user] },
        'messages.1.toolCalls.0.function.name',
      ],
      // biome-ignore lint/suspicious/noSparseArray: the hole is the point
      [{ messages: [user], stop: [, 'x'] }, 'stop.0'],
    ]
    try {
      for (const [request, param] of cases) {
        const error = await client.chat(request as ChatRequest).then(
          () => undefined,
          (thrown: unknown) => thrown,
        )
        expect(error, param).toBeInstanceOf(InvalidArgumentError)
        expect(error, param).toMatchObject({ param })
      }
    } finally {
      await client.dispose()
    }
  })
})

describe('a call fed back as chat() returned it', () => {
  it('result.toolCalls put straight into an assistant message is refused with the shape it must take', async () => {
    const client = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const fromResult = { id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' }
    try {
      const error = await client
        .chat({
          messages: [
            { role: 'user', content: 'Weather?' },
            { role: 'assistant', content: '', toolCalls: [fromResult] } as never,
            { role: 'tool', toolCallId: 'call_1', content: '{"c":3}' },
          ],
        })
        .catch((thrown: unknown) => thrown)
      expect(error).toBeInstanceOf(InvalidArgumentError)
      // The hint read as if result.toolCalls' own shape were the one asked for.
      expect(error).toMatchObject({
        param: 'messages.1.toolCalls.0.function.name',
        message: expect.stringContaining(
          "goes back as { id, type: 'function', function: { name: call.name, arguments: call.arguments } }",
        ),
      })
    } finally {
      await client.dispose()
    }
  })
})

describe('misspelt or misplaced option names', () => {
  it('an unknown edge option is refused at edge.<name> like an unknown createClient option (edge.apikey was dropped, and the edge answered 401 later)', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ url: 'http://127.0.0.1:1', apikey: 'sk-1' }, 'edge.apikey'],
      [{ url: 'http://127.0.0.1:1', timeoutMs: 5000 }, 'edge.timeoutMs'],
      [{ url: 'http://127.0.0.1:1', baseURL: 'http://127.0.0.1:2' }, 'edge.baseURL'],
    ]
    for (const [edgeOptions, param] of cases) {
      let thrown: unknown
      try {
        createClient({ edge: edgeOptions as never, policy: 'edge-only' })
      } catch (error) {
        thrown = error
      }
      expect(thrown, param).toBeInstanceOf(InvalidArgumentError)
      expect(thrown, param).toMatchObject({ param, isRetryable: false })
      expect((thrown as Error).message, param).toContain('apiKey')
    }
  })

  it('a chat field in snake_case or misspelt is refused naming the camelCase field to use (the refusal listed every name, the fix among twenty)', async () => {
    const client = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const cases: [Record<string, unknown>, string, string][] = [
      [{ max_tokens: 5 }, 'max_tokens', 'maxTokens'],
      [{ max_completion_tokens: 5 }, 'max_completion_tokens', 'maxTokens'],
      [{ tool_choice: 'auto' }, 'tool_choice', 'toolChoice'],
      [{ response_format: { type: 'json_object' } }, 'response_format', 'responseFormat'],
      [{ top_p: 0.9 }, 'top_p', 'topP'],
      [{ logit_bias: {} }, 'logit_bias', 'logitBias'],
      [{ temprature: 0.5 }, 'temprature', 'temperature'],
      [{ maxOutputTokens: 5 }, 'maxOutputTokens', 'maxTokens'],
    ]
    for (const [fields, param, fix] of cases) {
      const request = { messages: question(), ...fields } as unknown as ChatRequest
      for (const refusal of [
        client.chat(request).catch((error: unknown) => error),
        (async () => {
          try {
            client.stream(request)
          } catch (error) {
            return error
          }
        })(),
      ]) {
        const error = await refusal
        expect(error, param).toBeInstanceOf(InvalidArgumentError)
        expect(error, param).toMatchObject({ param })
        expect((error as Error).message, param).toContain(`did you mean "${fix}"?`)
      }
    }
    await client.dispose()
    // The client's defaults and options alike.
    expect(() => createClient({ defaults: { max_tokens: 5 } as never })).toThrow(
      expect.objectContaining({
        param: 'defaults.max_tokens',
        message: expect.stringContaining('"maxTokens"?'),
      }),
    )
    expect(() => createClient({ num_threads: 2 } as never)).toThrow(
      expect.objectContaining({ param: 'num_threads', message: expect.stringContaining('"numThreads"?') }),
    )
    expect(() => createClient({ edge: { url: 'http://127.0.0.1:1', api_key: 'k' } } as never)).toThrow(
      expect.objectContaining({ param: 'edge.api_key', message: expect.stringContaining('"apiKey"?') }),
    )
  })

  it('an array is no options object (createClient([]) made a client with every default)', () => {
    expect(() => createClient([] as never)).toThrow(InvalidArgumentError)
  })
})

describe('prepare({ onProgress }) while a download runs', () => {
  it("a second prepare()'s onProgress hears the download too (only the first caller's was called)", async () => {
    const client = createClient(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost({ cached: false, downloadBytes: 1000, downloadStepMs: 20 }) },
    )
    const first: number[] = []
    const second: number[] = []
    try {
      await Promise.all([
        client.prepare({ onProgress: (progress) => first.push(progress.loadedBytes) }),
        client.prepare({ onProgress: (progress) => second.push(progress.loadedBytes) }),
      ])
      expect(first).toEqual([250, 500, 750, 1000])
      expect(second).toEqual([250, 500, 750, 1000])
    } finally {
      await client.dispose()
    }
  })

  it('an onProgress that throws is reported, and the download goes on for the other callers (it failed the shared load, the other prepare() included)', async () => {
    const client = createClient(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost({ cached: false, downloadBytes: 1000, downloadStepMs: 20 }) },
    )
    const reported: unknown[] = []
    const consoleError = console.error
    console.error = (...args: unknown[]) => reported.push(args)
    try {
      const [throwing, quiet] = await Promise.all([
        client.prepare({
          onProgress: () => {
            throw new Error('bug in the progress bar')
          },
        }),
        client.prepare(),
      ])
      expect(throwing.loaded).toBe(true)
      expect(quiet.loaded).toBe(true)
      expect(JSON.stringify(reported.map(String))).toContain('onProgress')
    } finally {
      console.error = consoleError
      await client.dispose()
    }
  })
})
