// API fuzzing of the edge app on Node (fixed seeds): thousands of random and mutated chat
// completion requests through `app.request`, a batch over real HTTP (@hono/node-server), and raw
// sockets that lie about Content-Length or hang up mid-body. Every response must be a valid answer
// or a well-formed OpenAI error, never a 5xx or a hang, and the app must serve the next request.
// The model is core's deterministic test session with the real Qwen3 tokenizer (no ONNX needed).
import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import { serve } from '@hono/node-server'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../../worker/app.ts'
import type { RequestLogLine } from '../../worker/request-log.ts'
import {
  type CheckedResponse,
  chatBody,
  checkResponse,
  type FuzzRequest,
  plausibleChatBody,
  rawRequest,
  withDeadline,
} from './api-fuzz.ts'
import { createFastHost } from './fast-host.ts'
import { fuzzSeed, reportFigures, scale } from './summary.ts'
import { type HealthWatchdog, healthzBoundEnforced, servedHere, startHealthWatchdog } from './watchdog.ts'

const apiKey = 'fuzz-key-0123456789abcdef'
const modelId = 'test-model'
const deadlineMs = 10_000
const logs: RequestLogLine[] = []
const host = createFastHost({ modelId })
const app = createApp({
  modelHost: host,
  apiKeys: [apiKey],
  limits: { maxTokens: 6, maxConcurrent: 2, maxQueue: 4, maxBodyBytes: 256 * 1024, maxMessages: 256 },
  log: (line) => logs.push(line),
})
const statuses = new Map<number, number>()
const kinds = new Map<string, number>()
let cases = 0

function record(checked: CheckedResponse): void {
  cases++
  statuses.set(checked.status, (statuses.get(checked.status) ?? 0) + 1)
  kinds.set(checked.kind, (kinds.get(checked.kind) ?? 0) + 1)
}

async function send(request: FuzzRequest, base?: string): Promise<CheckedResponse> {
  const init: RequestInit = {
    method: request.method ?? 'POST',
    headers: { authorization: `Bearer ${apiKey}`, ...request.headers },
    ...(request.body === undefined ? {} : { body: request.body as BodyInit }),
  }
  const path = request.path ?? '/v1/chat/completions'
  const response = await withDeadline(
    Promise.resolve(base ? fetch(`${base}${path}`, init) : app.request(path, init)),
    deadlineMs,
    `for ${request.label}`,
  )
  return checkResponse(response, deadlineMs)
}

const good: FuzzRequest = {
  label: 'known good',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    model: modelId,
    messages: [{ role: 'user', content: 'still there?' }],
    max_tokens: 2,
  }),
}

async function expectStillServing(base?: string): Promise<void> {
  const init = {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: good.body as string,
  }
  const response = await withDeadline(
    Promise.resolve(
      base ? fetch(`${base}/v1/chat/completions`, init) : app.request('/v1/chat/completions', init),
    ),
    deadlineMs,
    'for the known-good request',
  )
  const text = await response.text()
  expect(response.status, text).toBe(200)
  expect((JSON.parse(text) as { object: string }).object).toBe('chat.completion')
}

let server: ReturnType<typeof serve> | undefined
let base = ''
let watchdog: HealthWatchdog | undefined
let healthz: Awaited<ReturnType<HealthWatchdog['stop']>> | undefined

beforeAll(async () => {
  await app.request('/healthz')
  // The test host builds its tokenizer on load (synchronous, a few hundred ms): not a request's cost.
  await host.load()
  server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(started))
  })
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  // The app runs in this process: a thread asks /healthz every 100 ms while the fuzzing runs.
  watchdog = startHealthWatchdog(base, servedHere())
})

afterAll(async () => {
  healthz ??= await watchdog?.stop()
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  reportFigures('api-fuzz-node', {
    cases,
    statuses: [...statuses.entries()]
      .sort(([a], [b]) => a - b)
      .map(([status, n]) => `${status}:${n}`)
      .join(','),
    answers: kinds.get('answer') ?? 0,
    streams: kinds.get('stream') ?? 0,
    errors: kinds.get('error') ?? 0,
    fiveHundreds: [...statuses.keys()].filter((status) => status >= 500).length,
    healthzProbes: healthz?.probes ?? 0,
    healthzWorstMs: healthz?.worstMs ?? 0,
    healthzWorstExcessMs: healthz?.worstExcessMs ?? 0,
    healthzWorstWallExcessMs: healthz?.worstWallExcessMs ?? 0,
    healthzBound: healthzBoundEnforced().enforced
      ? 'enforced'
      : `reported only (load ${healthzBoundEnforced().load})`,
  })
})

describe('API fuzzing on Node', () => {
  it('random and mutated chat bodies (app.request): a valid answer or an OpenAI error, then the next request is served', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { weight: 2, arbitrary: chatBody(modelId) },
          { weight: 1, arbitrary: plausibleChatBody(modelId) },
        ),
        async (body) => {
          record(
            await send({
              label: 'chat body',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(body),
            }),
          )
        },
      ),
      { seed: fuzzSeed(501), numRuns: scale(1000) },
    )
    await expectStillServing()
  }, 240_000)

  it('raw bodies: truncated, deeply nested, NaN/Infinity, duplicate keys, wrong content types, bad UTF-8, oversized', async () => {
    await fc.assert(
      fc.asyncProperty(rawRequest(modelId), async (request) => {
        record(await send(request))
        if (cases % 10 === 0) await expectStillServing()
      }),
      { seed: fuzzSeed(502), numRuns: scale(400) },
    )
  }, 240_000)

  it('over real HTTP (@hono/node-server): the same generators', async () => {
    const either = fc.oneof(
      chatBody(modelId).map(
        (body): FuzzRequest => ({
          label: 'chat body',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
      ),
      rawRequest(modelId),
    )
    await fc.assert(
      fc.asyncProperty(either, async (request) => {
        record(await send(request, base))
      }),
      { seed: fuzzSeed(503), numRuns: scale(250) },
    )
    await expectStillServing(base)
  }, 240_000)

  it('raw sockets: a body shorter than its Content-Length, or a client that hangs up mid-body, costs nothing', async () => {
    const { port } = server!.address() as AddressInfo
    const valid = JSON.stringify({
      model: modelId,
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 2,
    })
    const runs = scale(60)
    for (let run = 0; run < runs; run++) {
      const cut = Math.floor((valid.length * (run + 1)) / (runs + 1))
      await new Promise<void>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.write(
            `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${apiKey}\r\nContent-Type: application/json\r\nContent-Length: ${valid.length}\r\n\r\n${valid.slice(0, cut)}`,
          )
          // Half the clients hang up at once; the others stall and leave after a moment.
          setTimeout(() => socket.destroy(), run % 2 === 0 ? 0 : 30)
        })
        socket.on('close', () => resolve())
        socket.on('error', () => resolve())
      })
      cases++
    }
    await expectStillServing(base)
    // Nothing leaked: no generation holds a slot or waits for one.
    const health = (await (await app.request('/healthz')).json()) as {
      generations: { active: number; queued: number }
    }
    expect(health.generations).toMatchObject({ active: 0, queued: 0 })
  })

  it('logs one structured line per request, with no 5xx and no prompt text', () => {
    expect(logs.length).toBeGreaterThan(1000)
    expect(logs.filter((line) => line.status >= 500)).toEqual([])
    const text = JSON.stringify(logs)
    expect(text).not.toContain('still there?')
    expect(text).not.toContain(apiKey)
  })

  it('/healthz answered within 1 s while all of the above ran (event-loop watchdog)', async () => {
    healthz = await (watchdog as HealthWatchdog).stop()
    expect(healthz.failures).toBe(0)
    // The watchdog ran through the cases (not a count of time: a faster machine probes less).
    expect(healthz.probes).toBeGreaterThanOrEqual(3)
    if (healthzBoundEnforced().enforced)
      expect(healthz.worstExcessMs, JSON.stringify(healthz.slow)).toBeLessThan(1000)
  })
})
