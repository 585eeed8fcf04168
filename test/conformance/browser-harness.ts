// The conformance harness for a browser page (Chromium: WASM and WebGPU): the same cases as
// Node, over loadModel's browser host. The page serves the fixture packages (written by the
// builder, as node.test.ts does) and onnxruntime-web's dist folder from its own origin, then:
//   const harness = browserConformanceHarness({ backend: 'webgpu', packages: { llama: '/fixtures/llama/', ... } })
//   for (const testCase of conformanceCases) for (const fixture of fixtures) await testCase.run(harness, fixture)
// WebGPU compares logits with a 1e-3 tolerance (float rounding differs from the CPU kernels).
import {
  type Backend,
  createBrowserStore,
  type LoadedModel,
  loadModel,
  type ModelStore,
} from '../../client-runtime/index.ts'
import type { ConformanceFixture, ConformanceHarness } from './conformance-cases.ts'

export interface BrowserConformanceOptions {
  readonly backend: Extract<Backend, 'wasm' | 'webgpu'>
  /** URL prefix of each fixture package (fp32). */
  readonly packages: Partial<Record<ConformanceFixture, string>>
  /** Where onnxruntime-web's dist files are served (default '/ort/'). */
  readonly wasmBaseUrl?: string
  readonly store?: ModelStore
}

export function browserConformanceHarness(
  options: BrowserConformanceOptions,
): ConformanceHarness & { dispose(): Promise<void> } {
  const store = options.store ?? createBrowserStore()
  const loaded = new Map<ConformanceFixture, Promise<LoadedModel>>()
  return {
    backend: options.backend,
    tolerance: options.backend === 'webgpu' ? 1e-3 : 1e-4,
    load(fixture) {
      let model = loaded.get(fixture)
      if (!model) {
        const url = options.packages[fixture]
        if (!url) throw new Error(`browserConformanceHarness: no package URL for fixture ${fixture}`)
        model = loadModel({
          model: url,
          backend: options.backend,
          dtype: 'fp32',
          store,
          wasmBaseUrl: options.wasmBaseUrl ?? '/ort/',
        })
        loaded.set(fixture, model)
      }
      return model
    },
    async dispose() {
      for (const model of loaded.values()) await (await model).dispose()
      loaded.clear()
    },
  }
}
