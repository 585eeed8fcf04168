// What clients do to the edge by accident, as real clients send it. Each case failed before its fix
// (the test's name says how).
import OpenAI from 'openai'
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../core/errors.ts'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from './app.ts'
import { createNodeModelHost, serveApp } from './node.ts'

const apiKey = 'test-key-0123456789abcdef'
const appOrigin = 'https://app.example'

function setup(options: { apiKeys?: string[] } = {}) {
  return createApp({
    modelHost: createTestHost(),
    apiKeys: options.apiKeys ?? [apiKey],
    allowedOrigins: [appOrigin],
    log: () => undefined,
  })
}

/** The headers a request sends that a browser must ask about first (not CORS-safelisted), as it lists them. */
function preflightHeaderList(headers: Headers): string {
  // Safelisted, or set by the browser itself whatever the page asks (a page cannot send these).
  const notAsked = new Set(['accept', 'accept-language', 'content-language', 'user-agent', 'content-length'])
  return [...headers.keys()]
    .map((name) => name.toLowerCase())
    .filter((name) => !notAsked.has(name))
    .sort()
    .join(',')
}

async function preflight(app: ReturnType<typeof setup>, requestHeaders: string): Promise<Response> {
  return app.request('/v1/chat/completions', {
    method: 'OPTIONS',
    headers: {
      origin: appOrigin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': requestHeaders,
    },
  })
}

describe('CORS preflight as a browser sends it', () => {
  it("allows the headers OpenAI's own client sends from a page (x-stainless-*: the preflight refused them)", async () => {
    const app = setup()
    let sent: Headers | undefined
    const client = new OpenAI({
      apiKey,
      baseURL: 'http://edge.test/v1',
      dangerouslyAllowBrowser: true,
      maxRetries: 0,
      fetch: async (input: string | URL | Request, init?: RequestInit) => {
        const request = new Request(input, init)
        sent = request.headers
        return app.request(request)
      },
    })
    const completion = await client.chat.completions.create({
      model: 'test-model',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
    })
    expect(completion.choices[0]?.finish_reason).toBe('length')
    const asked = preflightHeaderList(sent as Headers)
    expect(asked).toMatch(/x-stainless-os/)
    const answer = await preflight(app, asked)
    expect(answer.status).toBe(204)
    expect(answer.headers.get('access-control-allow-origin')).toBe(appOrigin)
    const allowed = new Set(
      (answer.headers.get('access-control-allow-headers') ?? '')
        .split(',')
        .map((name) => name.trim().toLowerCase()),
    )
    for (const name of asked.split(',')) expect(allowed, name).toContain(name)
  })

  it("allows an app's own header (the SDK's edge.headers, e.g. a CSRF token), and nothing to another origin", async () => {
    const app = setup()
    const answer = await preflight(app, 'authorization,content-type,x-csrf-token')
    expect(answer.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-csrf-token')
    const other = await app.request('/v1/chat/completions', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://evil.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    })
    expect(other.headers.get('access-control-allow-origin')).toBeNull()
  })
})

describe('only a JSON body is read', () => {
  const body = JSON.stringify({
    model: 'test-model',
    messages: [{ role: 'user', content: 'hi' }],
    max_tokens: 2,
  })

  it('a text/plain POST from a page not in ALLOWED_ORIGINS (a request browsers send without a preflight) runs nothing (it ran a generation)', async () => {
    // An edge open to browsers by origin: no keys, ALLOWED_ORIGINS set (docs/worker.md).
    const modelHost = createTestHost()
    const app = createApp({ modelHost, allowedOrigins: [appOrigin], log: () => undefined })
    for (const type of ['text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', undefined]) {
      const request = new Request('http://edge.test/v1/chat/completions', {
        method: 'POST',
        headers: { origin: 'https://evil.example' },
        body: new TextEncoder().encode(body),
      })
      if (type === undefined) request.headers.delete('content-type')
      else request.headers.set('content-type', type)
      const answer = await app.request(request)
      expect(answer.status, String(type)).toBe(400)
      const error = ((await answer.json()) as { error: { code: string; param: string; message: string } })
        .error
      expect(error).toMatchObject({ code: 'invalid_argument', param: 'content-type' })
      expect(error.message).toMatch(/Content-Type: application\/json/)
    }
    expect(modelHost.sessions).toHaveLength(0)
  })

  it('application/json with parameters, and +json types, are read', async () => {
    const app = setup({ apiKeys: [] })
    for (const type of [
      'application/json; charset=utf-8',
      'Application/JSON',
      'application/vnd.openai+json',
    ]) {
      const answer = await app.request('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': type },
        body,
      })
      expect(answer.status, type).toBe(200)
    }
  })
})

describe('a seed beyond what JSON keeps', () => {
  it('names the range (it said "use a whole number" of 9007199254740992)', async () => {
    const app = setup({ apiKeys: [] })
    const answer = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model":"test-model","messages":[{"role":"user","content":"hi"}],"seed":18446744073709551615}',
    })
    expect(answer.status).toBe(400)
    const error = ((await answer.json()) as { error: { param: string; message: string } }).error
    expect(error.param).toBe('seed')
    expect(error.message).toMatch(/between -9007199254740991 and 9007199254740991/)
  })
})

describe('a conversation longer than the context', () => {
  it("reaches OpenAI's client as its BadRequestError with code context_length_exceeded (it was a 422, UnprocessableEntityError)", async () => {
    const app = setup()
    const client = new OpenAI({
      apiKey,
      baseURL: 'http://edge.test/v1',
      maxRetries: 0,
      fetch: async (input: string | URL | Request, init?: RequestInit) =>
        app.request(new Request(input, init)),
    })
    const caught = await client.chat.completions
      .create({
        model: 'test-model',
        messages: [{ role: 'user', content: '你'.repeat(20_000) }],
        max_tokens: 2,
      })
      .catch((error: unknown) => error)
    expect(caught).toBeInstanceOf(OpenAI.BadRequestError)
    expect(caught).toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'messages' })
    expect((caught as Error).message).toMatch(/this server accepts at most 4095\. Shorten the conversation/)
  })

  it('a misspelt option of createApp, createNodeModelHost or serveApp is refused with the likely fix (apikeys left the API open)', async () => {
    // Each name was dropped without a word and its default taken: no keys (the API open to
    // anyone), no CORS for the page, the folder's name as the model id, all addresses.
    const refusal = (make: () => unknown) => {
      try {
        make()
      } catch (error) {
        return error
      }
      return undefined
    }
    const modelHost = createTestHost()
    const apikeys = refusal(() => createApp({ modelHost, apikeys: [apiKey] } as never))
    expect(apikeys).toBeInstanceOf(InvalidArgumentError)
    expect(apikeys).toMatchObject({
      param: 'apikeys',
      message: expect.stringMatching(/did you mean "apiKeys"\?/),
    })
    expect(refusal(() => createApp({ modelHost, allowedOrigin: [appOrigin] } as never))).toMatchObject({
      param: 'allowedOrigin',
      message: expect.stringMatching(/did you mean "allowedOrigins"\?/),
    })
    expect(
      refusal(() => createNodeModelHost({ model: './my-package', modelID: 'm' } as never)),
    ).toMatchObject({
      param: 'modelID',
      message: expect.stringMatching(/did you mean "modelId"\?/),
    })
    expect(refusal(() => serveApp({ app: setup(), port: 0, hostname: '0.0.0.0' } as never))).toMatchObject({
      param: 'hostname',
      message: expect.stringMatching(/serveApp option "hostname"/),
    })
    // The names the docs use are taken.
    const server = await serveApp({ app: setup(), port: 0, host: '127.0.0.1' })
    await server.close()
  })

  it("a Hugging Face .../resolve/main/ package is served as its repository's name (it was 'main')", () => {
    // The URL the README and `ondevice generate --help` give for a real model.
    const host = createNodeModelHost({
      model: 'https://huggingface.co/onnx-community/Qwen3-0.6B-ONNX/resolve/main/',
    })
    expect(host.modelId).toBe('Qwen3-0.6B-ONNX')
    expect(createNodeModelHost({ model: '/models/qwen3-0.6b/' }).modelId).toBe('qwen3-0.6b')
  })
})
