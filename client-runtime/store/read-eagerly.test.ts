// A server that closes the connection after the body, read by a consumer slower than the
// network: with Node's bundled undici the plain `for await` over the body crashes the process
// (nodejs/undici#5360); readEagerly must deliver every byte, and cancel the download when the
// reader leaves early.
import { createServer, type Server } from 'node:http'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { readEagerly } from './read-eagerly.ts'

const body = new Uint8Array(4 * 1024 * 1024).map((_, index) => index % 251)
let server: Server
let url: string

beforeAll(async () => {
  server = createServer((_request, response) => {
    response.writeHead(200, { 'content-length': String(body.length), connection: 'close' })
    response.end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

it('delivers every byte to a slow reader of a response whose server closes the connection', async () => {
  for (let round = 0; round < 3; round++) {
    const response = await fetch(url)
    const received: Uint8Array[] = []
    for await (const chunk of readEagerly(response.body!)) {
      received.push(chunk)
      await pause(2)
    }
    expect(Buffer.concat(received).equals(Buffer.from(body))).toBe(true)
  }
})

it('stops the download when the reader leaves early', async () => {
  const response = await fetch(url)
  let seen = 0
  await expect(
    (async () => {
      for await (const chunk of readEagerly(response.body!)) {
        seen += chunk.byteLength
        throw new Error('reader gave up')
      }
    })(),
  ).rejects.toThrow('reader gave up')
  expect(seen).toBeGreaterThan(0)
  expect(seen).toBeLessThan(body.length)
})
