// Tool calls and constraints on the wire, as OpenAI's own client and the AI SDK's providers use
// them, against the Hono app in Node over core's deterministic test session and the real Qwen3
// tokenizer (its chat template renders the tools; the mask makes every call valid whatever the
// logits). ondevice serve and the Worker run this app; cli/commands/serve.test.ts and
// test/workerd/worker.test.ts run it on a real model.
import OpenAI from 'openai'
import { describe, expect, it } from 'vitest'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from './app.ts'

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
