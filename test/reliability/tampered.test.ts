// Tampered and hostile model packages, served over HTTP on 127.0.0.1 to the real Node store and
// loadModel (onnxruntime-node), and to the edge worker's package verification: a flipped byte in a
// weight file, a manifest whose sha256 or size lies, a config.json with absurd dimensions, an ONNX
// file that is not ONNX, path traversal in manifest paths, and redirects to another origin. Each is
// refused before use with a clear error, and the cache keeps nothing of the bad file.
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { loadModelWith } from '../../client-runtime/load-model.ts'
import { nodeHost } from '../../client-runtime/node-host.ts'
import { createNodeStore } from '../../client-runtime/store/node-store.ts'
import { OndeviceError } from '../../core/errors.ts'
import { loadEngineModule } from '../../wasm/engine/node.ts'
import { loadOrtWebForNode } from '../../wasm/node.ts'
import { loadEdgeModel } from '../../worker/edge-model.ts'
import { urlPackageReader, verifyPackage } from '../../worker/package-sources.ts'
import { type PackageServer, startPackageServer } from './package-server.ts'
import { reportFigures } from './summary.ts'

const weightPath = 'onnx/model_quantized.onnx_data'
const graphPath = 'onnx/model_quantized.onnx'
let folder: string
let packageDir: string
let server: PackageServer
let otherOrigin: PackageServer
let manifest: { files: { path: string; bytes: number; sha256: string }[]; [key: string]: unknown }
const refused: string[] = []

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-tampered-'))
  packageDir = join(folder, 'package')
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: 'q8', seed: 3 })
  manifest = JSON.parse(await readFile(join(packageDir, 'manifest.json'), 'utf8'))
  server = await startPackageServer(packageDir)
  otherOrigin = await startPackageServer(packageDir)
}, 120_000)

afterAll(async () => {
  await Promise.all([server?.close(), otherOrigin?.close()])
  if (folder) await rm(folder, { recursive: true, force: true })
  reportFigures('tampered', { casesRefused: refused.length, cases: refused.join(',') })
})

async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true }).catch(() => [])
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(directory.length + 1))
}

/** Every file under the cache with its size, to tell whether anything is still being written. */
async function cacheState(directory: string): Promise<string[]> {
  return Promise.all(
    (await filesUnder(directory)).map(async (file) => `${file}:${(await stat(join(directory, file))).size}`),
  )
}

/** The load's other downloads stopped before it rejected: nothing in the cache changes afterwards. */
async function expectSettled(directory: string): Promise<void> {
  const atRejection = await cacheState(directory)
  await new Promise((resolve) => setTimeout(resolve, 300))
  expect(await cacheState(directory)).toEqual(atRejection)
}

function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** A manifest that vouches for `bytes` at `path` (so the store's hash check passes and the next defence is tested). */
function manifestWith(path: string, bytes: Uint8Array): string {
  return JSON.stringify({
    ...manifest,
    files: manifest.files.map((file) =>
      file.path === path ? { path, bytes: bytes.length, sha256: sha256(bytes) } : file,
    ),
  })
}

async function freshCache(): Promise<string> {
  return mkdtemp(join(folder, 'cache-'))
}

async function expectRefused(
  label: string,
  work: Promise<unknown>,
  codes: readonly string[],
  messagePattern: RegExp,
): Promise<OndeviceError> {
  const error = await work.then(
    () => undefined,
    (caught: unknown) => caught,
  )
  expect(error, `${label}: expected a refusal`).toBeInstanceOf(OndeviceError)
  const ondevice = error as OndeviceError
  expect(codes, `${label}: code ${ondevice.code} (${ondevice.message})`).toContain(ondevice.code)
  expect(ondevice.message).toMatch(messagePattern)
  refused.push(label)
  return ondevice
}

const load = (cacheDir: string) =>
  loadModelWith(nodeHost, {
    model: server.url,
    backend: 'native',
    store: createNodeStore({ cacheDir, onWarning: () => undefined }),
  })

describe('device store and loadModel', () => {
  it('loads the untouched package (the control case)', async () => {
    server.clear()
    const cacheDir = await freshCache()
    const model = await load(cacheDir)
    expect(model.tokenizer.vocabularySize).toBeGreaterThan(1000)
    await model.dispose()
  })

  it('a weight file with one flipped byte: integrity_failed, and no byte of it stays in the cache', async () => {
    server.clear()
    const bytes = new Uint8Array(await readFile(join(packageDir, weightPath)))
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01
    server.override(weightPath, bytes)
    const cacheDir = await freshCache()
    await expectRefused('flipped-byte', load(cacheDir), ['integrity_failed'], /sha256/i)
    await expectSettled(cacheDir)
    const kept = await filesUnder(cacheDir)
    expect(kept.filter((file) => file.includes('onnx_data'))).toEqual([])
  })

  it('a manifest whose sha256 lies: integrity_failed, nothing of that file kept', async () => {
    server.clear()
    const lying = {
      ...manifest,
      files: manifest.files.map((file) =>
        file.path === graphPath ? { ...file, sha256: 'f'.repeat(64) } : file,
      ),
    }
    server.override('manifest.json', new TextEncoder().encode(JSON.stringify(lying)))
    const cacheDir = await freshCache()
    await expectRefused('manifest-sha256-lies', load(cacheDir), ['integrity_failed'], /sha256/i)
    // The failure stopped the weight file's download beside it before the load answered.
    await expectSettled(cacheDir)
    const kept = await filesUnder(cacheDir)
    // Nothing of the graph, whole or partial.
    expect(kept.filter((file) => /model_quantized\.onnx(\.partial)?$/.test(file))).toEqual([])
    // The weight file is sound: it stays only as a `.partial` for a later Range resume (its sha256
    // is checked when it completes), or whole once it was verified.
    const weights = kept.filter((file) => file.includes('onnx_data'))
    expect(weights.length).toBeLessThanOrEqual(1)
    for (const file of weights) {
      if (file.endsWith('.partial')) continue
      expect(sha256(await readFile(join(cacheDir, file)))).toBe(
        manifest.files.find((entry) => entry.path === weightPath)?.sha256,
      )
    }
  })

  it('a manifest whose size lies (smaller or larger than the file): refused, nothing of that file kept', async () => {
    for (const delta of [-1000, 1000]) {
      server.clear()
      const lying = {
        ...manifest,
        files: manifest.files.map((file) =>
          file.path === weightPath ? { ...file, bytes: file.bytes + delta } : file,
        ),
      }
      server.override('manifest.json', new TextEncoder().encode(JSON.stringify(lying)))
      const cacheDir = await freshCache()
      await expectRefused(
        `manifest-size-lies${delta > 0 ? '-larger' : '-smaller'}`,
        load(cacheDir),
        ['integrity_failed', 'download_failed'],
        /bytes|sha256/i,
      )
      expect((await filesUnder(cacheDir)).filter((file) => file.includes('onnx_data'))).toEqual([])
    }
  })

  it('config.json with absurd dimensions: model_invalid naming the field, before any large allocation', async () => {
    const config = JSON.parse(await readFile(join(packageDir, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >
    for (const [field, value] of [
      ['num_hidden_layers', 1_000_000_000],
      ['hidden_size', 2 ** 40],
      ['vocab_size', 1e12],
      ['intermediate_size', -5],
      ['num_attention_heads', 0],
    ] as const) {
      server.clear()
      const bytes = new TextEncoder().encode(JSON.stringify({ ...config, [field]: value }))
      server.override('config.json', bytes)
      server.override('manifest.json', new TextEncoder().encode(manifestWith('config.json', bytes)))
      const before = process.memoryUsage().rss
      const cacheDir = await freshCache()
      await expectRefused(`absurd-config-${field}`, load(cacheDir), ['model_invalid'], new RegExp(field))
      expect(process.memoryUsage().rss - before).toBeLessThan(512 * 1024 * 1024)
      // Nothing of the weights was fetched for a config that is refused.
      expect((await filesUnder(cacheDir)).filter((file) => file.includes('onnx'))).toEqual([])
    }
  })

  it('an ONNX file that is not ONNX (but matches its manifest): a clear model error, not a crash', async () => {
    server.clear()
    const garbage = new TextEncoder().encode('<html>this is not a protobuf</html>'.repeat(40))
    server.override(graphPath, garbage)
    server.override('manifest.json', new TextEncoder().encode(manifestWith(graphPath, garbage)))
    const cacheDir = await freshCache()
    const error = await expectRefused(
      'not-onnx',
      load(cacheDir),
      ['model_invalid'],
      /not a valid model.*protobuf.*matches the sha256 in manifest\.json.*removed from the cache/i,
    )
    expect(error.isRetryable).toBe(false)
    // The verified-but-unloadable graph (and its weights) left the cache; the text files stay.
    const kept = await filesUnder(cacheDir)
    expect(kept.filter((file) => file.includes('model_quantized.onnx'))).toEqual([])
    expect(kept.some((file) => file.endsWith('config.json'))).toBe(true)
    const memo = await readFile(join(cacheDir, 'verified.json'), 'utf8')
    expect(memo).not.toContain('model_quantized.onnx')
    // The next load fetches the graph again (and fails the same clean way), rather than
    // failing from the cache.
    const graphRequests = () => server.requests.filter((line) => line === `GET ${graphPath}`).length
    const before = graphRequests()
    await expectRefused('not-onnx-again', load(cacheDir), ['model_invalid'], /not a valid model/i)
    expect(graphRequests()).toBe(before + 1)
    // Once the server has the real graph again, the same cache loads it.
    server.clear()
    const model = await load(cacheDir)
    expect(model.tokenizer.vocabularySize).toBeGreaterThan(1000)
    await model.dispose()
  })

  it('path traversal in manifest paths: model_invalid, and nothing is written anywhere', async () => {
    for (const path of [
      '../../escaped.txt',
      'onnx/../../escaped.txt',
      '/etc/escaped.txt',
      'C:/escaped.txt',
      'onnx\\..\\escaped.txt',
      'a//b',
    ]) {
      server.clear()
      const hostile = { ...manifest, files: [...manifest.files, { path, bytes: 3, sha256: sha256('abc') }] }
      server.override('manifest.json', new TextEncoder().encode(JSON.stringify(hostile)))
      const cacheDir = await freshCache()
      await expectRefused(`path-traversal:${path}`, load(cacheDir), ['model_invalid'], /path/i)
      expect(await filesUnder(cacheDir)).toEqual([])
      expect(
        await stat(join(folder, 'escaped.txt')).then(
          () => true,
          () => false,
        ),
      ).toBe(false)
    }
  })

  it('manifest.json redirected to another origin: refused, nothing cached', async () => {
    server.clear()
    server.redirect('manifest.json', `${otherOrigin.url}manifest.json`)
    const cacheDir = await freshCache()
    await expectRefused(
      'manifest-redirect-other-origin',
      load(cacheDir),
      ['model_invalid', 'download_failed'],
      /redirect|origin/i,
    )
    expect(await filesUnder(cacheDir)).toEqual([])
  })

  it('a weight file redirected to another origin that serves other bytes: integrity_failed, nothing kept', async () => {
    server.clear()
    const bytes = new Uint8Array(await readFile(join(packageDir, weightPath)))
    bytes[7]! ^= 0x80
    otherOrigin.override(weightPath, bytes)
    server.redirect(weightPath, `${otherOrigin.url}${weightPath}`)
    const cacheDir = await freshCache()
    await expectRefused('weights-redirect-other-origin', load(cacheDir), ['integrity_failed'], /sha256/i)
    expect((await filesUnder(cacheDir)).filter((file) => file.includes('onnx_data'))).toEqual([])
    otherOrigin.clear()
  })
})

describe('edge worker package verification', () => {
  it('refuses a flipped weight byte, lying manifests, traversal and absurd configs before creating a session', async () => {
    const { ort } = await loadOrtWebForNode({ numThreads: 1 })
    const edgeLoad = async () => {
      const verified = await verifyPackage(urlPackageReader(server.url), { source: server.url })
      return loadEdgeModel({
        ort,
        reader: verified.reader,
        modelId: 'fixture',
        backend: 'wasm',
        engine: await loadEngineModule(),
        availableDtypes: verified.manifest?.dtypes,
      })
    }
    server.clear()
    const bytes = new Uint8Array(await readFile(join(packageDir, weightPath)))
    bytes[12345]! ^= 0x10
    server.override(weightPath, bytes)
    await expectRefused('edge-flipped-byte', edgeLoad(), ['integrity_failed'], /SHA-256/i)

    server.clear()
    server.override(
      'manifest.json',
      new TextEncoder().encode(
        JSON.stringify({
          ...manifest,
          files: [...manifest.files, { path: '../secrets', bytes: 1, sha256: sha256('x') }],
        }),
      ),
    )
    await expectRefused('edge-path-traversal', edgeLoad(), ['model_invalid'], /path/i)

    server.clear()
    const config = JSON.parse(await readFile(join(packageDir, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >
    const absurd = new TextEncoder().encode(JSON.stringify({ ...config, num_hidden_layers: 1_000_000_000 }))
    server.override('config.json', absurd)
    server.override('manifest.json', new TextEncoder().encode(manifestWith('config.json', absurd)))
    const before = process.memoryUsage().rss
    await expectRefused('edge-absurd-config', edgeLoad(), ['model_invalid'], /num_hidden_layers/)
    expect(process.memoryUsage().rss - before).toBeLessThan(512 * 1024 * 1024)
    server.clear()
  })

  it("MODEL_URL's manifest.json redirected to another origin: refused before any file is read; same-origin and weight redirects still work", async () => {
    const verify = () => verifyPackage(urlPackageReader(server.url), { source: server.url })
    const manifestBytes = await readFile(join(packageDir, 'manifest.json'))
    server.clear()
    server.redirect('manifest.json', `${otherOrigin.url}manifest.json`)
    const before = server.requests.length
    await expectRefused(
      'edge-manifest-redirect-other-origin',
      verify(),
      ['model_invalid'],
      new RegExp(`redirected to another origin \\(${otherOrigin.origin.replace(/[.]/g, '\\.')}\\)`),
    )
    // Nothing but the refused manifest.json was asked of the package's origin.
    expect(server.requests.slice(before)).toEqual(['GET manifest.json'])

    // A redirect within the origin is fine, and so is a weight file served from another origin
    // (a CDN): its SHA-256 comes from the manifest.
    server.clear()
    server.override('moved/manifest.json', manifestBytes)
    server.redirect('manifest.json', `${server.url}moved/manifest.json`)
    server.redirect(weightPath, `${otherOrigin.url}${weightPath}`)
    const verified = await verify()
    expect(verified.manifest?.files.length).toBe(manifest.files.length)
    const weights = await verified.reader.readBytes(weightPath)
    expect(Buffer.compare(weights, await readFile(join(packageDir, weightPath)))).toBe(0)
    server.clear()
  })
})
