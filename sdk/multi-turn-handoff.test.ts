// The second turn of a conversation on a real Qwen3.5 q8 package: the device resumes it from the
// first turn's cache (recurrent checkpoint at the turn boundary), then fails mid-answer, and the
// edge, which has never seen this conversation, rebuilds it cold and continues. q8 logits depend
// on how the prompt was chunked, so the joined answer equals the device's own only because
// device and edge cut the conversation at the same turn boundaries (core/chat-turns.ts).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { createRuntimeDeviceHost } from '../client-runtime/device-host/index.ts'
import type { OrtModule } from '../client-runtime/ort-session.ts'
import { storedPackageReader } from '../client-runtime/package-reader.ts'
import { createNodeStore } from '../client-runtime/store/node-store.ts'
import type { ChatMessage } from '../core/chat-template.ts'
import { BackendError } from '../core/errors.ts'
import type { ModelSession } from '../core/model-session.ts'
import type { StreamPart } from '../core/stream-parts.ts'
import { serveApp, type TestEdge } from '../test/sdk/test-edge.ts'
import { isDecodeStep, watchAppends } from '../test/support/watch-appends.ts'
import { loadEngineModule } from '../wasm/engine/node.ts'
import { loadOrtWebForNode } from '../wasm/node.ts'
import { createApp } from '../worker/app.ts'
import { loadEdgeModel } from '../worker/edge-model.ts'
import { createModelHost } from '../worker/model-host.ts'
import { createClient } from './client.ts'

const sampling = { temperature: 0.9, topK: 40, seed: 7, maxTokens: 10 }
const firstTurn: ChatMessage[] = [
  { role: 'system', content: 'You are a storyteller who answers with one short, vivid sentence each time.' },
  { role: 'user', content: 'Start a story about a lighthouse keeper.' },
]

let workDir: string
let packageDir: string
let edge: TestEdge

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ondevice-multi-turn-handoff-'))
  packageDir = join(workDir, 'qwen3_5-tiny')
  await writeFixture({ arch: 'qwen3_5', outDir: packageDir, dtype: 'q8' })
  const { ort } = await loadOrtWebForNode()
  const store = createNodeStore({ cacheDir: join(workDir, 'edge-cache') })
  const modelHost = createModelHost({
    modelId: 'qwen3_5-tiny',
    load: async () =>
      loadEdgeModel({
        ort: ort as unknown as OrtModule,
        reader: storedPackageReader(await store.open(packageDir)),
        modelId: 'qwen3_5-tiny',
        backend: 'wasm',
        engine: await loadEngineModule(),
        dtype: 'q8',
      }),
  })
  edge = await serveApp(createApp({ modelHost, log: () => {} }).fetch, 'qwen3_5-tiny')
})

afterAll(async () => {
  await edge?.close()
  if (workDir) await rm(workDir, { recursive: true, force: true })
})

/** A session that counts what it is fed and, once armed, fails feeding the k-th answer token. */
function faulty(session: ModelSession, control: { failAtStep?: number; fed: number }): ModelSession {
  let steps = 0
  return watchAppends(session, (tokenIds, options) => {
    if (
      control.failAtStep !== undefined &&
      isDecodeStep(tokenIds, options) &&
      ++steps >= control.failAtStep
    ) {
      throw new BackendError('backend_failed', `Failed on purpose at decode step ${steps}.`, {
        isRetryable: true,
      })
    }
    control.fed += tokenIds.length
  })
}

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const out: StreamPart[] = []
  for await (const part of parts) out.push(part)
  return out
}

describe('second turn of a Qwen3.5 q8 conversation, device to edge', () => {
  it('resumes the turn from the cache and hands off mid-answer to the same answer', async () => {
    const control: { failAtStep?: number; fed: number } = { fed: 0 }
    const client = createClient(
      {
        model: packageDir,
        backend: 'wasm',
        dtype: 'q8',
        edge: { url: edge.url },
        thresholds: { minDeviceTokensPerSecond: 1 },
      },
      {
        deviceHost: createRuntimeDeviceHost({
          store: createNodeStore({ cacheDir: join(workDir, 'device-cache') }),
          wrapSession: (session) => faulty(session, control),
        }),
      },
    )
    const edgeOnly = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    try {
      const first = await client.chat({ messages: firstTurn, ...sampling })
      expect(first.route).toBe('device')
      const secondTurn: ChatMessage[] = [
        ...firstTurn,
        { role: 'assistant', content: first.text },
        { role: 'user', content: 'What did the keeper see that night?' },
      ]
      // The edge alone, cold on the whole conversation: the reference.
      const cold = await edgeOnly.chat({ messages: secondTurn, ...sampling })
      expect(cold.route).toBe('edge')

      control.fed = 0
      control.failAtStep = 4
      const parts = await collect(client.stream({ messages: secondTurn, ...sampling }))
      expect(parts.find((part) => part.type === 'handoff')).toMatchObject({ completedTokens: 4 })
      const finish = parts.at(-1)
      if (finish?.type !== 'finish') throw new Error(`no finish part: ${JSON.stringify(finish)}`)
      expect(finish.usage.route).toBe('device+edge')
      expect(finish.tokenIds).toEqual(cold.tokenIds)
      expect(finish.text).toBe(cold.text)
      // The device fed only the new part of the conversation (and 3 of its 4 answer tokens), not
      // the first turn's prompt again.
      expect(control.fed).toBeLessThan(finish.usage.promptTokens - 20)
    } finally {
      await client.dispose()
      await edgeOnly.dispose()
    }
  })
})
