// `ondevice serve`'s bounds on reading requests, set by its environment (HEADERS_TIMEOUT_MS,
// BODY_STALL_TIMEOUT_MS, BODY_TIMEOUT_MS), over raw sockets against the real command on a fixture package: clients that
// stall their headers or their bodies are answered 408 and let go while a real client is
// answered. Before, the command set none of Node's timeouts: a stalled body held its socket
// 300 s, stalled headers 60 s (each checked every 30 s); then a body had BODY_TIMEOUT_MS in all,
// however steadily it came. worker/body-read.test.ts has the cases one by one and the in-flight
// budget (MAX_BODY_BYTES_IN_FLIGHT).
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { type ServeProcess, startServeProcess } from '../../test/cli/serve-process.ts'

let directory: string
let server: ServeProcess
const sockets: Socket[] = []

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ondevice-serve-body-'))
  const packageDir = join(directory, 'tiny')
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: ['q8'] })
  server = await startServeProcess({
    args: ['--model', packageDir, '--port', '0'],
    env: {
      HEADERS_TIMEOUT_MS: '300',
      // 2 s without a byte, 8 s in all: against gaps of 300 ms, far from scheduling noise.
      BODY_STALL_TIMEOUT_MS: '2000',
      BODY_TIMEOUT_MS: '8000',
    },
    timeoutMs: 110_000,
  })
}, 120_000)

afterAll(async () => {
  for (const socket of sockets) socket.destroy()
  await server?.stop()
  if (directory) await rm(directory, { recursive: true, force: true })
})

/** Writes `data` on a new connection; resolves with all the server sent once it closes it. */
function exchange(data: string): { socket: Socket; closed: Promise<string> } {
  const { port } = new URL(server.url)
  const socket = connect(Number(port), '127.0.0.1')
  sockets.push(socket)
  let received = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    received += chunk
  })
  socket.on('error', () => undefined)
  socket.write(data)
  return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve(received))) }
}

/** Fails after `ms`, far past the configured bounds (the old server held these 60-300 s). */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)),
  ])
}

const chatBody = JSON.stringify({
  model: 'tiny',
  messages: [{ role: 'user', content: 'Hi' }],
  max_tokens: 2,
})
const post = (headers: string): string =>
  `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${headers}\r\n`

describe('ondevice serve reading requests', () => {
  it('stalled headers and stalled bodies get 408 and are let go; a real client is answered meanwhile', async () => {
    const stalledHeaders = exchange('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n')
    const halfBody = exchange(post(`Content-Length: ${chatBody.length}\r\n`) + chatBody.slice(0, 10))
    const endlessChunks = exchange(`${post('Transfer-Encoding: chunked\r\n')}5\r\n{"mod\r\n`)
    const answer = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chatBody,
    })
    expect(answer.status).toBe(200)
    expect(await within(stalledHeaders.closed, 20_000)).toMatch(/^HTTP\/1\.1 408 /)
    for (const stalled of [halfBody, endlessChunks]) {
      const text = await within(stalled.closed, 20_000)
      expect(text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/)
      expect(text.toLowerCase()).toContain('connection: close')
      expect(text).toContain('"code":"request_timeout"')
      expect(text).toMatch(/stalled: no bytes came for 2000 ms/)
    }
    const health = (await (await fetch(`${server.url}/healthz`)).json()) as {
      generations: { active: number; queued: number }
    }
    expect(health.generations).toMatchObject({ active: 0, queued: 0 })
    // The request log has the 408s as such.
    expect(server.output()).toMatch(/"status":408/)
  })

  it('a body sent steadily, 300 ms between pieces for ~4 s (twice the stall bound), is answered', async () => {
    const steady = exchange(post(`Content-Length: ${chatBody.length}\r\n`))
    const pieces = Math.ceil(chatBody.length / 14)
    for (let index = 0; index < 14; index++) {
      steady.socket.write(chatBody.slice(index * pieces, (index + 1) * pieces))
      await new Promise((resolve) => setTimeout(resolve, 300))
    }
    steady.socket.end()
    const text = await within(steady.closed, 30_000)
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
  }, 60_000)
})
