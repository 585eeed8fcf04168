// The whole stack on a real model package: a seeded Qwen3 fixture (the builder's, real Qwen3
// tokenizer) run by the runtime on onnxruntime-web WASM on the "device", and by the worker app
// (createApp + the edge model over the runtime's createOrtSession, WASM too) served over HTTP
// on 127.0.0.1. Same file, same backend, same seed: a handoff at any token must give the very
// answer the device alone gives. Faults are injected by wrapping the real ORT session.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MessageChannel, Worker } from 'node:worker_threads'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { createRuntimeDeviceHost } from '../client-runtime/device-host/index.ts'
import type { OrtModule } from '../client-runtime/ort-session.ts'
import { storedPackageReader } from '../client-runtime/package-reader.ts'
import { createNodeStore } from '../client-runtime/store/node-store.ts'
import { createWorkerDeviceHost, type MessageEndpoint } from '../client-runtime/web-worker/index.ts'
import type { ModelSession } from '../core/model-session.ts'
import type { StreamPart } from '../core/stream-parts.ts'
import { startStaticServer } from '../demo/static-server.ts'
import { type Faults, withFaults } from '../test/sdk/test-device-host.ts'
import { serveApp, type TestEdge, unusedUrl } from '../test/sdk/test-edge.ts'
import { isDecodeStep, watchAppends } from '../test/support/watch-appends.ts'
import { loadEngineModule } from '../wasm/engine/node.ts'
import type { EngineSession } from '../wasm/engine/session.ts'
import { loadOrtWebForNode } from '../wasm/node.ts'
import { createApp } from '../worker/app.ts'
import { loadEdgeModel } from '../worker/edge-model.ts'
import { createModelHost } from '../worker/model-host.ts'
import { createClient } from './client.ts'

const messages = [{ role: 'user' as const, content: 'Write a haiku about rivers.' }]
const request = { messages, temperature: 0.8, topK: 40, topP: 0.95, seed: 42, maxTokens: 16 }

let workDir: string
let packageDir: string
let edge: TestEdge

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ondevice-sdk-'))
  packageDir = join(workDir, 'qwen3-tiny')
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: 'fp32' })
  const { ort } = await loadOrtWebForNode()
  const store = createNodeStore({ cacheDir: join(workDir, 'edge-cache') })
  const modelHost = createModelHost({
    modelId: 'qwen3-tiny',
    load: async () =>
      loadEdgeModel({
        ort: ort as unknown as OrtModule,
        reader: storedPackageReader(await store.open(packageDir)),
        modelId: 'qwen3-tiny',
        backend: 'wasm',
        engine: await loadEngineModule(),
      }),
  })
  const app = createApp({ modelHost, log: () => {} })
  edge = await serveApp(app.fetch, 'qwen3-tiny')
})

afterAll(async () => {
  await edge?.close()
  if (workDir) await rm(workDir, { recursive: true, force: true })
})

function deviceClient(
  faults: Faults = {},
  policy: 'prefer-device' | 'device-only' = 'prefer-device',
  backend: 'wasm' | 'ort-wasm' = 'wasm',
  threads: { numThreads?: number; wrapSession?: (session: ModelSession) => ModelSession } = {},
) {
  const deviceHost = createRuntimeDeviceHost({
    store: createNodeStore({ cacheDir: join(workDir, 'device-cache') }),
    wrapSession: threads.wrapSession ?? ((session) => withFaults(session, faults)),
  })
  return createClient(
    {
      model: packageDir,
      backend,
      policy,
      ...(threads.numThreads === undefined ? {} : { numThreads: threads.numThreads }),
      // A 2-core CI box runs this tiny fixture slowly; the probe must not send it to the edge.
      thresholds: { minDeviceTokensPerSecond: 1 },
      ...(policy === 'device-only' ? {} : { edge: { url: edge.url } }),
    },
    { deviceHost },
  )
}

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const out: StreamPart[] = []
  for await (const part of parts) out.push(part)
  return out
}

describe('a real model on WASM, device and edge', () => {
  let reference: { text: string; tokenIds: readonly number[] }

  beforeAll(async () => {
    const client = deviceClient({}, 'device-only')
    const result = await client.chat(request)
    expect(result.route).toBe('device')
    expect(result.usage).toMatchObject({ backend: 'wasm', dtype: 'fp32', completionTokens: 16 })
    // The reason names the forced backend, not the best one this machine has (native).
    expect(result.routeReason).toContain('running on wasm')
    reference = result
    await client.dispose()
  })

  it("backend 'ort-wasm' runs onnxruntime-web's WASM instead of the engine, and usage says so", async () => {
    const client = deviceClient({}, 'device-only', 'ort-wasm')
    try {
      const result = await client.chat(request)
      expect(result.route).toBe('device')
      expect(result.usage).toMatchObject({ backend: 'ort-wasm', dtype: 'fp32', completionTokens: 16 })
      expect(result.routeReason).toContain('running on ort-wasm')
    } finally {
      await client.dispose()
    }
  })

  it('the edge alone gives the device answer (same file, same backend, same seed)', async () => {
    const client = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    const result = await client.chat(request)
    expect(result.route).toBe('edge')
    expect(result.usage.backend).toBe('wasm')
    expect(result.tokenIds).toEqual(reference.tokenIds)
    expect(result.text).toBe(reference.text)
  })

  it.each([1, 9])('device fails at token %i: handed off, identical answer', async (k) => {
    const client = deviceClient({ failAtToken: k })
    const parts = await collect(client.stream(request))
    const handoff = parts.find((part) => part.type === 'handoff')
    expect(handoff).toMatchObject({ type: 'handoff', completedTokens: k })
    const finish = parts.at(-1)
    if (finish?.type !== 'finish') throw new Error(`no finish: ${JSON.stringify(finish)}`)
    expect(finish.tokenIds).toEqual(reference.tokenIds)
    expect(finish.text).toBe(reference.text)
    expect(parts.flatMap((part) => (part.type === 'text-delta' ? [part.text] : [])).join('')).toBe(
      reference.text,
    )
    expect(finish.usage.route).toBe('device+edge')
    expect(finish.usage.backend).toBe('wasm+wasm')
    await client.dispose()
  })

  it("a helper thread of the device's engine dies at token 5: the engine's error hands off, identical answer", async () => {
    // The real engine on two threads; before decode step 5 one of its helpers is terminated (as
    // a browser or the system may stop a worker), so that step's first pass fails.
    const helpers: Worker[] = []
    const killAtToken = (session: ModelSession): ModelSession => {
      let probing = true
      let calls = 0
      return watchAppends(
        session,
        async (tokenIds, options) => {
          if (probing) return
          if (isDecodeStep(tokenIds, options)) calls++
          const pool = (session as EngineSession).model.kernels.pool
          if (!pool) throw new Error('the device engine runs without helper threads')
          helpers.push(...(pool.helpers as Worker[]).filter((helper) => !helpers.includes(helper)))
          if (calls === 5) await (pool.helpers[0] as Worker).terminate()
        },
        { onReset: () => (probing = false) },
      )
    }
    const client = deviceClient({}, 'prefer-device', 'wasm', { numThreads: 2, wrapSession: killAtToken })
    try {
      const parts = await collect(client.stream(request))
      const handoff = parts.find((part) => part.type === 'handoff')
      expect(handoff).toMatchObject({ type: 'handoff', completedTokens: 5 })
      expect(handoff?.type === 'handoff' && handoff.reason).toMatch(/helper thread 1 exited/)
      const finish = parts.at(-1)
      if (finish?.type !== 'finish') throw new Error(`no finish: ${JSON.stringify(finish)}`)
      expect(finish.tokenIds).toEqual(reference.tokenIds)
      expect(finish.text).toBe(reference.text)
      expect(finish.usage.route).toBe('device+edge')
      // The failed model was dropped: none of its helper threads is left running.
      expect(helpers.length).toBe(1)
      expect(helpers.map((helper) => helper.threadId)).toEqual([-1])
    } finally {
      await client.dispose()
    }
  })

  it('a URL package: the edge answers while it downloads; later, with no network at all, the device answers', async () => {
    const server = await startStaticServer({
      mounts: [{ prefix: '/models/qwen3-tiny/', directory: packageDir }],
    })
    const cacheDir = join(workDir, 'url-cache')
    const model = `${server.url}/models/qwen3-tiny/`
    const thresholds = { minDeviceTokensPerSecond: 1 }
    try {
      const online = createClient(
        { model, backend: 'wasm', edge: { url: edge.url }, thresholds },
        { deviceHost: createRuntimeDeviceHost({ store: createNodeStore({ cacheDir }) }) },
      )
      const first = await online.chat(request)
      expect(first.route).toBe('edge')
      expect(first.routeReason).toContain('downloads in the background')
      expect(first.tokenIds).toEqual(reference.tokenIds)
      expect(await online.prepare()).toMatchObject({ route: 'device', cached: true, loaded: true })
      await online.dispose()
    } finally {
      await server.close()
    }
    // The package server and the edge are gone: only the verified cache is left.
    const offline = createClient(
      { model, backend: 'wasm', edge: { url: await unusedUrl() }, thresholds },
      { deviceHost: createRuntimeDeviceHost({ store: createNodeStore({ cacheDir }) }) },
    )
    const again = await offline.chat(request)
    expect(again.route).toBe('device')
    expect(again.tokenIds).toEqual(reference.tokenIds)
    await offline.dispose()
  })

  it("the device in a worker thread (the runtime's DeviceHost served in a worker, and its proxy): the same answer; abort stops it", async () => {
    const { port1, port2 } = new MessageChannel()
    const worker = new Worker(new URL('../test/client-runtime/node-test-worker.ts', import.meta.url), {
      workerData: { port: port2 },
      transferList: [port2],
      env: { ...process.env, ONDEVICE_CACHE_DIR: join(workDir, 'worker-cache') },
    })
    port1.start()
    const deviceHost = createWorkerDeviceHost(port1 as unknown as MessageEndpoint)
    try {
      const client = createClient(
        {
          model: packageDir,
          backend: 'wasm',
          edge: { url: edge.url },
          thresholds: { minDeviceTokensPerSecond: 1 },
        },
        { deviceHost },
      )
      const result = await client.chat(request)
      expect(result.route).toBe('device')
      expect(result.usage.backend).toBe('wasm')
      expect(result.tokenIds).toEqual(reference.tokenIds)
      const controller = new AbortController()
      const parts: StreamPart[] = []
      for await (const part of client.stream({ ...request, maxTokens: 200, signal: controller.signal })) {
        parts.push(part)
        if (parts.filter((p) => p.type === 'text-delta').length === 2) controller.abort()
      }
      expect(parts.at(-1)).toMatchObject({ type: 'finish', finishReason: 'abort' })
      expect(parts.filter((p) => p.type === 'text-delta').length).toBeLessThan(6)
      await client.dispose()
    } finally {
      deviceHost.close()
      await worker.terminate()
    }
  })
})
