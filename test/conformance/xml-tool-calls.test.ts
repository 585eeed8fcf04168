// A Qwen3.5 package whose chat template teaches the Qwen3-Coder XML call syntax (as Qwen3.5's own
// chat_template.jinja does; the builder's fixtures carry Qwen3's template, so the test writes this
// one over it): random weights at temperature 1 make calls the mask keeps to that syntax, every one
// valid against its tool's parameters, on the SDK's device path (onnxruntime-node) and through the
// app's /v1/chat/completions (the official wire, streamed or not, the same calls); the next turn
// of the tool loop, the calls' arguments sent back as JSON text, renders and answers.
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/index.ts'
import type { ChatMessage } from '../../core/chat-template.ts'
import { InvalidArgumentError } from '../../core/errors.ts'
import type { StreamPart, ToolCall } from '../../core/stream-parts.ts'
import type { ToolDefinition } from '../../core/structured/constraint.ts'
import { createClient } from '../../sdk/client.ts'
import { createApp } from '../../worker/app.ts'
import { createNodeModelHost } from '../../worker/node.ts'

const tools = [
  {
    name: 'get_weather',
    description: 'The weather in a city.',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', minLength: 1, maxLength: 8 },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        days: { type: 'integer', minimum: 1, maximum: 7 },
      },
      required: ['city', 'days'],
      additionalProperties: false,
    },
  },
  {
    name: 'search',
    parameters: {
      type: 'object',
      properties: {
        query: { type: 'string', pattern: '^[a-z]{1,6}$' },
        limit: { type: 'integer', minimum: 1, maximum: 9 },
      },
      required: ['query'],
      additionalProperties: false,
    },
  },
]
const messages: ChatMessage[] = [{ role: 'user', content: 'What is the weather in Paris?' }]
const ajv = new Ajv2020()
const validators = new Map(tools.map((tool) => [tool.name, ajv.compile(tool.parameters)]))
const wireTools = tools.map((tool) => ({ type: 'function' as const, function: tool }))

/** Tools only the XML dialect cannot write (the JSON one can), and the path each refusal names. */
const unwritable: { readonly tool: ToolDefinition; readonly path: string }[] = [
  {
    tool: { name: 'odd', parameters: { type: 'object', properties: { 'a>b': { type: 'string' } } } },
    path: 'parameters.properties.a>b',
  },
  {
    tool: {
      name: 'mode',
      parameters: {
        type: 'object',
        properties: { mode: { type: 'string', enum: ['fast', 'x\n</parameter>'] } },
        required: ['mode'],
      },
    },
    path: 'parameters.properties.mode',
  },
  {
    tool: {
      name: 'either',
      parameters: {
        anyOf: [
          { type: 'object', properties: { v: { type: 'string' } }, required: ['v'] },
          { type: 'object', properties: { v: { type: 'integer' } }, required: ['v'] },
        ],
      },
    },
    path: 'parameters.properties.v',
  },
]
/** Stop strings every call's markup holds: they match content only, so the calls stay whole. */
const markupStops = ['\n', '>', '}', '"']

function expectValid(calls: readonly ToolCall[] | undefined): void {
  expect(calls?.length).toBeGreaterThan(0)
  for (const call of calls ?? []) {
    const validate = validators.get(call.name)
    expect(validate, call.name).toBeDefined()
    expect(
      validate!(JSON.parse(call.arguments)),
      `${call.arguments}: ${JSON.stringify(validate!.errors)}`,
    ).toBe(true)
  }
}

let folder: string
let packageDir: string
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-xml-calls-'))
  packageDir = join(folder, 'qwen3_5-xml')
  await writeFixture({ arch: 'qwen3_5', outDir: packageDir, seed: 3 })
  // The XML dialect's template over the fixture's, and the manifest's entry for the file with it.
  const template = await readFile(
    fileURLToPath(new URL('../support/templates/qwen3-xml-tool-calls.jinja', import.meta.url)),
    'utf8',
  )
  const configPath = join(packageDir, 'tokenizer_config.json')
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>
  const bytes = Buffer.from(JSON.stringify({ ...config, chat_template: template }, null, 2))
  await writeFile(configPath, bytes)
  const manifestPath = join(packageDir, 'manifest.json')
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as {
    files: { path: string; bytes: number; sha256: string }[]
  }
  const entry = manifest.files.find((file) => file.path === 'tokenizer_config.json')!
  entry.bytes = bytes.length
  entry.sha256 = createHash('sha256').update(bytes).digest('hex')
  await writeFile(manifestPath, JSON.stringify(manifest, null, 2))
}, 120_000)

afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true })
})

describe('tool calls on a package whose template teaches the XML call syntax', () => {
  const deviceCalls = new Map<number, ToolCall[]>()
  const seeds = [1, 2, 3]

  it('the SDK on the device: forced calls valid by ajv, the same as stream parts; the next turn renders and answers', async () => {
    const client = createClient({ model: packageDir, policy: 'device-only' })
    try {
      for (const seed of seeds) {
        const request = {
          messages,
          tools,
          toolChoice: 'required' as const,
          parallelToolCalls: false,
          temperature: 1,
          seed,
          maxTokens: 240,
        }
        const result = await client.chat(request)
        expect(result.finishReason, `seed ${seed}`).toBe('tool-calls')
        expect(result.text).toBe('')
        expectValid(result.toolCalls)
        deviceCalls.set(seed, [...result.toolCalls!])
        const parts: StreamPart[] = []
        for await (const part of client.stream(request)) parts.push(part)
        expect(parts.flatMap((part) => (part.type === 'tool-call' ? [part.toolCall] : []))).toEqual(
          result.toolCalls,
        )
        expect(parts.some((part) => part.type === 'text-delta' && part.text !== '')).toBe(false)
      }
      // Stop strings the markup holds leave the calls as they were (they cut content only).
      for (const seed of seeds) {
        const stopped = await client.chat({
          messages,
          tools,
          toolChoice: 'required',
          parallelToolCalls: false,
          temperature: 1,
          seed,
          maxTokens: 240,
          stop: markupStops,
        })
        expect(stopped.finishReason, `seed ${seed}`).toBe('tool-calls')
        expect(stopped.toolCalls, `seed ${seed}`).toEqual(deviceCalls.get(seed))
      }
      // The loop's next turn: the calls as the app got them (arguments: JSON text) and their results.
      const calls = deviceCalls.get(1)!
      const next = await client.chat({
        messages: [
          ...messages,
          {
            role: 'assistant',
            content: '',
            toolCalls: calls.map((call) => ({
              id: call.id,
              type: 'function' as const,
              function: { name: call.name, arguments: call.arguments },
            })),
          },
          ...calls.map((call) => ({ role: 'tool' as const, toolCallId: call.id, content: '{"celsius":21}' })),
        ],
        tools,
        toolChoice: 'none',
        temperature: 1,
        seed: 1,
        maxTokens: 6,
      })
      expect(next.finishReason).toMatch(/^(stop|length)$/)
      expect(next.toolCalls).toBeUndefined()
      expect(next.tokenIds.length).toBeGreaterThan(0)
    } finally {
      await client.dispose()
    }
  }, 120_000)

  it('the server (createApp over the same package): the same calls, streamed fragments that join to them, the next turn answered', async () => {
    const app = createApp({ modelHost: createNodeModelHost({ model: packageDir }), log: () => undefined })
    const post = (body: unknown) =>
      app.request('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'qwen3_5-xml', ...(body as object) }),
      })
    for (const seed of seeds) {
      const body = {
        messages,
        tools: wireTools,
        tool_choice: 'required',
        parallel_tool_calls: false,
        temperature: 1,
        seed,
        max_tokens: 240,
      }
      const response = await post(body)
      expect(response.status).toBe(200)
      const completion = (await response.json()) as {
        choices: {
          message: { content: string | null; tool_calls: { id: string; function: ToolCall }[] }
          finish_reason: string
        }[]
      }
      const [choice] = completion.choices
      expect(choice!.finish_reason).toBe('tool_calls')
      expect(choice!.message.content).toBeNull()
      const calls = choice!.message.tool_calls.map((call) => ({
        id: call.id,
        name: call.function.name,
        arguments: call.function.arguments,
      }))
      expect(calls, 'the device and the edge run the same generate()').toEqual(deviceCalls.get(seed))

      const streamed = await (await post({ ...body, stream: true })).text()
      const joined = new Map<number, { id?: string; name?: string; arguments: string }>()
      for (const block of streamed.split('\n\n')) {
        if (!block.startsWith('data: ') || block === 'data: [DONE]') continue
        const chunk = JSON.parse(block.slice('data: '.length)) as {
          choices: {
            delta: {
              content?: string | null
              tool_calls?: { index: number; id?: string; function?: { name?: string; arguments?: string } }[]
            }
          }[]
        }
        const delta = chunk.choices[0]?.delta
        expect(delta?.content ?? '').toBe('')
        for (const entry of delta?.tool_calls ?? []) {
          const call = joined.get(entry.index) ?? { arguments: '' }
          if (entry.id !== undefined) call.id = entry.id
          if (entry.function?.name !== undefined) call.name = entry.function.name
          call.arguments += entry.function?.arguments ?? ''
          joined.set(entry.index, call)
        }
      }
      expect([...joined.values()]).toEqual(calls)
      // Stop strings the markup holds leave the calls whole on the wire too, streamed or not.
      const stopped = (await (await post({ ...body, stop: markupStops })).json()) as typeof completion
      expect(stopped.choices[0]!.finish_reason).toBe('tool_calls')
      expect(stopped.choices[0]!.message.tool_calls.map((call) => call.function.arguments)).toEqual(
        calls.map((call) => call.arguments),
      )
      const streamedStopped = await (await post({ ...body, stop: markupStops, stream: true })).text()
      expect(streamedStopped.replace(/"(id|created)":[^,]*,/g, '')).toBe(
        streamed.replace(/"(id|created)":[^,]*,/g, ''),
      )
    }
    const calls = deviceCalls.get(1)!
    const history = [
      { role: 'user', content: messages[0]!.content },
      {
        role: 'assistant',
        content: null,
        tool_calls: calls.map((call) => ({
          id: call.id,
          type: 'function',
          function: { name: call.name, arguments: call.arguments },
        })),
      },
      ...calls.map((call) => ({ role: 'tool', tool_call_id: call.id, content: '{"celsius":21}' })),
    ]
    const next = await post({ messages: history, tools: wireTools, temperature: 1, seed: 1, max_tokens: 6 })
    expect(next.status).toBe(200)
    const answered = (await next.json()) as { choices: { finish_reason: string }[] }
    expect(answered.choices[0]!.finish_reason).toMatch(/^(stop|length|tool_calls)$/)
    // Arguments that are not a JSON object cannot become <parameter> blocks: a 400 naming them.
    const broken = structuredClone(history) as { tool_calls?: { function: { arguments: string } }[] }[]
    broken[1]!.tool_calls![0]!.function.arguments = '{"city":'
    const refused = await post({ messages: broken, tools: wireTools, max_tokens: 4 })
    expect(refused.status).toBe(400)
    expect(((await refused.json()) as { error: { param: string } }).error.param).toBe(
      'messages.1.tool_calls.0.function.arguments',
    )
  }, 120_000)
  it('the SDK refuses what the XML dialect cannot write before the answer starts: the first read rejects, before any route part, loaded or not', async () => {
    const client = createClient({ model: packageDir, policy: 'device-only' })
    const routes: unknown[] = []
    client.on('route', (part) => routes.push(part))
    try {
      // The first request loads the package (its template tells the call syntax); later ones
      // find it loaded. Either way the stream's first read rejects, as chat() does.
      for (const { tool, path } of unwritable) {
        const request = { messages, tools: [tools[0]!, tool], temperature: 1, seed: 1, maxTokens: 8 }
        const parts: StreamPart[] = []
        let thrown: unknown
        try {
          for await (const part of client.stream(request)) parts.push(part)
        } catch (error) {
          thrown = error
        }
        expect(parts, path).toEqual([])
        expect(thrown, path).toBeInstanceOf(InvalidArgumentError)
        expect(thrown, path).toMatchObject({ param: `tools.1.${path}` })
        await expect(client.chat(request)).rejects.toMatchObject({
          name: 'InvalidArgumentError',
          param: `tools.1.${path}`,
        })
      }
      expect(routes).toEqual([])
      // With toolChoice 'none' the model never writes a call: the same tools are answered.
      for (const { tool } of unwritable) {
        const none = await client.chat({
          messages,
          tools: [tools[0]!, tool],
          toolChoice: 'none',
          temperature: 1,
          seed: 1,
          maxTokens: 2,
        })
        expect(none.tokenIds.length).toBeGreaterThan(0)
      }
    } finally {
      await client.dispose()
    }
  }, 120_000)

  it('the server refuses them with a 400 before the status line, streamed or not (it was a 200, then an error event)', async () => {
    const app = createApp({ modelHost: createNodeModelHost({ model: packageDir }), log: () => undefined })
    for (const { tool, path } of unwritable) {
      for (const stream of [false, true]) {
        const response = await app.request('/v1/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model: 'qwen3_5-xml',
            messages,
            tools: [wireTools[0], { type: 'function', function: tool }],
            max_tokens: 8,
            stream,
          }),
        })
        expect(response.status, `${path} stream ${stream}`).toBe(400)
        expect(response.headers.get('content-type')).toMatch(/^application\/json/)
        const { error } = (await response.json()) as { error: { code: string; param: string } }
        expect(error).toMatchObject({ code: 'invalid_argument', param: `tools.1.function.${path}` })
      }
      // With tool_choice "none" the model never writes a call: the same tools are answered.
      const none = await app.request('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'qwen3_5-xml',
          messages,
          tools: [wireTools[0], { type: 'function', function: tool }],
          tool_choice: 'none',
          max_tokens: 2,
          stream: true,
        }),
      })
      expect(none.status, path).toBe(200)
      expect(await none.text()).toContain('data: [DONE]')
    }
  }, 120_000)
})
