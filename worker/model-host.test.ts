// A model host serving more than one weight format × backend, and the app choosing the one a
// request names (`ondevice_format`): loaded on first use, refused with 400 `unsupported` when this
// server cannot run it, answered in the default with the reason when the request allows a
// fallback; headers and usage say what ran. Core's deterministic test sessions stand for the
// models (each format's session reports its own dtype and backend); the real ORT hosts are
// covered in cli/commands/serve-formats.test.ts.
import { describe, expect, it } from 'vitest'
import { BackendError, InvalidArgumentError } from '../core/errors.ts'
import type { ChatCompletionResponse } from '../core/protocol/index.ts'
import { qwen3Tokenizer } from '../test/support/qwen3-tokenizer.ts'
import { createTestSession } from '../test/support/test-session.ts'
import { createApp } from './app.ts'
import {
  createModelHost,
  formatsFrom,
  type HostedModel,
  type ModelFormat,
  type ModelHost,
  type ModelHostOptions,
  selectModel,
} from './model-host.ts'

/** A host whose loader makes test models; `runsAs` maps a configured backend to what really runs. */
function formatHost(
  formats: readonly ModelFormat[],
  runsAs: Record<string, string> = {},
  admit?: ModelHostOptions['admit'],
) {
  const loaded: ModelFormat[] = []
  const host = createModelHost({
    modelId: 'm',
    formats,
    ...(admit ? { admit } : {}),
    load: async (format): Promise<HostedModel> => {
      loaded.push(format)
      if (format.dtype === 'fp16') throw new Error('the package holds no fp16 weights')
      const tokenizer = qwen3Tokenizer()
      const backend = runsAs[format.backend ?? 'native'] ?? format.backend ?? 'native'
      const dtype = format.dtype ?? 'q4'
      return {
        info: { modelId: 'm', backend, dtype, contextLength: 4096 },
        tokenizer,
        createSession: async () =>
          createTestSession({ vocabularySize: tokenizer.vocabularySize, backend, dtype }),
      }
    },
  })
  return { host, loaded }
}

describe('formatsFrom', () => {
  it('crosses every backend with every dtype, the first of each the default; empty lists leave it to the loader', () => {
    expect(formatsFrom(['q4', 'q8'], ['native', 'wasm'])).toEqual([
      { dtype: 'q4', backend: 'native' },
      { dtype: 'q8', backend: 'native' },
      { dtype: 'q4', backend: 'wasm' },
      { dtype: 'q8', backend: 'wasm' },
    ])
    expect(formatsFrom([], ['wasm'])).toEqual([{ dtype: undefined, backend: 'wasm' }])
    expect(formatsFrom([], [])).toEqual([{ dtype: undefined, backend: undefined }])
  })
})

describe('selecting a format', () => {
  it('loads the default first and another format only when a request names it, once', async () => {
    const { host, loaded } = formatHost(formatsFrom(['q4', 'q8'], ['native', 'wasm']))
    expect((await host.load()).info).toMatchObject({ dtype: 'q4', backend: 'native' })
    expect(loaded).toHaveLength(1)
    const [first, second] = await Promise.all([
      selectModel(host, { dtype: 'q8', backend: 'wasm' }),
      selectModel(host, { dtype: 'q8', backend: 'wasm' }),
    ])
    expect(first.model).toBe(second.model)
    expect(first.model.info).toMatchObject({ dtype: 'q8', backend: 'wasm' })
    expect(first.fallback).toBeUndefined()
    expect(loaded).toEqual([
      { dtype: 'q4', backend: 'native' },
      { dtype: 'q8', backend: 'wasm' },
    ])
    // Half a format: a loaded one that fits comes first.
    expect((await selectModel(host, { backend: 'wasm' })).model).toBe(first.model)
    expect((await selectModel(host, { dtype: 'q4' })).model.info.backend).toBe('native')
    expect(host.formats?.().map(({ status }) => status.state)).toEqual(['ready', 'idle', 'idle', 'ready'])
  })

  it('refuses a format it does not serve with unsupported, naming what it serves and how to accept a fallback', async () => {
    const { host, loaded } = formatHost(formatsFrom(['q4'], ['native', 'wasm']))
    await expect(selectModel(host, { dtype: 'q8', backend: 'wasm' })).rejects.toMatchObject({
      code: 'unsupported',
      param: 'ondevice_format',
      message: expect.stringMatching(
        /does not serve q8 on wasm \(it serves q4 on native, q4 on wasm\).*"fallback": true/,
      ),
    })
    expect(loaded).toEqual([])
    const answered = await selectModel(host, { dtype: 'q8', backend: 'wasm', fallback: true })
    expect(answered.model.info).toMatchObject({ dtype: 'q4', backend: 'native' })
    expect(answered.fallback).toMatch(/^Asked for q8 on wasm; answered in q4 on native: /)
  })

  it("tells 'wasm' that runs onnxruntime-web ('ort-wasm': the engine does not cover the package) from the engine", async () => {
    const { host } = formatHost(formatsFrom(['q8'], ['native', 'wasm']), { wasm: 'ort-wasm' })
    await expect(selectModel(host, { dtype: 'q8', backend: 'wasm' })).rejects.toMatchObject({
      code: 'unsupported',
      message: expect.stringContaining("backend 'wasm' runs onnxruntime-web here ('ort-wasm')"),
    })
    // Once loaded it is known for what it is, and answers requests naming that.
    expect((await selectModel(host, { backend: 'ort-wasm' })).model.info.backend).toBe('ort-wasm')
  })

  it('a format that fails to load: its load error without a fallback, the default with the reason with one', async () => {
    const { host } = formatHost(formatsFrom(['q4', 'fp16'], ['native']))
    await expect(selectModel(host, { dtype: 'fp16' })).rejects.toMatchObject({
      code: 'edge_unavailable',
      message: expect.stringContaining('in fp16 on native on this server: the package holds no fp16 weights'),
    })
    const answered = await selectModel(host, { dtype: 'fp16', fallback: true })
    expect(answered.model.info.dtype).toBe('q4')
    expect(answered.fallback).toContain('the package holds no fp16 weights')
  })

  it('a package file the server may not read (a mounted folder copied 0600 by root): the reason ends its sentence and says how to fix it', async () => {
    // Node's fs error as readFile throws it for such a file; tests run as root, which reads
    // every file, so the error is made here rather than by chmod.
    const denied = Object.assign(new Error("EACCES: permission denied, open '/model/tokenizer.json'"), {
      code: 'EACCES',
      path: '/model/tokenizer.json',
    })
    const host = createModelHost({
      modelId: 'm',
      load: () => Promise.reject(denied),
    })
    const error = await host.preload().catch((caught: unknown) => caught)
    expect(error).toMatchObject({ code: 'edge_unavailable' })
    expect((error as Error).message).toMatch(
      /on this server: EACCES: permission denied, open '\/model\/tokenizer\.json'\. Make every file of the package readable by this server \(user id \d+\), e\.g\. `chmod -R a\+rX` on the package folder\. The operator must fix/,
    )
  })

  it("a setting the package cannot meet (a context above the model's) blames the settings, not the package", async () => {
    // It said "The operator must fix the model package" for `serve --context 4096` on a
    // 2048-token model.
    const host = createModelHost({
      modelId: 'm',
      load: () =>
        Promise.reject(
          new InvalidArgumentError(
            'contextLength',
            "contextLength 4096 is above the model's context of 2048 tokens.",
          ),
        ),
    })
    const error = await host.preload().catch((caught: unknown) => caught)
    expect(error).toMatchObject({ code: 'edge_unavailable' })
    expect((error as Error).message).toMatch(
      /above the model's context of 2048 tokens\. The operator must fix the server's settings \(contextLength\); retry later\.$/,
    )
  })

  it('a backend the server cannot run (onnxruntime-node not installed) blames the backend, not the package', async () => {
    // `ondevice serve --backend native` without onnxruntime-node said "The operator must fix the
    // model package". The error is the one client-runtime/node-host.ts throws there.
    const host = createModelHost({
      modelId: 'm',
      load: () =>
        Promise.reject(
          new BackendError(
            'backend_unavailable',
            "backend 'native' needs onnxruntime-node, which is not installed: `npm install onnxruntime-node`, or use backend 'wasm'.",
          ),
        ),
    })
    const error = await host.preload().catch((caught: unknown) => caught)
    expect(error).toMatchObject({ code: 'edge_unavailable' })
    expect((error as Error).message).toMatch(/which is not installed: `npm install onnxruntime-node`/)
    expect((error as Error).message).not.toContain('model package')
    expect((error as Error).message).toMatch(/The operator must fix the server's backend .*; retry later\.$/)
  })

  it('a format its admission refuses (a memory budget) is not loaded: refused, or the default with the reason', async () => {
    // Room for two formats: the default and one more, whichever is named first.
    const asked: { format: ModelFormat; held: readonly ModelFormat[] }[] = []
    const { host, loaded } = formatHost(
      formatsFrom(['q4', 'q8'], ['native', 'wasm']),
      {},
      async (format, held) => {
        asked.push({ format, held })
        await new Promise((resolve) => setTimeout(resolve, 5))
        return held.length >= 2 ? 'over the memory budget' : undefined
      },
    )
    await host.load()
    // Two new formats at once: admissions take turns, so only one gets the room.
    const [first, second] = await Promise.allSettled([
      selectModel(host, { dtype: 'q8', backend: 'native' }),
      selectModel(host, { dtype: 'q4', backend: 'wasm' }),
    ])
    expect(first).toMatchObject({
      status: 'fulfilled',
      value: { model: { info: { dtype: 'q8', backend: 'native' } } },
    })
    expect(second).toMatchObject({
      status: 'rejected',
      reason: { code: 'unsupported', param: 'ondevice_format' },
    })
    expect((second as PromiseRejectedResult).reason.message).toContain(
      'q4 on wasm is not loaded: over the memory budget',
    )
    expect(loaded).toEqual([
      { dtype: 'q4', backend: 'native' },
      { dtype: 'q8', backend: 'native' },
    ])
    expect(asked.map(({ held }) => held.length)).toEqual([1, 2])
    const fellBack = await selectModel(host, { dtype: 'q4', backend: 'wasm', fallback: true })
    expect(fellBack.model.info).toMatchObject({ dtype: 'q4', backend: 'native' })
    expect(fellBack.fallback).toContain('over the memory budget')
    // Formats already loaded are never asked again.
    expect((await selectModel(host, { dtype: 'q8', backend: 'native' })).fallback).toBeUndefined()
    expect(asked).toHaveLength(3)
  })

  it('a host with one model and no select: served when it is the format, refused or fallen back otherwise', async () => {
    const { host: inner } = formatHost([{ dtype: 'q8', backend: 'wasm' }])
    const single: ModelHost = { modelId: inner.modelId, load: inner.load, status: inner.status }
    expect((await selectModel(single, { dtype: 'q8', backend: 'wasm' })).fallback).toBeUndefined()
    await expect(selectModel(single, { backend: 'native' })).rejects.toMatchObject({ code: 'unsupported' })
    expect((await selectModel(single, { backend: 'native', fallback: true })).fallback).toMatch(
      /^Asked for any dtype on native; answered in q8 on wasm/,
    )
  })
})

describe('the app with ondevice_format', () => {
  const apiKey = 'test-key-0123456789abcdef'
  const messages = [{ role: 'user', content: 'Tell me a story about a secret garden.' }]
  function setup() {
    const { host, loaded } = formatHost(formatsFrom(['q4', 'q8'], ['native', 'wasm']))
    const app = createApp({ modelHost: host, apiKeys: [apiKey], log: () => {} })
    const post = (body: Record<string, unknown>) =>
      app.request('/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages, max_tokens: 4, temperature: 0, ...body }),
      })
    return { app, post, loaded }
  }

  it('answers in the named format, JSON and SSE, and says what ran in headers and usage', async () => {
    const { post } = setup()
    const json = await post({ ondevice_format: { dtype: 'q8', backend: 'wasm' } })
    expect(json.status).toBe(200)
    expect(json.headers.get('x-ondevice-dtype')).toBe('q8')
    expect(json.headers.get('x-ondevice-backend')).toBe('wasm')
    expect(json.headers.get('x-ondevice-format-fallback')).toBeNull()
    const body = (await json.json()) as ChatCompletionResponse
    expect(body.usage).toMatchObject({ dtype: 'q8', backend: 'wasm' })
    expect(body.system_fingerprint).toBe('ondevice-0.1.0:m:q8:wasm')
    expect(body.ondevice?.format_fallback).toBeUndefined()
    const stream = await post({
      stream: true,
      stream_options: { include_usage: true },
      ondevice_format: { dtype: 'q4', backend: 'wasm' },
    })
    expect(stream.headers.get('x-ondevice-dtype')).toBe('q4')
    expect(stream.headers.get('x-ondevice-backend')).toBe('wasm')
    const text = await stream.text()
    expect(text).toContain('"backend":"wasm","dtype":"q4"')
    // Without a format: the default, named in the headers all the same.
    const plain = await post({})
    expect(plain.headers.get('x-ondevice-dtype')).toBe('q4')
    expect(plain.headers.get('x-ondevice-backend')).toBe('native')
    await plain.body?.cancel()
  })

  it('refuses a format it cannot run with 400 unsupported in OpenAI shape; with fallback answers and says so', async () => {
    const { post, app, loaded } = setup()
    const refused = await post({ ondevice_format: { dtype: 'fp32', backend: 'webgpu' } })
    expect(refused.status).toBe(400)
    const error = ((await refused.json()) as { error: Record<string, unknown> }).error
    expect(error).toMatchObject({
      type: 'invalid_request_error',
      code: 'unsupported',
      param: 'ondevice_format',
    })
    expect(error['message']).toMatch(/does not serve fp32 on webgpu \(it serves q4 on native, q8 on native/)
    const unknown = await post({ ondevice_format: { dtype: 'q5' } })
    expect(unknown.status).toBe(400)
    expect(await unknown.json()).toMatchObject({
      error: { code: 'invalid_argument', param: 'ondevice_format.dtype' },
    })
    const fallenBack = await post({ ondevice_format: { dtype: 'fp32', backend: 'webgpu', fallback: true } })
    expect(fallenBack.status).toBe(200)
    expect(fallenBack.headers.get('x-ondevice-format-fallback')).toMatch(
      /^Asked for fp32 on webgpu; answered in q4 on native/,
    )
    const body = (await fallenBack.json()) as ChatCompletionResponse
    expect(body.usage).toMatchObject({ dtype: 'q4', backend: 'native' })
    expect(body.ondevice?.format_fallback).toMatch(/^Asked for fp32 on webgpu; answered in q4 on native/)
    // /healthz lists every format and whether it is loaded.
    const health = (await (await app.request('/healthz')).json()) as { formats: unknown[] }
    expect(health.formats).toEqual([
      { dtype: 'q4', backend: 'native', state: 'ready' },
      { dtype: 'q8', backend: 'native', state: 'idle' },
      { dtype: 'q4', backend: 'wasm', state: 'idle' },
      { dtype: 'q8', backend: 'wasm', state: 'idle' },
    ])
    expect(loaded).toHaveLength(1)
  })
})

describe('the start-up load (preload) against a load a request starts', () => {
  function gatedHost() {
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const host = createModelHost({
      modelId: 'm',
      load: async (): Promise<HostedModel> => {
        await gate
        const tokenizer = qwen3Tokenizer()
        return {
          info: { modelId: 'm', backend: 'native', dtype: 'q4', contextLength: 4096 },
          tokenizer,
          createSession: async () => createTestSession({ vocabularySize: tokenizer.vocabularySize }),
        }
      },
    })
    return { host, release }
  }

  it('while a preload runs, load and select refuse at once (retryable, Retry-After 5 s); afterwards they answer', async () => {
    const { host, release } = gatedHost()
    const preloaded = host.preload()
    expect(host.status()).toEqual({ state: 'loading', startup: true })
    for (const attempt of [host.load(), host.select({ dtype: 'q4' })]) {
      await expect(attempt).rejects.toMatchObject({
        code: 'edge_starting',
        isRetryable: true,
        retryAfterSeconds: 5,
        message: expect.stringMatching(/still loading/),
      })
    }
    release()
    const model = await preloaded
    expect(await host.load()).toBe(model)
    expect(host.status()).toMatchObject({ state: 'ready' })
  })

  it('a load a request starts (a Worker isolate): other requests wait for it, /healthz stays 200', async () => {
    const { host, release } = gatedHost()
    const first = host.load()
    const second = host.load()
    expect(host.status()).toEqual({ state: 'loading' })
    const app = createApp({ modelHost: host })
    expect((await app.request('/healthz')).status).toBe(200)
    release()
    expect(await second).toBe(await first)
  })
})
