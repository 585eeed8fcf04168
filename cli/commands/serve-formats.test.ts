// `ondevice serve` holding more than one format of a package (`--backend native,wasm --dtype
// q4,q8`): the default (native q4) loads at start, the others on the first request that names
// them in `ondevice_format`; headers, usage and /healthz say what ran; a format it cannot run is
// refused, or answered in the default with the reason when the request allows a fallback. And
// what it is for: an SDK device on ondevice's WebAssembly engine in q8 fails at token k, and the
// server, whose default is another quantized model on another engine, continues in the device's
// format: the joined answer equals the device's own, token for token, at temperature 1 with a seed.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { createRuntimeDeviceHost } from '../../client-runtime/device-host/index.ts'
import { createNodeStore } from '../../client-runtime/store/node-store.ts'
import type { ChatCompletionResponse } from '../../core/protocol/index.ts'
import { createClient } from '../../sdk/client.ts'
import { type ServeProcess, startServeProcess } from '../../test/cli/serve-process.ts'
import { type Faults, withFaults } from '../../test/sdk/test-device-host.ts'

const apiKey = 'serve-formats-key-0123456789'
const modelId = 'qwen3-5-tiny'
const request = {
  messages: [{ role: 'user' as const, content: 'Tell me about the sea.' }],
  temperature: 1,
  seed: 11,
  maxTokens: 16,
}
let directory: string
let packageDir: string
let server: ServeProcess
let url: string

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ondevice-serve-formats-'))
  packageDir = join(directory, modelId)
  await writeFixture({ arch: 'qwen3_5', outDir: packageDir, dtype: ['q4', 'q8'] })
  server = await startServeProcess({
    args: ['--model', packageDir, '--port', '0', '--backend', 'native,wasm', '--dtype', 'q4,q8'],
    env: { API_KEYS: apiKey },
    timeoutMs: 110_000,
  })
  url = server.url
}, 120_000)

afterAll(async () => {
  await server?.stop()
  if (directory) await rm(directory, { recursive: true, force: true })
})

async function post(body: Record<string, unknown>): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({
      model: modelId,
      messages: request.messages,
      max_tokens: 4,
      temperature: 0,
      ...body,
    }),
  })
}

async function formatStates(): Promise<string[]> {
  const health = (await (await fetch(`${url}/healthz`)).json()) as {
    formats: { dtype: string; backend: string; state: string }[]
  }
  return health.formats.map((format) => `${format.dtype}/${format.backend}:${format.state}`)
}

function deviceClient(faults: Faults = {}) {
  return createClient(
    {
      model: packageDir,
      backend: 'wasm',
      dtype: 'q8',
      edge: { url, apiKey },
      // A 2-core CI box runs this tiny fixture slowly; the probe must not send it to the edge.
      thresholds: { minDeviceTokensPerSecond: 1 },
    },
    {
      deviceHost: createRuntimeDeviceHost({
        store: createNodeStore({ cacheDir: join(directory, 'device-cache') }),
        wrapSession: (session) => withFaults(session, faults),
      }),
    },
  )
}

describe('ondevice serve with several formats', () => {
  it('loads the default at start and names every format; the default answers a request that names none', async () => {
    expect(server.output()).toContain('(q4 on native,')
    expect(server.output()).toContain(
      'Also serves q8 on native, q4 on wasm, q8 on wasm, each loaded on the first request',
    )
    expect(await formatStates()).toEqual([
      'q4/native:ready',
      'q8/native:idle',
      'q4/wasm:idle',
      'q8/wasm:idle',
    ])
    const response = await post({})
    expect(response.headers.get('x-ondevice-dtype')).toBe('q4')
    expect(response.headers.get('x-ondevice-backend')).toBe('native')
    expect(((await response.json()) as ChatCompletionResponse).usage).toMatchObject({
      dtype: 'q4',
      backend: 'native',
    })
  })

  it('refuses a format it cannot run (400 unsupported, OpenAI shape), answers it in the default with fallback, refuses unknown names', async () => {
    const refused = await post({ ondevice_format: { dtype: 'q4', backend: 'webgpu' } })
    expect(refused.status).toBe(400)
    const { error } = (await refused.json()) as { error: Record<string, string> }
    expect(error).toMatchObject({
      type: 'invalid_request_error',
      code: 'unsupported',
      param: 'ondevice_format',
    })
    expect(error['message']).toContain('does not serve q4 on webgpu (it serves q4 on native, q8 on native')
    const fallenBack = await post({ ondevice_format: { dtype: 'q4', backend: 'webgpu', fallback: true } })
    expect(fallenBack.status).toBe(200)
    expect(fallenBack.headers.get('x-ondevice-format-fallback')).toMatch(
      /^Asked for q4 on webgpu; answered in q4 on native/,
    )
    const body = (await fallenBack.json()) as ChatCompletionResponse
    expect(body.ondevice?.format_fallback).toMatch(/^Asked for q4 on webgpu; answered in q4 on native/)
    const unknown = await post({ ondevice_format: { backend: 'cuda' } })
    expect(unknown.status).toBe(400)
    expect(((await unknown.json()) as { error: Record<string, string> }).error).toMatchObject({
      code: 'invalid_argument',
      param: 'ondevice_format.backend',
    })
  })

  it('a device on the engine in q8 fails at token k: the server continues in q8 on the engine, the answer identical at temperature 1', async () => {
    const device = deviceClient()
    const reference = await device.chat(request)
    await device.dispose()
    expect(reference.route).toBe('device')
    expect(reference.usage).toMatchObject({ backend: 'wasm', dtype: 'q8', completionTokens: 16 })
    for (const k of [1, 6, 13]) {
      const client = deviceClient({ failAtToken: k })
      const result = await client.chat(request)
      await client.dispose()
      expect(result.handoff?.completedTokens, `k=${k}`).toBe(k)
      expect(result.route).toBe('device+edge')
      expect(result.usage).toMatchObject({ backend: 'wasm+wasm', dtype: 'q8' })
      expect(result.tokenIds, `k=${k}`).toEqual(reference.tokenIds)
      expect(result.text).toBe(reference.text)
    }
    // Loaded on the first handoff that named it; the formats nobody asked for stay unloaded.
    expect(await formatStates()).toEqual([
      'q4/native:ready',
      'q8/native:idle',
      'q4/wasm:idle',
      'q8/wasm:ready',
    ])
  }, 120_000)
})
