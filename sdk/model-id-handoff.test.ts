// The device and the edge name the same package by the same id, however each is told where it
// is: a handoff whose edge model list fails asks the edge for the device's id (edge-model-list.test.ts),
// and an edge that names the package otherwise refuses it (model_not_found). A seeded Qwen3
// fixture whose manifest carries no name (as a package from elsewhere: the id comes from where it
// is) in a folder named with a space, loaded by the real runtime on the device (ondevice's
// WebAssembly engine) and served by `createNodeModelHost` (what `ondevice serve` runs) and by the
// Worker in real workerd (`wrangler dev`, offline), on 127.0.0.1; each edge's GET /v1/models is
// broken in front of it. Before core/model-id.ts's one rule, the device loading
// `.../tiny%20qwen/?v=1` called it '?v=1', serve loading `file:///.../tiny%20qwen/` 'tiny%20qwen',
// and the folder itself was 'tiny qwen': every handoff below was refused.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { createRuntimeDeviceHost } from '../client-runtime/device-host/index.ts'
import { createNodeStore } from '../client-runtime/store/node-store.ts'
import type { StreamPart } from '../core/stream-parts.ts'
import { type StaticServer, startStaticServer } from '../demo/static-server.ts'
import { withFaults } from '../test/sdk/test-device-host.ts'
import { serveApp, type TestEdge } from '../test/sdk/test-edge.ts'
import { writeWorkerConfig } from '../test/workerd/worker-config.ts'
import { type LocalServer, startWranglerDev } from '../tools/wrangler-dev.ts'
import { createApp } from '../worker/app.ts'
import { createNodeModelHost } from '../worker/node.ts'
import { createClient } from './client.ts'

const messages = [{ role: 'user' as const, content: 'Write a haiku about rivers.' }]
const request = { messages, temperature: 0.8, topK: 40, seed: 42, maxTokens: 8 }
const id = 'tiny qwen'

let workDir: string
let packageDir: string
let site: StaticServer
/** The package over HTTP, named as a page might: percent-encoded, with a query string. */
let packageUrl: string
let reference: { text: string; tokenIds: readonly number[] }
const closers: (() => Promise<unknown>)[] = []

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ondevice-model-id-'))
  packageDir = join(workDir, 'site', 'models', id)
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: 'q8', seed: 3 })
  const manifestPath = join(packageDir, 'manifest.json')
  const { name: _name, ...manifest } = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<
    string,
    unknown
  >
  await writeFile(manifestPath, JSON.stringify(manifest))
  site = await startStaticServer({ mounts: [{ prefix: '/', directory: join(workDir, 'site') }] })
  packageUrl = `${site.url}/models/tiny%20qwen/?v=1`
  // By URL: the download lands in the device's store, so a later client starts on the device
  // (one with the package still to download asks the edge first, with no device id to send).
  const device = createDeviceClient(packageUrl, undefined, undefined)
  const answer = await device.chat(request)
  expect(answer.route).toBe('device')
  reference = answer
  await device.dispose()
}, 120_000)

afterAll(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined)
  await site?.close()
  if (workDir) await rm(workDir, { recursive: true, force: true })
})

function createDeviceClient(model: string, edgeUrl: string | undefined, failAtToken: number | undefined) {
  const deviceHost = createRuntimeDeviceHost({
    store: createNodeStore({ cacheDir: join(workDir, 'device-cache') }),
    ...(failAtToken === undefined ? {} : { wrapSession: (session) => withFaults(session, { failAtToken }) }),
  })
  return createClient(
    {
      model,
      backend: 'wasm',
      policy: edgeUrl === undefined ? 'device-only' : 'prefer-device',
      // A 2-core CI box runs this tiny fixture slowly; the probe must not send it to the edge.
      thresholds: { minDeviceTokensPerSecond: 1 },
      ...(edgeUrl === undefined ? {} : { edge: { url: edgeUrl } }),
    },
    { deviceHost },
  )
}

/** An edge in front of `handler` whose model list answers 503, so a handoff asks for the device's id. */
async function withoutModelList(
  handler: (request: Request) => Response | Promise<Response>,
): Promise<TestEdge> {
  const edge = await serveApp((incoming) => {
    if (new URL(incoming.url).pathname !== '/v1/models') return handler(incoming)
    return Response.json(
      { error: { message: 'blocked by a proxy', type: 'server_error', code: 'overloaded', param: null } },
      { status: 503 },
    )
  }, id)
  closers.push(() => edge.close())
  return edge
}

async function handOff(deviceModel: string, edge: TestEdge, edgeId = id): Promise<void> {
  const client = createDeviceClient(deviceModel, edge.url, 3)
  try {
    const parts: StreamPart[] = []
    for await (const part of client.stream(request)) parts.push(part)
    const finish = parts.at(-1)
    if (finish?.type !== 'finish') throw new Error(`ended with ${JSON.stringify(parts.at(-1))}`)
    expect(parts.find((part) => part.type === 'handoff')).toMatchObject({ completedTokens: 3 })
    expect(finish.usage.route).toBe('device+edge')
    expect(edge.chatBodies.at(-1)).toMatchObject({ model: edgeId })
    expect(finish.tokenIds).toEqual(reference.tokenIds)
  } finally {
    await client.dispose()
  }
}

describe('device and edge give a package the same id, however each names where it is', () => {
  it('the device loads it by URL (percent-encoded, a query string), `ondevice serve` from its folder', async () => {
    const host = createNodeModelHost({ model: packageDir, dtype: 'q8', backend: 'wasm' })
    expect(host.modelId).toBe(id)
    const app = createApp({ modelHost: host, log: () => undefined })
    closers.push(async () => host.dispose())
    await handOff(packageUrl, await withoutModelList((incoming) => app.fetch(incoming)))
  }, 120_000)

  it('the device loads its folder, `ondevice serve` a file:// URL of it', async () => {
    const fileUrl = pathToFileURL(`${packageDir}/`).href
    expect(fileUrl).toContain('tiny%20qwen')
    const host = createNodeModelHost({ model: fileUrl, dtype: 'q8', backend: 'wasm' })
    expect(host.modelId).toBe(id)
    const app = createApp({ modelHost: host, log: () => undefined })
    closers.push(async () => host.dispose())
    await handOff(packageDir, await withoutModelList((incoming) => app.fetch(incoming)))
  }, 120_000)

  it("a package whose manifest has a name: the device's model is called by it, the edge (which does not read it) by the folder's; a handoff asks for the folder's", async () => {
    // The same weights (seed 3) in another folder, its manifest's name kept (the fixture's
    // `qwen3-…-seed3`, as `ondevice convert` and the fixtures write one). The handoff asked the
    // edge for that name: model_not_found mid-answer.
    const named = join(workDir, 'site', 'models', 'named qwen')
    await writeFixture({ arch: 'qwen3', outDir: named, dtype: 'q8', seed: 3 })
    const manifestName = (
      JSON.parse(await readFile(join(named, 'manifest.json'), 'utf8')) as { name?: unknown }
    ).name
    expect(typeof manifestName === 'string' && manifestName !== 'named qwen').toBe(true)
    const host = createNodeModelHost({ model: named, dtype: 'q8', backend: 'wasm' })
    expect(host.modelId).toBe('named qwen')
    const app = createApp({ modelHost: host, log: () => undefined })
    closers.push(async () => host.dispose())
    // The device's model keeps the manifest's name as its id.
    const loaded = await createRuntimeDeviceHost({
      store: createNodeStore({ cacheDir: join(workDir, 'device-cache') }),
    }).load(named, { backend: 'wasm' })
    try {
      expect(loaded.modelId).toBe(manifestName)
    } finally {
      await loaded.dispose()
    }
    await handOff(named, await withoutModelList((incoming) => app.fetch(incoming)), 'named qwen')
    // By URL, once downloaded (a device with the package still to download starts on the edge).
    const url = `${site.url}/models/named%20qwen/?v=1`
    const download = createDeviceClient(url, undefined, undefined)
    try {
      expect((await download.chat(request)).tokenIds).toEqual(reference.tokenIds)
    } finally {
      await download.dispose()
    }
    await handOff(url, await withoutModelList((incoming) => app.fetch(incoming)), 'named qwen')
  }, 120_000)

  it('the Worker in workerd with MODEL_URL the URL the device loads', async () => {
    const directory = join(workDir, 'worker')
    await mkdir(join(directory, 'assets'), { recursive: true })
    const configPath = await writeWorkerConfig({
      directory,
      assetsDirectory: join(directory, 'assets'),
      vars: { MODEL_URL: packageUrl },
    })
    const worker: LocalServer = await startWranglerDev({ configPath, stateDir: join(directory, 'state') })
    closers.push(() => worker.stop())
    const listed = (await (await fetch(`${worker.url}/v1/models`)).json()) as { data: { id: string }[] }
    expect(listed.data.map((model) => model.id)).toEqual([id])
    // Forwarded whole (the request's body read first: a Node Request streams it once).
    await handOff(
      packageUrl,
      await withoutModelList(async (incoming) => {
        const url = new URL(incoming.url)
        return fetch(`${worker.url}${url.pathname}${url.search}`, {
          method: incoming.method,
          headers: incoming.headers,
          ...(incoming.method === 'GET' || incoming.method === 'HEAD'
            ? {}
            : { body: await incoming.arrayBuffer() }),
        })
      }),
    )
  }, 240_000)
})
