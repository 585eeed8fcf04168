// What a refusal quotes of the client's own values is bounded, over real HTTP (serveApp). A
// 100,000-character model id came back whole in the 404 (twice the request's size for an unknown
// field, in `param` and the message), and a role or part type of any length was quoted whole
// (found by an adversarial pass): a refusal now quotes the start of such a value, enough to
// recognise it, and still says what is wrong and how to fix it.
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

const long = 'x'.repeat(100_000)
const user = { role: 'user', content: 'hi' }

async function refusal(
  path: string,
  body?: unknown,
): Promise<{ status: number; size: number; error: { param: string | null; message: string } }> {
  const response = await fetch(`${server.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await response.text()
  return {
    status: response.status,
    size: text.length,
    ...(JSON.parse(text) as { error: { param: string | null; message: string } }),
  }
}

describe('a refusal quotes a bounded start of the client value it names', () => {
  it('an unknown model, an unknown field, a role, a response_format type, a part type', async () => {
    const cases = [
      [
        await refusal('/v1/chat/completions', { model: long, messages: [user] }),
        404,
        /The model 'x{20,}…' is not served here/,
      ],
      [
        await refusal('/v1/chat/completions', { model: 'test-model', messages: [user], [long]: 1 }),
        400,
        /Unknown field "x{20,}…"/,
      ],
      [
        await refusal('/v1/chat/completions', {
          model: 'test-model',
          messages: [{ role: long, content: 'hi' }],
        }),
        400,
        /role is "x{20,}…"; use 'system'/,
      ],
      [
        await refusal('/v1/chat/completions', {
          model: 'test-model',
          messages: [user],
          response_format: { type: long },
        }),
        400,
        /response_format\.type "x{20,}…" is not supported/,
      ],
      [
        await refusal('/v1/chat/completions', {
          model: 'test-model',
          messages: [{ role: 'user', content: [{ type: long }] }],
        }),
        400,
        /content\.0\.type is "x{20,}…": this is a text-only model/,
      ],
    ] as const
    for (const [answer, status, message] of cases) {
      expect(answer.status).toBe(status)
      expect(answer.error.message).toMatch(message)
      expect(answer.size, answer.error.message.slice(0, 80)).toBeLessThan(2_000)
      expect(answer.error.param?.length ?? 0).toBeLessThan(200)
    }
  })

  it('GET /v1/models/<a long id>', async () => {
    const answer = await refusal(`/v1/models/${'y'.repeat(8_000)}`)
    expect(answer.status).toBe(404)
    expect(answer.error.message).toMatch(/The model 'y{20,}…' does not exist here/)
    expect(answer.size).toBeLessThan(2_000)
  })
})
