// An edge that cannot answer chats must not report healthy. The embedded default package served
// over real HTTP as the edge's URL source (the Workers entry's loader: verifyPackage, then
// loadEdgeModel on ONNX Runtime Web's WASM): with a file manifest.json lists left out of the
// upload (tokenizer_config.json, which holds the chat template), and with no chat template at
// all, the load fails, /healthz answers 503 naming the cause and a chat gets that reason, never
// `loaded: true` with every chat a 400.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureDefaultPackage } from '../builder/default-package.ts'
import { defaultCacheDir } from '../client-runtime/store/node-store.ts'
import { loadEngineModule } from '../wasm/engine/node.ts'
import { loadOrtWebForNode } from '../wasm/node.ts'
import { createApp } from './app.ts'
import { loadEdgeModel } from './edge-model.ts'
import { createModelHost } from './model-host.ts'
import { urlPackageReader, verifyPackage } from './package-sources.ts'

let folder: string
let server: Server
let base: string

beforeAll(async () => {
  const source = await ensureDefaultPackage({ cacheDir: defaultCacheDir() })
  folder = await mkdtemp(join(tmpdir(), 'ondevice-incomplete-'))
  // "missing": uploaded without tokenizer_config.json, which manifest.json lists.
  await cp(source, join(folder, 'missing'), { recursive: true })
  await rm(join(folder, 'missing', 'tokenizer_config.json'))
  // "untemplated": a consistent package (manifest rewritten) whose tokenizer has no chat template.
  await cp(source, join(folder, 'untemplated'), { recursive: true })
  const configPath = join(folder, 'untemplated', 'tokenizer_config.json')
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>
  delete config['chat_template']
  const configText = JSON.stringify(config)
  await writeFile(configPath, configText)
  const manifestPath = join(folder, 'untemplated', 'manifest.json')
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as {
    files: { path: string; bytes: number; sha256: string }[]
  }
  const { createHash } = await import('node:crypto')
  for (const entry of manifest.files) {
    if (entry.path !== 'tokenizer_config.json') continue
    entry.bytes = Buffer.byteLength(configText)
    entry.sha256 = createHash('sha256').update(configText).digest('hex')
  }
  await writeFile(manifestPath, JSON.stringify(manifest))
  server = createServer((request, response) => {
    const path = join(folder, decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname))
    // One connection per request: a kept-alive socket the server times out while the client
    // reuses it (a loaded machine between the two tests) fails a fetch for no reason of ours.
    response.setHeader('connection', 'close')
    readFile(path).then(
      (body) => response.end(body),
      () => {
        response.statusCode = 404
        response.end('not found')
      },
    )
  })
  // Node's default 5 s keep-alive closes a socket the edge's fetch may reuse after a long verify
  // (sha256 of the weights on a loaded machine): the next fetch then fails with ECONNRESET.
  server.keepAliveTimeout = 120_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
}, 120_000)

afterAll(async () => {
  await new Promise<void>((resolve) => server?.close(() => resolve()))
  if (folder) await rm(folder, { recursive: true, force: true })
})

/** The Workers entry's app (worker/index.ts createWorkerApp), with Node's WASM ORT for workerd's. */
function edgeApp(prefix: string) {
  const where = `${base}/${prefix}/`
  const modelHost = createModelHost({
    modelId: 'ondevice-default',
    load: async () => {
      const verified = await verifyPackage(urlPackageReader(where), { source: where, requireManifest: true })
      const { ort } = await loadOrtWebForNode({ numThreads: 1 })
      return loadEdgeModel({
        ort,
        reader: verified.reader,
        modelId: 'ondevice-default',
        backend: 'wasm',
        engine: await loadEngineModule(),
        availableDtypes: verified.manifest?.dtypes,
      })
    },
  })
  return createApp({ modelHost, log: () => {} })
}

async function chat(app: ReturnType<typeof edgeApp>): Promise<Response> {
  return app.request('/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'ondevice-default',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 2,
    }),
  })
}

describe('an edge whose package cannot answer chats is not healthy', () => {
  it('a file manifest.json lists but the upload lacks: the load fails, /healthz 503 names it', async () => {
    const app = edgeApp('missing')
    const response = await chat(app)
    expect(response.status).toBe(503)
    const body = (await response.json()) as { error: { code: string; message: string } }
    expect(body.error.code).toBe('edge_unavailable')
    expect(body.error.message).toMatch(/tokenizer_config\.json is listed in manifest\.json .* missing/)
    const health = await app.request('/healthz')
    expect(health.status).toBe(503)
    const state = (await health.json()) as { loaded: boolean; status: string; error: string }
    expect(state).toMatchObject({ loaded: false, status: 'error' })
    expect(state.error).toMatch(/tokenizer_config\.json/)
  }, 60_000)

  it('a package with no chat template: the load fails, /healthz 503 says why', async () => {
    const app = edgeApp('untemplated')
    const response = await chat(app)
    expect(response.status).toBe(503)
    const health = await app.request('/healthz')
    expect(health.status).toBe(503)
    const state = (await health.json()) as { loaded: boolean; error: string }
    expect(state.loaded).toBe(false)
    expect(state.error).toMatch(/cannot build a chat prompt.*chat_template/)
  }, 60_000)
})
