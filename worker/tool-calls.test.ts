// Tool calls and constraints on the wire, as OpenAI's own client and the AI SDK's providers use
// them, against the Hono app in Node over core's deterministic test session and the real Qwen3
// tokenizer (its chat template renders the tools; the mask makes every call valid whatever the
// logits). ondevice serve and the Worker run this app; cli/commands/serve.test.ts and
// test/workerd/worker.test.ts run it on a real model.
import { createOpenAICompatible } from '@ai-sdk/openai-compatible'
import { generateText, type JSONSchema7, jsonSchema, stepCountIs, streamText, tool } from 'ai'
import { Ajv2020 } from 'ajv/dist/2020.js'
import OpenAI from 'openai'
import { describe, expect, it } from 'vitest'
import { qwen3TokenizerWithoutToolCalls } from '../test/support/qwen3-tokenizer.ts'
import { createTestSession } from '../test/support/test-session.ts'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from './app.ts'
import { createModelHost } from './model-host.ts'

const model = 'test-model'
const messages = [{ role: 'user' as const, content: 'What is the weather in Paris?' }]
const openBracket = 58 // '[' in Qwen3's vocabulary

function setup() {
  const app = createApp({ modelHost: createTestHost(), log: () => undefined })
  const post = (body: unknown) =>
    app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
  const client = new OpenAI({
    baseURL: 'http://edge.test/v1',
    apiKey: 'none',
    fetch: async (url, init) => app.request(String(url), init as RequestInit),
    maxRetries: 0,
  })
  return { app, post, client }
}

async function events(response: Response): Promise<Record<string, unknown>[]> {
  const text = await response.text()
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('data: ') && block !== 'data: [DONE]')
    .map((block) => JSON.parse(block.slice('data: '.length)) as Record<string, unknown>)
}

/** Arrays whose two anyOf alternatives differ only in maxItems: every `[` doubles the readings. */
function overlapping(depth: number): Record<string, unknown> {
  const defs: Record<string, unknown> = {}
  for (let level = 0; level < depth; level++) {
    const items = level + 1 < depth ? { $ref: `#/$defs/d${level + 1}` } : { type: 'integer' }
    defs[`d${level}`] = { anyOf: [5, 6].map((maxItems) => ({ type: 'array', items, maxItems })) }
  }
  return { $defs: defs, $ref: '#/$defs/d0' }
}

describe('errors raised while the answer runs name the wire fields', () => {
  // A schema that compiles but grows too ambiguous once the answer nests 20 '[' (logit_bias makes
  // the model write them): the refusal comes from the mask mid-answer. It named core's
  // `responseFormat` on the wire.
  const body = {
    model,
    messages,
    max_tokens: 40,
    seed: 1,
    logit_bias: { [openBracket]: 100 },
    response_format: { type: 'json_schema', json_schema: { name: 'nested', schema: overlapping(20) } },
  }

  it('response_format, streamed (an error event) and not (a 400)', async () => {
    const { post } = setup()
    const response = await post(body)
    expect(response.status).toBe(400)
    const { error } = (await response.json()) as { error: { param: string; message: string } }
    expect(error.param).toBe('response_format')
    expect(error.message).toContain('The schema in response_format is too ambiguous')
    const streamed = await events(await post({ ...body, stream: true }))
    const last = streamed.at(-1) as { error?: { param: string; message: string } }
    expect(last.error?.param).toBe('response_format')
    expect(last.error?.message).not.toContain('responseFormat')
  })

  it('tools (a required call whose parameters nest the same arrays)', async () => {
    const { post } = setup()
    const { $defs } = overlapping(20)
    const parameters = { type: 'object', $defs, properties: { x: { $ref: '#/$defs/d0' } }, required: ['x'] }
    const { response_format: _, ...rest } = body
    const response = await post({
      ...rest,
      tools: [{ type: 'function', function: { name: 'nested', parameters } }],
      tool_choice: 'required',
    })
    expect(response.status).toBe(400)
    const { error } = (await response.json()) as { error: { param: string } }
    expect(error.param).toBe('tools')
  })
})

const ping = {
  type: 'function' as const,
  function: { name: 'ping', parameters: { type: 'object', properties: {}, additionalProperties: false } },
}

describe('tool call ids', () => {
  it("the official client's loop: the call and its result go back (content null), the next call has another id", async () => {
    const { client } = setup()
    const ask = async (history: OpenAI.ChatCompletionMessageParam[]) => {
      const response = await client.chat.completions.create({
        model,
        messages: history,
        tools: [ping],
        tool_choice: 'required',
        parallel_tool_calls: false,
        max_tokens: 30,
      })
      expect(response.choices[0]?.finish_reason).toBe('tool_calls')
      return response.choices[0]!.message
    }
    const first = await ask(messages)
    const call = first.tool_calls![0]!
    const second = await ask([
      ...messages,
      { role: 'assistant', content: null, tool_calls: first.tool_calls! },
      { role: 'tool', tool_call_id: call.id, content: 'pong' },
    ])
    // `{"name":"ping","arguments":{}}` both times (core/generate.test.ts: the same tokens, other ids).
    expect(second.tool_calls).toHaveLength(1)
    expect(second.tool_calls?.[0]).toMatchObject({ function: { name: 'ping', arguments: '{}' } })
    expect(second.tool_calls?.[0]?.id).not.toBe(call.id)
  })
})

const weather = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    strict: true,
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 6 }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
}
const book = {
  type: 'function' as const,
  function: {
    name: 'book-room_2',
    parameters: {
      type: 'object',
      properties: {
        guests: {
          type: 'array',
          maxItems: 2,
          items: {
            type: 'object',
            properties: { name: { type: 'string', maxLength: 4 }, age: { type: 'integer' } },
            required: ['name'],
            additionalProperties: false,
          },
        },
        when: { type: 'object', properties: { day: { enum: [1, 2, 3] } }, required: ['day'] },
      },
      required: ['guests', 'when'],
      additionalProperties: false,
    },
  },
}
const anything = { type: 'function' as const, function: { name: 'no_params' } }
const tools = [weather, book, ping, anything]

type StreamedCall = { id?: string; name?: string; arguments: string; deltas: Record<string, unknown>[] }

/** Merges streamed tool-call deltas by index, keeping each delta as sent. */
function mergeCalls(chunks: Record<string, unknown>[]): StreamedCall[] {
  const calls: StreamedCall[] = []
  for (const chunk of chunks) {
    const delta = (chunk['choices'] as { delta: Record<string, unknown> }[] | undefined)?.[0]?.delta
    for (const raw of (delta?.['tool_calls'] as Record<string, unknown>[] | undefined) ?? []) {
      const index = raw['index'] as number
      const fn = raw['function'] as { name?: string; arguments?: string }
      const call = calls[index] ?? { arguments: '', deltas: [] }
      calls[index] = call
      call.deltas.push(raw)
      if (typeof raw['id'] === 'string') call.id = raw['id']
      if (fn.name !== undefined) call.name = fn.name
      call.arguments += fn.arguments ?? ''
    }
  }
  return calls
}

describe('stop strings and tool calls on the wire', () => {
  it('stop strings the markup holds (as apps send them) leave the calls whole, streamed or not', async () => {
    const { post } = setup()
    // The chunks less what differs between two responses (the completion's id, its time).
    const streamed = async (body: object) =>
      (await (await post({ ...body, stream: true })).text()).replace(
        /"(id|created)":("chatcmpl[^"]*"|\d+),/g,
        '',
      )
    let calls = 0
    for (const seed of [1, 2, 3]) {
      const body = { model, messages, tools, tool_choice: 'required', seed, max_tokens: 90 }
      const plain = (await (await post(body)).json()) as OpenAI.ChatCompletion
      const plainStream = await streamed(body)
      for (const stop of [['}'], ['\n'], ['"', ':', ',', '{']]) {
        const stopped = (await (await post({ ...body, stop })).json()) as OpenAI.ChatCompletion
        expect(stopped.choices[0], `seed ${seed} ${JSON.stringify(stop)}`).toEqual(plain.choices[0])
        expect(await streamed({ ...body, stop })).toBe(plainStream)
      }
      calls += plain.choices[0]!.message.tool_calls?.length ?? 0
    }
    expect(calls).toBeGreaterThanOrEqual(3)
  })
})

describe('a continuation the constraint does not take', () => {
  it("is a 400 naming the token on the wire, before the status line, streamed or not (it was a 200, then an error event naming core's continuation.tokenIds)", async () => {
    const { post } = setup()
    // A required call starts with <tool_call>: the text token "Hello" cannot come first.
    const hello = 9707
    for (const stream of [false, true]) {
      const response = await post({
        model,
        messages,
        tools: [ping],
        tool_choice: 'required',
        max_tokens: 10,
        stream,
        ondevice_continuation: { token_ids: [hello], step: 1 },
      })
      expect(response.status, `stream ${stream}`).toBe(400)
      const { error } = (await response.json()) as { error: { code: string; param: string; message: string } }
      expect(error).toMatchObject({ code: 'invalid_argument', param: 'ondevice_continuation.token_ids.0' })
      expect(error.message).toContain('tools')
    }
  })
})

describe('tool calls streamed as OpenAI streams them', () => {
  const ajv = new Ajv2020({ strict: false })
  const validators = new Map(
    tools.map((tool) => [
      tool.function.name,
      ajv.compile(
        ('parameters' in tool.function ? tool.function.parameters : undefined) ?? { type: 'object' },
      ),
    ]),
  )

  it('first delta per call: index, id, type, name; then argument fragments that add up to the answer', async () => {
    const { post } = setup()
    let fragments = 0
    let calls = 0
    for (const [seed, parallel] of [
      [1, false],
      [2, true],
      [3, true],
      [4, false],
    ] as const) {
      const body = {
        model,
        messages,
        tools,
        tool_choice: 'required',
        parallel_tool_calls: parallel,
        seed,
        max_tokens: 90,
      }
      const plain = (await (await post(body)).json()) as OpenAI.ChatCompletion
      const chunks = await events(await post({ ...body, stream: true }))
      const streamed = mergeCalls(chunks)
      const choice = plain.choices[0]!
      const finish = chunks.map(
        (chunk) => (chunk['choices'] as { finish_reason: string | null }[])[0]?.finish_reason,
      )
      expect(finish.filter(Boolean)).toEqual([choice.finish_reason])
      const complete = choice.message.tool_calls ?? []
      if (choice.finish_reason === 'tool_calls') expect(complete.length).toBeGreaterThan(0)
      if (!parallel) expect(complete.length).toBeLessThanOrEqual(1)
      // Complete calls: the same ids, names and arguments, streamed or not.
      for (const [index, call] of complete.entries()) {
        if (call.type !== 'function') throw new Error('not a function call')
        const [first, ...rest] = streamed[index]!.deltas
        expect(first).toMatchObject({
          index,
          id: call.id,
          type: 'function',
          function: { name: call.function.name },
        })
        for (const delta of rest) expect(Object.keys(delta).sort()).toEqual(['function', 'index'])
        for (const delta of rest) expect(Object.keys(delta['function'] as object)).toEqual(['arguments'])
        expect(streamed[index]!.arguments).toBe(call.function.arguments)
        const validate = validators.get(call.function.name)!
        expect(validate(JSON.parse(call.function.arguments)), call.function.arguments).toBe(true)
        fragments += rest.length
        calls++
      }
      // A call the token limit cut sent what it had (as OpenAI's do); it is no call in the answer.
      expect(streamed.length - complete.length).toBeLessThanOrEqual(1)
      if (streamed.length > complete.length) {
        expect(choice.finish_reason).toBe('length')
        expect((plain as { ondevice?: { partial?: boolean } }).ondevice?.partial).toBe(true)
        expect(() => JSON.parse(streamed.at(-1)!.arguments)).toThrow()
      }
      // A forced call's role chunk has content null (OpenAI's; '' opened an empty text part in the
      // AI SDK's OpenAI provider). Markup never shows as content; ids are unique in the answer.
      expect((chunks[0]?.['choices'] as { delta: unknown }[] | undefined)?.[0]?.delta).toEqual({
        role: 'assistant',
        content: null,
      })
      for (const chunk of chunks.slice(1)) {
        const delta = (chunk['choices'] as { delta: Record<string, unknown> }[])[0]?.delta
        expect(delta?.['content']).toBeUndefined()
      }
      expect(new Set(complete.map((call) => call.id)).size).toBe(complete.length)
    }
    expect(calls).toBeGreaterThanOrEqual(3)
    expect(fragments).toBeGreaterThan(calls)
  })

  it("the official client's stream() helper and runTools loop read them", async () => {
    const { client } = setup()
    const body = {
      model,
      messages,
      tools: [weather],
      tool_choice: 'required' as const,
      parallel_tool_calls: false,
      seed: 5,
      max_tokens: 60,
    }
    const plain = await client.chat.completions.create(body)
    const argumentDeltas: string[] = []
    const stream = client.chat.completions.stream(body)
    stream.on('tool_calls.function.arguments.delta', (event) => argumentDeltas.push(event.arguments_delta))
    const final = await stream.finalChatCompletion()
    expect(final.choices[0]?.finish_reason).toBe('tool_calls')
    expect(final.choices[0]?.message.tool_calls?.[0]).toMatchObject({
      id: plain.choices[0]?.message.tool_calls?.[0]?.id,
      function:
        plain.choices[0]?.message.tool_calls?.[0]?.type === 'function'
          ? plain.choices[0].message.tool_calls[0].function
          : {},
    })
    expect(argumentDeltas.length).toBeGreaterThan(1)
    // runTools: the forced function runs, its result goes back as a tool message, streamed or not.
    for (const streamed of [false, true]) {
      const ran: unknown[] = []
      const runner = client.chat.completions.runTools({
        ...body,
        stream: streamed,
        tool_choice: { type: 'function', function: { name: 'get_weather' } },
        tools: [
          {
            type: 'function',
            function: {
              name: 'get_weather',
              parameters: weather.function.parameters,
              parse: JSON.parse,
              function: (input: unknown) => {
                ran.push(input)
                return { celsius: 21 }
              },
            },
          },
        ],
      } as unknown as Parameters<typeof client.chat.completions.runTools>[0])
      await runner.finalChatCompletion()
      expect(ran).toHaveLength(1)
      expect(runner.messages.map((message) => message.role)).toEqual(['user', 'assistant', 'tool'])
    }
  })

  it('a continuation that starts inside a call streams the call from its start', async () => {
    const { post } = setup()
    const body = {
      model,
      messages,
      tools: [weather],
      tool_choice: 'required',
      parallel_tool_calls: false,
      seed: 6,
      max_tokens: 60,
    }
    const whole = (await (await post(body)).json()) as OpenAI.ChatCompletion & {
      ondevice: { token_ids: number[] }
    }
    const call = whole.choices[0]?.message.tool_calls?.[0]
    if (call?.type !== 'function') throw new Error('expected a call')
    const ids = whole.ondevice.token_ids
    for (const k of [3, 8, ids.length - 3]) {
      const chunks = await events(
        await post({
          ...body,
          stream: true,
          max_tokens: 60 - k,
          ondevice_continuation: { token_ids: ids.slice(0, k), step: k },
        }),
      )
      const [streamed] = mergeCalls(chunks)
      expect(streamed, `k=${k}`).toMatchObject({
        id: call.id,
        name: 'get_weather',
        arguments: call.function.arguments,
      })
    }
  })
})

describe('loose tool parameters', () => {
  it('{} and a schema without type describe the arguments object (OpenAI takes them; {} was a 400)', async () => {
    const { client } = setup()
    for (const parameters of [
      {},
      { properties: { day: { enum: [1, 2] } }, required: ['day'], additionalProperties: false },
    ]) {
      const response = await client.chat.completions.create({
        model,
        messages,
        tools: [{ type: 'function', function: { name: 'loose', parameters } }],
        tool_choice: 'required',
        parallel_tool_calls: false,
        max_tokens: 40,
        seed: 2,
      })
      const call = response.choices[0]?.message.tool_calls?.[0]
      if (call !== undefined && call.type === 'function') {
        const args = JSON.parse(call.function.arguments) as unknown
        expect(typeof args === 'object' && args !== null && !Array.isArray(args)).toBe(true)
        expect(new Ajv2020({ strict: false }).validate({ ...parameters, type: 'object' }, args)).toBe(true)
      } else {
        // Random logits may write a long object: cut, never anything but an object's start.
        expect(response.choices[0]?.finish_reason).toBe('length')
      }
    }
    await expect(
      client.chat.completions.create({
        model,
        messages,
        tools: [{ type: 'function', function: { name: 'text', parameters: { type: 'string' } } }],
      }),
    ).rejects.toMatchObject({ status: 400, param: 'tools.0.function.parameters' })
  })
})

describe('requests real clients send', () => {
  it('20 tools (names with dashes, underscores and digits): the forced call is one of them, valid against its schema', async () => {
    const { client } = setup()
    const many = Array.from({ length: 20 }, (_, index) => ({
      type: 'function' as const,
      function: {
        name: `tool_${index}-v${index % 3}`,
        parameters: {
          type: 'object',
          properties: { n: { type: 'integer', minimum: 0, maximum: 9 }, mode: { enum: ['a', 'b'] } },
          required: ['n', 'mode'],
          additionalProperties: false,
        },
      },
    }))
    const validate = new Ajv2020({ strict: false }).compile(many[0]!.function.parameters)
    for (const seed of [1, 2]) {
      const response = await client.chat.completions.create({
        model,
        messages,
        tools: many,
        tool_choice: 'required',
        parallel_tool_calls: false,
        max_tokens: 60,
        seed,
      })
      expect(response.choices[0]?.finish_reason).toBe('tool_calls')
      const call = response.choices[0]?.message.tool_calls?.[0]
      if (call?.type !== 'function') throw new Error('expected a function call')
      expect(many.map((tool) => tool.function.name)).toContain(call.function.name)
      expect(validate(JSON.parse(call.function.arguments))).toBe(true)
    }
  })

  it("the AI SDK's openai(model) posts to OpenAI's Responses API: the 404 says how to reach chat completions", async () => {
    const { app } = setup()
    const response = await app.request('/v1/responses', { method: 'POST', body: '{}' })
    expect(response.status).toBe(404)
    const { error } = (await response.json()) as { error: { message: string } }
    expect(error.message).toContain('openai.chat(model)')
    const chat = await app.request('/v1/chat/completions', { method: 'GET' })
    expect(((await chat.json()) as { error: { message: string } }).error.message).not.toContain('legacy')
  })

  it('a tool result as text parts renders as the same string (the same prompt and answer)', async () => {
    const { post } = setup()
    const call = {
      id: 'call_1',
      type: 'function',
      function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
    }
    const history = (content: unknown) => [
      ...messages,
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: 'call_1', content },
    ]
    const answers = []
    for (const content of [
      '{"celsius":21}',
      [
        { type: 'text', text: '{"celsius":' },
        { type: 'text', text: '21}' },
      ],
    ]) {
      const response = await post({
        model,
        messages: history(content),
        tools: [weather],
        max_tokens: 3,
        seed: 1,
      })
      expect(response.status).toBe(200)
      answers.push({
        promptTokens: response.headers.get('x-ondevice-prompt-tokens'),
        tokens: ((await response.json()) as { ondevice: { token_ids: number[] } }).ondevice.token_ids,
      })
    }
    expect(answers[1]).toEqual(answers[0])
  })
})

describe('a named tool_choice', () => {
  it("is OpenAI's forced function: exactly one call, unless parallel_tool_calls: true asks for more", async () => {
    const { client } = setup()
    const counts = async (parallel?: boolean) => {
      const found: number[] = []
      for (const seed of [1, 2, 3, 4]) {
        const response = await client.chat.completions.create({
          model,
          messages,
          tools: [ping, weather],
          tool_choice: { type: 'function', function: { name: 'ping' } },
          ...(parallel === undefined ? {} : { parallel_tool_calls: parallel }),
          max_tokens: 80,
          seed,
        })
        found.push(response.choices[0]?.message.tool_calls?.length ?? 0)
      }
      return found
    }
    // The random logits call again whenever they may: several calls each before.
    expect(await counts()).toEqual([1, 1, 1, 1])
    expect(Math.max(...(await counts(true)))).toBeGreaterThan(1)
  })
})

describe('a model without the tool-call syntax', () => {
  const withoutCalls = qwen3TokenizerWithoutToolCalls()
  const host = createModelHost({
    modelId: model,
    retryAfterMs: 60_000,
    load: async () => ({
      info: { modelId: model, backend: 'test', dtype: 'fp32', contextLength: 4096 },
      tokenizer: withoutCalls,
      createSession: async () => createTestSession({ vocabularySize: withoutCalls.vocabularySize }),
    }),
  })
  const app = createApp({ modelHost: host, log: () => undefined })
  const post = (body: object) =>
    app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages, tools: [weather], max_tokens: 3, ...body }),
    })

  it('refuses tools it would have to call with a 400 naming tools, streamed or not (a 503, or a 200 then an error event)', async () => {
    for (const body of [
      { tool_choice: 'required' },
      { tool_choice: 'auto' },
      { tool_choice: 'required', stream: true },
    ]) {
      const response = await post(body)
      expect(response.status, JSON.stringify(body)).toBe(400)
      const { error } = (await response.json()) as { error: { code: string; param: string; message: string } }
      expect(error).toMatchObject({ code: 'unsupported', param: 'tools' })
      expect(error.message).toContain('tool_choice "none"')
    }
  })

  it('answers tool_choice "none" (there is no call to keep out; it failed)', async () => {
    const response = await post({ tool_choice: 'none' })
    expect(response.status).toBe(200)
    expect(((await response.json()) as OpenAI.ChatCompletion).choices[0]?.finish_reason).toBe('length')
  })
})

describe('the role chunk', () => {
  it("says only what is known before the first token: content '' without tools, null for a forced call, none for auto", async () => {
    const { post } = setup()
    const first = async (body: object) => {
      const chunks = await events(await post({ model, messages, max_tokens: 2, stream: true, ...body }))
      return (chunks[0]?.['choices'] as { delta: unknown }[] | undefined)?.[0]?.delta
    }
    expect(await first({})).toEqual({ role: 'assistant', content: '' })
    expect(await first({ tools: [weather], tool_choice: 'none' })).toEqual({ role: 'assistant', content: '' })
    expect(await first({ tools: [weather], tool_choice: 'required' })).toEqual({
      role: 'assistant',
      content: null,
    })
    // auto may answer in text or call: an empty content made the AI SDK's OpenAI provider open an
    // empty text part before every call.
    expect(await first({ tools: [weather] })).toEqual({ role: 'assistant' })
  })
})

describe("the AI SDK's OpenAI-compatible provider", () => {
  it('generateText and streamText with tools: a two-step loop runs the call, feeds the result back, ends in text', async () => {
    const { app } = setup()
    const provider = createOpenAICompatible({
      name: 'edge',
      baseURL: 'http://edge.test/v1',
      fetch: async (url, init) => app.request(String(url), init as RequestInit),
    })
    for (const mode of ['generate', 'stream'] as const) {
      const ran: unknown[] = []
      const options = {
        model: provider.chatModel(model),
        prompt: 'What is the weather in Paris?',
        maxOutputTokens: 40,
        seed: 3,
        tools: {
          get_weather: tool({
            inputSchema: jsonSchema<{ city: string; unit: 'c' | 'f' }>(
              weather.function.parameters as JSONSchema7,
            ),
            execute: async (input) => {
              ran.push(input)
              return { celsius: 21 }
            },
          }),
        },
        // The request's own fields go under the provider's name.
        providerOptions: { edge: { parallel_tool_calls: false } },
        stopWhen: stepCountIs(2),
        prepareStep: ({ stepNumber }: { stepNumber: number }) => ({
          toolChoice: stepNumber === 0 ? ('required' as const) : ('none' as const),
        }),
      }
      const steps =
        mode === 'generate'
          ? (await generateText(options)).steps
          : await (async () => {
              const result = streamText(options)
              const types = new Set<string>()
              for await (const part of result.fullStream) types.add(part.type)
              expect([...types]).toEqual(
                expect.arrayContaining(['tool-input-start', 'tool-input-delta', 'tool-call', 'tool-result']),
              )
              expect(types.has('error')).toBe(false)
              return await result.steps
            })()
      expect(
        steps.map((step) => step.finishReason),
        mode,
      ).toEqual(['tool-calls', 'length'])
      expect(steps[0]?.toolCalls).toHaveLength(1)
      expect(ran).toEqual([steps[0]?.toolCalls[0]?.input])
      expect(steps[0]?.toolResults[0]?.output).toEqual({ celsius: 21 })
      expect(steps[1]?.text.length).toBeGreaterThan(0)
    }
  })
})
