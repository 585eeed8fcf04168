// serveApp on an address it cannot listen on: the project's InvalidArgumentError naming the
// option to change (the CLI prints its message), never Node's raw error and stack. And its
// close() with a grace period: what runs finishes, a request arriving meanwhile gets 503.
import { createServer } from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../core/errors.ts'
import type { OndeviceApp } from './app.ts'
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
