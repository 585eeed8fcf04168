// inspectPackage's memory figures: every backend's from the manifest (the router picks the one
// it runs), and the same model over config and file sizes for a package without them.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomDecoderWeights } from '../builder/architectures/random-weights.ts'
import { fixtureConfig, qwen3TokenizerFiles, writeFixture } from '../builder/fixtures/fixture.ts'
import { writeModelPackage } from '../builder/package/package-writer.ts'
import { memoryBackends } from '../core/memory-estimate.ts'
import type { PackageManifest } from '../core/model-package.ts'
import { inspectPackage } from './inspect.ts'
import { createNodeStore } from './store/node-store.ts'

let folder = ''
let manifest: PackageManifest
const store = () => createNodeStore({ cacheDir: join(folder, 'cache'), onWarning: () => undefined })

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-inspect-'))
  manifest = await writeFixture({
    arch: 'qwen3',
    size: 'tiny',
    dtype: ['q4', 'q8'],
    outDir: join(folder, 'pkg'),
  })
}, 120_000)

afterAll(async () => {
  await rm(folder, { recursive: true, force: true })
})

describe('inspectPackage: memory per backend', () => {
  it("reports every backend's figure for the dtype each would load, the inspected one's as estimatedMemoryBytes", async () => {
    const info = await inspectPackage({ model: join(folder, 'pkg'), backend: 'wasm', store: store() })
    // The builder writes every backend's figure, and the largest as the per-dtype number older readers use.
    const written = manifest.estimatedMemory?.q8 ?? {}
    expect(Object.keys(written)).toEqual([...memoryBackends])
    expect(manifest.estimatedMemoryBytes.q8).toBe(
      Math.max(...Object.values(written).map((figure) => figure.bytes)),
    )
    const figures = info.memoryByBackend ?? {}
    expect(Object.keys(figures).sort()).toEqual(['native', 'ort-wasm', 'wasm', 'webgpu'])
    expect(figures.wasm).toEqual({ dtype: 'q4', bytes: manifest.estimatedMemory?.q4?.wasm?.bytes })
    // onnxruntime-web prefers q8, and holds more of it than the engine does.
    expect(figures['ort-wasm']?.dtype).toBe('q8')
    expect(figures['ort-wasm']?.bytes).toBeGreaterThan(figures.wasm?.bytes as number)
    expect(figures.webgpu?.gpuBytes).toBeGreaterThan(0)
    expect(info.estimatedMemoryBytes).toBe(figures.wasm?.bytes)
    // A shorter context costs its cache bytes less.
    const short = await inspectPackage({
      model: join(folder, 'pkg'),
      backend: 'wasm',
      store: store(),
      contextLength: 64,
    })
    const perToken = manifest.estimatedMemory?.q4?.wasm?.perTokenBytes as number
    expect(short.estimatedMemoryBytes).toBe(
      (figures.wasm?.bytes as number) - perToken * ((manifest.contextLength as number) - 64),
    )
  })

  it('models the figures from config and file sizes when the manifest has none (an older or published package)', async () => {
    // Without figures, the graph is assumed to compute every prompt position's logits, as the
    // builder's Llama / Qwen3 graphs did before num_logits_to_keep: exactly such a package's figures.
    const stripped = async (from: string, to: string) => {
      await cp(from, to, { recursive: true })
      const stored = JSON.parse(await readFile(join(to, 'manifest.json'), 'utf8')) as Record<string, unknown>
      delete stored.estimatedMemory
      stored.estimatedMemoryBytes = { q4: 1, q8: 1 }
      await writeFile(join(to, 'manifest.json'), JSON.stringify(stored))
      return to
    }
    const config = fixtureConfig('qwen3', 'tiny')
    const oldManifest = await writeModelPackage({
      outDir: join(folder, 'old-graph'),
      weights: randomDecoderWeights(config, 1),
      tokenizer: qwen3TokenizerFiles(),
      dtypes: ['q4', 'q8'],
      graph: { logitsToKeep: false },
    })
    const old = await stripped(join(folder, 'old-graph'), join(folder, 'old'))
    const info = await inspectPackage({ model: old, backend: 'native', store: store() })
    expect(info.dtype).toBe('q4')
    expect(info.estimatedMemoryBytes).toBe(oldManifest.estimatedMemory?.q4?.native?.bytes)
    expect(info.memoryByBackend?.['ort-wasm']).toEqual({
      dtype: 'q4',
      bytes: oldManifest.estimatedMemory?.q4?.['ort-wasm']?.bytes,
    })
    // A package whose graph has the input but whose manifest lost its figures: the same
    // assumption, so more than the builder wrote for it (the prompt's rows of logits), never less.
    const current = await stripped(join(folder, 'pkg'), join(folder, 'current'))
    const modelled = await inspectPackage({ model: current, backend: 'native', store: store() })
    const written = manifest.estimatedMemory?.q4?.native?.bytes as number
    expect(modelled.estimatedMemoryBytes).toBeGreaterThan(written + 511 * config.vocabSize * 4)
  })

  it('refuses a manifest whose memory figures are malformed, naming the field', async () => {
    const bad = join(folder, 'bad')
    await cp(join(folder, 'pkg'), bad, { recursive: true })
    const stored = JSON.parse(await readFile(join(bad, 'manifest.json'), 'utf8')) as Record<string, unknown>
    stored.estimatedMemory = { q4: { wasm: { bytes: 'a lot', perTokenBytes: 0 } } }
    await writeFile(join(bad, 'manifest.json'), JSON.stringify(stored))
    await expect(inspectPackage({ model: bad, backend: 'wasm', store: store() })).rejects.toThrow(
      /"estimatedMemory.q4.wasm" must be/,
    )
  })
})
