// A load whose one file fails stops its other downloads: real HTTP on 127.0.0.1 serving a package
// with a file whose sha256 the manifest lies about and a big file sent in pieces the test releases
// (so "the big file is still in flight when the other fails" holds by construction, not by timing).
// The server sees the big file's connection closed far below its size; a download another load
// shares goes on for that load; the caller's own AbortSignal still stops everything.
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createNodeStore } from './node-store.ts'

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

const bigSize = 32 * 1024 * 1024
const big = new Uint8Array(bigSize).map((_, index) => (index * 31) % 253)
const lying = new TextEncoder().encode('{"these bytes": "are not the ones manifest.json promises"}')
const config = new TextEncoder().encode('{"model_type":"llama"}')
const files: Record<string, Uint8Array> = { 'config.json': config, 'lying.bin': lying, 'big.bin': big }
const manifest = JSON.stringify({
  format: 'ondevice-package/1',
  modelType: 'llama',
  dtypes: ['fp32'],
  files: Object.entries(files).map(([path, bytes]) => ({
    path,
    bytes: bytes.length,
    sha256: path === 'lying.bin' ? 'f'.repeat(64) : sha256(bytes),
  })),
})

/** The first piece of big.bin; the rest waits for `release()` (or the client hanging up). */
const firstPiece = 1024 * 1024

interface BigTransfer {
  readonly range: string | undefined
  sent: number
  readonly closed: Promise<{ readonly completed: boolean }>
}

let server: Server
let prefix: string
let transfers: BigTransfer[] = []
let firstPieceSent: Promise<void>
let markFirstPieceSent: () => void
let release: () => void
let released: Promise<void>
let requests: string[] = []
let cacheDir: string

function resetGates(): void {
  firstPieceSent = new Promise((resolve) => {
    markFirstPieceSent = resolve
  })
  released = new Promise((resolve) => {
    release = resolve
  })
}

/** Writes `bytes` in 64 KiB pieces, honouring backpressure; false once the client has gone. */
async function writeAll(
  response: ServerResponse,
  bytes: Uint8Array,
  transfer: BigTransfer,
): Promise<boolean> {
  for (let offset = 0; offset < bytes.length; offset += 65_536) {
    if (response.destroyed) return false
    const piece = bytes.subarray(offset, offset + 65_536)
    transfer.sent += piece.length
    if (!response.write(piece))
      await new Promise<void>((resolve) => {
        const done = () => {
          response.off('drain', done)
          response.off('close', done)
          resolve()
        }
        response.on('drain', done)
        response.on('close', done)
      })
  }
  return !response.destroyed
}

beforeAll(async () => {
  server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname.slice(1))
    requests.push(`${request.method} ${path}${request.headers.range ? ` ${request.headers.range}` : ''}`)
    if (path === 'manifest.json') {
      response.writeHead(200, { 'content-type': 'application/json' }).end(manifest)
      return
    }
    const body = files[path]
    if (!body) {
      response.writeHead(404).end()
      return
    }
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '')
    const start = range ? Number(range[1]) : 0
    const headers = { 'content-length': body.length - start, 'accept-ranges': 'bytes' }
    if (path === 'lying.bin') {
      // Only once big.bin is under way: the failure comes while it is in flight.
      void firstPieceSent.then(() => response.writeHead(200, headers).end(body))
      return
    }
    if (path !== 'big.bin') {
      response.writeHead(200, headers).end(body)
      return
    }
    let closed!: (outcome: { completed: boolean }) => void
    const transfer: BigTransfer = {
      range: request.headers.range,
      sent: 0,
      closed: new Promise((resolve) => {
        closed = resolve
      }),
    }
    transfers.push(transfer)
    response.on('close', () => closed({ completed: response.writableFinished }))
    response.writeHead(range ? 206 : 200, headers)
    const rest = body.subarray(start)
    void (async () => {
      if (!(await writeAll(response, rest.subarray(0, firstPiece), transfer))) return
      markFirstPieceSent()
      await released
      if (await writeAll(response, rest.subarray(firstPiece), transfer)) response.end()
    })()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  prefix = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
})

afterAll(async () => {
  release?.()
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

afterEach(async () => {
  release?.()
  transfers = []
  requests = []
  await rm(cacheDir, { recursive: true, force: true })
})

const newStore = async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'ondevice-failed-load-'))
  return createNodeStore({ cacheDir, onWarning: () => undefined })
}

async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true })
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(directory.length + 1))
    .sort()
}

/** The transfer's connection closes within `ms`, or the test fails saying how far it got. */
async function closedWithin(transfer: BigTransfer, ms: number): Promise<{ completed: boolean }> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const outcome = await Promise.race([
    transfer.closed,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms)
    }),
  ])
  clearTimeout(timer)
  if (!outcome)
    throw new Error(`big.bin's transfer was still open ${ms} ms later (${transfer.sent} bytes sent)`)
  return outcome
}

describe('a failed package load', () => {
  it("stops its sibling downloads: the server sees big.bin's connection closed far below its size", async () => {
    resetGates()
    const store = await newStore()
    const pkg = await store.open(prefix)
    await expect(pkg.ensure(['config.json', 'lying.bin', 'big.bin'])).rejects.toMatchObject({
      code: 'integrity_failed',
      message: expect.stringMatching(/lying\.bin failed its sha256 check/),
    })
    expect(transfers).toHaveLength(1)
    const transfer = transfers[0]!
    // Never released: only the client hanging up ends this transfer.
    expect(await closedWithin(transfer, 5_000)).toEqual({ completed: false })
    expect(transfer.sent).toBeLessThan(bigSize / 4)
    // By the time ensure rejected, its downloads had stopped writing: what stays is the resumable
    // `.partial` of the sound big file (no byte of the lying file, nothing half-committed).
    const kept = await filesUnder(join(cacheDir))
    expect(kept.filter((file) => file.includes('lying.bin'))).toEqual([])
    expect(kept.filter((file) => file.includes('big.bin'))).toEqual([
      expect.stringMatching(/big\.bin\.partial$/),
    ])
    const partial = kept.find((file) => file.endsWith('big.bin.partial'))!
    const partialSize = (await stat(join(cacheDir, partial))).size
    expect(partialSize).toBeGreaterThan(0)
    expect(partialSize).toBeLessThanOrEqual(transfer.sent)

    // The next load resumes big.bin from the partial (HTTP Range) and verifies it whole.
    resetGates()
    release()
    await pkg.ensure(['big.bin'])
    expect(transfers).toHaveLength(2)
    expect(transfers[1]!.range).toBe(`bytes=${partialSize}-`)
    expect(sha256(await pkg.readBytes('big.bin'))).toBe(sha256(big))
  }, 30_000)

  it('leaves a download it shares with another load running for that load, which completes', async () => {
    resetGates()
    const store = await newStore()
    const other = createNodeStore({ cacheDir, onWarning: () => undefined })
    const [failing, sound] = await Promise.all([store.open(prefix), other.open(prefix)])
    // The sound load starts big.bin; the failing load joins that download and fails on lying.bin.
    const soundLoad = sound.ensure(['big.bin'])
    await firstPieceSent
    const failure = await failing.ensure(['lying.bin', 'big.bin']).then(
      () => undefined,
      (error: unknown) => error,
    )
    expect(failure).toMatchObject({ code: 'integrity_failed' })
    // The failing load answered while big.bin was still in flight for the other one.
    expect(transfers).toHaveLength(1)
    expect(transfers[0]!.sent).toBeLessThan(bigSize)
    release()
    await soundLoad
    expect(await transfers[0]!.closed).toEqual({ completed: true })
    expect(requests.filter((line) => line.startsWith('GET big.bin'))).toHaveLength(1)
    expect(sha256(await sound.readBytes('big.bin'))).toBe(sha256(big))
    expect((await filesUnder(cacheDir)).filter((file) => file.includes('lying.bin'))).toEqual([])
  }, 30_000)

  it("the caller's AbortSignal leaves a shared download to the load still waiting, and stops it when none is", async () => {
    resetGates()
    const store = await newStore()
    const other = createNodeStore({ cacheDir, onWarning: () => undefined })
    const [first, second] = await Promise.all([store.open(prefix), other.open(prefix)])
    const firstAbort = new AbortController()
    const secondAbort = new AbortController()
    const firstLoad = first.ensure(['big.bin'], { signal: firstAbort.signal })
    const secondLoad = second.ensure(['big.bin'], { signal: secondAbort.signal })
    await firstPieceSent
    // The second load joins the download only once its own steps before it (its file checks) are
    // done; one that came after the first had left would start its own download (right too, but
    // not what this checks): a clean CI run at 02fa5d6 saw that once, under load. Let it join.
    await new Promise((resolve) => setTimeout(resolve, 500))
    firstAbort.abort()
    await expect(firstLoad).rejects.toMatchObject({ code: 'aborted' })
    // The second load still waits: its download goes on.
    expect(
      await Promise.race([transfers[0]!.closed, new Promise((r) => setTimeout(() => r('open'), 200))]),
    ).toBe('open')
    secondAbort.abort()
    await expect(secondLoad).rejects.toMatchObject({ code: 'aborted' })
    expect(await closedWithin(transfers[0]!, 5_000)).toEqual({ completed: false })
    expect(transfers[0]!.sent).toBeLessThan(bigSize / 4)
    expect(requests.filter((line) => line.startsWith('GET big.bin'))).toHaveLength(1)
  }, 30_000)
})
