// Client values nested deep, over real HTTP (serveApp); found by an adversarial pass, each well
// under the body cap. A schema `pattern` nested deep in groups: the pattern parser recursed once
// per group, so 30,000 "(" overflowed the stack, a 500 `internal` ("Maximum call stack size
// exceeded" in the log), in a tool's parameters or a response_format; now a 400 naming the
// pattern's path, like every pattern structured output cannot enforce. An assistant tool call's
// `arguments` object nested 5,000 deep overflowed the chat template's `tojson`: a 400 that named
// no field and blamed the order of the roles; now a 400 naming the arguments.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from './app.ts'
import { type RunningServer, serveApp } from './node.ts'

let server: RunningServer

beforeAll(async () => {
  server = await serveApp({ app: createApp({ modelHost: createTestHost(), log: () => undefined }), port: 0 })
})

afterAll(async () => {
  await server.close()
})

async function post(body: Record<string, unknown>): Promise<Response> {
  return fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'test-model',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 4,
      ...body,
    }),
  })
}

describe('a pattern nested deeper than the parser goes', () => {
  const deep = `${'('.repeat(30_000)}a${')'.repeat(30_000)}`
  const property = { type: 'object', properties: { x: { type: 'string', pattern: deep } }, required: ['x'] }

  it('in a tool or a response_format: a 400 naming the pattern (it was a 500)', async () => {
    for (const [body, param] of [
      [
        {
          tools: [{ type: 'function', function: { name: 'f', parameters: property } }],
          tool_choice: 'required',
        },
        'tools.0.function.parameters.properties.x.pattern',
      ],
      [
        { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: property } } },
        'response_format.json_schema.schema.properties.x.pattern',
      ],
    ] as const) {
      const response = await post(body)
      const text = await response.text()
      expect(response.status, text.slice(0, 300)).toBe(400)
      const { error } = JSON.parse(text) as { error: { param: string; message: string; code: string } }
      expect(error.code).toBe('invalid_argument')
      expect(error.param).toBe(param)
      expect(error.message).toMatch(/groups nested more than 64 deep/)
    }
  })

  it('nesting within the bound is enforced as before, and the server answers after', async () => {
    const nested = `^${'('.repeat(64)}a${')'.repeat(64)}$`
    const response = await post({
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'x', schema: { type: 'string', pattern: nested } },
      },
    })
    expect(response.status).toBe(200)
    const answer = (await response.json()) as { choices: { message: { content: string } }[] }
    expect(['"', '"a', '"a"']).toContain(answer.choices[0]?.message.content)
  })
})

describe("a tool call's arguments nested deeper than the chat template prints", () => {
  /** The body as text: the test's own JSON.stringify would overflow on the deep object too. */
  async function postNested(depth: number): Promise<Response> {
    const args = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
    const call = `{"id":"c","type":"function","function":{"name":"f","arguments":${args}}}`
    return fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"model":"test-model","max_tokens":4,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":null,"tool_calls":[${call}]},{"role":"tool","tool_call_id":"c","content":"1"}]}`,
    })
  }

  it('a 400 naming the arguments (it blamed the order of the roles, param null)', async () => {
    const response = await postNested(5_000)
    const text = await response.text()
    expect(response.status, text.slice(0, 300)).toBe(400)
    const { error } = JSON.parse(text) as { error: { param: string; message: string; code: string } }
    expect(error.code).toBe('invalid_argument')
    expect(error.param).toBe('messages.1.tool_calls.0.function.arguments')
    expect(error.message).toMatch(/nests deeper than 64 levels/)
  })

  it('64 levels are printed and answered', async () => {
    expect((await postNested(64)).status).toBe(200)
  })
})
