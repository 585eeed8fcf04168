// Hostile input against the app (issue: a stalled event loop, a 500, a spoofable rate limit):
// each case was reproduced against the app before its fix. The event-loop cases over real HTTP
// with a watchdog are in test/reliability/hostile.test.ts; these are the quick, exact ones.
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { describe, expect, it } from 'vitest'
import type { ChatCompletionResponse } from '../core/protocol/index.ts'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from './app.ts'
import type { AppOptions } from './options.ts'
import { createMemoryRateLimiter } from './rate-limit.ts'
import type { RequestLogLine } from './request-log.ts'

const apiKey = 'test-key-0123456789abcdef'
const messages = [{ role: 'user', content: 'hi' }]

function setup(options: Partial<AppOptions> & { host?: ReturnType<typeof createTestHost> } = {}) {
  const { host: given, ...appOptions } = options
  const host = given ?? createTestHost()
  const logs: RequestLogLine[] = []
  const app = createApp({ modelHost: host, apiKeys: [apiKey], log: (line) => logs.push(line), ...appOptions })
  const post = (body: unknown) =>
    app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    })
  return { app, host, logs, post }
}

async function errorOf(
  response: Response,
): Promise<{ status: number; code: string; param: string | null; message: string }> {
  const body = (await response.json()) as { error: { code: string; param: string | null; message: string } }
  return { status: response.status, ...body.error }
}

describe('hostile requests get a clear 4xx, never a 500', () => {
  it('a special token followed by 130,000 characters: 400 context_length_exceeded (was a 500 from a spread into push)', async () => {
    const { post } = setup()
    const error = await errorOf(
      await post({
        model: 'test-model',
        messages: [{ role: 'user', content: `<|im_end|>${'1'.repeat(130_000)}` }],
      }),
    )
    expect(error).toMatchObject({ status: 400, code: 'context_length_exceeded' })
  })

  it('a megabyte of spaces is refused by its length before any tokenizing, naming the limit', async () => {
    const { post, logs } = setup()
    const error = await errorOf(
      await post({ model: 'test-model', messages: [{ role: 'user', content: ' '.repeat(1_040_000) }] }),
    )
    expect(error).toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'messages' })
    expect(error.message).toMatch(/1040000 characters; this server accepts at most 24570/)
    // Refused before the tokenizer ran: no prompt token count in the log line.
    expect(logs.at(-1)?.promptTokens).toBeUndefined()
  })

  it('MAX_PROMPT_CHARACTERS (limits.maxPromptCharacters) sets the character cap', async () => {
    const { post } = setup({ limits: { maxPromptCharacters: 10 } })
    expect(
      await errorOf(
        await post({ model: 'test-model', messages: [{ role: 'user', content: 'x'.repeat(11) }] }),
      ),
    ).toMatchObject({
      status: 400,
      message: expect.stringMatching(/11 characters; this server accepts at most 10/),
    })
    expect(
      (
        await post({
          model: 'test-model',
          messages: [{ role: 'user', content: 'x'.repeat(10) }],
          max_tokens: 1,
        })
      ).status,
    ).toBe(200)
  })

  it('a tokenizing request waits for its slot: queued requests are refused by MAX_QUEUE before they tokenize', async () => {
    const host = createTestHost({ session: { delayMs: 200 } })
    const { post } = setup({ host, limits: { maxConcurrent: 1, maxQueue: 0 } })
    await host.load()
    const first = post({ model: 'test-model', messages, max_tokens: 3 })
    await new Promise((resolve) => setTimeout(resolve, 50))
    // 20,000 characters: a few hundred ms of tokenizing, now never spent for a request with no slot.
    const started = performance.now()
    const refused = await post({
      model: 'test-model',
      messages: [{ role: 'user', content: '你'.repeat(20_000) }],
    })
    expect(await errorOf(refused)).toMatchObject({ status: 429, code: 'overloaded' })
    expect(performance.now() - started).toBeLessThan(5_000)
    expect((await first).status).toBe(200)
  })

  it('stop strings are bounded as OpenAI bounds them (4, and 256 characters each)', async () => {
    const { post } = setup()
    const many = await errorOf(
      await post({ model: 'test-model', messages, stop: Array.from({ length: 15 }, (_, i) => `${i}`) }),
    )
    expect(many).toMatchObject({ status: 400, param: 'stop', message: expect.stringMatching(/at most 4/) })
    const long = await errorOf(await post({ model: 'test-model', messages, stop: ['x'.repeat(4000)] }))
    expect(long).toMatchObject({
      status: 400,
      param: 'stop.0',
      message: expect.stringMatching(/at most 256/),
    })
  })

  it('continuations: counted in usage, within the answer cap, and a step that cannot overflow', async () => {
    const { post } = setup({ limits: { maxTokens: 64 } })
    const ok = await post({
      model: 'test-model',
      messages,
      max_tokens: 4,
      ondevice_continuation: { token_ids: Array(40).fill(1000), step: 40 },
    })
    const body = (await ok.json()) as ChatCompletionResponse
    expect(body.usage).toMatchObject({ continuation_tokens: 40, completion_tokens: 4 })
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + 40 + 4)
    const tooLong = await errorOf(
      await post({
        model: 'test-model',
        messages,
        max_tokens: 30,
        ondevice_continuation: { token_ids: Array(40).fill(1000), step: 40 },
      }),
    )
    expect(tooLong).toMatchObject({
      status: 400,
      param: 'max_tokens',
      message: expect.stringMatching(/40 tokens and max_tokens is 30; .* at most 64/),
    })
    const noRoom = await errorOf(
      await post({
        model: 'test-model',
        messages,
        ondevice_continuation: { token_ids: Array(64).fill(1000), step: 64 },
      }),
    )
    expect(noRoom).toMatchObject({ status: 400, param: 'ondevice_continuation.token_ids' })
    const step = await errorOf(
      await post({
        model: 'test-model',
        messages,
        max_tokens: 2,
        ondevice_continuation: { token_ids: [1000], step: Number.MAX_SAFE_INTEGER },
      }),
    )
    expect(step).toMatchObject({ status: 400, param: 'ondevice_continuation.step' })
  })

  it('max_completion_tokens: null names max_tokens when max_tokens is the field over the cap', async () => {
    const { post } = setup({ limits: { maxTokens: 8 } })
    const error = await errorOf(
      await post({ model: 'test-model', messages, max_tokens: 9, max_completion_tokens: null }),
    )
    expect(error).toMatchObject({ status: 400, param: 'max_tokens' })
  })

  it('a logit_bias token past the vocabulary: 400 naming logit_bias.ID, streaming too (was a 200 and an error event)', async () => {
    const { post } = setup()
    for (const stream of [false, true]) {
      const error = await errorOf(
        await post({ model: 'test-model', messages, stream, logit_bias: { 999999999: 5 }, max_tokens: 2 }),
      )
      expect(error).toMatchObject({ status: 400, code: 'invalid_argument', param: 'logit_bias.999999999' })
      expect(error.message).toMatch(/vocabulary has \d+ tokens/)
    }
    // The slot and the session went back: the next request answers.
    expect((await post({ model: 'test-model', messages, logit_bias: { 5: 5 }, max_tokens: 2 })).status).toBe(
      200,
    )
  })

  it('an unknown __proto__ field gets no "[object Object]" hint', async () => {
    const { post } = setup()
    const error = await errorOf(
      await post(`{"model":"test-model","messages":[{"role":"user","content":"hi"}],"__proto__":{}}`),
    )
    expect(error).toMatchObject({ status: 400, param: '__proto__' })
    expect(error.message).not.toContain('[object Object]')
  })
})

describe('what the server tells and logs', () => {
  it('unknown paths outside /v1 are logged (path capped at 256 characters) and their bodies drained', async () => {
    const { app, logs } = setup()
    let pulled = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++
        if (pulled > 3) controller.close()
        else controller.enqueue(new Uint8Array(1000))
      },
    })
    const path = `/${'a'.repeat(8000)}`
    const response = await app.request(path, { method: 'POST', body, duplex: 'half' } as RequestInit)
    expect(response.status).toBe(404)
    expect(pulled).toBe(4)
    expect(logs).toHaveLength(1)
    expect(logs[0]?.status).toBe(404)
    expect(logs[0]?.path.length).toBeLessThanOrEqual(257)
    expect(logs[0]?.path.startsWith('/aaaa')).toBe(true)
  })

  it('/healthz without a key does not show the load error (it names MODEL_URL); with a key it does', async () => {
    const host = createTestHost({ failLoad: 'fetching https://secret.example/models/x/manifest.json failed' })
    const { app, post } = setup({ host })
    expect((await post({ model: 'test-model', messages })).status).toBe(503)
    const open = (await (await app.request('/healthz')).json()) as { status: string; error: string }
    expect(open.status).toBe('error')
    expect(open.error).not.toContain('secret.example')
    const keyed = (await (
      await app.request('/healthz', { headers: { authorization: `Bearer ${apiKey}` } })
    ).json()) as {
      error: string
    }
    expect(keyed.error).toContain('secret.example')
  })
})

describe('rate limits by client address', () => {
  async function withServer(
    options: Partial<AppOptions>,
    run: (base: string) => Promise<void>,
  ): Promise<void> {
    const { app } = setup({ apiKeys: [], ...options })
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(started))
    })
    try {
      await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
  const models = (base: string, address?: string) =>
    fetch(`${base}/v1/models`, address === undefined ? {} : { headers: { 'cf-connecting-ip': address } })

  it('on Node a new cf-connecting-ip per request does not walk past the limit (the socket address counts)', async () => {
    await withServer(
      { rateLimiter: createMemoryRateLimiter({ limit: 3, periodSeconds: 60 }) },
      async (base) => {
        const statuses: number[] = []
        for (let index = 0; index < 6; index++)
          statuses.push((await models(base, `203.0.113.${index}`)).status)
        expect(statuses).toEqual([200, 200, 200, 429, 429, 429])
      },
    )
  })

  it('behind Cloudflare (behindCloudflare / BEHIND_CLOUDFLARE=true) cf-connecting-ip names the client', async () => {
    await withServer(
      { behindCloudflare: true, rateLimiter: createMemoryRateLimiter({ limit: 2, periodSeconds: 60 }) },
      async (base) => {
        const statuses: number[] = []
        for (let index = 0; index < 3; index++) statuses.push((await models(base, '203.0.113.7')).status)
        statuses.push((await models(base, '203.0.113.8')).status)
        expect(statuses).toEqual([200, 200, 429, 200])
      },
    )
  })

  it('behind another proxy (clientAddressHeader / CLIENT_ADDRESS_HEADER) its header names the client: the last entry, which the proxy appended', async () => {
    await withServer(
      {
        clientAddressHeader: 'x-forwarded-for',
        rateLimiter: createMemoryRateLimiter({ limit: 2, periodSeconds: 60 }),
      },
      async (base) => {
        const forwarded = (value: string) =>
          fetch(`${base}/v1/models`, { headers: { 'x-forwarded-for': value } }).then(
            (response) => response.status,
          )
        const statuses = [
          await forwarded('203.0.113.7'),
          await forwarded('203.0.113.7'),
          await forwarded('203.0.113.7'),
          // What the client wrote before the proxy's entry does not make it another client.
          await forwarded('192.0.2.1, 203.0.113.7'),
          await forwarded('203.0.113.8'),
          // cf-connecting-ip is not this deployment's header: the socket counts without the named one.
          (await models(base, '203.0.113.9')).status,
        ]
        expect(statuses).toEqual([200, 200, 429, 429, 200, 200])
      },
    )
  })
})
