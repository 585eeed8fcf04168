// Access control of the edge app: every kind of bad key gets the same 401 in the same time (a
// statistical comparison with a generous bound), a disallowed Origin gets no CORS grant, the
// per-key rate limit holds under concurrent bursts, and the structured logs carry neither prompt
// text nor keys.
import { afterAll, describe, expect, it, vi } from 'vitest'
import { createApp } from '../../worker/app.ts'
import { createMemoryRateLimiter } from '../../worker/rate-limit.ts'
import { defaultLog, type RequestLogLine } from '../../worker/request-log.ts'
import { createFastHost } from './fast-host.ts'
import { reportFigures, scale } from './summary.ts'

const keyA = `${'a'.repeat(8)}0123456789abcdef0123456789abcdef`
const keyB = `${'b'.repeat(8)}fedcba9876543210fedcba9876543210`
const revoked = `${'r'.repeat(8)}00000000000000000000000000000000`
const figures: Record<string, string | number> = {}
afterAll(() => reportFigures('access', figures))

function chat(key: string | undefined, content = 'hello', extra: Record<string, string> = {}): RequestInit {
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
      ...extra,
    },
    body: JSON.stringify({ model: 'test-model', messages: [{ role: 'user', content }], max_tokens: 2 }),
  }
}

describe('keys', () => {
  // The revoked key was valid in yesterday's configuration; today's has only A and B.
  const yesterday = createApp({ modelHost: createFastHost(), apiKeys: [keyA, revoked], log: () => undefined })
  const app = createApp({ modelHost: createFastHost(), apiKeys: [keyA, keyB], log: () => undefined })
  const bad: Record<string, Record<string, string>> = {
    'no key': {},
    'empty header': { authorization: '' },
    'not bearer': { authorization: `Basic ${keyA}` },
    'wrong key, same length': { authorization: `Bearer ${keyA.slice(0, -1)}x` },
    'wrong first byte': { authorization: `Bearer x${keyA.slice(1)}` },
    'shorter key': { authorization: `Bearer ${keyA.slice(0, 16)}` },
    'longer key': { authorization: `Bearer ${keyA}${keyA}` },
    'revoked key': { authorization: `Bearer ${revoked}` },
    'key with padding': { authorization: `Bearer  ${keyA} extra` },
    'huge key': { authorization: `Bearer ${'k'.repeat(6000)}` },
  }

  it('every bad key gets 401 with an OpenAI error that names no key', async () => {
    expect(
      (await yesterday.request('/v1/models', { headers: { authorization: `Bearer ${revoked}` } })).status,
    ).toBe(200)
    for (const [label, headers] of Object.entries(bad)) {
      const response = await app.request('/v1/chat/completions', {
        ...chat(undefined),
        headers: { 'content-type': 'application/json', ...headers },
      })
      const text = await response.text()
      expect(response.status, label).toBe(401)
      const body = JSON.parse(text) as { error: { code: string; type: string; message: string } }
      expect(body.error.code, label).toBe('unauthorized')
      expect(text).not.toContain(keyA)
      expect(text).not.toContain(revoked)
    }
    expect((await app.request('/v1/chat/completions', chat(keyB))).status).toBe(200)
    figures.badKeyKinds = Object.keys(bad).length
  })

  it('wrong keys are refused in the same time whatever their length or where they differ', async () => {
    // Interleaved rounds so drift (GC, JIT, CPU frequency) hits every kind alike.
    const kinds = {
      sameLengthLastByte: `Bearer ${keyA.slice(0, -1)}x`,
      sameLengthFirstByte: `Bearer x${keyA.slice(1)}`,
      shorter: `Bearer ${keyA.slice(0, 20)}`,
      longer: `Bearer ${keyA}zzzzzzzz`,
      revoked: `Bearer ${revoked}`,
    }
    const samples: Record<string, number[]> = Object.fromEntries(Object.keys(kinds).map((kind) => [kind, []]))
    const rounds = scale(1500)
    for (let warm = 0; warm < 200; warm++)
      await app.request('/v1/models', { headers: { authorization: kinds.shorter } })
    for (let round = 0; round < rounds; round++) {
      for (const [kind, header] of Object.entries(kinds)) {
        const started = performance.now()
        const response = await app.request('/v1/models', { headers: { authorization: header } })
        samples[kind]!.push(performance.now() - started)
        expect(response.status).toBe(401)
      }
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
    const medians = Object.fromEntries(
      Object.entries(samples).map(([kind, values]) => [kind, median(values)]),
    )
    const values = Object.values(medians)
    const spread = Math.max(...values) - Math.min(...values)
    const typical = median(values)
    figures.timingRounds = rounds
    figures.timingMediansMicroseconds = Object.entries(medians)
      .map(([kind, ms]) => `${kind}:${Math.round(ms * 1000)}`)
      .join(',')
    figures.timingSpreadMicroseconds = Math.round(spread * 1000)
    // Generous: the medians of all kinds agree within 25 % (or 40 µs, below timer noise).
    expect(spread).toBeLessThan(Math.max(0.04, typical * 0.25))
  })
})

describe('CORS', () => {
  const app = createApp({
    modelHost: createFastHost(),
    apiKeys: [keyA],
    allowedOrigins: ['https://app.example'],
    log: () => undefined,
  })

  it('grants the allowed origin, and gives a disallowed one no grant (simple request and preflight)', async () => {
    const allowed = await app.request('/v1/models', {
      headers: { origin: 'https://app.example', authorization: `Bearer ${keyA}` },
    })
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example')
    for (const origin of [
      'https://evil.example',
      'https://app.example.evil.example',
      'http://app.example',
      'null',
      'https://APP.example',
    ]) {
      const simple = await app.request('/v1/models', { headers: { origin, authorization: `Bearer ${keyA}` } })
      expect(simple.headers.get('access-control-allow-origin'), origin).toBeNull()
      const preflight = await app.request('/v1/chat/completions', {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type',
        },
      })
      expect(preflight.headers.get('access-control-allow-origin'), origin).toBeNull()
      expect(preflight.headers.get('access-control-allow-credentials')).toBeNull()
    }
    figures.disallowedOrigins = 5
  })
})

describe('rate limit', () => {
  it('holds per key under concurrent bursts, with Retry-After, and one key cannot spend another key’s budget', async () => {
    const limit = 10
    const app = createApp({
      modelHost: createFastHost(),
      apiKeys: [keyA, keyB],
      rateLimiter: createMemoryRateLimiter({ limit, periodSeconds: 600 }),
      log: () => undefined,
    })
    const burst = (key: string, count: number) =>
      Promise.all(
        Array.from({ length: count }, () =>
          app.request('/v1/models', { headers: { authorization: `Bearer ${key}` } }),
        ),
      )
    const first = await burst(keyA, 100)
    const ok = first.filter((response) => response.status === 200).length
    const limited = first.filter((response) => response.status === 429)
    expect(ok).toBe(limit)
    expect(limited).toHaveLength(100 - limit)
    for (const response of limited) {
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('rate_limited')
    }
    // Key B still has its whole budget; bad keys do not spend anyone's.
    await Promise.all(
      Array.from({ length: 50 }, () =>
        app.request('/v1/models', { headers: { authorization: `Bearer ${revoked}` } }),
      ),
    )
    const second = await burst(keyB, 30)
    expect(second.filter((response) => response.status === 200)).toHaveLength(limit)
    figures.rateLimitBurst = `100->${ok}ok/${limited.length}x429`
  })
})

describe('logs', () => {
  it('carry no prompt text, no answer text and no key, on success and on every error path', async () => {
    const lines: RequestLogLine[] = []
    const secret = 'my-secret-diagnosis-4242'
    const app = createApp({
      modelHost: createFastHost(),
      apiKeys: [keyA],
      limits: { maxTokens: 4, maxMessages: 3 },
      log: (line) => lines.push(line),
    })
    const console_ = [
      vi.spyOn(console, 'log'),
      vi.spyOn(console, 'error'),
      vi.spyOn(console, 'warn'),
      vi.spyOn(console, 'info'),
    ]
    const answers: string[] = []
    try {
      const requests: RequestInit[] = [
        chat(keyA, secret),
        {
          ...chat(keyA, secret),
          body: JSON.stringify({
            model: 'test-model',
            messages: [{ role: 'user', content: secret }],
            max_tokens: 3,
            stream: true,
          }),
        },
        chat(`${keyA}x`, secret),
        {
          ...chat(keyA),
          body: JSON.stringify({
            model: 'test-model',
            messages: [{ role: 'user', content: secret }],
            [secret]: 1,
          }),
        },
        // An unknown model: its name is logged only as a short plain name (see the next test).
        {
          ...chat(keyA),
          body: JSON.stringify({ model: 'no-such-model', messages: [{ role: 'user', content: secret }] }),
        },
        {
          ...chat(keyA),
          body: JSON.stringify({
            model: 'test-model',
            messages: Array.from({ length: 5 }, () => ({ role: 'user', content: secret })),
          }),
        },
        { ...chat(keyA), body: `{"model":"test-model","messages":[{"role":"user","content":"${secret}` },
        {
          ...chat(keyA),
          body: JSON.stringify({
            model: 'test-model',
            messages: [{ role: 'user', content: secret }],
            max_tokens: 99,
          }),
        },
      ]
      for (const init of requests) {
        const response = await app.request('/v1/chat/completions', init)
        const text = await response.text()
        if (response.status === 200) answers.push(text)
      }
    } finally {
      for (const spy of console_) spy.mockRestore()
    }
    const logged = JSON.stringify(lines) + JSON.stringify(console_.map((spy) => spy.mock.calls))
    expect(lines.length).toBe(8)
    expect(logged).not.toContain(secret)
    expect(logged).not.toContain(keyA)
    expect(logged).not.toContain(keyA.slice(8, 24))
    // The answer text stays out of the log too (the first answer's content).
    const content = (JSON.parse(answers[0]!) as { choices: { message: { content: string } }[] }).choices[0]!
      .message.content
    if (content.trim().length > 3) expect(logged).not.toContain(content)
    figures.logLinesChecked = lines.length
  })

  it("log the client's model string only as a served id or a short plain name, else '<invalid>'", async () => {
    const lines: RequestLogLine[] = []
    const app = createApp({
      modelHost: createFastHost(),
      apiKeys: [keyA],
      limits: { maxTokens: 2 },
      log: (line) => lines.push(line),
    })
    const forged = '{"level":"error","message":"request","keyId":"admin"}'
    const cases: readonly (readonly [sent: string, logged: string | undefined])[] = [
      ['test-model', 'test-model'], // served: as is
      ['gpt-4o-mini', 'gpt-4o-mini'], // unknown but plain: as is (operators see what clients ask for)
      ['org/model:q4_0.v2', 'org/model:q4_0.v2'],
      ['a'.repeat(64), 'a'.repeat(64)],
      ['a'.repeat(65), '<invalid>'], // too long
      ['x'.repeat(20_000), '<invalid>'], // unbounded
      [`no-such-model\n${forged}`, '<invalid>'], // a forged second log line
      ['model\r\nstatus: 200', '<invalid>'],
      ['\u001b[31mred\u001b[0m', '<invalid>'], // terminal escapes
      ['my secret diagnosis', '<invalid>'], // spaces: prompt-like text
      ['<script>alert(1)</script>', '<invalid>'],
      ['mödel', '<invalid>'],
      ['', undefined], // refused by validation (400) before any model is noted
    ]
    for (const [model] of cases) {
      const response = await app.request('/v1/chat/completions', {
        ...chat(keyA),
        body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1 }),
      })
      await response.text()
    }
    expect(lines).toHaveLength(cases.length)
    expect(lines.map((line) => line.model)).toEqual(cases.map(([, logged]) => logged))
    // The served model still answers; the unknown ones are 404 (or 400 for the empty string).
    expect(lines[0]!.status).toBe(200)
    for (const line of lines.slice(1)) expect([400, 404]).toContain(line.status)
    // The default log writer keeps each request on one line of bounded size.
    const written: string[] = []
    const spy = vi.spyOn(console, 'log').mockImplementation((text: string) => void written.push(text))
    try {
      for (const line of lines) defaultLog(line)
    } finally {
      spy.mockRestore()
    }
    for (const text of written) {
      expect(text).not.toMatch(/[\n\r]/)
      expect(text.length).toBeLessThan(1_000)
      expect(text).not.toContain('"keyId":"admin"')
    }
    figures.modelStringsLogged = cases.length
  })
})
