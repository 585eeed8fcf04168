// The edge's engine load streams weights: a package served over real HTTP on 127.0.0.1, verified
// against manifest.json, and read by the engine in ranges straight into its memory. The logits
// are byte-identical to the engine reading the same folder from disk. With the package's block
// digests (what the builder writes) each weight file is transferred once, in ranges; a package
// without them (an older builder's manifest) costs one verification pass per file first. A server
// without Range support still works (each file read whole, as before); bytes that differ from the
// digests, and a file that fails its SHA-256, are refused with integrity_failed before any
// session exists.
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { blockDigestsPath, digestBlockBytes } from '../core/model-package.ts'
import { type PackageServer, startPackageServer } from '../test/reliability/package-server.ts'
import { folderWeightReader, loadEngineModule } from '../wasm/engine/node.ts'
import { packageWeightReader } from '../wasm/engine/package-files.ts'
import { createEngineSession } from '../wasm/engine/session.ts'
import { urlPackageReader, verifyPackage } from './package-sources.ts'
import { maximumRangeBytes } from './verified-ranges.ts'

const dtype = 'q4'
const prompt = [1, 5, 9, 2, 7, 3]
let folder: string
let packageDir: string
let server: PackageServer
let expected: Uint8Array
let engine: WebAssembly.Module
let manifest: { files: { path: string; bytes: number; sha256: string }[] }

async function logits(files: Parameters<typeof createEngineSession>[0]['files']): Promise<Uint8Array> {
  const session = await createEngineSession({ module: engine, files, dtype })
  try {
    const rows = [await session.append(prompt), await session.append([4]), await session.append([11])]
    return new Uint8Array(
      rows.flatMap((row) => [...new Uint8Array(row.buffer, row.byteOffset, row.byteLength)]),
    )
  } finally {
    await session.dispose()
  }
}

const verified = async (fetchImplementation: typeof fetch = fetch) =>
  (await verifyPackage(urlPackageReader(server.url, fetchImplementation), { source: server.url })).reader

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-verified-ranges-'))
  packageDir = join(folder, 'package')
  await writeFixture({ arch: 'qwen3_5', outDir: packageDir, dtype, seed: 2 })
  manifest = JSON.parse(await readFile(join(packageDir, 'manifest.json'), 'utf8'))
  engine = await loadEngineModule()
  server = await startPackageServer(packageDir)
  expected = await logits(folderWeightReader(packageDir))
}, 120_000)

afterAll(async () => {
  await server?.close()
  if (folder) await rm(folder, { recursive: true, force: true })
})

const dataFiles = () =>
  manifest.files.filter((file) => file.path.startsWith('onnx/') && file.path.endsWith('.onnx_data'))

/** Serves the package as an older builder wrote it: manifest.json without the block digests. */
function withoutBlockDigests(): void {
  const files = manifest.files.filter((file) => !file.path.startsWith('block-sha256/'))
  server.override('manifest.json', new TextEncoder().encode(JSON.stringify({ ...manifest, files })))
}

/** The ranged reads of `path` since the last reset, each checked to be at most maximumRangeBytes. */
function rangedReads(path: string): string[] {
  const ranges = server.requests.filter((line) => line.startsWith(`GET ${path} bytes=`))
  for (const line of ranges) {
    const [, start, end] = /bytes=(\d+)-(\d+)$/.exec(line) ?? []
    expect(Number(end) - Number(start) + 1, line).toBeLessThanOrEqual(maximumRangeBytes)
  }
  return ranges
}

describe('streamed engine load at the edge', () => {
  it('gives the same logit bytes as the engine reading the folder, each weight file once, in ranges checked against the package’s block digests', async () => {
    server.clear()
    server.requests.length = 0
    const got = await logits(packageWeightReader(await verified()))
    expect(Buffer.compare(got, expected)).toBe(0)
    expect(dataFiles().length).toBeGreaterThan(0)
    for (const file of dataFiles()) {
      // No pass over the whole file: its digests come from the package.
      expect(server.requests.filter((line) => line === `GET ${file.path}`)).toEqual([])
      expect(server.requests.filter((line) => line === `GET ${blockDigestsPath(file.path)}`)).toHaveLength(1)
      expect(rangedReads(file.path).length).toBeGreaterThan(0)
    }
  }, 60_000)

  it('a package without block digests (an older builder’s): one verification pass per file, then ranges, the same logit bytes', async () => {
    server.clear()
    withoutBlockDigests()
    server.requests.length = 0
    const got = await logits(packageWeightReader(await verified()))
    expect(Buffer.compare(got, expected)).toBe(0)
    for (const file of dataFiles()) {
      expect(server.requests.filter((line) => line === `GET ${file.path}`)).toHaveLength(1)
      expect(server.requests.filter((line) => line.startsWith('GET block-sha256/'))).toEqual([])
      expect(rangedReads(file.path).length).toBeGreaterThan(0)
    }
    server.clear()
  }, 60_000)

  it('a server that ignores Range: each file is read whole instead, with the same logits', async () => {
    server.clear()
    server.ignoreRange(true)
    try {
      const got = await logits(packageWeightReader(await verified()))
      expect(Buffer.compare(got, expected)).toBe(0)
    } finally {
      server.ignoreRange(false)
    }
  }, 60_000)

  it('a changed byte in a weight file: integrity_failed naming its block, before any session exists', async () => {
    server.clear()
    const file = dataFiles()[0]!
    const bytes = new Uint8Array(await readFile(join(packageDir, file.path)))
    const at = bytes.length >> 1
    bytes[at]! ^= 0x04
    server.override(file.path, bytes)
    const block = Math.floor(at / digestBlockBytes) * digestBlockBytes
    await expect(logits(packageWeightReader(await verified()))).rejects.toMatchObject({
      code: 'integrity_failed',
      message: expect.stringContaining(`Bytes ${block}.. of ${file.path}`),
    })
    server.clear()
  }, 60_000)

  it('block digests that do not fit the file’s size: integrity_failed saying the package is inconsistent', async () => {
    server.clear()
    const file = dataFiles()[0]!
    const digests = blockDigestsPath(file.path)
    const cut = new Uint8Array(await readFile(join(packageDir, digests))).subarray(32)
    const files = manifest.files.map((entry) =>
      entry.path === digests
        ? { path: digests, bytes: cut.length, sha256: createHash('sha256').update(cut).digest('hex') }
        : entry,
    )
    server.override(digests, cut)
    server.override('manifest.json', new TextEncoder().encode(JSON.stringify({ ...manifest, files })))
    await expect(logits(packageWeightReader(await verified()))).rejects.toMatchObject({
      code: 'integrity_failed',
      message: expect.stringMatching(new RegExp(`${digests} .* the package is inconsistent`)),
    })
    server.clear()
  }, 60_000)

  it('block digests that fail their own SHA-256 in manifest.json: integrity_failed before a weight is read', async () => {
    server.clear()
    const file = dataFiles()[0]!
    const digests = blockDigestsPath(file.path)
    const bytes = new Uint8Array(await readFile(join(packageDir, digests)))
    bytes[5]! ^= 0x01
    server.override(digests, bytes)
    server.requests.length = 0
    await expect(logits(packageWeightReader(await verified()))).rejects.toMatchObject({
      code: 'integrity_failed',
      message: expect.stringMatching(new RegExp(`${digests}.*SHA-256`)),
    })
    expect(server.requests.filter((line) => line.startsWith(`GET ${file.path} bytes=`))).toEqual([])
    server.clear()
  }, 60_000)

  it('block digests listed but not uploaded: each file verified by a pass instead, the same logit bytes, a warning saying what to upload', async () => {
    server.clear()
    for (const file of dataFiles()) server.override(blockDigestsPath(file.path), null)
    const warnings: string[] = []
    const warn = console.warn
    console.warn = (message: string) => warnings.push(message)
    try {
      server.requests.length = 0
      const got = await logits(packageWeightReader(await verified()))
      expect(Buffer.compare(got, expected)).toBe(0)
    } finally {
      console.warn = warn
    }
    for (const file of dataFiles()) {
      expect(server.requests.filter((line) => line === `GET ${file.path}`)).toHaveLength(1)
      expect(
        warnings.some((line) => line.includes(`${blockDigestsPath(file.path)} is listed in manifest.json`)),
      ).toBe(true)
    }
    server.clear()
  }, 60_000)

  it('without block digests, a weight file that fails its SHA-256: integrity_failed from the pass, before the engine gets a byte of it', async () => {
    server.clear()
    withoutBlockDigests()
    const file = dataFiles()[0]!
    const bytes = new Uint8Array(await readFile(join(packageDir, file.path)))
    bytes[bytes.length >> 1]! ^= 0x04
    server.override(file.path, bytes)
    server.requests.length = 0
    await expect(logits(packageWeightReader(await verified()))).rejects.toMatchObject({
      code: 'integrity_failed',
      message: expect.stringMatching(new RegExp(`${file.path}.*SHA-256`)),
    })
    expect(server.requests.filter((line) => line.startsWith(`GET ${file.path} bytes=`))).toEqual([])
    server.clear()
  }, 60_000)

  for (const digests of ['the package’s block digests', 'a pass (no block digests)'])
    it(`bytes that change between reads (the file replaced during the load), checked by ${digests}: integrity_failed, retryable`, async () => {
      server.clear()
      if (digests.startsWith('a pass')) withoutBlockDigests()
      // The server's file changes after the manifest (and the pass, where there is one).
      const tampering: typeof fetch = async (input, init) => {
        const response = await fetch(input, init)
        if (response.status !== 206) return response
        const body = new Uint8Array(await response.arrayBuffer())
        body[0]! ^= 0x01
        return new Response(body, { status: 206, headers: response.headers })
      }
      await expect(logits(packageWeightReader(await verified(tampering)))).rejects.toMatchObject({
        code: 'integrity_failed',
        isRetryable: true,
        message: expect.stringMatching(/replaced during the load|changed during the load/),
      })
      server.clear()
    }, 60_000)

  it('the verified reader still hands out whole files where they are asked for (graphs, tokenizer)', async () => {
    server.clear()
    const reader = await verified()
    const graph = manifest.files.find((file) => file.path.startsWith('onnx/') && file.path.endsWith('.onnx'))!
    const bytes = await reader.readBytes(graph.path)
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(graph.sha256)
    expect(await reader.size?.(graph.path)).toBe(graph.bytes)
    expect(await reader.size?.('onnx/not-there.onnx_data')).toBeUndefined()
  })
})
