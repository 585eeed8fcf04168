// The browser (page or Web Worker) host: packages in OPFS / the Cache API, ORT from the app's own
// origin, WebGPU when an adapter exists, else WASM (ondevice's engine where it covers the package).
import { BackendError } from '../core/errors.ts'
import { loadOrtWebForBrowser, ortWebDefaultThreadsWarning } from '../wasm/browser.ts'
import { loadEngineModuleForBrowser } from '../wasm/engine/browser.ts'
import {
  browserEngineThreads,
  browserThreadEnvironment,
  planBrowserEngineThreads,
} from '../wasm/engine/threads-browser.ts'
import type { Backend } from './dtype.ts'
import type { LoadModelOptions, RuntimeHost } from './load-model.ts'
import { hardwareWebGpu, probeCapabilities } from './probe.ts'
import { createBrowserStore } from './store/browser-store.ts'

let capabilities: ReturnType<typeof probeCapabilities> | undefined
const probeOnce = () => (capabilities ??= probeCapabilities())

export const browserHost: RuntimeHost = {
  defaultStore: () => createBrowserStore(),
  defaultBackend: async () => ({ backend: hardwareWebGpu((await probeOnce()).webgpu) ? 'webgpu' : 'wasm' }),
  shaderF16: async () => (await probeOnce()).webgpu.features?.includes('shader-f16') ?? false,
  // Backend 'wasm' is ondevice's engine here too: the same bits as the edge's (workerd) and Node's,
  // so a handoff from this page continues exactly. Helper Web Workers split the rows when the
  // page is cross-origin isolated (the bits stay the same for any thread count).
  loadEngine: async (options: LoadModelOptions) => {
    const plan = planBrowserEngineThreads(options.numThreads, browserThreadEnvironment())
    // The load's signal aborts the engine's fetch too (which has its own idle timeout, as the store's downloads).
    const fetchOptions = options.signal ? { signal: options.signal } : {}
    const [loaded, started] = await Promise.allSettled([
      loadEngineModuleForBrowser(undefined, fetchOptions),
      browserEngineThreads(plan.count, undefined, fetchOptions),
    ])
    if (loaded.status === 'rejected') {
      // The helpers already made for the threaded build go back (kept for this context's next load).
      if (started.status === 'fulfilled') started.value?.release?.()
      throw loaded.reason
    }
    if (started.status === 'rejected') throw started.reason
    const module = loaded.value
    const threads = started.value
    return {
      module,
      ...(threads ? { threads } : {}),
      ...(plan.warning === undefined ? {} : { warning: plan.warning }),
      setup: { host: 'browser', threads: plan.count, threadsReason: plan.reason },
    }
  },
  loadOrt: async (backend: Backend, options: LoadModelOptions) => {
    if (backend === 'native')
      throw new BackendError(
        'backend_unavailable',
        "The 'native' backend (ONNX Runtime for Node) exists only in Node; use 'webgpu' or 'wasm' in a browser.",
      )
    const { ort, setup } = await loadOrtWebForBrowser({
      wasmBaseUrl: options.wasmBaseUrl ?? '/ort/',
      flavor: backend === 'webgpu' ? 'webgpu' : 'wasm',
      ...(options.numThreads === undefined ? {} : { numThreads: options.numThreads }),
    })
    // onnxruntime-web's WASM threads lost to the page's headers, said as the engine says it (WebGPU
    // runs its graph on the GPU: no warning there).
    const warning = backend === 'webgpu' ? undefined : ortWebDefaultThreadsWarning(options.numThreads)
    return { ort, setup: { ...setup }, ...(warning === undefined ? {} : { warning }) }
  },
}
