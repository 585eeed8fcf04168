// The parts of the edge client that are pure functions of bytes and headers: SSE framing split
// at every possible byte boundary, Retry-After, option validation, the body it sends. (Error
// bodies and chunks are core/protocol's, tested there; the client against a real edge is in
// client-edge.test.ts.)
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError, type OndeviceError } from '../core/errors.ts'
import { createClient } from './client.ts'
import { EdgeClient, parseRetryAfter, preferredWaitSeconds } from './edge-client.ts'
import { parseServerSentEvents, type ServerSentEvent } from './sse.ts'

function streamOf(chunks: readonly string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder()
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk))
      controller.close()
    },
  })
}

async function events(chunks: readonly string[]): Promise<ServerSentEvent[]> {
  const out: ServerSentEvent[] = []
  for await (const event of parseServerSentEvents(streamOf(chunks))) out.push(event)
  return out
}

describe('parseServerSentEvents', () => {
  const body =
    ': keep-alive\r\n' +
    'data: {"a":1}\r\n\r\n' +
    'event: note\ndata: line one\ndata: line two\n\n' +
    'data:no-space\r\r' +
    'data: 你好🙂\n\n' +
    'data: [DONE]\n\n' +
    'data: cut off at the end'
  const expected: ServerSentEvent[] = [
    { event: 'message', data: '{"a":1}' },
    { event: 'note', data: 'line one\nline two' },
    { event: 'message', data: 'no-space' },
    { event: 'message', data: '你好🙂' },
    { event: 'message', data: '[DONE]' },
  ]

  it('parses comments, CRLF / CR / LF, multi-line data, event names, UTF-8; drops an unfinished event', async () => {
    expect(await events([body])).toEqual(expected)
  })

  it('gives the same events however the bytes are split (every split point, even inside a character)', async () => {
    const bytes = new TextEncoder().encode(body)
    for (let cut = 1; cut < bytes.length; cut++) {
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(bytes.slice(0, cut))
          controller.enqueue(bytes.slice(cut))
          controller.close()
        },
      })
      const out: ServerSentEvent[] = []
      for await (const event of parseServerSentEvents(stream)) out.push(event)
      expect(out, `split at byte ${cut}`).toEqual(expected)
    }
  })

  it('one byte at a time', async () => {
    const bytes = new TextEncoder().encode(body)
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const byte of bytes) controller.enqueue(new Uint8Array([byte]))
        controller.close()
      },
    })
    const out: ServerSentEvent[] = []
    for await (const event of parseServerSentEvents(stream)) out.push(event)
    expect(out).toEqual(expected)
  })
})

describe('edge client', () => {
  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3)
    expect(parseRetryAfter(null)).toBeUndefined()
    expect(parseRetryAfter('soon')).toBeUndefined()
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now)).toBe(10)
    // Not whatever Date.parse takes: 'soon 2030' was read as a date four years on (an hour, clamped).
    expect(parseRetryAfter('soon 2030', now)).toBeUndefined()
    expect(parseRetryAfter('Thursday, 01-Jan-26 00:00:10 GMT', now)).toBe(10)
    expect(parseRetryAfter('Thu Jan  1 00:00:10 2026', now)).toBe(10)
  })

  it('validates its options, naming the field', () => {
    expect(() => new EdgeClient({ url: 'ftp://x' })).toThrow(/edge.url must be http/)
    expect(() => new EdgeClient({ url: 'http://x', apiKey: '' })).toThrow(InvalidArgumentError)
    expect(() => new EdgeClient({ url: 'http://x', connectTimeoutMs: -1 })).toThrow(/connectTimeoutMs/)
    expect(new EdgeClient({ url: 'https://ai.example.com/base/' }).url).toBe('https://ai.example.com/base')
    // Headers and fetch: refused here, where they read as an unreachable edge (retryable) or
    // were ignored at the first request.
    const refusal = (options: unknown): InvalidArgumentError | undefined => {
      try {
        new EdgeClient(options as never)
      } catch (error) {
        return error as InvalidArgumentError
      }
      return undefined
    }
    expect(refusal({ url: 'http://x', headers: 5 })).toMatchObject({
      param: 'edge.headers',
      isRetryable: false,
    })
    expect(refusal({ url: 'http://x', headers: { 'bad name': 'x' } })).toMatchObject({
      param: 'edge.headers.bad name',
    })
    expect(refusal({ url: 'http://x', headers: { 'x-a': 'a\nb' } })).toMatchObject({
      param: 'edge.headers.x-a',
    })
    expect(refusal({ url: 'http://x', headers: { 'x-a': 1 } })).toMatchObject({ param: 'edge.headers.x-a' })
    expect(refusal({ url: 'http://x', fetch: 5 })).toMatchObject({ param: 'edge.fetch' })
    // An OpenAI client's baseURL (…/v1) asked for /v1/v1/models: a 404 from the edge.
    expect(refusal({ url: 'http://127.0.0.1:8787/v1' })?.message).toMatch(/"http:\/\/127.0.0.1:8787"/)
    expect(refusal({ url: 'https://ai.example.com/tenant/v1/' })).toMatchObject({ param: 'edge.url' })
    expect(refusal({ url: 'http://x', headers: { 'x-trace': 'abc' }, fetch })).toBeUndefined()
  })

  it('sends the OpenAI body with our extensions and every field the chat template reads', async () => {
    const client = new EdgeClient({ url: 'http://127.0.0.1:9', model: 'm' })
    const body = await client.body({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'ok', reasoningContent: 'thinking' },
      ],
      sampling: {
        temperature: 0.5,
        topK: 3,
        minP: 0.1,
        repetitionPenalty: 1.1,
        seed: 9,
        logitBias: { 5: -100 },
      },
      maxTokens: 7,
      stop: ['\n\n'],
      continuation: { tokenIds: [1, 2], step: 2 },
    })
    expect(body).toEqual({
      model: 'm',
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'ok', reasoning_content: 'thinking' },
      ],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 7,
      temperature: 0.5,
      top_k: 3,
      min_p: 0.1,
      repetition_penalty: 1.1,
      logit_bias: { 5: -100 },
      seed: 9,
      stop: ['\n\n'],
      ondevice_continuation: { token_ids: [1, 2], step: 2 },
    })
  })
})

describe('a starting edge', () => {
  it('a chat tells the edge how long it waits (Prefer: wait, under connectTimeoutMs) and reads its 503 edge_starting as such', async () => {
    expect(preferredWaitSeconds(15_000)).toBe(12)
    expect(preferredWaitSeconds(3_000)).toBe(2)
    expect(preferredWaitSeconds(1_000)).toBe(0)
    const seen: (string | undefined)[] = []
    // An edge whose container is starting, as the Worker answers then.
    const server = createServer((request, response) => {
      seen.push(request.headers['prefer'] as string | undefined)
      request.resume()
      response.writeHead(503, { 'content-type': 'application/json', 'retry-after': '7' })
      response.end(
        JSON.stringify({
          error: {
            message: 'The edge is starting: ...',
            type: 'server_error',
            param: null,
            code: 'edge_starting',
          },
        }),
      )
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      for (const [options, expected] of [
        [{}, 'wait=12'],
        [{ connectTimeoutMs: 3000 }, 'wait=2'],
      ] as const) {
        const client = new EdgeClient({ url, model: 'm', ...options })
        const error = (await (async () => {
          for await (const _ of client.stream({ messages: [{ role: 'user', content: 'hi' }] })) {
            // nothing comes
          }
        })().then(
          () => undefined,
          (caught: unknown) => caught,
        )) as OndeviceError | undefined
        expect(seen.at(-1)).toBe(expected)
        expect(error).toMatchObject({ code: 'edge_starting', isRetryable: true, retryAfterSeconds: 7 })
        expect(error?.message).toMatch(/HTTP 503: The edge is starting/)
      }
    } finally {
      server.close()
    }
  })
})

describe("an edge's prefill progress", () => {
  it('counts for the idle timeout only while it rises and stays within the tokens sent', async () => {
    // A server that answers a 3-token prompt with nothing but ': ondevice-prefill N' comments,
    // N rising for ever: three count (each stands for a token fed at least), then it is idle.
    const encoder = new TextEncoder()
    let sent = 0
    const edgeFetch = async (input: RequestInfo | URL): Promise<Response> => {
      const url = String(input instanceof Request ? input.url : input)
      if (!url.endsWith('/v1/chat/completions')) return new Response('{}', { status: 404 })
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          await new Promise((resolve) => setTimeout(resolve, 100))
          controller.enqueue(encoder.encode(`: ondevice-prefill ${++sent}\n\n`))
        },
      })
      return new Response(body, {
        headers: { 'content-type': 'text/event-stream', 'x-ondevice-prompt-tokens': '3' },
      })
    }
    const client = createClient({
      policy: 'edge-only',
      // 1 s against reports 100 ms apart (it was 300 ms: failed once here at load average 20, where
      // a report's timer can fire late enough to end the stream before the three that count).
      edge: { url: 'http://edge.test', model: 'm', idleTimeoutMs: 1_000, fetch: edgeFetch },
    })
    try {
      const started = performance.now()
      const error = await client
        .chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 2 })
        .catch((caught: unknown) => caught)
      expect(error).toMatchObject({ code: 'edge_failed', isRetryable: true })
      expect((error as Error).message).toMatch(/no event for 1000 ms/)
      // Three reports counted (about 300 ms), then the idle bound while more kept coming: not a
      // stream kept up for ever.
      expect(sent).toBeGreaterThanOrEqual(5)
      expect(performance.now() - started).toBeLessThan(20_000)
    } finally {
      await client.dispose()
    }
  })
})
