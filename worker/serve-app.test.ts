// serveApp on an address it cannot listen on: the project's InvalidArgumentError naming the
// option to change (the CLI prints its message), never Node's raw error and stack. And its
// close() with a grace period: what runs finishes, a request arriving meanwhile gets 503; what
// still runs at the bound ends with a retryable error (an SSE error event, or a 503).
import { createServer } from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../core/errors.ts'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp, type OndeviceApp } from './app.ts'
import { serveApp } from './node.ts'

const app = new Hono() as unknown as OndeviceApp

describe('serveApp on an address it cannot listen on', () => {
  it('a port in use: InvalidArgumentError(port) saying so', async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const port = (taken.address() as AddressInfo).port
    try {
      const error = await serveApp({ app, port, host: '127.0.0.1' }).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(InvalidArgumentError)
      expect((error as InvalidArgumentError).param).toBe('port')
      expect((error as Error).message).toContain(`127.0.0.1:${port}`)
      expect((error as Error).message).toMatch(/another port/)
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()))
    }
  })

  it('an address not on this machine (TEST-NET-1, no name lookup): InvalidArgumentError(host)', async () => {
    const error = await serveApp({ app, port: 0, host: '192.0.2.1' }).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    expect(error).toBeInstanceOf(InvalidArgumentError)
    expect((error as InvalidArgumentError).param).toBe('host')
    expect((error as Error).message).toMatch(/not an address of this machine/)
  })
})

describe('serveApp close with a grace period (SIGTERM in ondevice serve)', () => {
  /** An app whose GET /slow streams one chunk, then waits for `release` before it ends. */
  function slowApp() {
    let release = () => {}
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const hono = new Hono()
    hono.get('/slow', () => {
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode('first;'))
          await released
          controller.enqueue(new TextEncoder().encode('last'))
          controller.close()
        },
      })
      return new Response(body, { headers: { 'content-type': 'text/plain' } })
    })
    hono.get('/fast', (c) => c.text('fast'))
    return { app: hono as unknown as OndeviceApp, release }
  }

  /** GET /slow on a connection of its own; `send` writes more requests on it (pipelined). */
  function pipelined(port: number) {
    const socket = connect(port, '127.0.0.1')
    let received = ''
    const firstChunk = new Promise<void>((resolve) =>
      socket.on('data', (data: Buffer) => {
        received += data.toString()
        if (received.includes('first;')) resolve()
      }),
    )
    const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(received)))
    socket.on('error', () => undefined)
    socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
    const send = (text: string) => new Promise<void>((resolve) => socket.write(text, () => resolve()))
    return { firstChunk, closed, send }
  }

  it('lets a running response finish and refuses the next request on its connection with 503 + Retry-After', async () => {
    const { app: slow, release } = slowApp()
    const server = await serveApp({ app: slow, port: 0 })
    const client = pipelined(server.port)
    await client.firstChunk
    const closing = server.close({ graceMs: 30_000 })
    // A request that arrives on the open connection after the drain began.
    await client.send('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n')
    // Time for the server to read it (the refusal is written only after /slow's response).
    await new Promise((resolve) => setTimeout(resolve, 200))
    release()
    const received = await client.closed
    await closing
    expect(received, received).toContain('last')
    const refusal = received.slice(received.indexOf('HTTP/1.1 503'))
    expect(refusal, received).toMatch(/^HTTP\/1\.1 503/)
    expect(refusal.toLowerCase()).toContain('retry-after: 5')
    expect(refusal).toContain('"code":"edge_unavailable"')
    expect(received).not.toContain('fast')
  })

  it('cuts what still runs when the grace ends, and close() resolves', async () => {
    const { app: slow } = slowApp()
    const server = await serveApp({ app: slow, port: 0 })
    const client = pipelined(server.port)
    await client.firstChunk
    await server.close({ graceMs: 200 })
    expect(await client.closed).not.toContain('last')
  })
})

describe('serveApp close with a grace it cannot use', () => {
  // setTimeout reads each of these as ~1 ms (a string as its number or as 1 ms): a typo in the
  // caller's grace would cut every running answer at once instead of letting it finish.
  const hono = new Hono()
  hono.get('/fast', (c) => c.text('fast'))
  const fast = hono as unknown as OndeviceApp

  it.each([
    ['negative', -1],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a string', '5000'],
    ['over 10 minutes', 600_001],
  ])('%s: InvalidArgumentError(graceMs), and the server goes on serving', async (_name, graceMs) => {
    const server = await serveApp({ app: fast, port: 0 })
    try {
      const error = await server.close({ graceMs: graceMs as number }).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(InvalidArgumentError)
      expect((error as InvalidArgumentError).param).toBe('graceMs')
      expect((error as Error).message).toMatch(/graceMs must be a number of milliseconds from 0 to 600000/)
      expect((error as Error).message).toContain(
        typeof graceMs === 'string' ? `'${graceMs}'` : String(graceMs),
      )
      // Nothing began to stop: the server still answers.
      const answer = await fetch(`${server.url}/fast`)
      expect(answer.status).toBe(200)
      expect(await answer.text()).toBe('fast')
    } finally {
      await server.close()
    }
  })

  it('options that are not an object (close(5000)): InvalidArgumentError naming { graceMs }', async () => {
    const server = await serveApp({ app: fast, port: 0 })
    try {
      const close = server.close as unknown as (options: unknown) => Promise<void>
      const error = await close(5000).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(InvalidArgumentError)
      expect((error as Error).message).toMatch(/close\(\{ graceMs \}\)/)
      expect((await fetch(`${server.url}/fast`)).status).toBe(200)
    } finally {
      await server.close()
    }
  })
})

describe('serveApp close: the chat app still answering when the grace ends', () => {
  // The app over the test session, each model step 40 ms: a 400-token answer takes ~16 s, far
  // beyond the grace, so it is always still running when the grace ends.
  function slowChatServer(limits?: { maxConcurrent: number; maxQueue: number }) {
    const modelHost = createTestHost({ session: { delayMs: 40 } })
    const logged: Record<string, unknown>[] = []
    const app = createApp({
      modelHost,
      ...(limits ? { limits } : {}),
      log: (line) => logged.push(line as unknown as Record<string, unknown>),
    })
    return { app, modelHost, logged }
  }
  const chat = (url: string, stream: boolean) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'test-model',
        messages: [{ role: 'user', content: 'Tell me a long story.' }],
        max_tokens: 400,
        stream,
      }),
    })
  /** Polls until `condition` holds (no fixed sleep: the machine may be loaded). */
  async function until(condition: () => boolean): Promise<void> {
    while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10))
  }

  it('a stream gets an edge_unavailable error event and then its end; a queued request a 503', async () => {
    const { app, logged } = slowChatServer({ maxConcurrent: 1, maxQueue: 4 })
    const server = await serveApp({ app, port: 0 })
    const response = await chat(server.url, true)
    expect(response.status).toBe(200)
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder()
    let received = ''
    // Two tokens in: the answer is running (not merely started).
    while ((received.match(/"token_ids"/g)?.length ?? 0) < 2) {
      const next = await reader.read()
      if (next.done) throw new Error(`the stream ended early: ${received}`)
      received += decoder.decode(next.value, { stream: true })
    }
    // A JSON request waiting for the only slot: its headers are not sent when the grace ends.
    const queued = chat(server.url, false)
    for (;;) {
      const health = (await (await fetch(`${server.url}/healthz`)).json()) as {
        generations: { queued: number }
      }
      if (health.generations.queued >= 1) break
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const closing = server.close({ graceMs: 300 })
    for (;;) {
      const next = await reader.read()
      if (next.done) break
      received += decoder.decode(next.value, { stream: true })
    }
    await closing
    const events = received
      .split('\n\n')
      .map((event) => event.trim())
      .filter((event) => event !== '')
    const last = events.at(-1) ?? ''
    expect(last, received).toMatch(/^data: \{"error"/)
    const error = JSON.parse(last.slice('data: '.length)) as { error: { code: string; type: string } }
    expect(error.error.code).toBe('edge_unavailable')
    expect(error.error.type).toBe('server_error')
    expect(received).not.toContain('[DONE]')
    expect(received).not.toContain('"finish_reason":"abort"')
    const refused = await queued
    expect(refused.status).toBe(503)
    expect(refused.headers.get('retry-after')).toBe('5')
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('edge_unavailable')
    // The stream's log line says why it ended, and its session went back (the loop stopped).
    await until(() => logged.some((line) => line['stream'] === true))
    expect(logged.find((line) => line['stream'] === true)).toMatchObject({
      status: 503,
      errorCode: 'edge_unavailable',
    })
  })

  it('a JSON answer still generating gets 503 edge_unavailable with Retry-After', async () => {
    const { app, modelHost } = slowChatServer()
    const server = await serveApp({ app, port: 0 })
    const answer = chat(server.url, false)
    // Generating: its session has run the prompt and at least one more step.
    await until(() => (modelHost.sessions[0]?.appendCalls.length ?? 0) >= 2)
    await server.close({ graceMs: 200 })
    const response = await answer
    expect(response.status).toBe(503)
    expect(response.headers.get('retry-after')).toBe('5')
    const body = (await response.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('edge_unavailable')
    expect(body.error.message).toMatch(/shutting down/)
  })
})
