// A compressed request body, over real HTTP (serveApp): the server reads JSON as sent, so a body
// with Content-Encoding gzip was refused as "not valid UTF-8: send JSON encoded as UTF-8", which
// the client had done (found by an adversarial pass sending what HTTP clients may send). It is
// now refused naming the header and what to send instead; `identity` is no encoding at all.
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from './app.ts'
import { type RunningServer, serveApp } from './node.ts'

const body = JSON.stringify({
  model: 'test-model',
  messages: [{ role: 'user', content: 'hi' }],
  max_tokens: 2,
})

let server: RunningServer

beforeAll(async () => {
  server = await serveApp({ app: createApp({ modelHost: createTestHost(), log: () => undefined }), port: 0 })
})

afterAll(async () => {
  await server.close()
})

function post(encoding: string, bytes: Blob | string): Promise<Response> {
  return fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-encoding': encoding },
    body: bytes,
  })
}

describe('Content-Encoding on a request body', () => {
  it('gzip (or any coding) is a 400 naming content-encoding, not a body said to be bad UTF-8', async () => {
    for (const [encoding, bytes] of [
      ['gzip', new Blob([new Uint8Array(gzipSync(body))])],
      ['br', body],
    ] as const) {
      const response = await post(encoding, bytes)
      expect(response.status, encoding).toBe(400)
      const { error } = (await response.json()) as { error: { param: string; message: string } }
      expect(error.param, encoding).toBe('content-encoding')
      expect(error.message, encoding).toContain(`Content-Encoding is "${encoding}"`)
      expect(error.message, encoding).toMatch(/send the JSON body uncompressed/)
    }
  })

  it('identity is read as the body it is', async () => {
    const response = await post('identity', body)
    expect(response.status).toBe(200)
  })
})
