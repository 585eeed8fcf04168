// The client without an edge: the device path, option validation, aborts and the errors a
// developer sees. The device is core's deterministic test session behind the DeviceHost
// interface with the real Qwen3 tokenizer; the edge cases live in client-edge.test.ts.
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError, OndeviceError } from '../core/errors.ts'
import type { StreamPart } from '../core/stream-parts.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import { type ClientEvents, createClient } from './client.ts'
import type { DeviceHost, DeviceLoadOptions } from './device.ts'
import { type ClientEnvironment, validateClientOptions } from './options.ts'

const messages = [{ role: 'user' as const, content: 'Say something.' }]

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const out: StreamPart[] = []
  for await (const part of parts) out.push(part)
  return out
}

describe('createClient: options', () => {
  const bad: [string, unknown, string][] = [
    ['unknown policy', { policy: 'device-first' }, 'policy'],
    ['empty model', { model: '' }, 'model'],
    ['model not a string', { model: 42 }, 'model'],
    ['edge-only without edge', { policy: 'edge-only' }, 'edge'],
    ['edge without url', { edge: {} }, 'edge.url'],
    ['edge url not a URL', { edge: { url: 'not a url' } }, 'edge.url'],
    ['unknown option', { modle: 'x' }, 'modle'],
    [
      'negative threshold',
      { thresholds: { minDeviceTokensPerSecond: -1 } },
      'thresholds.minDeviceTokensPerSecond',
    ],
    ['unknown threshold', { thresholds: { minSpeed: 3 } }, 'thresholds.minSpeed'],
    ['bad default temperature', { defaults: { temperature: -0.5 } }, 'defaults.temperature'],
    ['bad backend', { backend: 'cuda' }, 'backend'],
    ['unknown dtype (was accepted until the first load)', { dtype: 'q3' }, 'dtype'],
    ['numThreads 0', { numThreads: 0 }, 'numThreads'],
    ['numThreads fractional', { numThreads: 1.5 }, 'numThreads'],
    ['numThreads as text', { numThreads: '2' }, 'numThreads'],
  ]
  it.each(bad)('%s: InvalidArgumentError naming %s', (_name, options, param) => {
    let caught: unknown
    try {
      createClient(options as never, { deviceHost: createTestDeviceHost() })
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError)
    expect((caught as InvalidArgumentError).param).toBe(param)
    expect((caught as Error).message.length).toBeGreaterThan(20)
  })

  // What a page hands createClient (the environment is what detectClientEnvironment() reads in a
  // page; the Chromium browser-app test makes the same calls in a real page).
  const page: ClientEnvironment = { host: 'browser', pageUrl: 'https://app.example/chat/index.html' }
  const badInBrowser: [string, unknown, string, RegExp][] = [
    ["backend 'native'", { model: '/models/m/', backend: 'native' }, 'backend', /'webgpu' or 'wasm'/],
    ['no model', { edge: { url: 'https://ai.example' } }, 'model', /URL prefix.*export-default/],
    ['runtimeUrl on a CDN', { model: '/m/', runtimeUrl: 'https://cdn.example/ort/' }, 'runtimeUrl', /origin/],
    ['runtimeUrl empty', { model: '/m/', runtimeUrl: '' }, 'runtimeUrl', /e\.g\. '\/ort\/'/],
    ['runtimeUrl with a query', { model: '/m/', runtimeUrl: '/ort/?v=1' }, 'runtimeUrl', /folder/],
  ]
  it.each(badInBrowser)(
    'in a browser, %s: InvalidArgumentError naming %s, with the fix',
    (_n, options, param, fix) => {
      let caught: unknown
      try {
        validateClientOptions(options, page)
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(InvalidArgumentError)
      expect((caught as InvalidArgumentError).param).toBe(param)
      expect((caught as Error).message).toMatch(fix)
    },
  )

  it('in a browser: runtimeUrl resolves against the page (the model worker gets an absolute URL); edge-only needs no model', () => {
    expect(validateClientOptions({ model: '/m/', runtimeUrl: 'static/ort' }, page).runtimeUrl).toBe(
      'https://app.example/chat/static/ort/',
    )
    expect(validateClientOptions({ model: '/m/', runtimeUrl: '/ort/' }, page).runtimeUrl).toBe(
      'https://app.example/ort/',
    )
    expect(() =>
      validateClientOptions({ policy: 'edge-only', edge: { url: 'https://ai.example' } }, page),
    ).not.toThrow()
    // Node: runtimeUrl would be silently ignored there, so it is refused (ORT comes from node_modules).
    expect(() => createClient({ runtimeUrl: '/ort/' }, { deviceHost: createTestDeviceHost() })).toThrow(
      /browsers only/,
    )
  })

  it('numThreads goes with every device load (the runtime starts the WASM threads)', async () => {
    const inner = createTestDeviceHost({ cached: true })
    const seen: DeviceLoadOptions[] = []
    const host: DeviceHost = {
      capabilities: () => inner.capabilities(),
      inspect: (model, options) => inner.inspect(model, options),
      load: (model, options) => {
        seen.push(options)
        return inner.load(model, options)
      },
    }
    const client = createClient({ numThreads: 3, backend: 'wasm' }, { deviceHost: host })
    try {
      await client.prepare()
      expect(seen.map((options) => options.numThreads)).toEqual([3])
    } finally {
      await client.dispose()
    }
  })

  it("the device loads the backend the router chose, not the host's first pick (WebGPU too small for the package: wasm)", async () => {
    const inner = createTestDeviceHost({ cached: true })
    const seen: DeviceLoadOptions[] = []
    const host: DeviceHost = {
      capabilities: async () => ({
        ...(await inner.capabilities()),
        webgpu: { available: true, maxBufferSize: 1024, maxStorageBufferBindingSize: 1024 },
        native: false,
      }),
      inspect: async (model, options) => ({
        ...(await inner.inspect(model, options)),
        largestTensorBytes: 4096,
      }),
      load: (model, options) => {
        seen.push(options)
        return inner.load(model, options)
      },
    }
    const client = createClient({ policy: 'device-only' }, { deviceHost: host })
    try {
      const status = await client.prepare()
      expect(status.reason).toContain('running on wasm (WebGPU buffers limited to 1 KiB')
      expect(seen.map((options) => options.backend)).toEqual(['wasm'])
    } finally {
      await client.dispose()
    }
  })

  const badRequests: [string, unknown, string][] = [
    ['no messages', {}, 'messages'],
    ['empty messages', { messages: [] }, 'messages'],
    ['bad role', { messages: [{ role: 'robot', content: 'x' }] }, 'messages.0.role'],
    ['temperature NaN', { messages, temperature: Number.NaN }, 'temperature'],
    [
      'temperature above 2 (the edge refuses it, so a handoff would fail)',
      { messages, temperature: 2.5 },
      'temperature',
    ],
    ['topP above 1', { messages, topP: 1.5 }, 'topP'],
    ['topK fractional', { messages, topK: 2.5 }, 'topK'],
    ['maxTokens 0', { messages, maxTokens: 0 }, 'maxTokens'],
    ['seed fractional', { messages, seed: 1.5 }, 'seed'],
    ['stop not strings', { messages, stop: [1] }, 'stop.0'],
    ['five stop strings (the edge takes at most 4)', { messages, stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
    ['a 257-character stop string', { messages, stop: ['x'.repeat(257)] }, 'stop.0'],
    ['unknown field', { messages, temprature: 1 }, 'temprature'],
    ['signal not a signal', { messages, signal: {} }, 'signal'],
    [
      'a tool message without toolCallId (the edge refuses it, so the device must too)',
      { messages: [...messages, { role: 'tool', content: '{"celsius":21}' }] },
      'messages.1.toolCallId',
    ],
    // toolCalls were not checked: a number failed inside the template, a call without a name
    // rendered as garbage the model continued.
    [
      'toolCalls not an array',
      { messages: [...messages, { role: 'assistant', content: '', toolCalls: 5 }] },
      'messages.1.toolCalls',
    ],
    [
      'a tool call without a function name',
      { messages: [...messages, { role: 'assistant', content: '', toolCalls: [{}] }] },
      'messages.1.toolCalls.0.function.name',
    ],
    [
      'tool call arguments that are a number',
      {
        messages: [
          ...messages,
          {
            role: 'assistant',
            content: '',
            toolCalls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: 5 } }],
          },
        ],
      },
      'messages.1.toolCalls.0.function.arguments',
    ],
    [
      'toolCalls on a user message',
      { messages: [{ role: 'user', content: 'x', toolCalls: [] }] },
      'messages.0.toolCalls',
    ],
  ]
  it.each(badRequests)(
    'request with %s: InvalidArgumentError naming %s, thrown by stream() itself',
    (_name, request, param) => {
      const client = createClient({}, { deviceHost: createTestDeviceHost() })
      let caught: unknown
      try {
        client.stream(request as never)
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(InvalidArgumentError)
      expect((caught as InvalidArgumentError).param).toBe(param)
    },
  )

  // responseFormat and tools compile with the structured-output code, which loads on demand (the
  // first request that has either waits for it): their mistakes reject stream()'s first read,
  // before anything runs, and chat() rejects with the same error, as it always did.
  const badConstraints: [string, Record<string, unknown>, string][] = [
    [
      "OpenAI's wire wrapper in responseFormat",
      { messages, responseFormat: { type: 'json_schema', json_schema: { schema: {} } } },
      'responseFormat.json_schema',
    ],
    [
      'an unknown responseFormat field',
      { messages, responseFormat: { type: 'json_object', schema: {} } },
      'responseFormat.schema',
    ],
    ['a tool named with a space', { messages, tools: [{ name: 'get weather' }] }, 'tools.0.name'],
  ]
  it.each(badConstraints)(
    'request with %s: InvalidArgumentError naming %s from the first read and from chat(), nothing run',
    async (_name, request, param) => {
      const host = createTestDeviceHost()
      const client = createClient({}, { deviceHost: host })
      const parts = client.stream(request as never)[Symbol.asyncIterator]()
      await expect(parts.next()).rejects.toMatchObject({ constructor: InvalidArgumentError, param })
      await expect(client.chat(request as never)).rejects.toMatchObject({
        constructor: InvalidArgumentError,
        param,
      })
      // Refused before the route: the device was never asked to load.
      expect(host.loads).toBe(0)
      await client.dispose()
    },
  )

  it('on() refuses an unknown event name and a listener that is not a function; prepare() an unknown option', async () => {
    const client = createClient({}, { deviceHost: createTestDeviceHost() })
    expect(() => client.on('handof' as 'handoff', () => {})).toThrow(
      /Unknown event "handof": use one of 'route'/,
    )
    expect(() => client.on('ready', 5 as never)).toThrow(InvalidArgumentError)
    await expect(client.prepare({ onprogress: () => {} } as never)).rejects.toMatchObject({
      code: 'invalid_argument',
      param: 'onprogress',
    })
    await expect(client.prepare({ signal: {} } as never)).rejects.toMatchObject({ param: 'signal' })
    await client.dispose()
  })

  it('chat() rejects bad requests the same way', async () => {
    const client = createClient({}, { deviceHost: createTestDeviceHost() })
    await expect(client.chat({ messages, minP: 2 })).rejects.toMatchObject({
      code: 'invalid_argument',
      param: 'minP',
    })
  })
})

describe('createClient: device path (no edge)', () => {
  it('answers on the device, with route, reason and timings in the result', async () => {
    const host = createTestDeviceHost()
    const client = createClient({ policy: 'device-only' }, { deviceHost: host })
    const result = await client.chat({ messages, maxTokens: 12, seed: 7, temperature: 0.8 })
    expect(result.route).toBe('device')
    expect(result.routeReason).toContain('policy device-only')
    expect(result.tokenIds).toHaveLength(12)
    expect(result.finishReason).toBe('length')
    expect(result.text.length).toBeGreaterThan(0)
    expect(result.usage).toMatchObject({ route: 'device', completionTokens: 12, backend: 'test' })
    expect(result.usage.promptTokens).toBeGreaterThan(5)
    expect(result.usage.timeToFirstTokenMs).toBeGreaterThan(0)
    expect(host.loads).toBe(1)
    // Same seed, same device: the same answer (the model stays loaded).
    const again = await client.chat({ messages, maxTokens: 12, seed: 7, temperature: 0.8 })
    expect(again.tokenIds).toEqual(result.tokenIds)
    expect(host.loads).toBe(1)
    await client.dispose()
  })

  it('streams route, text deltas that add up to the text, then finish', async () => {
    const client = createClient({}, { deviceHost: createTestDeviceHost() })
    const parts = await collect(client.stream({ messages, maxTokens: 8, seed: 3 }))
    expect(parts[0]).toMatchObject({ type: 'route', route: 'device' })
    const finish = parts.at(-1)
    expect(finish?.type).toBe('finish')
    const deltas = parts.filter((p) => p.type === 'text-delta')
    // Only deltas with text reach the reader (a token that shows none rides with the next one).
    expect(deltas.every((p) => p.text !== '')).toBe(true)
    expect(deltas.map((p) => p.text).join('')).toBe(finish?.type === 'finish' ? finish.text : undefined)
    expect(deltas.flatMap((p) => p.tokenIds)).toEqual(finish?.type === 'finish' ? finish.tokenIds : undefined)
    await client.dispose()
  })

  it('no edge configured: downloads first, reports progress, then answers on the device', async () => {
    const host = createTestDeviceHost({ cached: false })
    const client = createClient({}, { deviceHost: host })
    const before = await client.status()
    expect(before).toMatchObject({ route: 'device', cached: false, loaded: false })
    expect(before.reason).toContain('no edge is configured')
    expect(before.reason).toContain('downloading it first')
    const progress: number[] = []
    client.on('progress', (event) => progress.push(event.loadedBytes))
    const result = await client.chat({ messages, maxTokens: 4 })
    expect(result.route).toBe('device')
    expect(progress).toEqual([1_000_000, 2_000_000, 3_000_000, 4_000_000])
    expect(await client.status()).toMatchObject({ cached: true, loaded: true })
    await client.dispose()
  })

  it('prepare() downloads and probes ahead of time, with onProgress', async () => {
    const host = createTestDeviceHost({ cached: false })
    const client = createClient({ policy: 'device-only' }, { deviceHost: host })
    const seen: number[] = []
    const status = await client.prepare({ onProgress: (event) => seen.push(event.loadedBytes) })
    expect(seen).toHaveLength(4)
    expect(status).toMatchObject({ route: 'device', cached: true, loaded: true })
    expect(status.probeTokensPerSecond).toBeGreaterThan(0)
    await client.dispose()
  })

  it("the load's warnings reach the app: the ready event and status().loadWarnings", async () => {
    const warning =
      'numThreads 4 asked for, the WebAssembly engine runs on one thread: the page is not cross-origin isolated.'
    const client = createClient(
      { policy: 'device-only', numThreads: 4 },
      { deviceHost: createTestDeviceHost({ loadWarnings: [warning] }) },
    )
    const ready: ClientEvents['ready'][] = []
    client.on('ready', (event) => ready.push(event))
    try {
      // Nothing loaded, nothing to say yet.
      expect((await client.status()).loadWarnings).toBeUndefined()
      const status = await client.prepare()
      expect(ready).toHaveLength(1)
      expect(ready[0]?.warnings).toEqual([warning])
      expect(status).toMatchObject({ loaded: true, loadWarnings: [warning] })
    } finally {
      await client.dispose()
    }
    // A load with nothing to say: an empty list, so an app can tell "none" from "not loaded".
    const quiet = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const quietReady: ClientEvents['ready'][] = []
    quiet.on('ready', (event) => quietReady.push(event))
    try {
      expect(await quiet.prepare()).toMatchObject({ loaded: true, loadWarnings: [] })
      expect(quietReady[0]?.warnings).toEqual([])
    } finally {
      await quiet.dispose()
    }
  })

  it('no edge and a device that cannot run the package: a clear error, not a hang', async () => {
    const host = createTestDeviceHost({
      capabilities: { wasm: false, native: false, webgpu: { available: false } },
    })
    const client = createClient({}, { deviceHost: host })
    const status = await client.status()
    expect(status.route).toBe('none')
    let caught: unknown
    try {
      await client.chat({ messages })
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(OndeviceError)
    expect((caught as OndeviceError).code).toBe('backend_unavailable')
    expect((caught as Error).message).toContain('no WebGPU and no WebAssembly')
    expect((caught as Error).message).toContain('no edge is configured')
  })

  it('offline with a cached package: answers on the device', async () => {
    const client = createClient({}, { deviceHost: createTestDeviceHost({ capabilities: { online: false } }) })
    const result = await client.chat({ messages, maxTokens: 3 })
    expect(result.route).toBe('device')
    expect(result.routeReason).toContain('offline: answering from what is kept on this device')
    await client.dispose()
  })

  it('a device failure with no edge rejects with the device error', async () => {
    const client = createClient({}, { deviceHost: createTestDeviceHost({ failAtToken: 3 }) })
    await expect(client.chat({ messages, maxTokens: 10 })).rejects.toMatchObject({ code: 'backend_failed' })
    await client.dispose()
  })

  it('abort mid-stream on the device: finish with reason abort, chat() rejects with AbortedError', async () => {
    const client = createClient({}, { deviceHost: createTestDeviceHost({ session: { delayMs: 5 } }) })
    const controller = new AbortController()
    const parts: StreamPart[] = []
    for await (const part of client.stream({ messages, maxTokens: 200, signal: controller.signal })) {
      parts.push(part)
      if (parts.filter((p) => p.type === 'text-delta').length === 3) controller.abort()
    }
    const finish = parts.at(-1)
    expect(finish).toMatchObject({ type: 'finish', finishReason: 'abort' })
    expect(finish?.type === 'finish' && finish.tokenIds.length).toBeLessThan(6)
    const second = new AbortController()
    setTimeout(() => second.abort(), 30)
    await expect(client.chat({ messages, maxTokens: 500, signal: second.signal })).rejects.toMatchObject({
      code: 'aborted',
    })
    await client.dispose()
  })

  it('dispose() frees the model and refuses later calls', async () => {
    const client = createClient({}, { deviceHost: createTestDeviceHost() })
    await client.chat({ messages, maxTokens: 2 })
    await client.dispose()
    expect(() => client.stream({ messages })).toThrow(/disposed/)
  })
})
