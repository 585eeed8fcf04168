// Injected faults, each bounded and on 127.0.0.1: a download cut at random points and resumed
// (the stored file is byte-equal to the source), storage quota exhausted (a clear error, nothing
// partial kept), the device session throwing at a random step (handoff to the edge, lossless),
// and the edge dying mid-stream (a clear retryable error; before the first token, the device
// answers instead).
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { serve } from '@hono/node-server'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { createNodeStore } from '../../client-runtime/store/node-store.ts'
import { OndeviceError } from '../../core/errors.ts'
import type { StreamPart } from '../../core/stream-parts.ts'
import { createClient } from '../../sdk/client.ts'
import { createApp } from '../../worker/app.ts'
import { createTestDeviceHost } from '../sdk/test-device-host.ts'
import { startTestEdge, type TestEdge } from '../sdk/test-edge.ts'
import { createTestHost } from '../worker/test-host.ts'
import { type PackageServer, startPackageServer } from './package-server.ts'
import { fuzzSeed, reportFigures, scale } from './summary.ts'

const weightPath = 'onnx/model_quantized.onnx_data'
let folder: string
let packageDir: string
let server: PackageServer
const figures: Record<string, number | string> = {}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-faults-'))
  packageDir = join(folder, 'package')
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: 'q8', seed: 5 })
  server = await startPackageServer(packageDir)
}, 120_000)

afterAll(async () => {
  await server?.close()
  if (folder) await rm(folder, { recursive: true, force: true })
  reportFigures('faults', figures)
})

async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true }).catch(() => [])
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(directory.length + 1))
}

async function collect(parts: AsyncIterable<StreamPart>): Promise<StreamPart[]> {
  const out: StreamPart[] = []
  for await (const part of parts) out.push(part)
  return out
}

describe('downloads', () => {
  it('a download cut at random points resumes each time and ends byte-equal to the source', async () => {
    const source = new Uint8Array(await readFile(join(packageDir, weightPath)))
    const rounds = scale(3)
    let cutsInjected = 0
    let rangeRequests = 0
    for (let round = 0; round < rounds; round++) {
      server.clear()
      const cacheDir = await mkdtemp(join(folder, 'cache-'))
      // One try per load, so each cut fails its load (the load's own retries resume the same way:
      // client-runtime/store/bad-connection.test.ts).
      const store = createNodeStore({ cacheDir, downloadRetries: 0, onWarning: () => undefined })
      const pkg = await store.open(server.url)
      // Seeded cut points spread over the file, in increasing order (each try resumes past the last).
      const cuts = fc
        .sample(fc.integer({ min: 1, max: source.length - 1 }), { seed: fuzzSeed(600 + round), numRuns: 6 })
        .sort((a, b) => a - b)
      let offset = 0
      for (const cut of cuts) {
        if (cut <= offset) continue
        server.cutNext(weightPath, cut - offset)
        const error = await pkg.ensure([weightPath]).then(
          () => undefined,
          (caught: unknown) => caught,
        )
        expect(error).toBeInstanceOf(OndeviceError)
        expect((error as OndeviceError).code).toBe('download_failed')
        expect((error as OndeviceError).isRetryable).toBe(true)
        cutsInjected++
        // What reached the disk is kept as .partial for the resume (it may be less than was sent).
        const partial = await readFile(join(pkg.directory!, `${weightPath}.partial`)).catch(
          () => new Uint8Array(),
        )
        expect(Buffer.compare(partial, source.subarray(0, partial.length))).toBe(0)
        offset = partial.length
      }
      const before = server.requests.length
      await pkg.ensure([weightPath])
      rangeRequests += server.requests.slice(before).filter((line) => line.includes('bytes=')).length
      const stored = await readFile(join(pkg.directory!, weightPath))
      expect(stored.length).toBe(source.length)
      expect(Buffer.compare(stored, source)).toBe(0)
      expect((await filesUnder(cacheDir)).filter((file) => file.endsWith('.partial'))).toEqual([])
    }
    expect(rangeRequests).toBeGreaterThan(0)
    figures.downloadCuts = cutsInjected
    figures.downloadRounds = rounds
    figures.bytesEqual = 'yes'
  }, 240_000)

  it('storage quota exhausted: storage_quota_exceeded before writing, or mid-download with nothing partial kept', async () => {
    server.clear()
    // With a manifest: refused up front from the sizes it lists.
    const small = await mkdtemp(join(folder, 'quota-'))
    const store = createNodeStore({ cacheDir: small, quotaBytes: 1_000_000, onWarning: () => undefined })
    const pkg = await store.open(server.url)
    const error = await pkg.ensure([weightPath]).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    expect((error as OndeviceError).code).toBe('storage_quota_exceeded')
    expect((error as OndeviceError).message).toMatch(/storage/i)
    expect((await filesUnder(small)).filter((file) => file.includes('onnx'))).toEqual([])

    // Without a manifest (sizes unknown up front): the quota trips mid-download and the package goes.
    server.override('manifest.json', null)
    const midway = await mkdtemp(join(folder, 'quota-'))
    const unverified = createNodeStore({
      cacheDir: midway,
      quotaBytes: 3_000_000,
      onWarning: () => undefined,
    })
    const open = await unverified.open(server.url)
    const second = await open.ensure([weightPath]).then(
      () => undefined,
      (caught: unknown) => caught,
    )
    expect((second as OndeviceError).code).toBe('storage_quota_exceeded')
    expect((await filesUnder(midway)).filter((file) => file.includes('onnx'))).toEqual([])
    server.clear()
    figures.quotaFaults = 2
  })

  it('a server that stalls mid-body (or before its headers) without closing: a retryable download_failed after the idle timeout, kept for the resume', async () => {
    server.clear()
    const source = new Uint8Array(await readFile(join(packageDir, weightPath)))
    const idleTimeoutMs = 300
    const cacheDir = await mkdtemp(join(folder, 'stall-'))
    const store = createNodeStore({ cacheDir, idleTimeoutMs, downloadRetries: 0, onWarning: () => undefined })
    const failure = async (work: Promise<unknown>): Promise<{ error: OndeviceError; ms: number }> => {
      const started = Date.now()
      const error = await work.then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(OndeviceError)
      return { error: error as OndeviceError, ms: Date.now() - started }
    }
    let stalls = 0

    // manifest.json: headers and 10 bytes, then silence.
    server.stallNext('manifest.json', 10)
    const manifestStall = await failure(store.open(server.url))
    expect(manifestStall.error.code).toBe('download_failed')
    expect(manifestStall.error.isRetryable).toBe(true)
    expect(manifestStall.error.message).toMatch(/stalled: no bytes for 300 ms/)
    expect(manifestStall.ms).toBeLessThan(5_000)
    stalls++

    const pkg = await store.open(server.url)
    const partialPath = join(pkg.directory!, `${weightPath}.partial`)
    // Mid-body: 40,000 bytes, then silence on an open connection.
    server.stallNext(weightPath, 40_000)
    const bodyStall = await failure(pkg.ensure([weightPath]))
    expect(bodyStall.error.code).toBe('download_failed')
    expect(bodyStall.error.isRetryable).toBe(true)
    expect(bodyStall.error.message).toMatch(/stalled: no bytes for 300 ms after \d+ bytes/)
    expect(bodyStall.ms).toBeGreaterThanOrEqual(idleTimeoutMs - 20)
    expect(bodyStall.ms).toBeLessThan(5_000)
    stalls++
    // As for a cut connection: what arrived stays as .partial, a prefix of the source.
    const partial = await readFile(partialPath)
    expect(partial.length).toBeGreaterThan(0)
    expect(partial.length).toBeLessThanOrEqual(40_000)
    expect(Buffer.compare(partial, source.subarray(0, partial.length))).toBe(0)

    // Before the headers: the resumed request gets no answer at all.
    server.stallNext(weightPath, -1)
    const headerStall = await failure(pkg.ensure([weightPath]))
    expect(headerStall.error.code).toBe('download_failed')
    expect(headerStall.error.isRetryable).toBe(true)
    expect(headerStall.error.message).toMatch(/stalled: no bytes for 300 ms/)
    expect(headerStall.ms).toBeLessThan(5_000)
    expect((await readFile(partialPath)).length).toBe(partial.length)
    stalls++

    // The next try resumes with Range and ends byte-equal.
    const before = server.requests.length
    await pkg.ensure([weightPath])
    expect(server.requests.slice(before).some((line) => line.includes(`bytes=${partial.length}-`))).toBe(true)
    expect(Buffer.compare(await readFile(join(pkg.directory!, weightPath)), source)).toBe(0)
    expect((await filesUnder(cacheDir)).filter((file) => file.endsWith('.partial'))).toEqual([])
    figures.idleStalls = stalls
    figures.idleTimeoutMs = idleTimeoutMs
  })
})

describe('device and edge failures', () => {
  let edge: TestEdge
  beforeAll(async () => {
    edge = await startTestEdge()
  })
  afterAll(async () => {
    await edge?.close()
  })
  const messages = [{ role: 'user' as const, content: 'Tell me about the sea, briefly.' }]

  it('the device session throws at a random step: the edge continues, and the answer equals the uninterrupted one', async () => {
    let handoffs = 0
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.constantFrom(0, 0.8, 1.2),
        async (failAt, seed, temperature) => {
          const sampling = { temperature, topK: 50, seed, maxTokens: 20 }
          const reference = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
          const expected = await reference.chat({ messages, ...sampling })
          await reference.dispose()
          const client = createClient(
            { edge: { url: edge.url }, thresholds: { minDeviceTokensPerSecond: 1 } },
            { deviceHost: createTestDeviceHost({ failAtToken: failAt }) },
          )
          const parts = await collect(client.stream({ messages, ...sampling }))
          await client.dispose()
          const finish = parts.find((part) => part.type === 'finish')
          expect(parts.find((part) => part.type === 'error')).toBeUndefined()
          expect(finish?.type === 'finish' && finish.text).toBe(expected.text)
          expect(finish?.type === 'finish' && finish.tokenIds).toEqual(expected.tokenIds)
          const text = parts.map((part) => (part.type === 'text-delta' ? part.text : '')).join('')
          expect(text).toBe(expected.text)
          if (failAt < expected.tokenIds.length) {
            expect(parts.some((part) => part.type === 'handoff')).toBe(true)
            handoffs++
          }
        },
      ),
      { seed: fuzzSeed(700), numRuns: scale(12) },
    )
    figures.deviceFaultHandoffs = handoffs
  })

  it('the edge dies mid-stream: a clear retryable error, no hang; before the first token the device answers', async () => {
    // An edge whose steps take 40 ms, so the stream is cut in the middle.
    const app = createApp({ modelHost: createTestHost({ session: { delayMs: 40 } }), log: () => undefined })
    const start = () =>
      new Promise<ReturnType<typeof serve>>((resolve) => {
        const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(started))
      })
    const kill = (instance: ReturnType<typeof serve>) => {
      ;(instance as unknown as { closeAllConnections(): void }).closeAllConnections()
      instance.close()
    }
    let cut = 0
    for (const afterDeltas of [1, 3, 6]) {
      const instance = await start()
      const url = `http://127.0.0.1:${(instance.address() as AddressInfo).port}`
      const client = createClient({ policy: 'edge-only', edge: { url } })
      const parts: StreamPart[] = []
      const started = Date.now()
      for await (const part of client.stream({ messages, temperature: 0, maxTokens: 40 })) {
        parts.push(part)
        if (parts.filter((item) => item.type === 'text-delta').length === afterDeltas) kill(instance)
      }
      await client.dispose()
      expect(Date.now() - started).toBeLessThan(15_000)
      const failure = parts.at(-1)
      expect(failure?.type).toBe('error')
      if (failure?.type === 'error') {
        expect(failure.error.isRetryable).toBe(true)
        expect(['edge_failed', 'edge_unavailable']).toContain(failure.error.code)
        expect(failure.error.message.length).toBeGreaterThan(10)
      }
      cut++
    }
    // prefer-edge: the edge is gone before any text, so the device answers the whole question.
    const reference = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const expected = await reference.chat({ messages, temperature: 0, maxTokens: 12 })
    await reference.dispose()
    const instance = await start()
    const url = `http://127.0.0.1:${(instance.address() as AddressInfo).port}`
    kill(instance)
    const client = createClient(
      { policy: 'prefer-edge', edge: { url }, thresholds: { minDeviceTokensPerSecond: 1 } },
      { deviceHost: createTestDeviceHost() },
    )
    const result = await client.chat({ messages, temperature: 0, maxTokens: 12 })
    await client.dispose()
    expect(result.route).toBe('device')
    expect(result.text).toBe(expected.text)
    figures.edgeCutsMidStream = cut
  })
})
