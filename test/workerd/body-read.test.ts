// How the edge worker reads request bodies in real workerd (`wrangler dev`, offline), over raw
// sockets: the same bounds as on Node (worker/body-read.test.ts), which are the app's own and so
// hold in an isolate too. A body may send nothing for BODY_STALL_TIMEOUT_MS and must arrive in
// full within BODY_TIMEOUT_MS; before the stall bound, the whole body had to arrive within
// BODY_TIMEOUT_MS (30 s by default), which a slow but steady phone upload could not meet. And an
// isolate holds less of bodies at once than a Node process (MAX_BODY_BYTES_IN_FLIGHT 8 MiB, not
// 64 MiB: an isolate has 128 MB for everything). The worker serves no model here (a URL where
// nothing listens): a chat naming a model it does not serve gets its 404 once its body has been
// read in full and parsed, which is what these cases look at. Bounds of 2 s and more against
// gaps of 300 ms, so scheduling noise on a loaded machine does not decide an outcome; which bound
// ended a body is read from its answer, never from a clock.
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type LocalServer, startWranglerDev } from '../../tools/wrangler-dev.ts'
import { openRawConnection, type RawConnection } from '../worker/raw-connection.ts'
import { writeWorkerConfig } from './worker-config.ts'

let folder: string
let worker: LocalServer
const sockets: Socket[] = []

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-workerd-body-'))
  await mkdir(join(folder, 'assets'))
  const configPath = await writeWorkerConfig({
    directory: folder,
    assetsDirectory: join(folder, 'assets'),
    vars: {
      EDGE_RUNTIME: 'isolate',
      MODEL_SOURCE: 'url',
      MODEL_URL: 'http://127.0.0.1:9/no-package/',
      MODEL_ID: 'fixture',
      BODY_STALL_TIMEOUT_MS: '2000',
      BODY_TIMEOUT_MS: '12000',
    },
  })
  worker = await startWranglerDev({ configPath, stateDir: join(folder, 'state') })
}, 180_000)

afterAll(async () => {
  for (const socket of sockets) socket.destroy()
  await worker?.stop()
  if (folder) await rm(folder, { recursive: true, force: true })
})

type Raw = RawConnection

function raw(head: string): Promise<Raw> {
  return openRawConnection(Number(new URL(worker.url).port), head, sockets)
}

const postHead = (length: number, headers = ''): string =>
  `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n${headers}\r\n`

/** A chat naming a model this worker does not serve, `bytes` long (padded in `user`). */
const chatOfSize = (bytes: number): string => {
  const body = JSON.stringify({ model: 'not-served', messages: [{ role: 'user', content: 'hi' }], user: '' })
  return body.replace('"user":""', `"user":"${'u'.repeat(bytes - body.length)}"`)
}

async function sendSteadily(connection: Raw, body: string, pieceBytes: number, gapMs: number): Promise<void> {
  for (let index = 0; index < body.length; index += pieceBytes) {
    if (connection.socket.destroyed || connection.text() !== '') return
    connection.write(body.slice(index, index + pieceBytes))
    await new Promise((resolve) => setTimeout(resolve, gapMs))
  }
}

/** The status and JSON error of the first answer on `connection`, once it has one. */
async function answerOf(connection: Raw): Promise<{ status: number; code: string; message: string }> {
  await expect.poll(() => connection.text(), { timeout: 60_000 }).toMatch(/\r\n\r\n[\s\S]*\}/)
  const text = connection.text()
  const body = text.slice(text.indexOf('\r\n\r\n') + 4)
  const json = body.slice(body.indexOf('{'), body.lastIndexOf('}') + 1)
  const { error } = JSON.parse(json) as { error: { code: string; message: string } }
  return { status: Number(text.split(' ')[1]), code: error.code, message: error.message }
}

/** Posts `body` until its answer's error code is `code`, 200 ms apart, for at most `limitMs`. */
async function postUntil(body: string, code: string, limitMs: number): Promise<string[]> {
  const seen: string[] = []
  const deadline = performance.now() + limitMs
  while (seen.at(-1) !== code && performance.now() < deadline) {
    seen.push((await post(body)).code)
    if (seen.at(-1) !== code) await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return seen
}

async function post(
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; code: string; message: string; retryAfter: string | null }> {
  const response = await fetch(`${worker.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  })
  const { error } = (await response.json()) as { error: { code: string; message: string } }
  return {
    status: response.status,
    code: error.code,
    message: error.message,
    retryAfter: response.headers.get('retry-after'),
  }
}

describe('the edge worker reading request bodies in workerd', () => {
  it('a body sent in pieces 300 ms apart (about 6 s, three times the 2 s stall bound) is read in full', async () => {
    const body = chatOfSize(20 * 1024)
    const connection = await raw(postHead(body.length))
    await sendSteadily(connection, body, 1024, 300)
    expect(await answerOf(connection)).toMatchObject({ status: 404, code: 'model_not_found' })
  }, 120_000)

  it('a body that stops: 408 request_timeout for the stall, not the whole-body bound', async () => {
    const body = chatOfSize(20 * 1024)
    const connection = await raw(postHead(body.length))
    await sendSteadily(connection, body.slice(0, 5 * 1024), 1024, 300)
    const answer = await answerOf(connection)
    expect(answer).toMatchObject({ status: 408, code: 'request_timeout' })
    expect(answer.message).toMatch(/stalled: no bytes came for 2000 ms \(5120 bytes came before/)
  }, 120_000)

  it('a trickle, a byte every 300 ms (each in time for the stall bound): 408 at the 12 s whole-body bound', async () => {
    const body = chatOfSize(1024)
    const connection = await raw(postHead(body.length))
    void sendSteadily(connection, body, 1, 300)
    const answer = await answerOf(connection)
    expect(answer).toMatchObject({ status: 408, code: 'request_timeout' })
    expect(answer.message).toMatch(/did not arrive in full within 12000 ms/)
  }, 120_000)

  it('an isolate holds 8 MiB of bodies at once by default: a ninth body of the 1 MiB cap waits its turn with 429; bodies reset mid-upload give theirs back', async () => {
    const large = chatOfSize(1024 * 1024 - 16)
    // Nine bodies of the cap, all but their last 4 KiB sent, then a byte every 300 ms (each in
    // time for the stall bound): eight fit in 8 MiB, the ninth does not. Which one is refused
    // depends on how wrangler's proxy interleaves them; once one is, the other eight hold ~8 MiB.
    // (Posting the next body while eight were still uploading raced them: a post read meanwhile
    // took a holder's room, seven holders and a body of the cap fit, and every later post was read.)
    // Nine clients (Cloudflare's cf-connecting-ip, as the test sends it: `wrangler dev` gives a
    // request without it one local address, and one client holds at most a quarter of the budget).
    const holders: Raw[] = []
    for (let index = 0; index < 9; index++) {
      const client = `CF-Connecting-IP: 192.0.2.${index + 1}\r\n`
      const holder = await raw(postHead(large.length, client) + large.slice(0, -4096))
      holders.push(holder)
      void sendSteadily(holder, large.slice(-4096), 1, 300)
    }
    // On Node (64 MiB) all nine would be read until their whole-body bound (12 s) ended them.
    await expect
      .poll(() => holders.map((holder) => holder.text().split(' ')[1] ?? 'reading'), { timeout: 60_000 })
      .toContain('429')
    const answers = holders.map((holder) => holder.text().split(' ')[1] ?? 'reading')
    expect(answers, 'eight held, one refused').toEqual(expect.arrayContaining(['429']))
    expect(answers.filter((status) => status === 'reading')).toHaveLength(8)
    // With eight held, a body of the cap does not fit.
    expect((await post(large)).code).toBe('overloaded')
    // Reset mid-body: workerd may end such a request with its read pending and never run the code
    // that gives the bytes back; the shares run out a second past their stall bound.
    for (const holder of holders) holder.socket.resetAndDestroy()
    expect((await postUntil(large, 'model_not_found', 30_000)).at(-1)).toBe('model_not_found')
  }, 120_000)

  // Cloudflare names each client in cf-connecting-ip; under `wrangler dev` the test sends it, as
  // Cloudflare would. Nine uploads of the cap from one client held all 8 MiB (the case above,
  // where no client is named), so another client's body of the cap got 429 for as long as they
  // lasted; one client now holds at most a quarter (2 MiB, two bodies of the cap).
  it("one client's slow uploads hold at most its share (2 MiB): past it they get 429 naming MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT, and another client's body of the cap is read", async () => {
    const large = chatOfSize(1024 * 1024 - 16)
    // The bodies the case above reset keep their shares until their stall bound (2 s) and the
    // share's grace (1 s) have passed since their last byte; wait that out first, or this client's
    // uploads also meet the whole budget's 429 and more than seven are refused.
    await new Promise((resolve) => setTimeout(resolve, 4_000))
    const attacker = 'CF-Connecting-IP: 203.0.113.7\r\n'
    const holders: Raw[] = []
    for (let index = 0; index < 9; index++) {
      const holder = await raw(postHead(large.length, attacker) + large.slice(0, -4096))
      holders.push(holder)
      void sendSteadily(holder, large.slice(-4096), 1, 300)
    }
    const statuses = () => holders.map((holder) => holder.text().split(' ')[1] ?? 'reading')
    await expect
      .poll(() => statuses().filter((status) => status === '429').length, { timeout: 60_000 })
      .toBe(7)
    expect(statuses().filter((status) => status === 'reading')).toHaveLength(2)
    const refused = holders.find((holder) => holder.text().startsWith('HTTP/1.1 429'))
    expect(refused?.text()).toMatch(/MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT/)
    // Another client's body of the cap is read (its answer: the model it names is not served).
    expect(await post(large, { 'cf-connecting-ip': '198.51.100.4' })).toMatchObject({
      status: 404,
      code: 'model_not_found',
    })
    // The attacker's next body is refused by its share, with Retry-After.
    expect(await post(large, { 'cf-connecting-ip': '203.0.113.7' })).toMatchObject({
      status: 429,
      code: 'overloaded',
      retryAfter: '1',
      message: expect.stringMatching(/MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT/),
    })
    for (const holder of holders) holder.socket.resetAndDestroy()
  }, 120_000)
})
