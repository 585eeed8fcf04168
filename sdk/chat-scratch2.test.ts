import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { createRuntimeDeviceHost } from '../client-runtime/device-host/index.ts'
import { createNodeStore } from '../client-runtime/store/node-store.ts'
import type { ChatMessage } from '../core/chat-template.ts'
import { createClient } from './client.ts'
import type { ChatRequest } from './options.ts'

let workDir: string
beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ondevice-chat-scratch2-'))
  await writeFixture({ arch: 'qwen3_5', outDir: join(workDir, 'm'), dtype: 'q8' })
})
afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true })
})
const client = (backend: 'wasm' | 'native') =>
  createClient(
    { model: join(workDir, 'm'), backend, policy: 'device-only', thresholds: { minDeviceTokensPerSecond: 0.1 } },
    { deviceHost: createRuntimeDeviceHost({ store: createNodeStore({ cacheDir: join(workDir, 'c') }) }) },
  )
for (const backend of ['wasm', 'native'] as const)
it(`stop strings and maxTokens cuts over turns (${backend})`, async () => {
  const ai = client(backend)
  const fresh = client(backend)
  const messages: ChatMessage[] = []
  let mismatches = 0
  for (let turn = 0; turn < 12; turn++) {
    messages.push({ role: 'user', content: `turn ${turn} 你好 🌊` })
    const request: ChatRequest = { messages: [...messages], temperature: 1, seed: turn, maxTokens: 9, ...(turn % 2 ? { stop: ['e', 'a'] } : {}) }
    const got = await ai.chat(request)
    await fresh.chat({ messages: [{ role: 'user', content: `z${turn}` }], maxTokens: 1 })
    const want = await fresh.chat(request)
    if (JSON.stringify(got.tokenIds) !== JSON.stringify(want.tokenIds)) { mismatches++; console.log('mismatch at', turn, got.usage.cachedTokens, want.usage.cachedTokens) }
    messages.push({ role: 'assistant', content: got.text })
  }
  expect(mismatches).toBe(0)
  await ai.dispose(); await fresh.dispose()
}, 120_000)
