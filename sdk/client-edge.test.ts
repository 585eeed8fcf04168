// The client against a real edge: worker/createApp served over HTTP on 127.0.0.1, its model
// core's deterministic test session with the real Qwen3 tokenizer, the device the same session
// behind the DeviceHost interface. Same logits on both sides, so any lost, repeated or
// re-drawn token during a handoff shows up as a different answer.

import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRuntimeDeviceHost } from '../client-runtime/device-host/index.ts'
import { BackendError, OndeviceError, StoreError } from '../core/errors.ts'
import type { StreamPart } from '../core/stream-parts.ts'
import { startOpenAICompatibleEdge } from '../test/sdk/openai-compatible-edge.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import { startTestEdge, type TestEdge, unusedUrl } from '../test/sdk/test-edge.ts'
import { createClient } from './client.ts'
import { EdgeClient } from './edge-client.ts'

const messages = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Tell me a story about a dragon.' },
]
const sampling = { temperature: 0.9, topP: 0.95, topK: 40, seed: 1234, maxTokens: 24 }
// Where speed is not the subject, a loaded CI box must not make the probe or the stall watch
// send the request elsewhere.
const relaxed = { minDeviceTokensPerSecond: 1 }

let edge: TestEdge

beforeAll(async () => {
  edge = await startTestEdge()
})
afterAll(async () => {
  await edge.close()
})

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const out: StreamPart[] = []
  for await (const part of parts) out.push(part)
  return out
}

/** The answer the device gives uninterrupted: the reference every split must reproduce. */
async function uninterrupted(): Promise<{ text: string; tokenIds: readonly number[] }> {
  const client = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
  const result = await client.chat({ messages, ...sampling })
  await client.dispose()
  return result
}

describe('edge path', () => {
  it('edge-only answers from the edge, identical to the device for the same seed (same model, same sampler)', async () => {
    const reference = await uninterrupted()
    const client = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    const result = await client.chat({ messages, ...sampling })
    expect(result.route).toBe('edge')
    expect(result.routeReason).toBe('policy edge-only')
    expect(result.text).toBe(reference.text)
    expect(result.tokenIds).toEqual(reference.tokenIds)
    expect(result.usage).toMatchObject({ route: 'edge', completionTokens: 24, backend: 'test' })
    expect(result.usage.promptTokens).toBeGreaterThan(10)
    await client.dispose()
  })

  it('prefer-device with a capable, cached device never calls the edge', async () => {
    const before = edge.chatBodies.length
    const client = createClient(
      { edge: { url: edge.url }, thresholds: relaxed },
      { deviceHost: createTestDeviceHost() },
    )
    const result = await client.chat({ messages, ...sampling })
    expect(result.route).toBe('device')
    expect(result.routeReason).toContain('the package is cached')
    expect(edge.chatBodies.length).toBe(before)
    await client.dispose()
  })

  it('not cached: the edge answers while the package downloads; the next request runs on the device', async () => {
    const host = createTestDeviceHost({ cached: false, downloadStepMs: 20 })
    const client = createClient({ edge: { url: edge.url }, thresholds: relaxed }, { deviceHost: host })
    const routes: string[] = []
    let ready = false
    client.on('route', (part) => routes.push(part.route))
    client.on('ready', () => {
      ready = true
    })
    const first = await client.chat({ messages, ...sampling })
    expect(first.route).toBe('edge')
    expect(first.routeReason).toContain('downloads in the background')
    const prepared = await client.prepare()
    expect(ready).toBe(true)
    expect(host.progress).toHaveLength(4)
    expect(prepared).toMatchObject({ route: 'device', cached: true, loaded: true, downloading: false })
    const second = await client.chat({ messages, ...sampling })
    expect(second.route).toBe('device')
    expect(second.text).toBe(first.text)
    expect(routes).toEqual(['edge', 'device'])
    expect(host.loads).toBe(1)
    await client.dispose()
  })

  it('saveData on and not cached: edge, with no background download', async () => {
    const host = createTestDeviceHost({ cached: false, capabilities: { saveData: true } })
    const client = createClient({ edge: { url: edge.url }, thresholds: relaxed }, { deviceHost: host })
    const result = await client.chat({ messages, maxTokens: 3 })
    expect(result.route).toBe('edge')
    expect(result.routeReason).toContain('saveData is on')
    expect(host.loads).toBe(0)
    await client.dispose()
  })

  it('a probe slower than the threshold sends the request to the edge', async () => {
    const host = createTestDeviceHost({ session: { delayMs: 15 } })
    const client = createClient(
      { edge: { url: edge.url }, thresholds: { minDeviceTokensPerSecond: 200 } },
      { deviceHost: host },
    )
    const parts = await collect(client.stream({ messages, maxTokens: 3 }))
    expect(parts[0]).toMatchObject({ type: 'route', route: 'edge' })
    expect(parts[0]?.type === 'route' && parts[0].reason).toMatch(/probe ran at [\d.]+ tok\/s < 200 tok\/s/)
    expect((await client.status()).probeTokensPerSecond).toBeLessThan(200)
    await client.dispose()
  })
})

describe('handoff', () => {
  it.each([1, 2, 5, 11, 23])(
    'the device fails after %i tokens: one stream, a handoff part, the same answer token for token',
    async (k) => {
      const reference = await uninterrupted()
      const client = createClient(
        { edge: { url: edge.url }, thresholds: relaxed },
        { deviceHost: createTestDeviceHost({ failAtToken: k }) },
      )
      const handoffs: number[] = []
      client.on('handoff', (part) => handoffs.push(part.completedTokens))
      const bodiesBefore = edge.chatBodies.length
      const parts = await collect(client.stream({ messages, ...sampling }))
      const types = parts.map((part) => part.type)
      expect(types[0]).toBe('route')
      expect(types.filter((type) => type === 'handoff')).toHaveLength(1)
      expect(types.at(-1)).toBe('finish')
      const handoff = parts.find((part) => part.type === 'handoff')
      expect(handoff).toMatchObject({ completedTokens: k })
      expect(handoff?.type === 'handoff' && handoff.reason).toContain('failed on purpose')
      expect(handoffs).toEqual([k])
      // What the caller saw, delta by delta, is the uninterrupted answer: nothing lost or repeated.
      const shown = parts.flatMap((part) => (part.type === 'text-delta' ? [part.text] : [])).join('')
      expect(shown).toBe(reference.text)
      const finish = parts.at(-1)
      if (finish?.type !== 'finish') throw new Error('no finish')
      expect(finish.text).toBe(reference.text)
      expect(finish.tokenIds).toEqual(reference.tokenIds)
      expect(finish.usage).toMatchObject({ route: 'device+edge', completionTokens: 24 })
      expect(finish.usage.routeReason).toContain(`handed off to the edge after ${k} tokens`)
      // The edge got the device's tokens and the sampler step to resume at.
      const body = edge.chatBodies[bodiesBefore]
      expect(body?.['ondevice_continuation']).toEqual({ token_ids: reference.tokenIds.slice(0, k), step: k })
      // The device's weight format, so the edge answers in it (the test backend's name is not one
      // the wire knows: left out rather than refused).
      expect(body?.['ondevice_format']).toEqual({ dtype: 'fp32', fallback: true })
      expect(body?.['seed']).toBe(1234)
      expect(body?.['max_tokens']).toBe(24 - k)
      await client.dispose()
    },
  )

  it('a stop string after the handoff point: the joined answer stops exactly where the uninterrupted one does', async () => {
    const reference = await uninterrupted()
    const stop = reference.text.slice(-6, -3)
    const device = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const stopped = await device.chat({ messages, ...sampling, stop: [stop] })
    expect(stopped.finishReason).toBe('stop')
    expect(stopped.text.includes(stop)).toBe(false)
    const client = createClient(
      { edge: { url: edge.url }, thresholds: relaxed },
      { deviceHost: createTestDeviceHost({ failAtToken: 3 }) },
    )
    const result = await client.chat({ messages, ...sampling, stop: [stop] })
    expect(result.route).toBe('device+edge')
    expect(result.finishReason).toBe('stop')
    expect(result.text).toBe(stopped.text)
    expect(result.tokenIds).toEqual(stopped.tokenIds)
  })

  it('a prompt too long for the context: no pointless fallback, the error says so', async () => {
    const client = createClient(
      { edge: { url: edge.url }, thresholds: relaxed },
      { deviceHost: createTestDeviceHost({ session: { contextLength: 8 } }) },
    )
    const before = edge.chatBodies.length
    await expect(client.chat({ messages, maxTokens: 4 })).rejects.toMatchObject({
      code: 'context_length_exceeded',
    })
    expect(edge.chatBodies.length).toBe(before)
  })

  it('the device fails before the first token: prefer-device answers from the edge, no handoff part', async () => {
    const reference = await uninterrupted()
    const client = createClient(
      { edge: { url: edge.url }, thresholds: relaxed },
      { deviceHost: createTestDeviceHost({ failAtToken: 0 }) },
    )
    const parts = await collect(client.stream({ messages, ...sampling }))
    const routes = parts.filter((part) => part.type === 'route')
    expect(routes.map((part) => part.route)).toEqual(['device', 'edge'])
    expect(routes[1]?.reason).toContain('the device failed before the first token')
    expect(parts.some((part) => part.type === 'handoff')).toBe(false)
    const finish = parts.at(-1)
    expect(finish?.type === 'finish' && finish.text).toBe(reference.text)
    expect(finish?.type === 'finish' && finish.usage.route).toBe('edge')
    await client.dispose()
  })

  it('a device that turns slow mid-answer hands off, and the answer is still the same', async () => {
    const reference = await uninterrupted()
    const host = createTestDeviceHost({ slowAfterCalls: 6, slowDelayMs: 400 })
    const client = createClient(
      { edge: { url: edge.url }, thresholds: { minDeviceTokensPerSecond: 5, slowDecodeWindowTokens: 3 } },
      { deviceHost: host },
    )
    const parts = await collect(client.stream({ messages, ...sampling }))
    const handoff = parts.find((part) => part.type === 'handoff')
    expect(handoff?.type === 'handoff' && handoff.reason).toMatch(
      /decode ran at [\d.]+ tok\/s < 5 tok\/s over the last 3 tokens/,
    )
    const finish = parts.at(-1)
    if (finish?.type !== 'finish') throw new Error('no finish')
    expect(finish.tokenIds).toEqual(reference.tokenIds)
    expect(parts.flatMap((part) => (part.type === 'text-delta' ? [part.text] : [])).join('')).toBe(
      reference.text,
    )
    expect(finish.usage.route).toBe('device+edge')
    await client.dispose()
  })

  it('device-only never hands off: the device error comes back as is', async () => {
    const client = createClient(
      { policy: 'device-only', edge: { url: edge.url } },
      { deviceHost: createTestDeviceHost({ failAtToken: 3 }) },
    )
    const before = edge.chatBodies.length
    await expect(client.chat({ messages, ...sampling })).rejects.toMatchObject({ code: 'backend_failed' })
    expect(edge.chatBodies.length).toBe(before)
    await client.dispose()
  })
})

describe('edge down', () => {
  it('device fails mid-answer and the edge is down: the error lists both attempts', async () => {
    const client = createClient(
      { edge: { url: await unusedUrl() }, thresholds: relaxed },
      { deviceHost: createTestDeviceHost({ failAtToken: 4 }) },
    )
    let caught: unknown
    try {
      await client.chat({ messages, ...sampling })
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(OndeviceError)
    const error = caught as OndeviceError
    expect(error.code).toBe('edge_unavailable')
    expect(error.isRetryable).toBe(true)
    expect(error.attempts.map((attempt) => attempt.code)).toEqual(['backend_failed', 'edge_unavailable'])
    expect(error.message).toContain('Every route failed')
    expect(error.message).toContain('Could not reach the edge')
    await client.dispose()
  })

  it('edge-only with the edge down: a retryable edge_unavailable error naming the URL', async () => {
    const url = await unusedUrl()
    const client = createClient({ policy: 'edge-only', edge: { url } })
    await expect(client.chat({ messages })).rejects.toMatchObject({
      code: 'edge_unavailable',
      isRetryable: true,
    })
    await expect(client.chat({ messages })).rejects.toThrow(url)
    await client.dispose()
  })

  it('prefer-edge with the edge down: falls back to the device, then goes straight to the device', async () => {
    const client = createClient(
      { policy: 'prefer-edge', edge: { url: await unusedUrl() }, thresholds: relaxed },
      { deviceHost: createTestDeviceHost() },
    )
    const reference = await uninterrupted()
    const parts = await collect(client.stream({ messages, ...sampling }))
    const routes = parts.filter((part) => part.type === 'route')
    expect(routes.map((part) => part.route)).toEqual(['edge', 'device'])
    expect(routes[1]?.reason).toContain('the edge failed')
    const finish = parts.at(-1)
    expect(finish?.type === 'finish' && finish.text).toBe(reference.text)
    // The unreachable edge is remembered: the next request goes to the device first.
    const status = await client.status()
    expect(status).toMatchObject({ route: 'device', edge: { configured: true, reachable: false } })
    expect(status.reason).toContain('the edge is unreachable')
    await client.dispose()
  })

  it('prefer-edge with the edge up answers from the edge', async () => {
    const client = createClient(
      { policy: 'prefer-edge', edge: { url: edge.url }, thresholds: relaxed },
      { deviceHost: createTestDeviceHost() },
    )
    const result = await client.chat({ messages, maxTokens: 4 })
    expect(result.route).toBe('edge')
    await client.dispose()
  })
})

describe('abort and edge errors', () => {
  it('abort mid-stream on the edge: finish with reason abort, the edge stops', async () => {
    const slowEdge = await startTestEdge({ session: { delayMs: 20 } })
    try {
      const client = createClient({ policy: 'edge-only', edge: { url: slowEdge.url } })
      const controller = new AbortController()
      const parts: StreamPart[] = []
      const started = performance.now()
      for await (const part of client.stream({ messages, maxTokens: 500, signal: controller.signal })) {
        parts.push(part)
        if (parts.filter((p) => p.type === 'text-delta').length === 3) controller.abort()
      }
      expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'abort' })
      expect(performance.now() - started).toBeLessThan(2000)
      await expect(
        client.chat({ messages, maxTokens: 500, signal: AbortSignal.timeout(100) }),
      ).rejects.toMatchObject({ code: 'aborted' })
      await client.dispose()
    } finally {
      await slowEdge.close()
    }
  })

  it('an aborted stream counts the same on the edge as on the device: the tokens shown, the prompt, the next step', async () => {
    const slowEdge = await startTestEdge({ session: { delayMs: 20 } })
    const ask = { messages, temperature: 0, maxTokens: 500 }
    try {
      const reference = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
      const whole = await reference.chat({ ...ask, maxTokens: 40 })
      await reference.dispose()
      const finishes = new Map<string, Extract<StreamPart, { type: 'finish' }>>()
      const routes = {
        device: createClient(
          { policy: 'device-only' },
          { deviceHost: createTestDeviceHost({ session: { delayMs: 20 } }) },
        ),
        edge: createClient({ policy: 'edge-only', edge: { url: slowEdge.url } }),
        // The device fails after 2 tokens, the edge continues, the caller aborts there.
        'device+edge': createClient(
          { policy: 'prefer-device', edge: { url: slowEdge.url }, thresholds: relaxed },
          { deviceHost: createTestDeviceHost({ failAtToken: 2 }) },
        ),
      }
      for (const [route, client] of Object.entries(routes)) {
        const controller = new AbortController()
        const parts: StreamPart[] = []
        for await (const part of client.stream({ ...ask, signal: controller.signal })) {
          parts.push(part)
          if (parts.filter((p) => p.type === 'text-delta').length === 5) controller.abort()
        }
        await client.dispose()
        const finish = parts.at(-1)
        if (finish?.type !== 'finish') throw new Error(`${route}: no finish`)
        finishes.set(route, finish)
        const deltas = parts.flatMap((part) => (part.type === 'text-delta' ? [part] : []))
        const shownIds = deltas.flatMap((part) => part.tokenIds)
        expect(finish.finishReason, route).toBe('abort')
        expect(finish.usage.route, route).toBe(route)
        expect(finish.text, route).toBe(deltas.map((part) => part.text).join(''))
        // The ids shown (a token that showed no text rides with the next delta, or only the finish
        // has it), a prefix of the uninterrupted answer.
        expect(finish.tokenIds.length, route).toBeGreaterThanOrEqual(5)
        expect(finish.tokenIds.slice(0, shownIds.length), route).toEqual(shownIds)
        expect(finish.tokenIds, route).toEqual(whole.tokenIds.slice(0, finish.tokenIds.length))
        expect(finish.nextStep, route).toBe(finish.tokenIds.length)
        expect(finish.usage.completionTokens, route).toBe(finish.tokenIds.length)
        expect(finish.usage.promptTokens, route).toBe(whole.usage.promptTokens)
      }
      expect([...finishes.keys()]).toEqual(['device', 'edge', 'device+edge'])
    } finally {
      await slowEdge.close()
    }
  }, 30_000)

  it('an abort while the edge has sent more than was read: no delta after it, on the edge and after a handoff', async () => {
    // The edge's whole answer arrives in one write, so the client holds the deltas it has not
    // yielded yet when the caller aborts at the first one: they were yielded all the same (up to
    // a network chunk's worth of text after the abort, seen against the real edge app).
    const words = ['Hello', ' there', ' and', ' then', ' more']
    const edge = await startOpenAICompatibleEdge(
      'test-model',
      (chunk) =>
        `${words.map((word, index) => chunk({ content: word, token_ids: [100 + index] }, null)).join('')}${chunk({}, 'stop')}`,
    )
    const url = edge.url
    const routes = {
      edge: createClient({ policy: 'edge-only', edge: { url } }),
      'device+edge': createClient(
        { policy: 'prefer-device', edge: { url }, thresholds: relaxed },
        { deviceHost: createTestDeviceHost({ failAtToken: 2 }) },
      ),
    }
    try {
      for (const [route, client] of Object.entries(routes)) {
        const controller = new AbortController()
        const parts: StreamPart[] = []
        let shownBefore = 0
        for await (const part of client.stream({ messages, maxTokens: 20, signal: controller.signal })) {
          parts.push(part)
          // The edge's first delta (after a handoff, the device's two come first).
          if (part.type === 'text-delta' && part.text === words[0]) {
            shownBefore = parts.length
            controller.abort()
          }
        }
        await client.dispose()
        expect(shownBefore, route).toBeGreaterThan(0)
        expect(
          parts.slice(shownBefore).map((part) => part.type),
          route,
        ).toEqual(['finish'])
        const finish = parts.at(-1)
        if (finish?.type !== 'finish') throw new Error(`${route}: no finish`)
        expect(finish.finishReason, route).toBe('abort')
        expect(finish.text.endsWith(words[0] as string), route).toBe(true)
        expect(finish.tokenIds.at(-1), route).toBe(100)
      }
    } finally {
      await edge.close()
    }
  })

  it('a stream stopped before its prompt was counted (the model still loading, on the device or on the edge) says so: promptTokens 0, promptTokensCounted false', async () => {
    // The edge loads its model on the first request; the device downloads first (not cached).
    const loadingEdge = await startTestEdge({ loadDelayMs: 2000 })
    try {
      const routes = {
        device: createClient(
          { policy: 'device-only', thresholds: relaxed },
          { deviceHost: createTestDeviceHost({ cached: false, downloadStepMs: 500 }) },
        ),
        edge: createClient({ policy: 'edge-only', edge: { url: loadingEdge.url } }),
      }
      for (const [route, client] of Object.entries(routes)) {
        const controller = new AbortController()
        const stopping = setTimeout(() => controller.abort(), 300)
        const parts = await collect(client.stream({ messages, maxTokens: 8, signal: controller.signal }))
        clearTimeout(stopping)
        await client.dispose()
        const finish = parts.at(-1)
        if (finish?.type !== 'finish') throw new Error(`${route}: no finish`)
        expect(finish, route).toMatchObject({ finishReason: 'abort', tokenIds: [], text: '' })
        expect(finish.usage, route).toMatchObject({
          route,
          promptTokens: 0,
          promptTokensCounted: false,
          completionTokens: 0,
        })
      }
      // One stopped once the prompt was counted carries no such flag.
      const device = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
      const controller = new AbortController()
      const parts: StreamPart[] = []
      for await (const part of device.stream({ messages, maxTokens: 40, signal: controller.signal })) {
        parts.push(part)
        if (part.type === 'text-delta') controller.abort()
      }
      await device.dispose()
      const finish = parts.at(-1)
      if (finish?.type !== 'finish') throw new Error('no finish')
      expect(finish.usage.promptTokens).toBeGreaterThan(10)
      expect(finish.usage.promptTokensCounted).toBeUndefined()
    } finally {
      await loadingEdge.close()
    }
  }, 30_000)

  it('an OpenAI-compatible edge that sends no usage: promptTokensCounted false, not a prompt of 0 tokens', async () => {
    // Servers that ignore stream_options.include_usage stream the answer without any counts: the
    // finish said promptTokens 0 as if that were the prompt's size, where today's
    // promptTokensCounted: false says the prompt was never counted.
    const edge = await startOpenAICompatibleEdge(
      'other-model',
      (chunk) =>
        `${chunk({ role: 'assistant', content: 'Hello' }, null)}${chunk({ content: ' there' }, null)}${chunk({}, 'stop')}`,
    )
    const client = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    try {
      const parts = await collect(client.stream({ messages, maxTokens: 8 }))
      const finish = parts.at(-1)
      if (finish?.type !== 'finish') throw new Error(`no finish: ${JSON.stringify(parts.at(-1))}`)
      expect(finish).toMatchObject({ finishReason: 'stop', text: 'Hello there' })
      expect(finish.usage).toMatchObject({ route: 'edge', promptTokens: 0, promptTokensCounted: false })
    } finally {
      await client.dispose()
      await edge.close()
    }
  })

  it('a wrong API key: unauthorized, not retryable; the right key works', async () => {
    const keyed = await startTestEdge({ apiKeys: ['secret-key-0123456789'] })
    try {
      const wrong = createClient({
        policy: 'edge-only',
        edge: { url: keyed.url, apiKey: 'nope', model: 'test-model' },
      })
      await expect(wrong.chat({ messages })).rejects.toMatchObject({
        code: 'unauthorized',
        isRetryable: false,
      })
      const right = createClient({
        policy: 'edge-only',
        edge: { url: keyed.url, apiKey: 'secret-key-0123456789' },
      })
      expect((await right.chat({ messages, maxTokens: 2 })).route).toBe('edge')
    } finally {
      await keyed.close()
    }
  })

  it('a full edge: 429 with Retry-After becomes a retryable error with retryAfterSeconds', async () => {
    const busy = await startTestEdge({ session: { delayMs: 30 }, limits: { maxConcurrent: 1, maxQueue: 0 } })
    try {
      const client = new EdgeClient({ url: busy.url })
      const controller = new AbortController()
      const first = client
        .stream({ messages, maxTokens: 100, signal: controller.signal })
        [Symbol.asyncIterator]()
      await first.next()
      let caught: unknown
      try {
        for await (const _ of client.stream({ messages, maxTokens: 2 })) {
          // drain
        }
      } catch (error) {
        caught = error
      }
      controller.abort()
      await first.return?.(undefined)
      expect(caught).toMatchObject({ isRetryable: true })
      expect(['rate_limited', 'overloaded']).toContain((caught as OndeviceError).code)
      expect((caught as OndeviceError).retryAfterSeconds).toBeGreaterThanOrEqual(1)
    } finally {
      await busy.close()
    }
  })

  it("a request queued behind a busy edge gets the edge's 429 within the SDK's connect timeout, not 'could not reach the edge' (both at their defaults)", async () => {
    // The SDK gives up on an edge that has not sent its response headers within connectTimeoutMs
    // (15 s); a queued request gets none until it holds a slot. With QUEUE_TIMEOUT_MS at 30 s and
    // a queue that did not read Prefer: wait, the SDK gave up first: a busy edge read as a dead one
    // ("Could not reach the edge ... no answer within 15000 ms", edge_unavailable), the edge's own
    // answer (429 overloaded, Retry-After) never seen. Now the queue waits at most what is left of
    // the SDK's Prefer: wait (12 s). Defaults only here: the edge app's limits (QUEUE_TIMEOUT_MS
    // 30 s) and the client's edge options.
    const busy = await startTestEdge({ session: { delayMs: 100 } })
    const holder = new AbortController()
    try {
      // Another client's long answer holds the edge's one slot (MAX_CONCURRENT 1), read as it comes.
      const response = await fetch(`${busy.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: busy.modelId, messages, max_tokens: 1000, stream: true }),
        signal: holder.signal,
      })
      const reader = response.body?.getReader()
      await reader?.read()
      const reading = (async () => {
        while (!(await reader?.read())?.done) {
          // keep reading
        }
      })().catch(() => undefined)
      const client = createClient({ policy: 'edge-only', edge: { url: busy.url } })
      const startedAt = Date.now()
      const error = await client.chat({ messages, maxTokens: 2 }).catch((caught: unknown) => caught)
      const waitedMs = Date.now() - startedAt
      await client.dispose()
      holder.abort()
      await reading
      expect(error).toBeInstanceOf(OndeviceError)
      expect(error).toMatchObject({ code: 'overloaded', isRetryable: true })
      // Half of the queue's wait for this request (what was left of its 12 s).
      expect((error as OndeviceError).retryAfterSeconds).toBeGreaterThanOrEqual(5)
      expect((error as OndeviceError).retryAfterSeconds).toBeLessThanOrEqual(6)
      expect((error as Error).message).toMatch(
        /HTTP 429: Waited \d+ ms for a generation slot without getting one \(what was left of this request's Prefer: wait; the queue allows 30000 ms, QUEUE_TIMEOUT_MS\)/,
      )
      expect(waitedMs).toBeLessThan(15_000)
    } finally {
      holder.abort()
      await busy.close()
    }
  }, 40_000)

  it("a queued request's wait is what is left of its Prefer: wait after the model's load, not the whole of it again", async () => {
    // The model loads 1.5 s on the first chat; both requests wait for it, then one holds the slot
    // and the other (Prefer: wait=2, sent just after) queues: it waits there what is left of its
    // 2 s (at most 0.6 s; 0.5 s at least), where counting the queue's wait afresh would wait 2 s
    // more, answering at 3.5 s, past its client's wait. (The message's count, not the wall clock:
    // the edge shares this process, whose event loop the tokenizer's build blocks.)
    const busy = await startTestEdge({ loadDelayMs: 1500, session: { delayMs: 100 } })
    const holder = new AbortController()
    try {
      const chat = (headers: Record<string, string>, signal?: AbortSignal) =>
        fetch(`${busy.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ model: busy.modelId, messages, max_tokens: 200 }),
          ...(signal ? { signal } : {}),
        })
      const holding = chat({}, holder.signal).catch(() => undefined)
      // Sent once the edge has the holder's request (so the holder is first in line for the slot),
      // not after a fixed 100 ms that a loaded machine's first connection can outlast.
      await expect.poll(() => busy.requests.length, { timeout: 10_000, interval: 5 }).toBe(1)
      const response = await chat({ prefer: 'wait=2' })
      holder.abort()
      await holding
      expect(response.status).toBe(429)
      expect(response.headers.get('retry-after')).toBe('1')
      const body = (await response.json()) as { error: { code: string; message: string } }
      expect(body.error.code).toBe('overloaded')
      const queued =
        /^Waited (\d+) ms for a generation slot without getting one \(what was left of this request's Prefer: wait/.exec(
          body.error.message,
        )
      expect(queued, body.error.message).not.toBeNull()
      expect(Number(queued?.[1])).toBeLessThan(1000)
    } finally {
      holder.abort()
      await busy.close()
    }
  }, 20_000)

  it('a client that sends no Prefer: wait (an OpenAI client, curl) waits in the queue past 10 s and is answered once the slot frees (QUEUE_TIMEOUT_MS at its default)', async () => {
    // For a few hours QUEUE_TIMEOUT_MS defaulted to 10 s for everyone, so the SDK got its 429 in
    // time; clients that say nothing, which used to wait up to 30 s, got 429 after 10 s. The slot is
    // held about 12 s here by another client's slow answer (120 tokens, 100 ms each).
    const busy = await startTestEdge({ session: { delayMs: 100 } })
    try {
      const chat = (maxTokens: number) =>
        fetch(`${busy.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: busy.modelId, messages, max_tokens: maxTokens }),
        })
      const holding = chat(120).then(async (response) => ({
        status: response.status,
        finishedAt: Date.now(),
        body: (await response.json()) as { usage: { completion_tokens: number } },
      }))
      // The holder's request first, so it takes the slot and this one queues: sent once the edge
      // has it, not after a fixed 300 ms.
      await expect.poll(() => busy.requests.length, { timeout: 10_000, interval: 5 }).toBe(1)
      const startedAt = Date.now()
      const response = await chat(2)
      const waitedMs = Date.now() - startedAt
      const held = await holding
      expect(held.status).toBe(200)
      expect(held.body.usage.completion_tokens).toBe(120)
      expect(response.status).toBe(200)
      const body = (await response.json()) as { choices: { message: { content: string } }[] }
      expect(body.choices[0]?.message.content.length).toBeGreaterThan(0)
      // Answered after the holder's answer, past the old 10 s.
      expect(Date.now()).toBeGreaterThanOrEqual(held.finishedAt)
      expect(waitedMs).toBeGreaterThan(10_000)
    } finally {
      await busy.close()
    }
  }, 40_000)

  it('an edge request error keeps the field the edge named', async () => {
    const client = new EdgeClient({ url: edge.url })
    let caught: unknown
    try {
      for await (const _ of client.stream({ messages, continuation: { tokenIds: [999_999_999], step: 1 } })) {
        // drain
      }
    } catch (error) {
      caught = error
    }
    expect(caught).toMatchObject({ code: 'invalid_argument', param: 'ondevice_continuation.token_ids.0' })
  })
})

describe('device problems before the answer', () => {
  it('a package the device cannot open: prefer-device answers from the edge and says why; device-only fails clearly', async () => {
    const missing = join(tmpdir(), 'ondevice-no-such-package')
    const preferDevice = createClient(
      { model: missing, edge: { url: edge.url } },
      { deviceHost: createRuntimeDeviceHost() },
    )
    const result = await preferDevice.chat({ messages, maxTokens: 3 })
    expect(result.route).toBe('edge')
    expect(result.routeReason).toMatch(/the device can't use the package \(.*ondevice-no-such-package/)
    const deviceOnly = createClient(
      { model: missing, policy: 'device-only' },
      { deviceHost: createRuntimeDeviceHost() },
    )
    await expect(deviceOnly.chat({ messages })).rejects.toMatchObject({ code: 'model_not_found' })
  })

  it('a device runtime that cannot start: prefer-device answers from the edge; device-only says why', async () => {
    const broken = () => Promise.reject(new Error('WebAssembly is blocked by the Content-Security-Policy'))
    const client = createClient({ edge: { url: edge.url } }, { deviceHost: broken() })
    const result = await client.chat({ messages, maxTokens: 3 })
    expect(result.route).toBe('edge')
    expect(result.routeReason).toContain('the on-device runtime failed to start (WebAssembly is blocked')
    const deviceOnly = createClient({ policy: 'device-only' }, { deviceHost: broken() })
    await expect(deviceOnly.chat({ messages })).rejects.toThrow(/Content-Security-Policy/)
  })

  it('a load that fails: prefer-device answers from the edge, the attempt is kept', async () => {
    const host = createTestDeviceHost({ loadError: new Error('out of memory while creating the session') })
    const client = createClient({ edge: { url: edge.url }, thresholds: relaxed }, { deviceHost: host })
    const parts = await collect(client.stream({ messages, maxTokens: 3 }))
    expect(parts[0]).toMatchObject({ type: 'route', route: 'edge' })
    expect(parts[0]?.type === 'route' && parts[0].reason).toContain('could not load the model (out of memory')
    expect(parts.at(-1)).toMatchObject({ type: 'finish', usage: { route: 'edge' } })
    // status() does not promise the device that just failed to load, and the next request goes
    // to the edge without loading again until the retry is due.
    const status = await client.status()
    expect(status.route).toBe('edge')
    expect(status.reason).toMatch(/could not load the model \(out of memory.*retried in \d+ s/)
    expect((await client.chat({ messages, maxTokens: 3 })).route).toBe('edge')
    expect(host.loads).toBe(1)
  })

  it("a load the package's server refused with Retry-After is tried again when it asked, not a minute later", async () => {
    const refused = new StoreError(
      'download_failed',
      'Downloading onnx/model.onnx gave HTTP 429 (Retry-After: 600 s). Try again later.',
      { isRetryable: true, retryAfterSeconds: 600 },
    )
    const host = createTestDeviceHost({ loadError: refused })
    const client = createClient({ edge: { url: edge.url }, thresholds: relaxed }, { deviceHost: host })
    expect((await client.chat({ messages, maxTokens: 3 })).route).toBe('edge')
    const status = await client.status()
    expect(status.reason).toMatch(/retried in (59\d|600) s/)
    await client.dispose()
  })

  it('a background download that fails: a download-error event, and the edge keeps answering', async () => {
    const host = createTestDeviceHost({ cached: false, loadError: new Error('HTTP 404 for onnx/model.onnx') })
    const client = createClient({ edge: { url: edge.url }, thresholds: relaxed }, { deviceHost: host })
    const failed = new Promise<string>((resolve) =>
      client.on('download-error', ({ error }) => resolve(error.message)),
    )
    expect((await client.chat({ messages, maxTokens: 3 })).route).toBe('edge')
    expect(await failed).toContain('HTTP 404')
    expect(await client.status()).toMatchObject({
      route: 'edge',
      backgroundDownload: true,
      downloading: false,
    })
    expect((await client.chat({ messages, maxTokens: 3 })).route).toBe('edge')
    // It does not retry on every request: the next attempt waits a minute.
    expect(host.loads).toBe(1)
  })

  it('a background load that fails after the download (a runtime file): load-error, not download-error', async () => {
    const host = createTestDeviceHost({
      cached: false,
      loadError: new BackendError(
        'backend_unavailable',
        'Fetching /ort/ort-wasm-simd-threaded.wasm gave HTTP 404',
      ),
    })
    const client = createClient({ edge: { url: edge.url }, thresholds: relaxed }, { deviceHost: host })
    const events: string[] = []
    client.on('download-error', () => events.push('download-error'))
    const failed = new Promise<string>((resolve) =>
      client.on('load-error', ({ error }) => resolve(error.message)),
    )
    expect((await client.chat({ messages, maxTokens: 3 })).route).toBe('edge')
    expect(await failed).toContain('ort-wasm-simd-threaded.wasm')
    expect(events).toEqual([])
  })
})
