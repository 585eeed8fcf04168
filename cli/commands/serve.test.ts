// `ondevice serve` as a user runs it: the real CLI in a child process on 127.0.0.1, no --model
// (the embedded default package, onnxruntime-node), the official `openai` client streaming from
// it, and a client that hangs up mid-stream stopping its generation and freeing the only slot.
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ServeProcess, startServeProcess } from '../../test/cli/serve-process.ts'

const apiKey = 'serve-test-key-0123456789'
let server: ServeProcess
let url: string
let model: string

beforeAll(async () => {
  server = await startServeProcess({
    args: ['--port', '0', '--host', '127.0.0.1'],
    env: { API_KEYS: apiKey, MAX_CONCURRENT: '1', MAX_QUEUE: '0' },
  })
  ;({ url, model } = server)
}, 180_000)

afterAll(async () => {
  if (server) expect(await server.stop()).toBe(0)
})

describe('ondevice serve', () => {
  it('serves the default package to the official openai client, streaming and not', async () => {
    expect(server.output()).toMatch(/No --model: serving the embedded default model/)
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey })
    expect((await client.models.list()).data.map((entry) => entry.id)).toEqual([model])
    const request = {
      model,
      messages: [{ role: 'user' as const, content: 'Say hello.' }],
      max_tokens: 12,
      temperature: 0,
    }
    const whole = await client.chat.completions.create(request)
    expect(whole.system_fingerprint).toMatch(/:native$/)
    expect(whole.usage?.completion_tokens).toBe(12)
    let text = ''
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true }))
      text += chunk.choices[0]?.delta.content ?? ''
    expect(text).toBe(whole.choices[0]?.message.content)
    await expect(
      new OpenAI({ baseURL: `${url}/v1`, apiKey: 'wrong-key-0123456789' }).models.list(),
    ).rejects.toMatchObject({ status: 401 })
  })

  it('enforces response_format and tools for the official openai client (random weights: only the mask makes it valid)', async () => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey })
    const schema = {
      type: 'object',
      properties: {
        city: { type: 'string', maxLength: 12 },
        celsius: { type: 'integer', minimum: -50, maximum: 50 },
      },
      required: ['city', 'celsius'],
      additionalProperties: false,
    }
    const base = {
      model,
      messages: [{ role: 'user' as const, content: 'Weather in Paris?' }],
      max_tokens: 120,
      temperature: 1,
      seed: 4,
    }
    const answer = await client.chat.completions.create({
      ...base,
      response_format: { type: 'json_schema', json_schema: { name: 'weather', schema, strict: true } },
    })
    expect(answer.choices[0]?.finish_reason).toBe('stop')
    const value = JSON.parse(answer.choices[0]?.message.content ?? '') as { city: unknown; celsius: unknown }
    expect(Object.keys(value)).toEqual(['city', 'celsius'])
    expect(typeof value.city === 'string' && value.city.length <= 12).toBe(true)
    expect(
      Number.isInteger(value.celsius) && (value.celsius as number) >= -50 && (value.celsius as number) <= 50,
    ).toBe(true)
    let streamed = ''
    for await (const chunk of await client.chat.completions.create({
      ...base,
      stream: true,
      response_format: { type: 'json_schema', json_schema: { name: 'weather', schema, strict: true } },
    }))
      streamed += chunk.choices[0]?.delta.content ?? ''
    expect(streamed).toBe(answer.choices[0]?.message.content)

    const tools = [
      {
        type: 'function' as const,
        function: {
          name: 'get_weather',
          parameters: {
            type: 'object',
            properties: { city: { type: 'string', maxLength: 10 } },
            required: ['city'],
            additionalProperties: false,
          },
        },
      },
    ]
    const called = await client.chat.completions.create({
      ...base,
      tools,
      tool_choice: 'required',
      parallel_tool_calls: false,
    })
    expect(called.choices[0]?.finish_reason).toBe('tool_calls')
    const call = called.choices[0]?.message.tool_calls?.[0]
    expect(call?.type === 'function' && call.function.name).toBe('get_weather')
    const args = JSON.parse(call?.type === 'function' ? call.function.arguments : '') as { city: string }
    expect(typeof args.city).toBe('string')
    // Streamed, the same call arrives as tool_calls deltas.
    const deltas: { name?: string; arguments?: string }[] = []
    let finish: string | null | undefined
    for await (const chunk of await client.chat.completions.create({
      ...base,
      tools,
      tool_choice: 'required',
      parallel_tool_calls: false,
      stream: true,
    })) {
      for (const delta of chunk.choices[0]?.delta.tool_calls ?? [])
        deltas.push({
          ...(delta.function?.name ? { name: delta.function.name } : {}),
          arguments: delta.function?.arguments ?? '',
        })
      finish = chunk.choices[0]?.finish_reason ?? finish
    }
    expect(finish).toBe('tool_calls')
    expect(deltas[0]?.name).toBe('get_weather')
    expect(deltas.map((delta) => delta.arguments).join('')).toBe(
      call?.type === 'function' ? call.function.arguments : '',
    )
    // max_tokens ending right at the call's `</tool_call>` (every token but the end token): with
    // parallel_tool_calls false nothing but the end may follow, so the call is whole and the
    // answer finished ('tool_calls', streamed or not). It said 'length', a truncated call.
    const atClose = {
      ...base,
      tools,
      tool_choice: 'required' as const,
      parallel_tool_calls: false,
      max_tokens: (called.usage?.completion_tokens ?? 0) - 1,
    }
    const whole = await client.chat.completions.create(atClose)
    expect(whole.choices[0]?.finish_reason).toBe('tool_calls')
    expect(whole.choices[0]?.message.tool_calls).toEqual(called.choices[0]?.message.tool_calls)
    const final = await client.chat.completions.stream(atClose).finalChatCompletion()
    expect(final.choices[0]?.finish_reason).toBe('tool_calls')
    expect(final.choices[0]?.message.tool_calls).toEqual(called.choices[0]?.message.tool_calls)
    // The tool's result fed back: the template renders the call and the result; auto may answer in text or call again.
    const followUp = await client.chat.completions.create({
      ...base,
      tools,
      messages: [
        ...base.messages,
        { role: 'assistant', content: null, tool_calls: called.choices[0]?.message.tool_calls ?? [] },
        { role: 'tool', tool_call_id: call?.id ?? '', content: '{"celsius": 21}' },
      ],
    })
    expect(['stop', 'length', 'tool_calls']).toContain(followUp.choices[0]?.finish_reason)
    // A keyword the grammar cannot enforce: 400 naming it, nothing run.
    await expect(
      client.chat.completions.create({
        ...base,
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'x', schema: { type: 'integer', multipleOf: 0.1 } },
        },
      }),
    ).rejects.toMatchObject({ status: 400, param: 'response_format.json_schema.schema.multipleOf' })
  }, 120_000)

  it('stops generating and frees the slot at once when the client hangs up mid-stream', async () => {
    const controller = new AbortController()
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model,
        messages: [{ role: 'user', content: 'Go on forever.' }],
        max_tokens: 2000,
        temperature: 0,
        stream: true,
      }),
      signal: controller.signal,
    })
    const reader = response.body!.getReader()
    let received = ''
    while (!received.includes('token_ids')) received += new TextDecoder().decode((await reader.read()).value)
    controller.abort()
    // One slot, no queue: the next request is refused (429) until the abandoned one has let go.
    const started = Date.now()
    let status = 0
    while (Date.now() - started < 5000) {
      const health = (await (await fetch(`${url}/healthz`)).json()) as { generations: { active: number } }
      if (health.generations.active === 0) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const next = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 }),
    })
    status = next.status
    expect(status).toBe(200)
    expect(Date.now() - started).toBeLessThan(5000)
    // Its log line: 499, aborted, far fewer tokens than asked for.
    const output = server.output()
    const line = output.split('\n').find((text) => text.includes('"status":499'))
    expect(line, output).toContain('"errorCode":"aborted"')
    const completion = /"completionTokens":(\d+)/.exec(line ?? '')
    if (completion?.[1]) expect(Number(completion[1])).toBeLessThan(2000)
  })
})
