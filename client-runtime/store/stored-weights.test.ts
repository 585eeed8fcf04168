// The engine loads its weights from a URL package in the model store piece by piece: ranged reads
// of the stored, verified files straight into its memory (the browser stores slice their Blobs;
// Node reads positions), never a whole weight file in JavaScript. Real HTTP on 127.0.0.1, the
// real Node store, the real engine: logits byte-identical to the engine reading the folder.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { type StaticServer, startStaticServer } from '../../demo/static-server.ts'
import { folderWeightReader, loadEngineModule } from '../../wasm/engine/node.ts'
import { packageWeightReader } from '../../wasm/engine/package-files.ts'
import { createEngineSession } from '../../wasm/engine/session.ts'
import { storedPackageReader } from '../package-reader.ts'
import { createNodeStore } from './node-store.ts'
import type { StoredPackage } from './types.ts'

let folder: string
let packageDir: string
let server: StaticServer
let engine: WebAssembly.Module
const dtype = 'q8'
const prompt = [3, 1, 4, 1, 5, 9, 2, 6]

async function logits(files: Parameters<typeof createEngineSession>[0]['files']): Promise<Uint8Array> {
  const session = await createEngineSession({ module: engine, files, dtype })
  try {
    const rows = [await session.append(prompt), await session.append([5])]
    return new Uint8Array(
      rows.flatMap((row) => [...new Uint8Array(row.buffer, row.byteOffset, row.byteLength)]),
    )
  } finally {
    await session.dispose()
  }
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-stored-weights-'))
  packageDir = join(folder, 'package')
  await writeFixture({ arch: 'qwen3_5', outDir: packageDir, dtype, seed: 4 })
  server = await startStaticServer({ mounts: [{ prefix: '/', directory: packageDir }] })
  engine = await loadEngineModule()
}, 120_000)

afterAll(async () => {
  await server?.close()
  if (folder) await rm(folder, { recursive: true, force: true })
})

describe("the engine's weights from the model store", () => {
  it('loads a URL package in ranged reads of the stored files, with the logits of the folder', async () => {
    const store = createNodeStore({ cacheDir: join(folder, 'cache'), onWarning: () => undefined })
    const pkg = await store.open(`${server.url}/`)
    const files = (pkg.manifest?.files ?? [])
      .map((file) => file.path)
      .filter((path) => path.startsWith('onnx/'))
    await pkg.ensure(['config.json', ...files])
    const wholeReads: string[] = []
    const watched: StoredPackage = {
      ...pkg,
      readBytes: (path) => {
        wholeReads.push(path)
        return pkg.readBytes(path)
      },
    }
    const got = await logits(packageWeightReader(storedPackageReader(watched)))
    expect(Buffer.compare(got, await logits(folderWeightReader(packageDir)))).toBe(0)
    // Only the config and the small .onnx graphs were read whole; no .onnx_data file.
    expect(wholeReads.filter((path) => path.endsWith('.onnx_data'))).toEqual([])
    expect(wholeReads.some((path) => path.endsWith('.onnx'))).toBe(true)

    // A weight file gone from the store mid-load is a clear, retryable error, not garbage weights.
    const data = files.find((path) => path.endsWith('.onnx_data'))!
    await pkg.discard?.([data])
    await expect(
      pkg.readInto?.(data, 0, new Uint8Array(16)) ?? Promise.reject(new Error('no readInto')),
    ).rejects.toMatchObject({
      code: 'download_failed',
      isRetryable: true,
      message: expect.stringMatching(/no longer stored/),
    })
  }, 60_000)
})
