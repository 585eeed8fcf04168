// Keys inside the request's objects that the server does not define, over real HTTP (serveApp).
// The top level refused an unknown field, but inside a message, a tool, a response_format or
// stream_options one was dropped without a word, and with it what it carried: each case below
// was a 200 whose answer ignored it (found by an adversarial pass sending what other APIs and
// careless clients send). Now each is a 400 naming the key and where it belongs, and what real
// clients send back (OpenAI's client replaying an assistant message, `strict`, `description`,
// `include_obfuscation`) is still answered.
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from './app.ts'
import { type RunningServer, serveApp } from './node.ts'

const apiKey = 'test-key-0123456789abcdef'
const user = { role: 'user', content: 'hi' }
const schema = { type: 'object', properties: { x: { type: 'integer' } }, required: ['x'] }

let server: RunningServer

beforeAll(async () => {
  const app = createApp({ modelHost: createTestHost(), apiKeys: [apiKey], log: () => undefined })
  server = await serveApp({ app, port: 0, host: '127.0.0.1' })
})

afterAll(async () => {
  await server.close()
})

async function post(
  body: Record<string, unknown>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'test-model', max_tokens: 4, ...body }),
  })
  const text = await response.text()
  // A stream's events are not one JSON document: only its status matters to these tests.
  const json = response.headers.get('content-type')?.startsWith('application/json') === true
  return { status: response.status, body: json ? (JSON.parse(text) as Record<string, unknown>) : { text } }
}

async function refusal(
  body: Record<string, unknown>,
): Promise<{ param: string; message: string; code: string }> {
  const answer = await post(body)
  expect(answer.status, JSON.stringify(answer.body).slice(0, 300)).toBe(400)
  return answer.body['error'] as { param: string; message: string; code: string }
}

describe('an unknown key inside the request is a 400 naming it (it was dropped with what it carried)', () => {
  it('a tool whose parameters sit beside function, not in it: the schema was never enforced', async () => {
    const error = await refusal({
      messages: [user],
      tools: [{ type: 'function', function: { name: 'f' }, parameters: schema }],
      tool_choice: 'required',
    })
    expect(error.code).toBe('invalid_argument')
    expect(error.param).toBe('tools.0.parameters')
    expect(error.message).toMatch(/belongs in tools\.0\.function/)
  })

  it('a misspelt parameters, and an Anthropic-style input_schema, in a function', async () => {
    const typo = await refusal({
      messages: [user],
      tools: [{ type: 'function', function: { name: 'f', paramaters: schema } }],
    })
    expect(typo.param).toBe('tools.0.function.paramaters')
    expect(typo.message).toMatch(/name, description, parameters and strict/)
    const anthropic = await refusal({
      messages: [user],
      tools: [{ type: 'function', function: { name: 'f', input_schema: schema } }],
    })
    expect(anthropic.param).toBe('tools.0.function.input_schema')
    expect(anthropic.message).toMatch(/tools\.0\.function\.parameters/)
  })

  it('a schema beside type "json_object" (vLLM and Fireworks take it there): it answered any object', async () => {
    const error = await refusal({ messages: [user], response_format: { type: 'json_object', schema } })
    expect(error.param).toBe('response_format.schema')
    expect(error.message).toMatch(/"json_schema"/)
    const text = await refusal({
      messages: [user],
      response_format: { type: 'text', json_schema: { name: 'x', schema } },
    })
    expect(text.param).toBe('response_format.json_schema')
  })

  it('a schema beside json_schema, and an unknown key in json_schema', async () => {
    const beside = await refusal({
      messages: [user],
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema }, schema },
    })
    expect(beside.param).toBe('response_format.schema')
    expect(beside.message).toMatch(/response_format\.json_schema\.schema/)
    const inside = await refusal({
      messages: [user],
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema, strcit: true } },
    })
    expect(inside.param).toBe('response_format.json_schema.strcit')
  })

  it("a message's Ollama-style images: the model answered about a picture it never saw", async () => {
    const error = await refusal({
      messages: [{ role: 'user', content: 'What is in this picture?', images: ['iVBORw0KGgo='] }],
    })
    expect(error.param).toBe('messages.0.images')
    expect(error.message).toMatch(/images are not supported by this model/)
  })

  it("a message's legacy function_call, and a camelCase toolCalls, are refused, not dropped", async () => {
    const legacy = await refusal({
      messages: [user, { role: 'assistant', content: null, function_call: { name: 'f', arguments: '{}' } }],
    })
    expect(legacy.param).toBe('messages.1.function_call')
    expect(legacy.message).toMatch(/tool_calls/)
    const camel = await refusal({
      messages: [
        user,
        {
          role: 'assistant',
          content: '',
          toolCalls: [{ id: 'c', type: 'function', function: { name: 'f' } }],
        },
      ],
    })
    expect(camel.param).toBe('messages.1.toolCalls')
    expect(camel.message).toMatch(/did you mean "tool_calls"/)
  })

  it('stream_options and ondevice_continuation refuse keys they do not define', async () => {
    const options = await refusal({
      messages: [user],
      stream: true,
      stream_options: { include_usage: true, includeUsage: true },
    })
    expect(options.param).toBe('stream_options.includeUsage')
    const continuation = await refusal({
      messages: [user],
      ondevice_continuation: { token_ids: [1], step: 1, tokenIds: [1] },
    })
    expect(continuation.param).toBe('ondevice_continuation.tokenIds')
  })
})

describe('what real clients send inside the request is still answered', () => {
  it("OpenAI's fields: strict, a schema's description, include_obfuscation, an assistant message as the response gave it", async () => {
    const answer = await post({
      messages: [
        user,
        // As a response's message comes back (refusal, annotations), with a tool call.
        {
          role: 'assistant',
          content: null,
          refusal: null,
          annotations: [],
          audio: null,
          function_call: null,
          reasoning_content: 'thinking',
          tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"x":1}' } }],
        },
        { role: 'tool', tool_call_id: 'c1', content: '2', name: 'f' },
        { role: 'user', content: [{ type: 'text', text: 'again' }], name: 'me' },
      ],
      tools: [
        { type: 'function', function: { name: 'f', description: 'd', parameters: schema, strict: true } },
      ],
      stream: true,
      stream_options: { include_usage: true, include_obfuscation: false },
    })
    expect(answer.status).toBe(200)
    const structured = await post({
      messages: [user],
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'x', description: 'an x', schema, strict: true },
      },
    })
    expect(structured.status).toBe(200)
  })

  it("OpenAI's client, an app pushing the response's own message back into the conversation", async () => {
    const client = new OpenAI({ apiKey, baseURL: `${server.url}/v1`, maxRetries: 0 })
    const tools = [{ type: 'function' as const, function: { name: 'f', parameters: schema } }]
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'call f' }]
    const first = await client.chat.completions.create({
      model: 'test-model',
      messages,
      tools,
      tool_choice: 'required',
      parallel_tool_calls: false,
      max_tokens: 60,
      seed: 5,
    })
    const message = first.choices[0]?.message
    const call = message?.tool_calls?.[0]
    if (message === undefined || call === undefined) throw new Error('expected a tool call')
    // The message as it came (refusal: null and every other field of the response's), as apps do.
    messages.push(message, { role: 'tool', tool_call_id: call.id, content: '{"y":2}' })
    const second = await client.chat.completions.create({
      model: 'test-model',
      messages,
      tools,
      max_tokens: 4,
    })
    expect(second.choices[0]?.message.role).toBe('assistant')
  })
})
