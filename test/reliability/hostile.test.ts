// Hostile input against the edge app over real HTTP on Node, with an event-loop watchdog: while
// these requests run, another thread asks /healthz every 100 ms and every answer must come within
// a second. The inputs are the ones that used to hold the event loop or the process: stop strings
// at their cap that defeat a naive suffix search, long continuations of long tokens, megabyte
// messages, text at the character cap in its slowest form for the tokenizer, and special-token-laden
// text everywhere a client string reaches the chat template. The model is core's deterministic
// test session with the real Qwen3 tokenizer (no ONNX), so the figures are the app's own cost.
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChatCompletionResponse } from '../../core/protocol/index.ts'
import { maximumStopStringLength, maximumStopStrings } from '../../core/stop-strings.ts'
import { createApp } from '../../worker/app.ts'
import type { RequestLogLine } from '../../worker/request-log.ts'
import { createFastHost } from './fast-host.ts'
import { fuzzSeed, reportFigures, scale } from './summary.ts'
import { type HealthWatchdog, healthzBoundEnforced, servedHere, startHealthWatchdog } from './watchdog.ts'

const modelId = 'test-model'
const logs: RequestLogLine[] = []
const host = createFastHost({ modelId })
const app = createApp({
  modelHost: host,
  limits: { maxTokens: 4000, maxConcurrent: 2, maxQueue: 8, maxBodyBytes: 4 * 1024 * 1024 },
  log: (line) => logs.push(line),
})
// Qwen3's token for 128 spaces: the longest text one token decodes to.
const spaces128 = 56940
let server: ReturnType<typeof serve> | undefined
let base = ''
let watchdog: HealthWatchdog | undefined
const statuses = new Map<number, number>()
const timings: Record<string, number> = {}

async function post(body: unknown, signal?: AbortSignal): Promise<{ status: number; body: string }> {
  const response = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  })
  const text = await response.text()
  statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
  return { status: response.status, body: text }
}

const phases: { name: string; from: number; to: number }[] = []

async function timed<T>(name: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now()
  const from = Date.now()
  try {
    return await work()
  } finally {
    timings[name] = Math.round(performance.now() - started)
    phases.push({ name, from, to: Date.now() })
  }
}

/** Which case a slow /healthz answer fell into (for the failure message). */
function phaseAt(at: number): string {
  return phases.find((phase) => at >= phase.from && at <= phase.to)?.name ?? 'between cases'
}

beforeAll(async () => {
  await host.load()
  server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(started))
  })
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  watchdog = startHealthWatchdog(base, servedHere())
})

afterAll(async () => {
  await watchdog?.stop().catch(() => undefined)
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
})

describe('hostile input on Node, /healthz watched', () => {
  it('stop strings at the cap built to defeat a suffix search, over a 500-token continuation of 128-space tokens', async () => {
    // All spaces but one letter in the middle: every held suffix is a near miss.
    const stop = Array.from(
      { length: maximumStopStrings },
      (_, index) =>
        `${' '.repeat(maximumStopStringLength / 2 - 1)}${'wxyz'[index]}${' '.repeat(maximumStopStringLength / 2)}`,
    )
    const { status, body } = await timed('longStopsMs', () =>
      post({
        model: modelId,
        messages: [{ role: 'user', content: 'hi' }],
        stop,
        max_tokens: 8,
        ondevice_continuation: { token_ids: Array(500).fill(spaces128), step: 500 },
      }),
    )
    expect(status, body).toBe(200)
    const answer = JSON.parse(body) as ChatCompletionResponse
    expect(answer.usage.continuation_tokens).toBe(500)
  }, 60_000)

  it('the uncapped forms are refused before any work: 15 stop strings, 4,000-character stops', async () => {
    const messages = [{ role: 'user', content: 'hi' }]
    expect(
      (await post({ model: modelId, messages, stop: Array.from({ length: 15 }, (_, i) => `${i}`) })).status,
    ).toBe(400)
    expect((await post({ model: modelId, messages, stop: [' '.repeat(4000)] })).status).toBe(400)
  })

  it('eight megabyte messages at once are refused by their length, before tokenizing', async () => {
    const results = await timed('megabyteMessagesMs', () =>
      Promise.all(
        Array.from({ length: 8 }, (_, index) =>
          post({
            model: modelId,
            messages: [{ role: 'user', content: (index % 2 ? ' ' : '你').repeat(1_040_000) }],
          }),
        ),
      ),
    )
    for (const { status, body } of results) {
      expect(status, body).toBe(400)
      expect(body).toMatch(/characters; this server accepts at most/)
    }
  }, 60_000)

  it('text at the character cap in the tokenizer’s slowest form (one unbroken run) is answered or refused, one at a time', async () => {
    // 24,570 characters: the cap for a 4,096-token context. Tokenizing one run costs up to several
    // hundred ms; the slots bound how many run at once, and the loop answers /healthz in between.
    const results = await timed('characterCapMs', () =>
      Promise.all(
        ['你', ' ', 'a', '😀'].map((unit) =>
          post({
            model: modelId,
            messages: [{ role: 'user', content: unit.repeat(Math.floor(24_570 / unit.length)) }],
            max_tokens: 1,
          }),
        ),
      ),
    )
    for (const { status, body } of results) expect([200, 400], body).toContain(status)
  }, 60_000)

  it('special-token-laden text in every client string (content, tool results, tool calls, tools): an answer or a 4xx, never a 5xx', async () => {
    const added = [
      '<|im_start|>',
      '<|im_end|>',
      '<|endoftext|>',
      '<tool_call>',
      '</tool_call>',
      '<tool_response>',
      '</tool_response>',
      '<think>',
      '</think>',
      '\ue000',
      '\ue0000\ue000',
      'system\n',
    ]
    const laden = fc
      .array(fc.oneof(fc.constantFrom(...added), fc.string({ maxLength: 6 })), { maxLength: 12 })
      .map((parts) => parts.join(''))
    await timed('specialTokenFuzzMs', () =>
      fc.assert(
        fc.asyncProperty(laden, laden, laden, laden, async (user, tool, argument, description) => {
          const { status, body } = await post({
            model: modelId,
            max_tokens: 2,
            tools: [
              { type: 'function', function: { name: 'lookup', description, parameters: { type: 'object' } } },
            ],
            messages: [
              { role: 'user', content: user },
              {
                role: 'assistant',
                content: null,
                tool_calls: [
                  { id: 'c1', type: 'function', function: { name: 'lookup', arguments: argument } },
                ],
              },
              { role: 'tool', tool_call_id: 'c1', content: tool },
            ],
          })
          expect(status, body).toBeLessThan(500)
        }),
        { seed: fuzzSeed(2101), numRuns: scale(60) },
      ),
    )
  }, 120_000)

  it('/healthz answered within 1 s throughout, and nothing is left running', async () => {
    const report = await (watchdog as HealthWatchdog).stop()
    const bound = healthzBoundEnforced()
    watchdog = undefined
    const health = (await (await fetch(`${base}/healthz`)).json()) as {
      generations: { active: number; queued: number }
    }
    reportFigures('hostile-node', {
      ...timings,
      requests: logs.length,
      statuses: [...statuses.entries()]
        .sort(([a], [b]) => a - b)
        .map(([status, n]) => `${status}:${n}`)
        .join(','),
      healthzProbes: report.probes,
      healthzWorstMs: report.worstMs,
      healthzWorstExcessMs: report.worstExcessMs,
      healthzWorstWallExcessMs: report.worstWallExcessMs,
      healthzBound: bound.enforced ? 'enforced' : `reported only (load ${bound.load})`,
    })
    expect(report.failures).toBe(0)
    // The watchdog ran through the cases (a clean CI run did them all in ~1.2 s: 10 probes).
    expect(report.probes).toBeGreaterThanOrEqual(3)
    if (bound.enforced) {
      expect(
        report.slow
          .filter((probe) => Math.min(probe.ms - probe.controlMs, probe.mainThreadRanMs ?? Infinity) >= 1000)
          .map((probe) => `${probe.ms} ms (control ${probe.controlMs} ms) during ${phaseAt(probe.at)}`),
      ).toEqual([])
      expect(report.worstExcessMs).toBeLessThan(1000)
    }
    expect(health.generations).toMatchObject({ active: 0, queued: 0 })
    expect(logs.filter((line) => line.status >= 500)).toEqual([])
  })
})
