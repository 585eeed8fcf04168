// The Worker's container routing without Docker: where a package answers (EDGE_RUNTIME and the
// isolate budget), the settings' refusals, the affinity spread, and the bounded cold start (a
// container that never comes up: 503 + Retry-After in OpenAI's shape, after the bound, not
// before). test/container/ runs the whole path against real containers.
import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { createTestHost } from '../../test/worker/test-host.ts'
import { createApp } from '../app.ts'
import { createModelHost } from '../model-host.ts'
import { resolveLimits } from '../options.ts'
import { affinityKey, instanceIndex } from './affinity.ts'
import { chooseRuntime } from './choose-runtime.ts'
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

describe('EDGE_RUNTIME', () => {
  it('auto: the manifest estimate for the weight format against the isolate budget', () => {
    const manifest = { dtypes: ['q4', 'q8'], estimatedMemoryBytes: { q4: 60_000_000, q8: 120_000_000 } }
    expect(chooseRuntime('auto', manifest, 'q4', 100_000_000).runtime).toBe('isolate')
    expect(chooseRuntime('auto', manifest, 'q8', 100_000_000).runtime).toBe('container')
    // Per-backend figures: the engine's model part (what the isolate runs), not the largest backend's total.
    const perBackend = {
      ...manifest,
      estimatedMemory: { q8: { wasm: { bytes: 250_000_000, modelBytes: 80_000_000 } } },
    }
    expect(chooseRuntime('auto', perBackend, 'q8', 100_000_000).runtime).toBe('isolate')
    // Without an estimate, the weights' bytes for that format.
    const sized = {
      files: { 'onnx/model_q8.onnx': { size: 150_000_000 }, 'onnx/model_q4.onnx': { size: 10 } },
    }
    expect(chooseRuntime('auto', sized, 'q8', 100_000_000).runtime).toBe('container')
    expect(chooseRuntime('isolate', manifest, 'q8', 100_000_000).runtime).toBe('isolate')
    expect(chooseRuntime('container', manifest, 'q4', 100_000_000).runtime).toBe('container')
  })

  it('refuses bad settings naming the variable', () => {
    expect(() => containerSettingsFromEnv({ EDGE_RUNTIME: 'gpu' })).toThrow(/EDGE_RUNTIME must be/)
    expect(() => containerSettingsFromEnv({ CONTAINER_SECRET: 'short' })).toThrow(/at least 32 characters/)
    expect(() => containerSettingsFromEnv({ CONTAINER_URLS: 'ftp://x' })).toThrow(/CONTAINER_URLS/)
    const settings = containerSettingsFromEnv({ CONTAINER_URLS: 'http://127.0.0.1:1, http://127.0.0.1:2' })
    expect(settings).toMatchObject({ runtime: 'auto', instances: 2, isolateBudgetBytes: 100_000_000 })
  })

  it('auto without a container answers in the isolate; "container" without one says what to add', async () => {
    const base = {
      isolateBudgetBytes: 1,
      readManifest: async () => ({ estimatedMemoryBytes: { q8: 2 } }),
      dtypeFor: () => 'q8',
      forward: undefined,
    }
    const context = {} as Parameters<ReturnType<typeof createRuntimeRouter>['forward']>[0]
    const auto = createRuntimeRouter({ ...base, runtime: 'auto', log: () => {} })
    expect(await auto.forward(context)).toBeUndefined()
    expect(await auto.health()).toBeUndefined()
    const container = createRuntimeRouter({ ...base, runtime: 'container', log: () => {} })
    await expect(container.forward(context)).rejects.toThrow(/ONDEVICE_CONTAINER/)
    // Its /healthz does not call it healthy: no instance can answer.
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
      isolateBudgetBytes: 1,
      readManifest: async () => undefined,
      dtypeFor: () => 'q8',
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
      isolateBudgetBytes: 1,
      readManifest: async () => undefined,
      dtypeFor: () => 'q8',
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
})
