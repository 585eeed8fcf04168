// The URL store on a bad connection, against a real HTTP server on 127.0.0.1 that misbehaves on
// purpose, one scripted answer per request: connections cut mid-file, stalls, a truncated 200, a
// wrong Content-Length, a 206 for a range not asked for, Range ignored, 500s that recover, a slow
// trickle, and, once the package is stored, a network that refuses, stalls, or answers with a
// captive portal's page. Timeouts are short (options), so each case takes well under a second.
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { OndeviceError } from '../../core/errors.ts'
import { createNodeStore, type NodeStoreOptions } from './node-store.ts'
import type { DownloadProgress } from './types.ts'

const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex')

const weightPath = 'onnx/model.onnx'
const weights = new Uint8Array(200_000).map((_, index) => (index * 7919 + (index >> 8)) % 251)
const files: Record<string, Uint8Array> = {
  'config.json': new TextEncoder().encode(JSON.stringify({ model_type: 'llama' })),
  [weightPath]: weights,
}
const manifest = JSON.stringify({
  format: 'ondevice-package/1',
  modelType: 'llama',
  dtypes: ['fp32'],
  files: Object.entries(files).map(([path, bytes]) => ({ path, bytes: bytes.length, sha256: sha256(bytes) })),
})
const bodyOf = (path: string): Uint8Array | undefined =>
  path === 'manifest.json' ? new TextEncoder().encode(manifest) : files[path]

/** One scripted answer: handles the request itself (true) or lets the plain server answer. */
type Misbehaviour = (request: IncomingMessage, response: ServerResponse, body: Uint8Array) => void

interface Logged {
  readonly method: string
  readonly path: string
  readonly range: string | undefined
}

let server: Server
let prefix: string
let cacheDir: string
const log: Logged[] = []
const scripts = new Map<string, Misbehaviour[]>()
/** Every request fails at the socket: the network is gone. */
let refuseAll = false
/** Every request gets this answer (a captive portal, a proxy), whatever it asks for. */
let portal: Misbehaviour | undefined

/** The next requests of `path` get these answers, in order; later ones the plain server's. */
function script(path: string, ...answers: Misbehaviour[]): void {
  scripts.set(path, [...(scripts.get(path) ?? []), ...answers])
}

/** The plain answer: the file, or the asked range of it (206). */
function serveFile(request: IncomingMessage, response: ServerResponse, body: Uint8Array): void {
  const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '')
  const start = range ? Number(range[1]) : 0
  if (start > body.length) {
    response.writeHead(416, { 'content-range': `bytes */${body.length}` }).end()
    return
  }
  const headers: Record<string, string | number> = {
    'content-length': body.length - start,
    'accept-ranges': 'bytes',
  }
  if (range) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`
  response.writeHead(range ? 206 : 200, headers)
  response.end(request.method === 'HEAD' ? undefined : body.subarray(start))
}

/** Sends the answer's headers and `bytes` bytes of it, then destroys the socket. */
const cutAfter =
  (bytes: number): Misbehaviour =>
  (request, response, body) => {
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '')
    const start = range ? Number(range[1]) : 0
    const headers: Record<string, string | number> = { 'content-length': body.length - start }
    if (range) headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`
    response.writeHead(range ? 206 : 200, headers)
    response.write(body.subarray(start, start + bytes), () =>
      setTimeout(() => response.socket?.destroy(), 100),
    )
  }

/** Headers and `bytes` bytes, then nothing on an open connection (-1: not even headers). */
const stallAfter =
  (bytes: number): Misbehaviour =>
  (_request, response, body) => {
    if (bytes < 0) return
    response.writeHead(200, { 'content-length': body.length })
    response.write(body.subarray(0, bytes))
  }

const status =
  (code: number, headers: Record<string, string> = {}, text = ''): Misbehaviour =>
  (_request, response) => {
    response.writeHead(code, headers).end(text)
  }

beforeAll(async () => {
  server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname.replace(/^\/pkg\//, ''))
    log.push({ method: request.method ?? 'GET', path, range: request.headers.range })
    if (refuseAll) {
      request.socket.destroy()
      return
    }
    if (portal) {
      portal(request, response, new Uint8Array())
      return
    }
    const body = bodyOf(path)
    const answer = scripts.get(path)?.shift()
    if (!body) {
      response.writeHead(404).end('not found')
      return
    }
    if (answer) answer(request, response, body)
    else serveFile(request, response, body)
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  prefix = `http://127.0.0.1:${(server.address() as AddressInfo).port}/pkg/`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((done) => server.close(done))
})

beforeEach(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'ondevice-bad-connection-'))
  log.length = 0
  scripts.clear()
  refuseAll = false
  portal = undefined
})

afterEach(async () => {
  refuseAll = false
  // Stalled answers keep their sockets open: end them so the next case starts clean.
  server.closeAllConnections()
  await rm(cacheDir, { recursive: true, force: true })
})

const storeWith = (options: NodeStoreOptions = {}) =>
  createNodeStore({
    cacheDir,
    idleTimeoutMs: 400,
    manifestRefreshTimeoutMs: 150,
    downloadRetryDelayMs: 20,
    onWarning: () => undefined,
    ...options,
  })

async function caught(promise: Promise<unknown>): Promise<OndeviceError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  )
  expect(error).toBeInstanceOf(OndeviceError)
  return error as OndeviceError
}

async function storedFiles(): Promise<string[]> {
  const entries = await readdir(cacheDir, { recursive: true, withFileTypes: true }).catch(() => [])
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name))
}

async function storedWeights(): Promise<Uint8Array | undefined> {
  const path = (await storedFiles()).find((file) => file.endsWith(join('onnx', 'model.onnx')))
  return path ? new Uint8Array(await readFile(path)) : undefined
}

/** Progress never goes backwards and never past its total, per file and in all. */
function expectSaneProgress(events: readonly DownloadProgress[]): void {
  const byFile = new Map<string, number>()
  let loaded = 0
  for (const event of events) {
    expect(event.fileLoadedBytes, `${event.phase} ${event.file}`).toBeGreaterThanOrEqual(
      byFile.get(event.file) ?? 0,
    )
    if (event.fileTotalBytes !== undefined)
      expect(event.fileLoadedBytes).toBeLessThanOrEqual(event.fileTotalBytes)
    expect(event.loadedBytes).toBeGreaterThanOrEqual(loaded)
    if (event.totalBytes !== undefined) expect(event.loadedBytes).toBeLessThanOrEqual(event.totalBytes)
    byFile.set(event.file, event.fileLoadedBytes)
    loaded = event.loadedBytes
  }
}

/** GETs of the weights, with the Range each asked for. */
const weightGets = () => log.filter((entry) => entry.path === weightPath && entry.method === 'GET')

async function expectNoPartials(): Promise<void> {
  expect((await storedFiles()).filter((file) => file.endsWith('.partial'))).toEqual([])
}

/** A new store on the same folder loads the package without downloading anything again. */
async function expectStoredForGood(): Promise<void> {
  log.length = 0
  const pkg = await storeWith().open(prefix)
  const events: DownloadProgress[] = []
  await pkg.ensure(Object.keys(files), { onProgress: (event) => events.push(event) })
  expect(log.filter((entry) => entry.path !== 'manifest.json')).toEqual([])
  expect(events.filter((event) => event.phase === 'download')).toEqual([])
  expect(new Uint8Array(await pkg.readBytes(weightPath))).toEqual(weights)
}

async function ensureAll(options: NodeStoreOptions = {}): Promise<DownloadProgress[]> {
  const events: DownloadProgress[] = []
  const pkg = await storeWith(options).open(prefix)
  await pkg.ensure(Object.keys(files), { onProgress: (event) => events.push(event) })
  expect(await storedWeights()).toEqual(weights)
  expectSaneProgress(events)
  expect(events.at(-1)).toMatchObject({ loadedBytes: events.at(-1)?.totalBytes })
  await expectNoPartials()
  return events
}

describe('downloads on a bad connection', () => {
  it('the connection drops mid-file twice: one load retries, resuming each time with Range', async () => {
    script(weightPath, cutAfter(50_000), cutAfter(60_000))
    await ensureAll()
    const ranges = weightGets().map((entry) => entry.range)
    expect(ranges, JSON.stringify(ranges)).toHaveLength(3)
    expect(ranges[0]).toBeUndefined()
    // Each try asks for the rest from what reached the disk (at most what was sent: a reset
    // connection may lose what the kernel had not handed over yet).
    const starts = ranges.map((range) => Number(/^bytes=(\d+)-$/.exec(range ?? '')?.[1] ?? 0))
    expect(starts[1]).toBeLessThanOrEqual(50_000)
    expect(starts[2]).toBeGreaterThan(starts[1] as number)
    expect(starts[2]).toBeLessThanOrEqual((starts[1] as number) + 60_000)
    await expectStoredForGood()
  })

  it('stalls (headers then silence, or nothing at all): the idle timeout ends each try and the next resumes', async () => {
    script(weightPath, stallAfter(30_000), stallAfter(-1))
    await ensureAll()
    const ranges = weightGets().map((entry) => entry.range)
    expect(ranges[0]).toBeUndefined()
    expect(ranges.slice(1).every((range) => /^bytes=\d+-$/.test(range ?? ''))).toBe(true)
    await expectStoredForGood()
  })

  it('HTTP 500 twice, then it recovers: retried with a growing pause, within one load', async () => {
    script(weightPath, status(500), status(503))
    const started = performance.now()
    await ensureAll({ downloadRetryDelayMs: 60 })
    // 60 ms, then 120 ms.
    expect(performance.now() - started).toBeGreaterThanOrEqual(170)
    expect(weightGets()).toHaveLength(3)
  })

  it('HTTP 429 / 503 with Retry-After: the retry waits as long as the server asks; one that asks for longer than a pause may last fails at once, saying when', async () => {
    script(weightPath, status(503, { 'retry-after': '1' }))
    const started = performance.now()
    await ensureAll({ downloadRetryDelayMs: 20 })
    expect(weightGets()).toHaveLength(2)
    // Not after 20 ms: after the second the server asked for.
    expect(performance.now() - started).toBeGreaterThanOrEqual(950)

    await rm(cacheDir, { recursive: true, force: true })
    log.length = 0
    script(weightPath, status(429, { 'retry-after': '3600' }))
    const pkg = await storeWith({ downloadRetryDelayMs: 20 }).open(prefix)
    const error = await caught(pkg.ensure([weightPath]))
    expect(error).toMatchObject({ code: 'download_failed', isRetryable: true, retryAfterSeconds: 3600 })
    expect(error.message).toMatch(/HTTP 429 \(Retry-After: 3600 s\)/)
    // Asked once: a rate-limited server is not hammered three more times within seconds.
    expect(weightGets()).toHaveLength(1)
  })

  it('gives up after its retries with a clear retryable error; the next load resumes and keeps what was verified', async () => {
    script(weightPath, cutAfter(70_000), status(500), status(500), status(500))
    const pkg = await storeWith().open(prefix)
    const error = await caught(pkg.ensure(Object.keys(files)))
    expect(error).toMatchObject({ code: 'download_failed', isRetryable: true })
    expect(error.message).toMatch(/HTTP 500.*gave up after 4 tries/)
    expect(weightGets()).toHaveLength(4)
    // Nothing a later load would trust: the weights are only a .partial, a prefix of the file.
    const partial = (await storedFiles()).find((file) => file.endsWith('model.onnx.partial'))
    const kept = new Uint8Array(await readFile(partial as string))
    expect(kept.length).toBeGreaterThan(0)
    expect(kept).toEqual(weights.subarray(0, kept.length))
    expect(await storeWith().isCached(prefix)).toBe(false)
    // The server recovers: config.json (verified) is not fetched again, the weights resume.
    log.length = 0
    await ensureAll()
    expect(log.filter((entry) => entry.path === 'config.json')).toEqual([])
    expect(weightGets().map((entry) => entry.range)).toEqual([`bytes=${kept.length}-`])
    await expectStoredForGood()
  })

  it('a server that ignores Range (200 with the whole file) on the resume: starts over, progress never goes back', async () => {
    script(weightPath, cutAfter(120_000), (_request, response, body) => {
      response.writeHead(200, { 'content-length': body.length })
      response.end(body)
    })
    const events = await ensureAll()
    expect(weightGets()[1]?.range).toMatch(/^bytes=\d+-$/)
    expect(
      events.filter((event) => event.file === weightPath && event.phase === 'download').length,
    ).toBeGreaterThan(2)
  })

  it('a 206 whose Content-Range is not the range asked for is not spliced into the file', async () => {
    // The resume is answered with the whole file as a 206 (bytes 0-), then with a range from elsewhere.
    const wrongRange =
      (from: number): Misbehaviour =>
      (_request, response, body) => {
        response.writeHead(206, {
          'content-length': body.length - from,
          'content-range': `bytes ${from}-${body.length - 1}/${body.length}`,
        })
        response.end(body.subarray(from))
      }
    script(weightPath, cutAfter(50_000), wrongRange(0))
    await ensureAll()
    await rm(cacheDir, { recursive: true, force: true })
    script(weightPath, cutAfter(50_000), wrongRange(10), cutAfter(20_000))
    await ensureAll()
  })

  it('a 206 for a Range that was not asked for (the whole file): stored as it is', async () => {
    script(weightPath, (request, response, body) => {
      expect(request.headers.range).toBeUndefined()
      response.writeHead(206, {
        'content-length': body.length,
        'content-range': `bytes 0-${body.length - 1}/${body.length}`,
      })
      response.end(body)
    })
    await ensureAll()
  })

  it('a Content-Length larger than the body (the server closes early): retried and resumed', async () => {
    script(weightPath, (_request, response, body) => {
      response.writeHead(200, { 'content-length': body.length + 1000 })
      response.end(body.subarray(0, 90_000))
    })
    await ensureAll()
    expect(weightGets()[1]?.range).toMatch(/^bytes=\d+-$/)
  })

  it('a truncated file served as a whole 200 (Content-Length says so): a clear error, nothing kept, the next load is clean', async () => {
    script(weightPath, (_request, response, body) => {
      response.writeHead(200, { 'content-length': 90_000 })
      response.end(body.subarray(0, 90_000))
    })
    const pkg = await storeWith().open(prefix)
    const error = await caught(pkg.ensure(Object.keys(files)))
    expect(error.code).toBe('integrity_failed')
    expect(error.message).toMatch(/ended after 90000 of the 200000 bytes/)
    expect((await storedFiles()).filter((file) => file.includes('model.onnx'))).toEqual([])
    await ensureAll()
  })

  it('a stored .partial that is not a prefix of the file (damaged on disk): the resumed file fails its check and is fetched whole once more', async () => {
    script(weightPath, cutAfter(80_000))
    const pkg = await storeWith({ downloadRetries: 0 }).open(prefix)
    expect(await caught(pkg.ensure([weightPath]))).toMatchObject({
      code: 'download_failed',
      isRetryable: true,
    })
    const partial = (await storedFiles()).find((file) => file.endsWith('model.onnx.partial')) as string
    const damaged = new Uint8Array(await readFile(partial))
    damaged[10] = (damaged[10] as number) ^ 0xff
    await writeFile(partial, damaged)
    log.length = 0
    const events = await ensureAll()
    expect(weightGets().map((entry) => entry.range)).toEqual([`bytes=${damaged.length}-`, undefined])
    expect(events.some((event) => event.phase === 'verify' && event.file === weightPath)).toBe(true)
  })

  it('a very slow trickle (small pieces, each within the idle timeout): completes, with steady progress', async () => {
    script(weightPath, (_request, response, body) => {
      response.writeHead(200, { 'content-length': body.length })
      let sent = 0
      const timer = setInterval(() => {
        const piece = body.subarray(sent, sent + 16_384)
        sent += piece.length
        if (sent >= body.length) {
          clearInterval(timer)
          response.end(piece)
        } else response.write(piece)
      }, 25)
      response.on('close', () => clearInterval(timer))
    })
    // Pieces 25 ms apart against a 3 s idle timeout (room for a loaded machine).
    const events = await ensureAll({ idleTimeoutMs: 3_000 })
    expect(
      events.filter((event) => event.file === weightPath && event.phase === 'download').length,
    ).toBeGreaterThan(5)
    expect(weightGets()).toHaveLength(1)
  })

  it('the caller aborts during a retry pause: AbortedError at once', async () => {
    script(weightPath, status(500))
    const pkg = await storeWith({ downloadRetryDelayMs: 60_000 }).open(prefix)
    const controller = new AbortController()
    const started = performance.now()
    const pending = pkg.ensure([weightPath], { signal: controller.signal })
    setTimeout(() => controller.abort(), 100)
    const error = await caught(pending)
    expect(error.code).toBe('aborted')
    expect(performance.now() - started).toBeLessThan(2_000)
  })

  it('refuses retry settings that make no sense', () => {
    expect(() => storeWith({ downloadRetries: -1 })).toThrow(/downloadRetries must be a whole number/)
    expect(() => storeWith({ downloadRetries: 1.5 })).toThrow(/downloadRetries/)
    expect(() => storeWith({ downloadRetryDelayMs: Number.NaN })).toThrow(/downloadRetryDelayMs/)
    expect(() => storeWith({ manifestRefreshTimeoutMs: 0 })).toThrow(
      /manifestRefreshTimeoutMs must be a positive/,
    )
  })
})

describe("a first load's manifest.json on a bad connection (nothing stored yet)", () => {
  /** The connection closes before any answer (a dropped connection, a reset). */
  const drop: Misbehaviour = (request) => {
    request.socket.destroy()
  }
  const manifestGets = () => log.filter((entry) => entry.path === 'manifest.json')

  it('dropped before an answer, or cut mid-body: the load tries again and stores the package', async () => {
    script('manifest.json', drop, cutAfter(20))
    await ensureAll()
    expect(manifestGets()).toHaveLength(3)
    await expectStoredForGood()
  })

  it('stalls (no answer at all, or headers then silence): the idle timeout ends each try, the next goes through', async () => {
    script('manifest.json', stallAfter(-1), stallAfter(10))
    await ensureAll()
    expect(manifestGets()).toHaveLength(3)
  })

  it('HTTP 500 then 503: retried with a growing pause, as the files are', async () => {
    script('manifest.json', status(500), status(503))
    const started = performance.now()
    await ensureAll({ downloadRetryDelayMs: 60 })
    // 60 ms, then 120 ms.
    expect(performance.now() - started).toBeGreaterThanOrEqual(170)
    expect(manifestGets()).toHaveLength(3)
  })

  it('HTTP 429 with Retry-After: the retry waits as long as the server asks; one that asks for longer than a pause may last fails at once, saying when', async () => {
    script('manifest.json', status(429, { 'retry-after': '1' }))
    const started = performance.now()
    await ensureAll({ downloadRetryDelayMs: 20 })
    expect(manifestGets()).toHaveLength(2)
    expect(performance.now() - started).toBeGreaterThanOrEqual(950)

    await rm(cacheDir, { recursive: true, force: true })
    log.length = 0
    script('manifest.json', status(429, { 'retry-after': '3600' }))
    const error = await caught(storeWith({ downloadRetryDelayMs: 20 }).open(prefix))
    expect(error).toMatchObject({ code: 'download_failed', isRetryable: true, retryAfterSeconds: 3600 })
    expect(error.message).toMatch(/Could not reach http:.*\/pkg\/ \(HTTP 429, Retry-After: 3600 s\)/)
    expect(manifestGets()).toHaveLength(1)
  })

  it('gives up after its retries with a retryable error that says so; the next load stores the package', async () => {
    script('manifest.json', status(500), drop, status(502), status(503))
    const error = await caught(storeWith().open(prefix))
    expect(error).toMatchObject({ code: 'download_failed', isRetryable: true })
    expect(error.message).toMatch(
      /Could not reach http:.*\/pkg\/ \(HTTP 503\) and nothing of it is stored\. Check the URL and the network; the next try fetches its manifest\.json again\. \(gave up after 4 tries over the last 0 s or more; nothing of the package was stored\)/,
    )
    expect(manifestGets()).toHaveLength(4)
    expect(await storedFiles()).toEqual([])
    await ensureAll()
  })

  it('downloadRetries: 0 tries once; the caller aborting during a pause ends the load at once', async () => {
    script('manifest.json', status(500))
    expect(await caught(storeWith({ downloadRetries: 0 }).open(prefix))).toMatchObject({
      code: 'download_failed',
      isRetryable: true,
    })
    expect(manifestGets()).toHaveLength(1)

    script('manifest.json', status(500))
    const controller = new AbortController()
    const started = performance.now()
    const pending = storeWith({ downloadRetryDelayMs: 60_000 }).open(prefix, { signal: controller.signal })
    setTimeout(() => controller.abort(), 100)
    expect((await caught(pending)).code).toBe('aborted')
    expect(performance.now() - started).toBeLessThan(2_000)
  })

  it('a 404 is not retried: no package there', async () => {
    const error = await caught(storeWith().open(prefix.replace('/pkg/', '/nothing/')))
    expect(error.code).toBe('model_not_found')
    expect(log.filter((entry) => entry.path.endsWith('manifest.json'))).toHaveLength(1)
  })
})

describe('offline once stored', () => {
  async function storeOnce(options: NodeStoreOptions = {}) {
    const store = storeWith(options)
    const pkg = await store.open(prefix)
    await pkg.ensure(Object.keys(files))
    log.length = 0
    return store
  }

  async function openAndRead(store: ReturnType<typeof storeWith>) {
    const started = performance.now()
    const pkg = await store.open(prefix)
    const events: DownloadProgress[] = []
    await pkg.ensure(Object.keys(files), { onProgress: (event) => events.push(event) })
    expect(new Uint8Array(await pkg.readBytes(weightPath))).toEqual(weights)
    expect(events.filter((event) => event.phase === 'download')).toEqual([])
    // The stored manifest still vouches for the stored files.
    expect(pkg.manifest?.files.length).toBe(Object.keys(files).length)
    expect(pkg.warnings).toEqual([])
    return performance.now() - started
  }

  it('every request refused: loads from the store, no file requested', async () => {
    const store = await storeOnce()
    refuseAll = true
    await openAndRead(store)
    expect(log.map((entry) => entry.path)).toEqual(['manifest.json'])
  })

  for (const [name, answer] of [
    [
      'a captive portal page (200 HTML)',
      status(200, { 'content-type': 'text/html' }, '<!doctype html><title>Log in</title>'),
    ],
    [
      'a captive portal redirect to its login page on another origin',
      (request: IncomingMessage, response: ServerResponse) => {
        if (request.headers.host?.startsWith('localhost')) {
          response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>Log in</title>')
        } else response.writeHead(302, { location: `${prefix.replace('127.0.0.1', 'localhost')}login` }).end()
      },
    ],
    ['a proxy refusal (HTTP 407)', status(407)],
    ['HTTP 403 from a gateway', status(403)],
    ['HTTP 429', status(429, { 'retry-after': '3600' })],
    [
      'a manifest that is not JSON (cut by a proxy)',
      status(200, { 'content-type': 'application/json' }, '{"format":'),
    ],
  ] as const) {
    it(`manifest.json answered with ${name}: loads from the store`, async () => {
      const store = await storeOnce()
      portal = answer
      await openAndRead(store)
    })
  }

  it('a captive portal answers for a file not stored yet: a retryable download_failed, not a missing model; fine once it lets through', async () => {
    const store = await storeOnce({ downloadRetries: 1 })
    // The weights never made it (an interrupted first download): only config.json is stored.
    const stored = (await storedFiles()).find((file) => file.endsWith(join('onnx', 'model.onnx')))
    await rm(stored as string)
    portal = status(200, { 'content-type': 'text/html' }, '<!doctype html><title>Log in</title>')
    const pkg = await store.open(prefix)
    const error = await caught(pkg.ensure(Object.keys(files)))
    expect(error).toMatchObject({ code: 'download_failed', isRetryable: true })
    expect(error.message).toMatch(/captive portal/)
    // Signed in: the same package loads.
    portal = undefined
    const again = await store.open(prefix)
    await again.ensure(Object.keys(files))
    expect(new Uint8Array(await again.readBytes(weightPath))).toEqual(weights)
  })

  it('manifest.json stalls: the stored copy answers without waiting out the idle timeout', async () => {
    // A 5 s idle timeout against a 150 ms refresh: waiting the former out would show.
    const store = await storeOnce({ idleTimeoutMs: 5_000 })
    script('manifest.json', stallAfter(-1), stallAfter(-1))
    const elapsed = await openAndRead(store)
    expect(elapsed).toBeLessThan(2_500)
    expect(log.filter((entry) => entry.path !== 'manifest.json')).toEqual([])
  })
})
