import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createNodeStore, type NodeStoreOptions } from './node-store.ts'
import type { DownloadProgress } from './types.ts'

const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex')

// A deterministic 300 KB "weights" file and a small package around it.
const weights = new Uint8Array(300_000).map((_, index) => (index * 7919) % 251)
const config = JSON.stringify({ model_type: 'llama' })
const files: Record<string, Uint8Array> = {
  'config.json': new TextEncoder().encode(config),
  'onnx/model.onnx': weights,
}
const manifest = JSON.stringify({
  format: 'ondevice-package/1',
  modelType: 'llama',
  dtypes: ['fp32'],
  files: Object.entries(files).map(([path, bytes]) => ({ path, bytes: bytes.length, sha256: sha256(bytes) })),
})

type Behaviour = (request: IncomingMessage, response: ServerResponse, path: string) => boolean

interface TestServer {
  readonly prefix: string
  readonly requests: { path: string; range: string | undefined; method: string }[]
  behaviour: Behaviour | undefined
}

/** A real HTTP server on 127.0.0.1 serving `/pkg/*` from memory, with Range support. */
async function startServer(): Promise<TestServer & { server: Server }> {
  const state: TestServer & { server?: Server } = { prefix: '', requests: [], behaviour: undefined }
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname.replace(/^\/pkg\//, ''))
    state.requests.push({ path, range: request.headers.range, method: request.method ?? 'GET' })
    if (state.behaviour?.(request, response, path)) return
    const body = path === 'manifest.json' ? new TextEncoder().encode(manifest) : files[path]
    if (!body) {
      response.writeHead(404).end('not found')
      return
    }
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '')
    const start = range ? Number(range[1]) : 0
    response.writeHead(range ? 206 : 200, { 'content-length': body.length - start, 'accept-ranges': 'bytes' })
    response.end(request.method === 'HEAD' ? undefined : body.subarray(start))
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  state.server = server
  return Object.assign(state, {
    prefix: `http://127.0.0.1:${(server.address() as AddressInfo).port}/pkg/`,
    server,
  })
}

let server: Awaited<ReturnType<typeof startServer>>
let cacheDir: string

beforeAll(async () => {
  server = await startServer()
})
afterAll(async () => {
  server.server.closeAllConnections()
  await new Promise((done) => server.server.close(done))
})
afterEach(async () => {
  server.behaviour = undefined
  server.requests.length = 0
  await rm(cacheDir, { recursive: true, force: true })
})
const newStore = async (quotaBytes?: number, options: NodeStoreOptions = {}) => {
  cacheDir = await mkdtemp(join(tmpdir(), 'ondevice-store-'))
  return createNodeStore({
    cacheDir,
    onWarning: () => undefined,
    ...(quotaBytes ? { quotaBytes } : {}),
    ...options,
  })
}
const onnxGets = () => server.requests.filter((r) => r.path === 'onnx/model.onnx' && r.method === 'GET')

describe('node store over HTTP', () => {
  it('downloads with progress, verifies, reports cached, and deletes', async () => {
    const store = await newStore()
    const pkg = await store.open(server.prefix)
    expect(pkg.manifest?.files).toHaveLength(2)
    expect(await store.isCached(server.prefix)).toBe(false)
    const events: DownloadProgress[] = []
    await pkg.ensure(['config.json', 'onnx/model.onnx'], { onProgress: (event) => events.push(event) })
    expect(await pkg.readBytes('onnx/model.onnx')).toEqual(weights)
    const last = events.at(-1)
    expect(last?.totalBytes).toBe(weights.length + files['config.json']!.length)
    expect(last?.loadedBytes).toBe(last?.totalBytes)
    expect(
      events.some(
        (event) =>
          event.phase === 'download' &&
          event.file === 'onnx/model.onnx' &&
          event.fileTotalBytes === weights.length,
      ),
    ).toBe(true)
    expect(await store.isCached(server.prefix)).toBe(true)
    // Offline reopen: the stored manifest and files serve without the network.
    server.behaviour = (_request, response) => {
      response.socket?.destroy()
      return true
    }
    const offline = await createNodeStore({ cacheDir, onWarning: () => undefined }).open(server.prefix)
    expect(await offline.readText('config.json')).toBe(config)
    server.behaviour = undefined
    await store.delete(server.prefix)
    expect(await store.isCached(server.prefix)).toBe(false)
  })

  it('resumes an interrupted download with an HTTP Range request', async () => {
    const store = await newStore(undefined, { downloadRetries: 0 })
    let cut = true
    server.behaviour = (request, response, path) => {
      if (path !== 'onnx/model.onnx' || !cut) return false
      cut = false
      // Send the first 100 KB, then drop the connection mid-body.
      response.writeHead(200, { 'content-length': weights.length })
      response.write(weights.subarray(0, 100_000), () => setTimeout(() => request.socket.destroy(), 50))
      return true
    }
    const pkg = await store.open(server.prefix)
    await expect(pkg.ensure(['onnx/model.onnx'])).rejects.toMatchObject({
      code: 'download_failed',
      isRetryable: true,
    })
    await pkg.ensure(['onnx/model.onnx'])
    expect(onnxGets().map((r) => r.range)).toEqual([undefined, 'bytes=100000-'])
    expect(await pkg.readBytes('onnx/model.onnx')).toEqual(weights)
    // By default the load itself tries again (after a pause), resuming the same way.
    cut = true
    server.requests.length = 0
    const retrying = createNodeStore({ cacheDir, downloadRetryDelayMs: 10, onWarning: () => undefined })
    await retrying.delete(server.prefix)
    await (await retrying.open(server.prefix)).ensure(['onnx/model.onnx'])
    expect(onnxGets().map((r) => r.range)).toEqual([undefined, 'bytes=100000-'])
  })

  it('discard() drops a stored file, its memo entry and any partial, so the next ensure downloads it again', async () => {
    const store = await newStore()
    const pkg = await store.open(server.prefix)
    await pkg.ensure(['config.json', 'onnx/model.onnx'])
    await pkg.discard?.(['onnx/model.onnx'])
    expect(await store.isCached(server.prefix, ['onnx/model.onnx'])).toBe(false)
    expect(await store.isCached(server.prefix, ['config.json'])).toBe(true)
    const memo = await (await import('node:fs/promises')).readFile(join(cacheDir, 'verified.json'), 'utf8')
    expect(memo).not.toContain('model.onnx')
    await expect(pkg.discard?.(['../escape'])).rejects.toMatchObject({ code: 'model_invalid' })
    await pkg.ensure(['onnx/model.onnx'])
    expect(onnxGets()).toHaveLength(2)
    expect(await pkg.readBytes('onnx/model.onnx')).toEqual(weights)
  })

  it('refuses an idleTimeoutMs that is not a positive number of milliseconds', () => {
    for (const idleTimeoutMs of [0, -1, Number.NaN, 2 ** 40]) {
      expect(() => createNodeStore({ cacheDir: tmpdir(), idleTimeoutMs })).toThrow(/idleTimeoutMs/)
    }
  })

  it('rejects a corrupted file and keeps nothing of it', async () => {
    const store = await newStore()
    server.behaviour = (_request, response, path) => {
      if (path !== 'onnx/model.onnx') return false
      const corrupted = weights.slice()
      corrupted[1234] = (corrupted[1234]! + 1) % 256
      response.writeHead(200, { 'content-length': corrupted.length }).end(corrupted)
      return true
    }
    const pkg = await store.open(server.prefix)
    await expect(pkg.readBytes('onnx/model.onnx')).rejects.toMatchObject({
      name: 'StoreError',
      code: 'integrity_failed',
    })
    const left = await readdir(join(pkg.directory!, 'onnx')).catch(() => [])
    expect(left).toEqual([])
    expect(await store.isCached(server.prefix, ['onnx/model.onnx'])).toBe(false)
  })

  it('gives a clear error for a missing file and for a URL with no package', async () => {
    const store = await newStore()
    server.behaviour = (_request, response, path) => {
      if (path !== 'onnx/model.onnx') return false
      response.writeHead(404).end()
      return true
    }
    const pkg = await store.open(server.prefix)
    await expect(pkg.ensure(['onnx/model.onnx'])).rejects.toMatchObject({
      code: 'model_not_found',
      message: expect.stringMatching(/HTTP 404.*onnx\/model\.onnx/),
    })
    server.behaviour = undefined
    await expect(store.open(server.prefix.replace('/pkg/', '/nothing-here/'))).rejects.toMatchObject({
      code: 'model_not_found',
      message: expect.stringMatching(/No model package at .*nothing-here/),
    })
  })

  it('shares one download between concurrent loads', async () => {
    const store = await newStore()
    const other = createNodeStore({ cacheDir, onWarning: () => undefined })
    const [first, second] = await Promise.all([store.open(server.prefix), other.open(server.prefix)])
    await Promise.all([first.ensure(['onnx/model.onnx']), second.ensure(['onnx/model.onnx'])])
    expect(onnxGets()).toHaveLength(1)
    expect(await second.readBytes('onnx/model.onnx')).toEqual(weights)
  })

  it('fails cleanly when the quota is too small, leaving no partial entry', async () => {
    const store = await newStore(100_000)
    const pkg = await store.open(server.prefix)
    await expect(pkg.ensure(['onnx/model.onnx'])).rejects.toMatchObject({ code: 'storage_quota_exceeded' })
    expect(onnxGets()).toHaveLength(0)
    expect(await store.isCached(server.prefix, ['onnx/model.onnx'])).toBe(false)
    expect((await store.estimate()).availableBytes).toBeLessThanOrEqual(100_000)
  })

  it('loads a URL package without manifest.json with a warning, sizes from HTTP', async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'ondevice-store-'))
    const warnings: string[] = []
    const store = createNodeStore({ cacheDir, onWarning: (message) => warnings.push(message) })
    server.behaviour = (_request, response, path) => {
      if (path !== 'manifest.json') return false
      response.writeHead(404).end()
      return true
    }
    const pkg = await store.open(server.prefix)
    expect(pkg.manifest).toBeUndefined()
    expect(warnings).toEqual([expect.stringMatching(/no manifest\.json.*without an integrity check/)])
    const events: DownloadProgress[] = []
    await pkg.ensure(['onnx/model.onnx'], { onProgress: (event) => events.push(event) })
    expect(events.at(-1)).toMatchObject({
      phase: 'done',
      loadedBytes: weights.length,
      totalBytes: weights.length,
    })
    expect(await pkg.readBytes('onnx/model.onnx')).toEqual(weights)
  })

  it('rejects manifest paths that climb out of the package', async () => {
    const store = await newStore()
    server.behaviour = (_request, response, path) => {
      if (path !== 'manifest.json') return false
      response.writeHead(200).end(
        JSON.stringify({
          format: 'ondevice-package/1',
          files: [{ path: '../../evil', bytes: 1, sha256: '0'.repeat(64) }],
        }),
      )
      return true
    }
    await expect(store.open(server.prefix)).rejects.toMatchObject({
      code: 'model_invalid',
      message: expect.stringMatching(/Unsafe .*\.\.\/\.\.\/evil/),
    })
  })
})

describe('node store over a local folder', () => {
  it('verifies once, remembers by size+mtime, and notices a changed file', async () => {
    const store = await newStore()
    const folder = join(cacheDir, 'pkg')
    await mkdir(join(folder, 'onnx'), { recursive: true })
    for (const [path, bytes] of Object.entries(files)) await writeFile(join(folder, path), bytes)
    await writeFile(join(folder, 'manifest.json'), manifest)
    // Whole seconds, so setting the same mtime again later is exact.
    const fixedTime = new Date(1_700_000_000_000)
    await utimes(join(folder, 'onnx', 'model.onnx'), fixedTime, fixedTime)
    await (await store.open(folder)).ensure(['onnx/model.onnx'])
    const memo = JSON.parse(
      await (await import('node:fs/promises')).readFile(join(cacheDir, 'verified.json'), 'utf8'),
    ) as Record<string, { sha256: string }>
    expect(memo[join(folder, 'onnx', 'model.onnx')]?.sha256).toBe(sha256(weights))
    // Same size and mtime but different bytes: the memo trusts it (that is the point of the memo).
    const tampered = weights.slice()
    tampered[0] = 255
    await writeFile(join(folder, 'onnx', 'model.onnx'), tampered)
    await utimes(join(folder, 'onnx', 'model.onnx'), fixedTime, fixedTime)
    await (await createNodeStore({ cacheDir }).open(folder)).ensure(['onnx/model.onnx'])
    // A new mtime makes it hash again, and the change is caught.
    await utimes(join(folder, 'onnx', 'model.onnx'), new Date(), new Date())
    await expect(
      (await createNodeStore({ cacheDir }).open(folder)).ensure(['onnx/model.onnx']),
    ).rejects.toMatchObject({ code: 'integrity_failed' })
  })

  it('loads a folder without manifest with a warning; rejects a missing path and a non-package folder', async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'ondevice-store-'))
    const warnings: string[] = []
    const store = createNodeStore({ cacheDir, onWarning: (message) => warnings.push(message) })
    const folder = join(cacheDir, 'bare')
    await mkdir(folder)
    await expect(store.open(folder)).rejects.toMatchObject({
      code: 'model_invalid',
      message: expect.stringMatching(/not a model package.*config\.json/),
    })
    await writeFile(join(folder, 'config.json'), config)
    const pkg = await store.open(folder)
    expect(warnings[0]).toMatch(/no manifest\.json/)
    expect(await pkg.readText('config.json')).toBe(config)
    // The folder is the user's: discard() leaves it as it is.
    await pkg.discard?.(['config.json'])
    expect(await pkg.readText('config.json')).toBe(config)
    await expect(store.open(join(folder, 'missing'))).rejects.toMatchObject({
      code: 'model_not_found',
      message: expect.stringMatching(/does not exist/),
    })
  })
})
