// The SDK against an edge that shuts down mid-answer: the real app (worker/createApp over core's
// deterministic test session and the real Qwen3 tokenizer) served by serveApp, whose shutdown
// grace ends while the edge streams a device→edge handoff's continuation. The edge's error event
// (edge_unavailable) must reach the caller as a retryable error after the tokens already shown,
// which are the uninterrupted answer's first tokens (nothing lost, repeated or taken back).
import { afterEach, describe, expect, it } from 'vitest'
import type { StreamPart } from '../core/stream-parts.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import { createTestHost } from '../test/worker/test-host.ts'
import { createApp } from '../worker/app.ts'
import { type RunningServer, serveApp } from '../worker/node.ts'
import { createClient } from './client.ts'

const messages = [{ role: 'user' as const, content: 'Tell me a story about a dragon.' }]
const sampling = { temperature: 0.9, topP: 0.95, topK: 40, seed: 1234, maxTokens: 300 }
// A loaded CI box must not make the stall watch send the request elsewhere.
const relaxed = { minDeviceTokensPerSecond: 1 }

let server: RunningServer | undefined
afterEach(async () => {
  await server?.close()
  server = undefined
})

describe('an edge that shuts down while it continues a handoff', () => {
  it('the caller gets a retryable edge_unavailable error after the tokens shown, which stay the answer’s start', async () => {
    const reference = await (async () => {
      const client = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
      const result = await client.chat({ messages, ...sampling })
      await client.dispose()
      return result
    })()
    // Each edge step takes 40 ms: the continuation runs ~12 s, far beyond the grace below.
    const app = createApp({ modelHost: createTestHost({ session: { delayMs: 40 } }), log: () => {} })
    server = await serveApp({ app, port: 0 })
    const client = createClient(
      { edge: { url: server.url, model: 'test-model' }, thresholds: relaxed },
      { deviceHost: createTestDeviceHost({ failAtToken: 4 }) },
    )
    const parts: StreamPart[] = []
    let edgeTokens = 0
    let handedOff = false
    let closing: Promise<void> | undefined
    for await (const part of client.stream({ messages, ...sampling })) {
      parts.push(part)
      if (part.type === 'handoff') handedOff = true
      if (handedOff && part.type === 'text-delta') edgeTokens += part.tokenIds.length
      // Two of the edge's own tokens shown: shut it down (SIGTERM in `ondevice serve`).
      if (edgeTokens >= 2 && closing === undefined) closing = server.close({ graceMs: 100 })
    }
    await closing
    expect(handedOff).toBe(true)
    const last = parts.at(-1)
    if (last?.type !== 'error') throw new Error(`the stream ended with ${JSON.stringify(last)}`)
    expect(last.error.code).toBe('edge_unavailable')
    expect(last.error.isRetryable).toBe(true)
    expect(last.error.message).toMatch(/shutting down/)
    // What was shown: the device's 4 tokens and the edge's, the uninterrupted answer's start.
    const shown = parts.flatMap((part) => (part.type === 'text-delta' ? part.tokenIds : []))
    expect(shown.length).toBeGreaterThanOrEqual(6)
    expect(shown.length).toBeLessThan(reference.tokenIds.length)
    expect(shown).toEqual(reference.tokenIds.slice(0, shown.length))
    const text = parts.flatMap((part) => (part.type === 'text-delta' ? [part.text] : [])).join('')
    expect(reference.text.startsWith(text)).toBe(true)
    await client.dispose()
  })
})
