// The SDK against a hostile edge: a small HTTP server on 127.0.0.1 that answers
// /MODE/v1/chat/completions the way a broken or malicious edge would (the SDK's edge URL is a
// page's setting, and anything between the page and the edge can answer for it). Each mode used
// to leave the stream pending for ever, eat memory and CPU, or pass absurd values on; now each
// ends in a clear EdgeError or a clamped value, quickly.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EdgeError, OndeviceError } from '../../core/errors.ts'
import type { FinishPart, GenerationPart } from '../../core/stream-parts.ts'
import { EdgeClient, maximumRetryAfterSeconds } from '../../sdk/edge-client.ts'
import { reportFigures } from './summary.ts'

const messages = [{ role: 'user' as const, content: 'hi' }]
let server: Server
let origin = ''
/** Bytes each mode's last response wrote before the client hung up (or it ended). */
const written = new Map<string, number>()
const figures: Record<string, number | string> = {}

const chunk = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`
const delta = (content: string, tokenIds: readonly number[]) =>
  chunk({
    id: 'x',
    object: 'chat.completion.chunk',
    choices: [{ index: 0, delta: { content, token_ids: tokenIds }, finish_reason: null }],
  })

function startStream(response: ServerResponse): void {
  response.writeHead(200, { 'content-type': 'text/event-stream' })
  response.flushHeaders()
}

/** Writes `next()` until the client goes away or `next` returns undefined, honouring backpressure. */
function pump(mode: string, response: ServerResponse, next: () => string | undefined): void {
  let total = 0
  const go = () => {
    for (;;) {
      if (response.destroyed) break
      const piece = next()
      if (piece === undefined) {
        response.end()
        break
      }
      total += piece.length
      written.set(mode, total)
      if (!response.write(piece)) {
        response.once('drain', go)
        return
      }
    }
  }
  go()
}

const modes: Record<string, (request: IncomingMessage, response: ServerResponse) => void> = {
  // Headers, then nothing, the connection kept open.
  silent: (_request, response) => startStream(response),
  // Headers and keep-alive comments every 50 ms, never an event.
  keepalive: (_request, response) => {
    startStream(response)
    const timer = setInterval(() => response.write(': keepalive\n\n'), 50)
    response.on('close', () => clearInterval(timer))
  },
  // 32 MB without a line break.
  noNewline: (_request, response) => {
    startStream(response)
    const piece = 'x'.repeat(64 * 1024)
    let sent = 0
    pump('noNewline', response, () => (sent++ < 512 ? piece : undefined))
  },
  // An endless stream of one-token deltas.
  endless: (_request, response) => {
    startStream(response)
    let count = 0
    pump('endless', response, () => delta('a', [count++ % 1000]))
  },
  // A rate limit of ten years.
  decade: (_request, response) => {
    response.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(10 * 365 * 86_400) })
    response.end(
      JSON.stringify({
        error: { message: 'slow down', type: 'rate_limit', param: null, code: 'rate_limited' },
      }),
    )
  },
  // An error status whose body never ends.
  errorFlood: (_request, response) => {
    response.writeHead(503, { 'content-type': 'application/json' })
    const piece = `{"error":{"message":"${'x'.repeat(60 * 1024)}`
    pump('errorFlood', response, () => piece)
  },
  // GET /v1/models (the client asks when edge.model is not set) with a body that never ends.
  modelsFlood: (_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' })
    const piece = `{"data":[${'{"id":"m"},'.repeat(6000)}`
    pump('modelsFlood', response, () => piece)
  },
  // Absurd numbers around a valid answer: negative usage, a next_step far from the tokens.
  absurd: (_request, response) => {
    startStream(response)
    response.write(delta('ok', [1, 2]))
    response.write(
      chunk({
        choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
        ondevice: { token_ids: [1, 2], next_step: -5 },
      }),
    )
    response.write(
      chunk({
        choices: [],
        usage: { prompt_tokens: -40, completion_tokens: -2, total_tokens: -42, time_to_first_token_ms: -1 },
      }),
    )
    response.end('data: [DONE]\n\n')
  },
  // 200,000 token ids in one delta (1.4 MB), then a normal end.
  hugeDelta: (_request, response) => {
    startStream(response)
    const ids = Array.from({ length: 200_000 }, (_, index) => index % 1000)
    response.write(delta('x', ids))
    response.write(
      chunk({
        choices: [{ index: 0, delta: {}, finish_reason: 'length' }],
        ondevice: { token_ids: ids, next_step: 200_000 },
      }),
    )
    response.end('data: [DONE]\n\n')
  },
}

beforeAll(async () => {
  server = createServer((request, response) => {
    request.resume()
    const mode = (request.url ?? '/').split('/')[1] ?? ''
    const handle = modes[mode]
    if (!handle) {
      response.statusCode = 404
      response.end()
      return
    }
    handle(request, response)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
  reportFigures('hostile-edge', figures)
})

function client(mode: string, idleTimeoutMs = 300): EdgeClient {
  return new EdgeClient({ url: `${origin}/${mode}`, model: 'm', idleTimeoutMs })
}

async function collect(
  stream: AsyncGenerator<GenerationPart>,
): Promise<{ parts: GenerationPart[]; error?: unknown }> {
  const parts: GenerationPart[] = []
  try {
    for await (const part of stream) parts.push(part)
    return { parts }
  } catch (error) {
    return { parts, error }
  }
}

async function timed<T>(name: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now()
  try {
    return await work()
  } finally {
    figures[name] = Math.round(performance.now() - started)
  }
}

describe('the SDK against a hostile edge', () => {
  it('headers then silence: a retryable edge_failed after idleTimeoutMs, not a stream pending for ever', async () => {
    const { error } = await timed('silentMs', () => collect(client('silent').stream({ messages })))
    expect(error).toBeInstanceOf(EdgeError)
    expect(error).toMatchObject({ code: 'edge_failed', isRetryable: true })
    expect(String(error)).toMatch(/no event for 300 ms/)
    expect(figures['silentMs']).toBeLessThan(10_000)
  })

  it('only keep-alive comments: they are not progress, so the same idle error', async () => {
    const { error } = await timed('keepaliveMs', () => collect(client('keepalive').stream({ messages })))
    expect(error).toMatchObject({ code: 'edge_failed', isRetryable: true })
    expect(String(error)).toMatch(/keep-alive comments do not count/)
  })

  it('32 MB without a line break: refused at the 4 MiB line bound, reading stopped', async () => {
    const { error } = await timed('noNewlineMs', () =>
      collect(client('noNewline', 30_000).stream({ messages })),
    )
    expect(error).toMatchObject({ code: 'edge_failed', isRetryable: false })
    expect(String(error)).toMatch(/a line longer than 4194304 characters/)
    await new Promise((resolve) => setTimeout(resolve, 100))
    figures['noNewlineWrittenMiB'] = Math.round((written.get('noNewline') ?? 0) / 1024 / 1024)
    expect(written.get('noNewline') ?? 0).toBeLessThan(16 * 1024 * 1024)
  })

  it('an endless stream with maxTokens 8: stopped with an error past the budget', async () => {
    const { parts, error } = await timed('endlessMs', () =>
      collect(client('endless').stream({ messages, maxTokens: 8 })),
    )
    expect(error).toMatchObject({ code: 'edge_failed', isRetryable: false })
    expect(String(error)).toMatch(/more than 8 tokens/)
    expect(parts.filter((part) => part.type === 'text-delta')).toHaveLength(8)
  })

  it('Retry-After of ten years: passed on as at most an hour', async () => {
    const { error } = await collect(client('decade').stream({ messages }))
    expect(error).toBeInstanceOf(OndeviceError)
    expect(error).toMatchObject({ code: 'rate_limited', retryAfterSeconds: maximumRetryAfterSeconds })
    expect(maximumRetryAfterSeconds).toBe(3600)
  })

  it('negative usage counts and a next_step unrelated to the tokens: not passed on', async () => {
    const { parts, error } = await collect(
      client('absurd').stream({ messages, continuation: { tokenIds: [9], step: 1 } }),
    )
    expect(error).toBeUndefined()
    const finish = parts.at(-1) as FinishPart
    expect(finish.type).toBe('finish')
    expect(finish.nextStep).toBe(3)
    expect(finish.usage.promptTokens).toBe(0)
    expect(finish.usage.completionTokens).toBe(2)
    expect(finish.usage.timeToFirstTokenMs).toBeGreaterThanOrEqual(0)
  })

  it('200,000 token ids in one delta: no call-stack overflow', async () => {
    const { parts, error } = await timed('hugeDeltaMs', () =>
      collect(client('hugeDelta', 30_000).stream({ messages })),
    )
    expect(error).toBeUndefined()
    const finish = parts.at(-1) as FinishPart
    expect(finish.tokenIds).toHaveLength(200_000)
    expect(finish.nextStep).toBe(200_000)
  })

  it('an error body or a /v1/models body without end: read up to a bound, never whole', async () => {
    const { error } = await timed('errorFloodMs', () => collect(client('errorFlood').stream({ messages })))
    expect(error).toMatchObject({ code: 'edge_unavailable', isRetryable: true })
    const models = new EdgeClient({ url: `${origin}/modelsFlood`, idleTimeoutMs: 300 })
    const refused = await timed('modelsFloodMs', () => models.model().catch((caught: unknown) => caught))
    expect(refused).toMatchObject({ code: 'edge_failed' })
    expect(String(refused)).toMatch(/larger than 1048576 bytes/)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(written.get('errorFlood') ?? 0).toBeLessThan(16 * 1024 * 1024)
    expect(written.get('modelsFlood') ?? 0).toBeLessThan(16 * 1024 * 1024)
  })
})
