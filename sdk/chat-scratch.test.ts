import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { createRuntimeDeviceHost } from '../client-runtime/device-host/index.ts'
import { createNodeStore } from '../client-runtime/store/node-store.ts'
import type { StreamPart } from '../core/stream-parts.ts'
import { startTestEdge, type TestEdge } from '../test/sdk/test-edge.ts'
import { createClient } from './client.ts'

let workDir: string
let edge: TestEdge
beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ondevice-chat-scratch-'))
  await writeFixture({ arch: 'qwen3', outDir: join(workDir, 'qwen3'), dtype: 'fp32' })
  edge = await startTestEdge()
})
afterAll(async () => {
  await edge?.close()
  if (workDir) await rm(workDir, { recursive: true, force: true })
})
const client = () =>
  createClient(
    { model: join(workDir, 'qwen3'), backend: 'wasm', edge: { url: edge.url }, thresholds: { minDeviceTokensPerSecond: 20 } },
    { deviceHost: createRuntimeDeviceHost({ store: createNodeStore({ cacheDir: join(workDir, 'c') }) }) },
  )
async function collect(parts: AsyncIterable<StreamPart>) {
  const out: StreamPart[] = []
  for await (const p of parts) out.push(p)
  return out
}
it('queued streams with an edge configured', async () => {
  const ai = client()
  await ai.prepare()
  const results = await Promise.all([0, 1, 2].map((i) => collect(ai.stream({ messages: [{ role: 'user', content: `q${i}` }], maxTokens: 400, temperature: 0 }))))
  for (const parts of results) {
    const f = parts.at(-1)
    console.log(parts.filter((p) => p.type === 'route' || p.type === 'handoff').map((p) => JSON.stringify(p).slice(0, 250)), f?.type === 'finish' ? [f.usage.route, f.usage.routeReason, f.usage.timeToFirstTokenMs, f.usage.decodeTokensPerSecond] : f)
  }
  await ai.dispose()
}, 120_000)

it('a stream never read', async () => {
  const ai = client()
  await ai.prepare()
  const t0 = performance.now()
  const unread = ai.stream({ messages: [{ role: 'user', content: 'never read' }], temperature: 0 })
  await new Promise((r) => setTimeout(r, 50))
  const r = await ai.chat({ messages: [{ role: 'user', content: 'after' }], maxTokens: 4, temperature: 0 })
  console.log('chat after unread stream took', performance.now() - t0, r.usage.route, unread !== undefined)
  await ai.dispose()
}, 120_000)

for (const delay of [0, 5, 30, 80, 200]) it(`abort during the first load (${delay} ms), then at once again`, async () => {
  for (const policy of ['device-only', 'prefer-device'] as const) {
    const ai = createClient(
      { model: join(workDir, 'qwen3'), backend: 'wasm', policy, ...(policy === 'device-only' ? {} : { edge: { url: edge.url } }), thresholds: { minDeviceTokensPerSecond: 1 } },
      { deviceHost: createRuntimeDeviceHost({ store: createNodeStore({ cacheDir: join(workDir, `c-${delay}`) }) }) },
    )
    const controller = new AbortController()
    const first = ai.chat({ messages: [{ role: 'user', content: 'x' }], maxTokens: 4, signal: controller.signal }).then((r) => `ok ${r.route}`, (e: Error) => `${e.name}: ${e.message}`)
    setTimeout(() => controller.abort(), delay)
    console.log(policy, delay, 'first:', await first)
    const second = await ai.chat({ messages: [{ role: 'user', content: 'x' }], maxTokens: 4 }).then((r) => `ok ${r.route} ${r.routeReason}`, (e: Error) => `${e.name}: ${e.message}`)
    console.log(policy, delay, 'second:', second, JSON.stringify(ai.status()).slice(0, 300))
    await ai.dispose()
  }
}, 120_000)
