// The Hono app in Node, over core's deterministic test session and the real Qwen3 tokenizer:
// the OpenAI shapes (JSON and SSE), continuation, every error status, auth, CORS, limits, the
// request log. workerd runs the same app in test/workerd/ (with a real ONNX model).
import { describe, expect, it } from 'vitest'
import type { ChatCompletionChunk, ChatCompletionResponse } from '../core/protocol/index.ts'
import { qwen3Tokenizer } from '../test/support/qwen3-tokenizer.ts'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from './app.ts'
import type { AppOptions } from './options.ts'
import { createMemoryRateLimiter } from './rate-limit.ts'
import type { RequestLogLine } from './request-log.ts'

const apiKey = 'test-key-0123456789abcdef'
const messages = [{ role: 'user' as const, content: 'Tell me a story about a secret garden.' }]

function setup(options: Partial<AppOptions> & { host?: ReturnType<typeof createTestHost> } = {}) {
  const { host: given, ...appOptions } = options
  const host = given ?? createTestHost()
  const logs: RequestLogLine[] = []
  const app = createApp({ modelHost: host, apiKeys: [apiKey], log: (line) => logs.push(line), ...appOptions })
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    })
  return { app, host, logs, post }
}

async function readEvents(response: Response): Promise<string[]> {
  const text = await response.text()
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('data: '))
    .map((block) => block.slice('data: '.length))
}

function chunksOf(events: string[]): ChatCompletionChunk[] {
  return events.filter((data) => data !== '[DONE]').map((data) => JSON.parse(data) as ChatCompletionChunk)
}

describe('POST /v1/chat/completions', () => {
  it('answers in the OpenAI JSON shape with usage timings, a fingerprint and the token ids', async () => {
    const { post, logs } = setup()
    const response = await post({ model: 'test-model', messages, max_tokens: 12, temperature: 0 })
    expect(response.status).toBe(200)
    const body = (await response.json()) as ChatCompletionResponse
    expect(body.object).toBe('chat.completion')
    expect(body.id).toMatch(/^chatcmpl-/)
    expect(body.system_fingerprint).toBe('ondevice-0.1.0:test-model:fp32:test')
    expect(body.choices[0]?.message.role).toBe('assistant')
    expect(body.choices[0]?.finish_reason).toBe('length')
    expect(body.usage.completion_tokens).toBe(12)
    expect(body.usage.prompt_tokens).toBeGreaterThan(5)
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + 12)
    expect(body.usage.backend).toBe('test')
    expect(typeof body.usage.time_to_first_token_ms).toBe('number')
    expect(body.ondevice?.token_ids).toHaveLength(12)
    expect(body.ondevice?.next_step).toBe(12)
    // One log line, with counts and timings but no prompt text and no key.
    expect(logs).toHaveLength(1)
    expect(logs[0]).toMatchObject({
      status: 200,
      path: '/v1/chat/completions',
      completionTokens: 12,
      model: 'test-model',
      stream: false,
    })
    expect(JSON.stringify(logs[0])).not.toContain('garden')
    expect(JSON.stringify(logs[0])).not.toContain(apiKey)
  })

  it('treats optional fields sent as null as not given (tools: null was a 500)', async () => {
    const { post } = setup()
    const plain = await post({ model: 'test-model', messages, max_tokens: 6, temperature: 0 })
    const nulls = await post({
      model: 'test-model',
      messages,
      max_tokens: 6,
      temperature: 0,
      tools: null,
      tool_choice: null,
      response_format: null,
      stop: null,
      user: null,
    })
    expect(nulls.status).toBe(200)
    const [a, b] = (await Promise.all([plain.json(), nulls.json()])) as ChatCompletionResponse[]
    expect(b!.choices[0]?.message.content).toBe(a!.choices[0]?.message.content)
  })

  it('streams server-sent events ending in [DONE] whose text equals the JSON answer', async () => {
    const { post, logs } = setup()
    const request = { model: 'test-model', messages, max_tokens: 20, temperature: 0.8, seed: 7 }
    const json = (await (await post(request)).json()) as ChatCompletionResponse
    const response = await post({ ...request, stream: true, stream_options: { include_usage: true } })
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const events = await readEvents(response)
    expect(events.at(-1)).toBe('[DONE]')
    const chunks = chunksOf(events)
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: 'assistant', content: '' })
    const text = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')
    const ids = chunks.flatMap((chunk) => chunk.choices[0]?.delta.token_ids ?? [])
    expect(text).toBe(json.choices[0]?.message.content)
    expect(ids).toEqual(json.ondevice?.token_ids)
    const finish = chunks.find((chunk) => chunk.choices[0]?.finish_reason)
    expect(finish?.choices[0]?.finish_reason).toBe('length')
    expect(finish?.ondevice?.next_step).toBe(20)
    const usageChunk = chunks.at(-1)
    expect(usageChunk?.choices).toEqual([])
    expect(usageChunk?.usage?.completion_tokens).toBe(20)
    expect(logs.at(-1)).toMatchObject({ status: 200, stream: true, completionTokens: 20 })
  })

  it("reports a second turn's reused prompt tokens as usage.prompt_tokens_details.cached_tokens and feeds only the rest", async () => {
    for (const rewindable of [true, 'checkpoints'] as const) {
      const { post, host } = setup({ host: createTestHost({ session: { rewindable } }) })
      const request = { model: 'test-model', messages, max_tokens: 8, temperature: 0 }
      const first = (await (await post(request)).json()) as ChatCompletionResponse
      expect(first.usage.prompt_tokens_details).toEqual({ cached_tokens: 0 })
      const secondTurn = [
        ...messages,
        { role: 'assistant', content: first.choices[0]?.message.content ?? '' },
        { role: 'user', content: 'And then?' },
      ]
      // What the first turn left that the second shares: its messages up to where the answer
      // started (the cut before the assistant turn; a recurrent state can go back only there).
      const history = qwen3Tokenizer().encodeChat(messages, { addGenerationPrompt: false }).length
      const session = host.sessions[0]
      const callsBefore = session?.appendCalls.length ?? 0
      const response = await post({
        ...request,
        messages: secondTurn,
        stream: true,
        stream_options: { include_usage: true },
      })
      const usage = chunksOf(await readEvents(response)).at(-1)?.usage
      expect(host.sessions, `${rewindable}`).toHaveLength(1)
      expect(usage?.prompt_tokens_details, `${rewindable}`).toEqual({ cached_tokens: history })
      // The prompt chunks the session ran (appends before the 7 decode steps) carried only the rest.
      const fed = session?.appendCalls.slice(callsBefore, -7).reduce((sum, count) => sum + count, 0)
      expect(fed, `${rewindable}`).toBe((usage?.prompt_tokens ?? 0) - history)
    }
  })

  it('continues an answer split at token k exactly (greedy and seeded)', async () => {
    const { post } = setup()
    for (const sampling of [{ temperature: 0 }, { temperature: 0.9, top_k: 40, top_p: 0.95, seed: 1234 }]) {
      const whole = (await (
        await post({ model: 'test-model', messages, max_tokens: 16, ...sampling })
      ).json()) as ChatCompletionResponse
      const wholeIds = whole.ondevice?.token_ids ?? []
      expect(wholeIds).toHaveLength(16)
      for (const k of [1, 5, 11]) {
        const rest = (await (
          await post({
            model: 'test-model',
            messages,
            max_tokens: 16 - k,
            ...sampling,
            ondevice_continuation: { token_ids: wholeIds.slice(0, k), step: k },
          })
        ).json()) as ChatCompletionResponse
        expect(
          [...wholeIds.slice(0, k), ...(rest.ondevice?.token_ids ?? [])],
          `k=${k} ${JSON.stringify(sampling)}`,
        ).toEqual(wholeIds)
        expect(rest.ondevice?.next_step).toBe(16)
        expect(rest.usage.completion_tokens).toBe(16 - k)
      }
    }
  })
})

describe('errors', () => {
  const bad = async (
    post: ReturnType<typeof setup>['post'],
    body: unknown,
    headers?: Record<string, string>,
  ) => {
    const response = await post(body, headers)
    const json = (await response.json()) as {
      error: { message: string; type: string; param: string | null; code: string }
    }
    expect(Object.keys(json.error).sort()).toEqual(['code', 'message', 'param', 'type'])
    expect(json.error.message).not.toMatch(/\n\s+at /) // never a stack
    return { status: response.status, error: json.error, headers: response.headers }
  }

  it('400 for malformed JSON, wrong types, NaN, n > 1 and too many messages; 404 for an unknown model', async () => {
    const { post } = setup({ limits: { maxMessages: 4 } })
    expect(await bad(post, '{"model": "test-model", "messages": [')).toMatchObject({
      status: 400,
      error: { param: 'body', code: 'invalid_argument' },
    })
    expect(
      await bad(post, '{"model":"test-model","messages":[{"role":"user","content":"hi"}],"temperature":NaN}'),
    ).toMatchObject({ status: 400 })
    expect(await bad(post, { model: 'test-model', messages: 'hi' })).toMatchObject({
      status: 400,
      error: { param: 'messages' },
    })
    expect(await bad(post, { model: 'test-model', messages, temperature: 'hot' })).toMatchObject({
      status: 400,
      error: { param: 'temperature' },
    })
    expect(await bad(post, { model: 'test-model', messages, max_tokens: -1 })).toMatchObject({
      status: 400,
      error: { param: 'max_tokens' },
    })
    expect(await bad(post, { model: 'test-model', messages, n: 2 })).toMatchObject({
      status: 400,
      error: { param: 'n' },
    })
    expect(
      await bad(post, {
        model: 'test-model',
        messages,
        ondevice_continuation: { token_ids: [1.5], step: 0 },
      }),
    ).toMatchObject({ status: 400 })
    expect(
      await bad(post, {
        model: 'test-model',
        messages,
        ondevice_continuation: { token_ids: [10_000_000], step: 1 },
      }),
    ).toMatchObject({
      status: 400,
      error: { param: 'ondevice_continuation.token_ids.0' },
    })
    const many = Array.from({ length: 5 }, () => ({ role: 'user', content: 'hi' }))
    expect(await bad(post, { model: 'test-model', messages: many })).toMatchObject({
      status: 400,
      error: { param: 'messages' },
    })
    expect(await bad(post, { model: 'gpt-4o', messages })).toMatchObject({
      status: 404,
      error: { code: 'model_not_found', param: 'model' },
    })
    expect(await bad(post, { model: 'test-model', messages, max_tokens: 5000 })).toMatchObject({
      status: 400,
      error: { param: 'max_tokens' },
    })
  })

  it('413 for a body over the cap (declared or streamed), 400 context_length_exceeded for a prompt or answer that does not fit', async () => {
    const { post, app } = setup({ limits: { maxBodyBytes: 4096, maxPromptTokens: 200 } })
    const huge = 'x'.repeat(10_000)
    expect(
      await bad(post, { model: 'test-model', messages: [{ role: 'user', content: huge }] }),
    ).toMatchObject({ status: 413, error: { code: 'payload_too_large' } })
    // A chunked body without Content-Length is counted as it arrives.
    const chunked = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          for (let index = 0; index < 10; index++)
            controller.enqueue(new TextEncoder().encode(huge.slice(0, 1000)))
          controller.close()
        },
      }),
      duplex: 'half',
    } as RequestInit)
    expect(chunked.status).toBe(413)
    const long = 'word '.repeat(300)
    expect(
      await bad(post, { model: 'test-model', messages: [{ role: 'user', content: long }] }),
    ).toMatchObject({
      status: 400,
      error: { code: 'context_length_exceeded' },
    })
    const { post: postSmall } = setup({ host: createTestHost({ session: { contextLength: 64 } }) })
    expect(await bad(postSmall, { model: 'test-model', messages, max_tokens: 60 })).toMatchObject({
      status: 400,
      error: { param: 'max_tokens' },
    })
  })

  it('401 without or with a wrong key; /healthz stays open', async () => {
    const { post, app } = setup()
    expect(await bad(post, { model: 'test-model', messages }, { authorization: '' })).toMatchObject({
      status: 401,
      error: { code: 'unauthorized' },
    })
    expect(
      await bad(post, { model: 'test-model', messages }, { authorization: 'Bearer wrong-key-0123456789' }),
    ).toMatchObject({ status: 401 })
    expect((await app.request('/v1/models')).status).toBe(401)
    const health = await app.request('/healthz')
    expect(health.status).toBe(200)
    expect(await health.json()).toMatchObject({
      status: 'ok',
      model: 'test-model',
      loaded: false,
      version: '0.1.0',
    })
  })

  it('429 with Retry-After when a key is over its rate limit', async () => {
    const { post } = setup({ rateLimiter: createMemoryRateLimiter({ limit: 2, periodSeconds: 60 }) })
    expect((await post({ model: 'test-model', messages, max_tokens: 1 })).status).toBe(200)
    expect((await post({ model: 'test-model', messages, max_tokens: 1 })).status).toBe(200)
    const limited = await bad(post, { model: 'test-model', messages, max_tokens: 1 })
    expect(limited).toMatchObject({ status: 429, error: { code: 'rate_limited', type: 'rate_limit_error' } })
    expect(Number(limited.headers.get('retry-after'))).toBe(30)
  })

  it('429 with Retry-After when every slot and the queue are taken', async () => {
    const { post } = setup({
      host: createTestHost({ session: { delayMs: 30 } }),
      limits: { maxConcurrent: 1, maxQueue: 1 },
    })
    const running = post({ model: 'test-model', messages, max_tokens: 5 })
    await new Promise((resolve) => setTimeout(resolve, 20))
    const queued = post({ model: 'test-model', messages, max_tokens: 5 })
    await new Promise((resolve) => setTimeout(resolve, 5))
    const refused = await bad(post, { model: 'test-model', messages, max_tokens: 5 })
    expect(refused).toMatchObject({ status: 429, error: { code: 'overloaded' } })
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0)
    expect((await running).status).toBe(200)
    expect((await queued).status).toBe(200)
  })

  it('stops a stream nobody reads any more and frees its slot (a client gone unnoticed)', async () => {
    const { post, logs } = setup({ limits: { maxConcurrent: 1, maxQueue: 0, readerStallTimeoutMs: 300 } })
    const streaming = await post({ model: 'test-model', messages, max_tokens: 500, stream: true })
    const reader = (streaming.body as ReadableStream<Uint8Array>).getReader()
    await reader.read()
    await reader.read()
    // The reader neither reads nor cancels: the slot is held until the watchdog gives up on it.
    const whileHeld = await post({ model: 'test-model', messages, max_tokens: 3 })
    expect(whileHeld.status).toBe(429)
    // Given up once the 300 ms pass: waited for as an event, not a fixed 600 ms a loaded machine
    // can spend before the abandoned generation has stopped and written its line.
    await expect
      .poll(() => logs.some((line) => line.status === 499 && line.stream === true), { timeout: 10_000 })
      .toBe(true)
    const after = await post({ model: 'test-model', messages, max_tokens: 3 })
    expect(after.status).toBe(200)
    reader.releaseLock()
  })

  it('a request that says how long it waits (Prefer: wait) while the model loads gets 503 edge_starting by then; the load goes on, and one that says nothing waits for it', async () => {
    const { post } = setup({ host: createTestHost({ loadDelayMs: 2500 }) })
    const messages = [{ role: 'user', content: 'hi' }]
    const started = Date.now()
    const refused = await post({ model: 'test-model', messages, max_tokens: 2 }, { prefer: 'wait=0' })
    expect(Date.now() - started).toBeLessThan(2000)
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).toBe('5')
    const body = (await refused.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('edge_starting')
    expect(body.error.message).toMatch(/The edge is starting: the model is still loading/)
    // No Prefer: held until the load the first request started is done, then answered.
    const held = await post({ model: 'test-model', messages, max_tokens: 2 })
    expect(held.status).toBe(200)
    // Loaded: a Prefer: wait=0 request is answered too.
    const warm = await post({ model: 'test-model', messages, max_tokens: 2 }, { prefer: 'wait=0' })
    expect(warm.status).toBe(200)
  })

  it('503 with Retry-After when the model cannot load; 404 for an unknown route', async () => {
    const { post, app } = setup({ host: createTestHost({ failLoad: 'manifest.json says 7 bytes' }) })
    const failed = await bad(post, { model: 'test-model', messages })
    expect(failed).toMatchObject({ status: 503, error: { code: 'edge_unavailable', type: 'server_error' } })
    expect(failed.error.message).toContain('manifest.json says 7 bytes')
    expect(Number(failed.headers.get('retry-after'))).toBe(60)
    expect((await app.request('/healthz')).status).toBe(503)
    const missing = await app.request('/v1/embeddings', { headers: { authorization: `Bearer ${apiKey}` } })
    expect(missing.status).toBe(404)
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('not_found')
  })
})

describe('model host, models, CORS', () => {
  it('concurrent first requests share one load', async () => {
    const host = createTestHost({ loadDelayMs: 50 })
    const { post } = setup({ host, limits: { maxConcurrent: 4 } })
    const responses = await Promise.all(
      Array.from({ length: 4 }, () => post({ model: 'test-model', messages, max_tokens: 2 })),
    )
    expect(responses.map((response) => response.status)).toEqual([200, 200, 200, 200])
    expect(host.loads).toBe(1)
  })

  it('lists the model and its aliases, each with the most tokens an answer may have (MAX_TOKENS)', async () => {
    const { app } = setup({ modelAliases: ['ondevice'] })
    const list = await app.request('/v1/models', { headers: { authorization: `Bearer ${apiKey}` } })
    const limits = { max_tokens: 2048 }
    expect(await list.json()).toEqual({
      object: 'list',
      data: [
        { id: 'test-model', object: 'model', created: 0, owned_by: 'ondevice', ondevice: limits },
        { id: 'ondevice', object: 'model', created: 0, owned_by: 'ondevice', ondevice: limits },
      ],
    })
  })

  it('answers CORS only for allowed origins, preflight included', async () => {
    const { app } = setup({ allowedOrigins: ['https://app.example'] })
    const preflight = await app.request('/v1/chat/completions', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example')
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/authorization/i)
    const other = await app.request('/v1/models', { headers: { origin: 'https://evil.example' } })
    expect(other.headers.get('access-control-allow-origin')).toBeNull()
    // /healthz (no key, nothing private) is readable from any page: the SDK tells a refused
    // origin from an edge that is down by it.
    const health = await app.request('/healthz', { headers: { origin: 'https://evil.example' } })
    expect(health.headers.get('access-control-allow-origin')).toBe('*')
    const allowed = await app.request('/healthz', { headers: { origin: 'https://app.example' } })
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example')
  })
})

describe('a body the app refuses unread', () => {
  /** A request body that records how far it was read and whether it was cancelled. */
  function trackedBody(chunks: readonly Uint8Array[], options: { stallAfter?: number } = {}) {
    const seen = { pulled: 0, cancelled: false }
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (options.stallAfter !== undefined && seen.pulled >= options.stallAfter)
          return new Promise<void>(() => undefined)
        const chunk = chunks[seen.pulled]
        seen.pulled++
        if (chunk) controller.enqueue(chunk)
        else controller.close()
      },
      cancel() {
        seen.cancelled = true
      },
    })
    return { body, seen }
  }
  const refuse = (app: ReturnType<typeof setup>['app'], body: ReadableStream<Uint8Array>, length?: number) =>
    app.request('/v1/chat/completions', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(length ? { 'content-length': String(length) } : {}),
      },
      body,
      duplex: 'half',
    } as RequestInit)

  it('is read to its end and dropped (the connection stays usable), then refused', async () => {
    const { app } = setup()
    const { body, seen } = trackedBody([new Uint8Array(1000), new Uint8Array(1000), new Uint8Array(1000)])
    const response = await refuse(app, body)
    expect(response.status).toBe(401)
    expect(seen).toEqual({ pulled: 4, cancelled: false })
  })

  it('is cancelled when the client stalls, and the refusal still comes within the drain time', async () => {
    const { app } = setup()
    const { body, seen } = trackedBody([new Uint8Array(10)], { stallAfter: 1 })
    const started = Date.now()
    const response = await refuse(app, body)
    expect(response.status).toBe(401)
    expect(seen.cancelled).toBe(true)
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it('is cancelled unread when its Content-Length is past four times the body cap', async () => {
    const { app } = setup({ limits: { maxBodyBytes: 1024 } })
    const { body, seen } = trackedBody([new Uint8Array(1024)])
    const response = await refuse(app, body, 8 * 1024)
    expect(response.status).toBeGreaterThanOrEqual(400)
    expect(seen.cancelled).toBe(true)
    expect(seen.pulled).toBeLessThanOrEqual(1)
  })
})

describe('an internal error', () => {
  it('is a 500 with the request id only, and one server log line in the request log shape (time included)', async () => {
    const host = createTestHost()
    const broken = {
      ...host,
      modelId: host.modelId,
      load: () => host.load(),
      status: (): never => {
        throw new TypeError('a defect in the host')
      },
    }
    const { app } = setup({ modelHost: broken })
    const lines: string[] = []
    const original = console.error
    console.error = (line: unknown) => void lines.push(String(line))
    let response: Response
    try {
      response = await app.request('/healthz')
    } finally {
      console.error = original
    }
    expect(response.status).toBe(500)
    const body = (await response.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('internal')
    expect(body.error.message).not.toContain('a defect in the host')
    expect(lines).toHaveLength(1)
    const line = JSON.parse(lines[0] ?? '') as Record<string, unknown>
    expect(line).toMatchObject({ level: 'error', message: 'unhandled error', error: 'a defect in the host' })
    expect(typeof line.time).toBe('string')
    expect(Number.isNaN(Date.parse(String(line.time)))).toBe(false)
    expect(line.requestId).toBe(response.headers.get('x-request-id'))
  })
})
