// One client's share of the bytes of bodies read at once (limits.maxBodyBytesInFlightPerClient),
// over real sockets against serveApp. The budget for all bodies (MAX_BODY_BYTES_IN_FLIGHT) bounds
// memory, but one client alone could fill it: a few uploads, each sending a byte just often
// enough for the stall bound, held the whole budget, and every other client's body got 429 until
// the uploads' whole-body bound ended them (and the client opened new ones). At the defaults that
// took ~220 KB/s on Node. Two clients here are two source addresses on the loopback
// (127.0.0.1 and 127.0.0.2): the server tells them apart by the socket, as it would on a network.
// Nothing here depends on timing: the held uploads have minutes left on their bounds, and every
// wait is a poll for an outcome.
import { request } from 'node:http'
import type { Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { openRawConnection } from '../test/worker/raw-connection.ts'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from './app.ts'
import { type RunningServer, serveApp } from './node.ts'
import type { AppOptions, Limits } from './options.ts'
import { clientOfAddress, createBodyBudget } from './read-body.ts'

const running: RunningServer[] = []
const sockets: Socket[] = []
const timers: ReturnType<typeof setInterval>[] = []

afterEach(async () => {
  for (const timer of timers.splice(0)) clearInterval(timer)
  for (const socket of sockets.splice(0)) socket.destroy()
  for (const server of running.splice(0)) await server.close()
})

const maxBodyBytes = 64 * 1024
/** Bounds far past anything the test waits for: the held uploads are never cut while it runs. */
const longBounds = { bodyTimeoutMs: 600_000, bodyStallTimeoutMs: 300_000 } as const

async function start(limits: Partial<Limits>, options: Partial<AppOptions> = {}): Promise<RunningServer> {
  const app = createApp({
    modelHost: createTestHost(),
    limits: { maxBodyBytes, ...longBounds, ...limits },
    log: () => undefined,
    ...options,
  })
  const server = await serveApp({ app, port: 0, requestTimeoutMs: 900_000 })
  running.push(server)
  return server
}

const chatBody = (content = 'hi'): string =>
  JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content }], max_tokens: 2 })

/** A chat body exactly `bytes` long. */
const chatOfSize = (bytes: number): string => chatBody('x'.repeat(bytes - chatBody('').length))

interface Upload {
  readonly socket: Socket
  /** The answer's status line so far ('' while the body is still being read). */
  status(): string
}

/**
 * A slow upload from `from`: a body of the cap, all but its last 256 bytes at once, then a byte
 * every 500 ms (the stall bound never ends it; the last byte never comes while the test runs).
 */
async function slowUpload(server: RunningServer, from: string, headers = ''): Promise<Upload> {
  const body = chatOfSize(maxBodyBytes)
  const connection = await openRawConnection(
    server.port,
    `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n${headers}\r\n${body.slice(0, -256)}`,
    sockets,
    from,
  )
  let next = body.length - 256
  const timer = setInterval(() => {
    if (connection.text() !== '' || next >= body.length - 1) return
    connection.write(body[next] ?? '')
    next += 1
  }, 500)
  timers.push(timer)
  return { socket: connection.socket, status: () => connection.text().split('\r\n')[0] ?? '' }
}

interface Answer {
  readonly status: number
  readonly retryAfter: string | undefined
  readonly body: string
}

/** POSTs `body` from source address `from` (a fresh connection). */
function post(
  server: RunningServer,
  from: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: '127.0.0.1',
        port: server.port,
        localAddress: from,
        method: 'POST',
        path: '/v1/chat/completions',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...headers,
        },
      },
      (response) => {
        let text = ''
        response.setEncoding('utf8')
        response.on('data', (data: string) => {
          text += data
        })
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            retryAfter: response.headers['retry-after'],
            body: text,
          }),
        )
        response.on('error', reject)
      },
    )
    outgoing.on('error', reject)
    outgoing.end(body)
  })
}

/** Opens `count` slow uploads from `from` and waits until each is being read or was answered. */
async function openUploads(
  server: RunningServer,
  from: string,
  count: number,
  headers: (index: number) => string = () => '',
): Promise<Upload[]> {
  const uploads: Upload[] = []
  for (let index = 0; index < count; index++) uploads.push(await slowUpload(server, from, headers(index)))
  return uploads
}

describe("one client's share of the bodies read at once (limits.maxBodyBytesInFlightPerClient)", () => {
  it('one client holding slow uploads cannot lock another out: its uploads past its share get 429, the other client is answered', async () => {
    // The whole budget is four bodies of the cap; the attacker opens eight uploads.
    const server = await start({ maxBodyBytesInFlight: 4 * maxBodyBytes })
    const attacker = await openUploads(server, '127.0.0.1', 8)
    const answered = () => attacker.filter((upload) => upload.status() !== '')
    // Some of the attacker's uploads are refused once the bytes the server holds of the others
    // leave no room: with no share per client, four of the cap fill the whole budget.
    await expect.poll(() => answered().length, { timeout: 30_000 }).toBeGreaterThanOrEqual(4)
    // Another client's ordinary request, and one with a 32 KiB conversation, are answered (they
    // got 429 overloaded for as long as the attacker's uploads lasted).
    const other = await post(server, '127.0.0.2', chatBody())
    expect(other.status, other.body).toBe(200)
    const large = await post(server, '127.0.0.2', chatOfSize(maxBodyBytes / 2))
    expect(large.status, large.body).not.toBe(429)
    // The attacker's share holds one of its uploads (the default share: a quarter of the budget,
    // at least one body of the cap); the other seven got 429 each.
    await expect.poll(() => answered().length, { timeout: 30_000 }).toBe(7)
    for (const upload of answered()) expect(upload.status()).toBe('HTTP/1.1 429 Too Many Requests')
    // The attacker's next body is refused for its share, by name, with Retry-After.
    const refused = await post(server, '127.0.0.1', chatOfSize(maxBodyBytes / 2))
    expect(refused.status).toBe(429)
    expect(refused.retryAfter).toBe('1')
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'overloaded' } })
    expect(JSON.parse(refused.body).error.message).toMatch(/MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT/)
    // Its held upload is still being read: the share refuses more, it does not cut what it holds.
    expect(attacker.filter((upload) => upload.status() === '')).toHaveLength(1)
    // Once the attacker's uploads go, its share is free again.
    for (const upload of attacker) upload.socket.destroy()
    await expect
      .poll(async () => (await post(server, '127.0.0.1', chatOfSize(maxBodyBytes / 2))).status, {
        timeout: 30_000,
      })
      .not.toBe(429)
  }, 120_000)

  it('behind a proxy (clientAddressHeader): clients are told apart by the header it sets, its last entry (an IPv6 one by its /64), not by the socket they share', async () => {
    const server = await start(
      { maxBodyBytesInFlight: 4 * maxBodyBytes },
      { clientAddressHeader: 'x-forwarded-for' },
    )
    // Every connection comes from the proxy's address; the proxy appended each client's.
    const attacker = await openUploads(
      server,
      '127.0.0.1',
      8,
      // Each from its own address of one IPv6 /64: one client.
      (index) => `X-Forwarded-For: 198.51.100.1, 2001:db8:1:2::${index + 1}\r\n`,
    )
    const answered = () => attacker.filter((upload) => upload.status() !== '')
    await expect.poll(() => answered().length, { timeout: 30_000 }).toBe(7)
    const other = await post(server, '127.0.0.1', chatOfSize(maxBodyBytes / 2), {
      'x-forwarded-for': '203.0.113.8',
    })
    expect(other.status, other.body).not.toBe(429)
    // The first entry is the client's to write, and the /64 is one client's: neither makes another.
    const spoofed = await post(server, '127.0.0.1', chatOfSize(maxBodyBytes / 2), {
      'x-forwarded-for': '192.0.2.99, 2001:db8:1:2::99',
    })
    expect(spoofed.status).toBe(429)
    expect(spoofed.body).toMatch(/MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT/)
    const nextNetwork = await post(server, '127.0.0.1', chatOfSize(maxBodyBytes / 2), {
      'x-forwarded-for': '2001:db8:1:3::1',
    })
    expect(nextNetwork.status, nextNetwork.body).not.toBe(429)
  }, 120_000)

  it("the budget: a client's shares together stay within its share, a body of an unknown client counts against the whole only, and what a client gives back is its own again", () => {
    const budget = createBodyBudget(1000, 400)
    const first = budget.open(performance.now() + 60_000, 'a')
    expect(first.take(300)).toBe(true)
    const second = budget.open(performance.now() + 60_000, 'a')
    expect(second.take(100)).toBe(true)
    expect(second.take(1)).toBe(false)
    expect(budget.heldBy('a')).toBe(400)
    // Another client, and bodies whose client is unknown, fill the rest.
    expect(budget.open(performance.now() + 60_000, 'b').take(400)).toBe(true)
    const unknown = budget.open(performance.now() + 60_000)
    expect(unknown.take(201)).toBe(false)
    expect(unknown.take(200)).toBe(true)
    expect(budget.held).toBe(1000)
    first.release()
    expect(budget.heldBy('a')).toBe(100)
    expect(budget.open(performance.now() + 60_000, 'a').take(300)).toBe(true)
    expect(budget.heldBy('c')).toBe(0)
  })

  it('a client is an IPv4 address, or an IPv6 /64 (a host there can take a new address per connection)', () => {
    expect(clientOfAddress('203.0.113.7')).toBe('203.0.113.7')
    expect(clientOfAddress('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(clientOfAddress('2001:0DB8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64')
    expect(clientOfAddress('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(clientOfAddress('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(clientOfAddress('::1')).toBe('0:0:0:0::/64')
    expect(clientOfAddress('::ffff:192.0.2.1')).toBe('192.0.2.1')
    expect(clientOfAddress('64:ff9b::192.0.2.1')).toBe('64:ff9b:0:0::/64')
    // Not an address (a proxy's header can hold anything): taken as written.
    expect(clientOfAddress('unknown')).toBe('unknown')
    expect(clientOfAddress('1::2::3')).toBe('1::2::3')
    expect(clientOfAddress('1:2:3')).toBe('1:2:3')
    expect(clientOfAddress('zz::1')).toBe('zz::1')
  })
})
