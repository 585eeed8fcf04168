// The conformance suite on Node's two CPU backends (onnxruntime-node and onnxruntime-web WASM),
// on seeded fp32 fixtures (Llama, Qwen3, Qwen3.5) the builder writes (small vocabulary). Every backend runs the same
// body (conformance-cases.ts); this file then checks they agree: the same greedy tokens and
// logits within 1e-3.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Backend, type LoadedModel, loadModel } from '../../client-runtime/index.ts'
import { createNodeStore } from '../../client-runtime/store/node-store.ts'
import {
  type ConformanceFixture,
  type ConformanceHarness,
  type ConformanceResult,
  conformanceCases,
  conformanceFixtures,
  maxAbsDifference,
} from './conformance-cases.ts'
import { writeConformanceFixture } from './conformance-fixture.ts'

let folder: string
const packages = new Map<ConformanceFixture, string>()

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-conformance-'))
  for (const fixture of conformanceFixtures) {
    const outDir = join(folder, fixture)
    await writeConformanceFixture(fixture, outDir)
    packages.set(fixture, outDir)
  }
}, 120_000)

const opened: LoadedModel[] = []
afterAll(async () => {
  for (const model of opened) await model.dispose()
  await rm(folder, { recursive: true, force: true })
})

/** A harness over loadModel: one loaded model per fixture and backend, shared by the cases. */
function nodeHarness(backend: Backend): ConformanceHarness {
  const cache = new Map<string, Promise<LoadedModel>>()
  const open = (fixture: ConformanceFixture) => {
    let loaded = cache.get(fixture)
    if (!loaded) {
      loaded = loadModel({
        model: packages.get(fixture) as string,
        backend,
        dtype: 'fp32',
        store: createNodeStore({ cacheDir: join(folder, 'cache') }),
      }).then((model) => {
        opened.push(model)
        return model
      })
      cache.set(fixture, loaded)
    }
    return loaded
  }
  return { backend, tolerance: 1e-4, load: open }
}

const results = new Map<string, ConformanceResult>()
const cpuBackends: Backend[] = ['native', 'wasm']

for (const backend of cpuBackends) {
  describe(`conformance on ${backend}`, () => {
    const harness = nodeHarness(backend)
    for (const fixture of conformanceFixtures) {
      for (const testCase of conformanceCases) {
        it(`${fixture}: ${testCase.name}`, async () => {
          const result = await testCase.run(harness, fixture)
          results.set(`${backend}/${fixture}/${testCase.name}`, result)
        })
      }
    }
  })
}

describe('conformance across CPU backends', () => {
  it.each(conformanceFixtures)(
    '%s: native and wasm give the same greedy tokens and logits within 1e-3',
    (fixture) => {
      const name = conformanceCases[0]?.name
      const native = results.get(`native/${fixture}/${name}`)
      const wasm = results.get(`wasm/${fixture}/${name}`)
      expect(native?.greedyTokens).toHaveLength(12)
      expect(wasm?.greedyTokens).toEqual(native?.greedyTokens)
      expect(maxAbsDifference(native?.promptLogitsHead ?? [], wasm?.promptLogitsHead ?? [])).toBeLessThan(
        1e-3,
      )
    },
  )
})
