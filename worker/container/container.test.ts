// The Worker's container routing without Docker: where a package answers (EDGE_RUNTIME and the
// isolate budget), the settings' refusals, the affinity spread, and the bounded cold start (a
// container that never comes up: 503 + Retry-After in OpenAI's shape, after the bound, not
// before). test/container/ runs the whole path against real containers.
import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { serveApp } from '../../test/sdk/test-edge.ts'
import { createTestHost } from '../../test/worker/test-host.ts'
import { createApp } from '../app.ts'
import { createModelHost } from '../model-host.ts'
import { resolveLimits } from '../options.ts'
import { preferredWaitMs } from '../prefer-wait.ts'
import { affinityKey, instanceIndex } from './affinity.ts'
import { chooseRuntime, estimateIsolateMemory, streamedLoadBytes } from './choose-runtime.ts'
import { createContainerForwarder } from './forward.ts'
import { urlGateway } from './gateway.ts'
import { createRuntimeRouter } from './runtime-router.ts'
import { containerSettingsFromEnv } from './settings.ts'

/** A port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** A manifest as the builder writes it: the real Qwen3 tokenizer.json's size, per-backend figures. */
function manifestOf(model: { q4: number; q8: number }, weights: { q4: number; q8: number }) {
  return {
    dtypes: ['q4', 'q8'],
    contextLength: 4096,
    files: [
      { path: 'tokenizer.json', bytes: 11_422_654 },
      { path: 'config.json', bytes: 1_000 },
      { path: 'onnx/decoder_model_merged_q4.onnx', bytes: 100_000 },
      { path: 'onnx/decoder_model_merged_q4.onnx_data', bytes: weights.q4 - 100_000 },
      { path: 'onnx/decoder_model_merged_quantized.onnx', bytes: 100_000 },
      { path: 'onnx/decoder_model_merged_quantized.onnx_data', bytes: weights.q8 - 100_000 },
    ],
    estimatedMemoryBytes: { q4: 900_000_000, q8: 900_000_000 },
    estimatedMemory: {
      q4: { wasm: { bytes: 200_000_000, perTokenBytes: 4_000, modelBytes: model.q4 } },
      q8: { wasm: { bytes: 200_000_000, perTokenBytes: 4_000, modelBytes: model.q8 } },
    },
  }
}

describe('EDGE_RUNTIME', () => {
  it('auto: the Worker, the tokenizer, the model and its load against the 128 MB isolate', () => {
    const manifest = manifestOf({ q4: 20_000_000, q8: 40_000_000 }, { q4: 15_000_000, q8: 30_000_000 })
    const small = estimateIsolateMemory(manifest, 'q4')!
    // Qwen3's tokenizer keeps ~7.4 MB; the model 20 MB plus its 15 MB of files while loading.
    expect(small.parts).toMatchObject({ model: 20_000_000, weightFiles: 15_000_000 })
    expect(small.parts.tokenizer).toBeGreaterThan(7_000_000)
    expect(small.parts.tokenizer).toBeLessThan(8_000_000)
    // Constrained output's vocabulary (prepared at load): ~9 MB for Qwen3's 151k tokens.
    expect(small.parts.constrainedOutput).toBeGreaterThan(8_000_000)
    expect(small.bytes).toBe(
      small.parts.base + small.parts.tokenizer + small.parts.constrainedOutput + 35_000_000,
    )
    expect(chooseRuntime('auto', manifest, 'q4').runtime).toBe('isolate')
    // A model part of 60 MB (under the old 100 MB model-only budget) does not fit once its files
    // during the load, the tokenizer and the Worker are counted.
    const middle = manifestOf({ q4: 60_000_000, q8: 60_000_000 }, { q4: 45_000_000, q8: 45_000_000 })
    expect(estimateIsolateMemory(middle, 'q8')!.parts.model).toBeLessThan(100_000_000)
    const choice = chooseRuntime('auto', middle, 'q8')
    expect(choice.runtime).toBe('container')
    expect(choice.reason).toMatch(
      /q8 needs ~1\d\d\.\d MB \(Worker .* tokenizer 7\.4 MB, constrained output 9\.1 MB, model 60\.0 MB \+ 45\.0 MB of weight files while loading; from the engine estimate\), over the isolate's 128\.0 MB/,
    )
    // A shorter context frees its cache positions: 4096 - 1024 positions of 4 KB.
    expect(estimateIsolateMemory(middle, 'q8', 1024)!.parts.model).toBe(60_000_000 - 3072 * 4_000)
    // Every format the isolate serves stays loaded: q4 fits alone, q4 + q8 does not.
    const two = manifestOf({ q4: 40_000_000, q8: 50_000_000 }, { q4: 30_000_000, q8: 35_000_000 })
    expect(chooseRuntime('auto', two, ['q4']).runtime).toBe('isolate')
    expect(chooseRuntime('auto', two, ['q4', 'q8']).runtime).toBe('container')
    expect(estimateIsolateMemory(two, ['q4', 'q8'])!.parts).toMatchObject({
      model: 90_000_000,
      weightFiles: 35_000_000,
    })
    // A tiny model: building the tokenizer (its bytes and buffers) is the peak.
    const tiny = estimateIsolateMemory(
      manifestOf({ q4: 1_000_000, q8: 2_000_000 }, { q4: 500_000, q8: 900_000 }),
      'q4',
    )!
    expect(tiny.bytes).toBe(
      tiny.parts.base + tiny.parts.tokenizer + tiny.parts.constrainedOutput + tiny.parts.tokenizerBuild,
    )
    // onnxruntime-web's figure where the isolate runs it: MODEL_BACKEND ort-wasm, or an
    // architecture the engine does not cover (it holds its weights ~2-3x).
    const both = {
      ...manifest,
      estimatedMemory: {
        q4: { wasm: { modelBytes: 20_000_000 }, 'ort-wasm': { modelBytes: 70_000_000 } },
      },
    }
    expect(estimateIsolateMemory(both, 'q4')!.parts.model).toBe(20_000_000)
    expect(estimateIsolateMemory(both, 'q4', undefined, ['ort-wasm'])!.parts.model).toBe(70_000_000)
    expect(estimateIsolateMemory(both, 'q4', undefined, ['wasm', 'ort-wasm'])!.parts.model).toBe(90_000_000)
    expect(estimateIsolateMemory({ ...both, modelType: 'qwen3' }, 'q4')!.parts.model).toBe(20_000_000)
    expect(estimateIsolateMemory({ ...both, modelType: 'gpt2' }, 'q4')!.parts.model).toBe(70_000_000)
    expect(chooseRuntime('auto', both, 'q4', undefined, undefined, ['wasm']).runtime).toBe('isolate')
    expect(chooseRuntime('auto', both, 'q4', undefined, undefined, ['wasm', 'ort-wasm']).runtime).toBe(
      'container',
    )
    // ISOLATE_MEMORY_BYTES moves the line.
    expect(chooseRuntime('auto', middle, 'q8', 400_000_000).runtime).toBe('isolate')
  })

  it('auto: a source the engine streams weights from counts the graphs and buffers, not the whole files', () => {
    const middle = manifestOf({ q4: 60_000_000, q8: 60_000_000 }, { q4: 45_000_000, q8: 45_000_000 })
    // A URL (its server may ignore Range): the whole files, as before. R2: the graph (100 kB) and
    // the streamed load's buffers. Static assets: one asset chunk on top (at most 25 MiB).
    const whole = estimateIsolateMemory(middle, 'q8')!
    const ranges = estimateIsolateMemory(middle, 'q8', undefined, ['wasm'], 'ranges')!
    const chunks = estimateIsolateMemory(middle, 'q8', undefined, ['wasm'], 'chunks')!
    expect(whole.parts.weightFiles).toBe(45_000_000)
    expect(ranges.parts.weightFiles).toBe(100_000 + streamedLoadBytes)
    expect(chunks.parts.weightFiles).toBe(100_000 + 25 * 2 ** 20 + streamedLoadBytes)
    expect(whole.bytes - ranges.bytes).toBe(45_000_000 - 100_000 - streamedLoadBytes)
    // The package that needs a container when its files are read whole fits the isolate from R2.
    expect(chooseRuntime('auto', middle, 'q8').runtime).toBe('container')
    const fromR2 = chooseRuntime('auto', middle, 'q8', undefined, undefined, ['wasm'], 'ranges')
    expect(fromR2.runtime).toBe('isolate')
    expect(fromR2.reason).toMatch(
      /model 60\.0 MB \+ 8\.5 MB of graphs and buffers while the weights stream in/,
    )
    // onnxruntime-web takes whole files, whatever the source.
    expect(
      estimateIsolateMemory(middle, 'q8', undefined, ['wasm', 'ort-wasm'], 'ranges')!.parts.weightFiles,
    ).toBe(45_000_000)
    // A graph with its weights inside (no external data) is read whole.
    const inline = {
      ...middle,
      files: [
        { path: 'tokenizer.json', bytes: 11_422_654 },
        { path: 'onnx/model_quantized.onnx', bytes: 30_000_000 },
      ],
    }
    expect(estimateIsolateMemory(inline, 'q8', undefined, ['wasm'], 'ranges')!.parts.weightFiles).toBe(
      30_000_000 + streamedLoadBytes,
    )
  })

  it('auto: older manifests (one figure per dtype) and manifests with only file sizes', () => {
    const legacy = { dtypes: ['q4', 'q8'], estimatedMemoryBytes: { q4: 60_000_000, q8: 140_000_000 } }
    expect(chooseRuntime('auto', legacy, 'q4').runtime).toBe('isolate')
    expect(chooseRuntime('auto', legacy, 'q8').runtime).toBe('container')
    // Without an estimate: the weights' bytes for that format (held, and read while loading).
    const sized = {
      files: [
        { path: 'onnx/model_quantized.onnx', bytes: 70_000_000 },
        { path: 'onnx/model_q4.onnx', bytes: 10 },
        { path: 'onnx/model.onnx', bytes: 5 },
      ],
    }
    expect(estimateIsolateMemory(sized, 'q8')!.parts).toMatchObject({
      model: 70_000_000,
      weightFiles: 70_000_000,
    })
    expect(estimateIsolateMemory(sized, 'fp32')!.parts.model).toBe(5)
    expect(chooseRuntime('auto', sized, 'q8').runtime).toBe('container')
    expect(chooseRuntime('auto', { dtypes: ['q8'] }, 'q8')).toMatchObject({
      runtime: 'isolate',
      reason: expect.stringMatching(/states no size/),
    })
    expect(chooseRuntime('isolate', sized, 'q8').runtime).toBe('isolate')
    expect(chooseRuntime('container', legacy, 'q4').runtime).toBe('container')
  })

  it('refuses bad settings naming the variable', () => {
    expect(() => containerSettingsFromEnv({ EDGE_RUNTIME: 'gpu' })).toThrow(/EDGE_RUNTIME must be/)
    expect(() => containerSettingsFromEnv({ CONTAINER_SECRET: 'short' })).toThrow(/at least 32 characters/)
    expect(() => containerSettingsFromEnv({ CONTAINER_URLS: 'ftp://x' })).toThrow(/CONTAINER_URLS/)
    expect(() => containerSettingsFromEnv({ ISOLATE_MEMORY_BYTES: '-5' })).toThrow(/ISOLATE_MEMORY_BYTES/)
    // The old model-only budget is not ignored silently.
    expect(() => containerSettingsFromEnv({ ISOLATE_MODEL_BUDGET_BYTES: '100000000' })).toThrow(
      /replaced by ISOLATE_MEMORY_BYTES/,
    )
    const settings = containerSettingsFromEnv({ CONTAINER_URLS: 'http://127.0.0.1:1, http://127.0.0.1:2' })
    expect(settings).toMatchObject({ runtime: 'auto', instances: 2, isolateMemoryBytes: 128_000_000 })
    expect(containerSettingsFromEnv({ ISOLATE_MEMORY_BYTES: '256000000' }).isolateMemoryBytes).toBe(
      256_000_000,
    )
  })

  it('auto without a container: what fits answers in the isolate, the rest is refused before anything loads', async () => {
    const fits = manifestOf({ q4: 20_000_000, q8: 40_000_000 }, { q4: 15_000_000, q8: 30_000_000 })
    const tooLarge = manifestOf({ q4: 90_000_000, q8: 90_000_000 }, { q4: 60_000_000, q8: 60_000_000 })
    const routerFor = (manifest: object, runtime: 'auto' | 'container' = 'auto') =>
      createRuntimeRouter({
        runtime,
        isolateMemoryBytes: 128_000_000,
        readManifest: async () => manifest,
        dtypesFor: () => ['q4'],
        forward: undefined,
        log: () => {},
      })
    const context = {} as Parameters<ReturnType<typeof createRuntimeRouter>['forward']>[0]
    expect(await routerFor(fits).forward(context)).toBeUndefined()
    expect(await routerFor(fits).health()).toBeUndefined()
    const refused = routerFor(tooLarge)
    await expect(refused.forward(context)).rejects.toMatchObject({
      code: 'edge_unavailable',
      message: expect.stringMatching(
        /does not fit a Worker isolate: q4 needs ~.* over the isolate's 128\.0 MB.*Add a container/,
      ),
    })
    expect(await refused.health()).toMatchObject({
      status: 503,
      body: { status: 'error', loaded: false, state: 'failed', error: expect.stringMatching(/does not fit/) },
    })
    // Through the app: a chat gets 503 edge_unavailable in OpenAI's shape, and the package never loads.
    let loads = 0
    const modelHost = createModelHost({
      modelId: 'm',
      load: () => {
        loads++
        return Promise.reject(new Error('the isolate must not load a package that does not fit'))
      },
    })
    const app = createApp({
      modelHost,
      log: () => {},
      forwardChatCompletion: refused.forward,
      forwardedHealth: refused.health,
    })
    const response = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    })
    expect(response.status).toBe(503)
    expect(response.headers.get('retry-after')).not.toBeNull()
    expect(await response.json()).toMatchObject({
      error: { code: 'edge_unavailable', message: expect.stringMatching(/does not fit a Worker isolate/) },
    })
    expect((await app.request('/healthz')).status).toBe(503)
    expect(loads).toBe(0)
    // "container" without one says what to add; its /healthz does not call it healthy.
    const container = routerFor(fits, 'container')
    await expect(container.forward(context)).rejects.toThrow(/ONDEVICE_CONTAINER/)
    expect(await container.health()).toMatchObject({ status: 503, body: { status: 'error', instances: [] } })
  })
})

describe('/healthz in container mode', () => {
  it("reports the containers' state, not the isolate's unloaded model", async () => {
    // Instance 0: a real app (the container's /healthz, its model loaded); instance 1: nothing listens.
    const port = await closedPort()
    const containerApp = createApp({ modelHost: createTestHost(), log: () => {} })
    const fetchImplementation = ((input: string, init?: RequestInit) =>
      input.startsWith('http://instance-0')
        ? containerApp.request(new URL(input).pathname, init)
        : fetch(input, init)) as typeof fetch
    const gateway = urlGateway(['http://instance-0', `http://127.0.0.1:${port}`], fetchImplementation)
    const router = createRuntimeRouter({
      runtime: 'container',
      isolateMemoryBytes: 1,
      readManifest: async () => undefined,
      dtypesFor: () => ['q8'],
      forward: async () => new Response(null, { status: 204 }),
      instancesHealth: () => Promise.all([0, 1].map((index) => gateway.health(index))),
      log: () => {},
    })
    const modelHost = createModelHost({
      modelId: 'm',
      load: () => Promise.reject(new Error('the isolate must not load the package')),
    })
    const app = createApp({
      modelHost,
      log: () => {},
      forwardChatCompletion: router.forward,
      forwardedHealth: router.health,
    })
    const health = async () => {
      const response = await app.request('/healthz')
      return { status: response.status, body: (await response.json()) as Record<string, unknown> }
    }
    // Up, its model not loaded yet (the test app loads on the first chat; `ondevice serve` before it listens).
    expect(await health()).toMatchObject({
      status: 200,
      body: {
        status: 'ok',
        runtime: 'container',
        loaded: false,
        state: 'loading',
        model: 'm',
        instances: [
          { name: 'instance-0', state: 'loading' },
          { name: 'instance-1', state: 'unreachable' },
        ],
      },
    })
    // Loaded in instance 0: its backend and slots are reported; the isolate's model is never loaded.
    const answered = await containerApp.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'test-model',
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 1,
      }),
    })
    expect(answered.status, await answered.text()).toBe(200)
    expect(await health()).toMatchObject({
      status: 200,
      body: {
        status: 'ok',
        loaded: true,
        state: 'ready',
        backend: 'test',
        dtype: 'fp32',
        generations: { active: 0, queued: 0, max_concurrent: 1 },
        instances: [
          { name: 'instance-0', state: 'ready', backend: 'test', generations: { active: 0 } },
          { name: 'instance-1', state: 'unreachable' },
        ],
      },
    })
    expect(modelHost.status().state).toBe('idle')
    // No instance that can answer: 503, status error.
    const down = urlGateway([`http://127.0.0.1:${port}`])
    const downRouter = createRuntimeRouter({
      runtime: 'container',
      isolateMemoryBytes: 1,
      readManifest: async () => undefined,
      dtypesFor: () => ['q8'],
      forward: async () => new Response(null, { status: 204 }),
      instancesHealth: async () => [await down.health(0)],
      log: () => {},
    })
    expect(await downRouter.health()).toMatchObject({
      status: 503,
      body: { status: 'error', loaded: false, state: 'failed' },
    })
  })
})

describe('affinity', () => {
  it('maps a conversation to one instance and prefers the header over the body user', () => {
    const headers = new Headers({ 'x-ondevice-affinity': 'conversation-1' })
    const key = affinityKey(headers, { user: 'someone' })
    expect(key).toBe('h:conversation-1')
    expect(affinityKey(new Headers(), { user: 'someone' })).toBe('u:someone')
    expect(affinityKey(new Headers(), {})).toBeUndefined()
    const index = instanceIndex(key, 4)
    for (let attempt = 0; attempt < 10; attempt++) expect(instanceIndex(key, 4)).toBe(index)
    const spread = new Set(Array.from({ length: 64 }, (_, n) => instanceIndex(`h:${n}`, 4)))
    expect(spread.size).toBe(4)
  })
})

describe('cold start', () => {
  it('waits up to the bound for a container, then answers 503 with Retry-After', async () => {
    // A port nothing listens on: the container never comes up.
    const port = await closedPort()
    const forward = createContainerForwarder({
      gateway: urlGateway([`http://127.0.0.1:${port}`]),
      secret: undefined,
      instances: 1,
      startTimeoutMs: 700,
      limits: resolveLimits({}),
      modelIds: new Set(['m']),
    })
    const modelHost = createModelHost({
      modelId: 'm',
      load: () => Promise.reject(new Error('the isolate must not load the package')),
    })
    const app = createApp({ modelHost, log: () => {}, forwardChatCompletion: forward })
    const started = Date.now()
    const response = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    })
    expect(Date.now() - started).toBeGreaterThanOrEqual(500)
    expect(response.status).toBe(503)
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0)
    const body = (await response.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('edge_unavailable')
    expect(body.error.message).toMatch(/starting/)
    // Caps stay in the Worker: refused before any container is asked.
    const tooMany = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [], max_tokens: 1_000_000 }),
    })
    expect(tooMany.status).toBe(400)
  })

  it('a request that says how long it waits (Prefer: wait) gets 503 edge_starting with Retry-After by then, not at the start bound', async () => {
    const port = await closedPort()
    const forward = createContainerForwarder({
      gateway: urlGateway([`http://127.0.0.1:${port}`]),
      secret: undefined,
      instances: 1,
      startTimeoutMs: 5000,
      limits: resolveLimits({}),
      modelIds: new Set(['m']),
    })
    const modelHost = createModelHost({
      modelId: 'm',
      load: () => Promise.reject(new Error('the isolate must not load the package')),
    })
    const app = createApp({ modelHost, log: () => {}, forwardChatCompletion: forward })
    const started = Date.now()
    const response = await app.request('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', prefer: 'respond-async, wait=1' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    })
    expect(Date.now() - started).toBeLessThan(4000)
    expect(response.status).toBe(503)
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    const body = (await response.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('edge_starting')
    expect(body.error.message).toMatch(/The edge is starting/)
  })

  it("passes what is left of the request's Prefer: wait to the container, whose own load then answers 503 edge_starting in time", async () => {
    // The container's side: the app over real HTTP, its model loading for 4 s on the first chat
    // (as a format loaded on first use does); its /healthz answers at once.
    const containerHost = createTestHost({ loadDelayMs: 4000 })
    const container = await serveApp(
      createApp({ modelHost: containerHost, log: () => {} }).fetch,
      'test-model',
    )
    try {
      const forward = createContainerForwarder({
        gateway: urlGateway([container.url]),
        secret: undefined,
        instances: 1,
        startTimeoutMs: 10_000,
        limits: resolveLimits({}),
        modelIds: new Set(['test-model']),
      })
      const modelHost = createModelHost({
        modelId: 'test-model',
        load: () => Promise.reject(new Error('the isolate must not load the package')),
      })
      const app = createApp({ modelHost, log: () => {}, forwardChatCompletion: forward })
      const started = Date.now()
      const response = await app.request('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json', prefer: 'wait=1' },
        body: JSON.stringify({
          model: 'test-model',
          messages: [{ role: 'user', content: 'hi' }],
          max_tokens: 2,
        }),
      })
      expect(Date.now() - started).toBeLessThan(3500)
      expect(response.status).toBe(503)
      expect(response.headers.get('retry-after')).toBe('5')
      const body = (await response.json()) as { error: { code: string; message: string } }
      expect(body.error.code).toBe('edge_starting')
      expect(body.error.message).toMatch(/the model is still loading/)
    } finally {
      await container.close()
    }
  })

  it("passes the client's address on as cf-connecting-ip: the container counts each client's bodies in flight by it, not all forwarded ones as the Worker's", async () => {
    const seen: (string | null)[] = []
    const containerApp = createApp({ modelHost: createTestHost(), behindCloudflare: true, log: () => {} })
    const container = await serveApp((request) => {
      if (new URL(request.url).pathname === '/v1/chat/completions')
        seen.push(request.headers.get('cf-connecting-ip'))
      return containerApp.fetch(request)
    }, 'test-model')
    try {
      const forward = createContainerForwarder({
        gateway: urlGateway([container.url]),
        secret: undefined,
        instances: 1,
        startTimeoutMs: 10_000,
        limits: resolveLimits({}),
        modelIds: new Set(['test-model']),
      })
      const modelHost = createModelHost({
        modelId: 'test-model',
        load: () => Promise.reject(new Error('the isolate must not load the package')),
      })
      const app = createApp({
        modelHost,
        behindCloudflare: true,
        log: () => {},
        forwardChatCompletion: forward,
      })
      const chat = (headers: Record<string, string>) =>
        app.request('/v1/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({
            model: 'test-model',
            messages: [{ role: 'user', content: 'hi' }],
            max_tokens: 2,
          }),
        })
      expect((await chat({ 'cf-connecting-ip': '203.0.113.9' })).status).toBe(200)
      // Without one (no client the Worker can name), none is made up.
      expect((await chat({})).status).toBe(200)
      expect(seen).toEqual(['203.0.113.9', null])
    } finally {
      await container.close()
    }
  })

  it('reads the wait preference as RFC 7240 writes it', () => {
    const wait = (value: string) => preferredWaitMs(new Headers({ prefer: value }))
    expect(preferredWaitMs(new Headers())).toBeUndefined()
    expect(wait('wait=12')).toBe(12_000)
    expect(wait('return=minimal, wait=0')).toBe(0)
    expect(wait('WAIT = "3"')).toBe(3000)
    expect(wait('wait=5; foo=bar')).toBe(5000)
    expect(wait('respond-async')).toBeUndefined()
    expect(wait('wait=-1')).toBeUndefined()
    expect(wait('wait=1.5')).toBeUndefined()
  })
})
