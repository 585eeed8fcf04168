// The DeviceHost over the runtime (ondevice/runtime): its capability probe, package inspection,
// store and loadModel, with core's generation loop on the loaded session. Node runs it in
// process; a browser page runs the same code (the runtime picks its browser host and store).

import {
  type Backend,
  type Capabilities,
  defaultHost,
  inspectPackage,
  loadModel,
  type ModelStore,
  probeCapabilities,
} from '../client-runtime/index.ts'
import { InvalidArgumentError } from '../core/errors.ts'
import type { ModelSession } from '../core/model-session.ts'
import type { DeviceHost, DeviceLoadOptions } from './device.ts'
import { createDeviceModel } from './device-model.ts'
import type { DeviceCapabilities, PackageInfo } from './route.ts'

export interface RuntimeDeviceHostOptions {
  /** Where packages are stored; default: the runtime's (cache folder on Node, OPFS / Cache API in browsers). */
  readonly store?: ModelStore
  /** Caps the context (cache memory) below the model's. */
  readonly contextLength?: number
  /** Browser: where the app serves onnxruntime-web's .wasm files (default '/ort/'). */
  readonly wasmBaseUrl?: string
  /** WASM threads (Node). */
  readonly numThreads?: number
  /**
   * The package folder to use when no model is given (Node: the embedded default, see
   * node-device.ts). Without it a model is required: the runtime itself takes a folder or URL.
   */
  readonly defaultModel?: () => Promise<string>
  /** Tests: wraps each loaded session (fault injection on a real ORT session). */
  readonly wrapSession?: (session: ModelSession) => ModelSession
}

interface NavigatorState {
  readonly onLine?: boolean
  readonly connection?: { readonly saveData?: boolean }
}

export function createRuntimeDeviceHost(options: RuntimeDeviceHostOptions = {}): DeviceHost {
  let store: Promise<ModelStore> | undefined
  const getStore = (): Promise<ModelStore> => {
    store ??= options.store
      ? Promise.resolve(options.store)
      : defaultHost().then((host) => host.defaultStore())
    return store
  }
  // The probe asks for a WebGPU adapter and imports onnxruntime-node: do it once.
  let probed: Promise<Capabilities> | undefined
  let defaultPackage: Promise<string> | undefined

  const resolveModel = async (model: string | undefined): Promise<string> => {
    if (model !== undefined) return model
    if (!options.defaultModel) {
      throw new InvalidArgumentError(
        'model',
        'model is required here (the embedded default exists only in Node): pass the URL prefix of a model package (where its config.json is served).',
      )
    }
    defaultPackage ??= options.defaultModel()
    return defaultPackage
  }

  const backendFor = async (requested: Backend | undefined, capabilities: Capabilities): Promise<Backend> => {
    if (requested) return requested
    if (capabilities.webgpu.available) return 'webgpu'
    return (await defaultHost()).defaultBackend()
  }

  return {
    async capabilities(): Promise<DeviceCapabilities> {
      probed ??= getStore().then((s) => probeCapabilities({ estimate: () => s.estimate() }))
      const capabilities = await probed
      // Network state changes while a page lives: read it fresh each time.
      const navigator = (globalThis as { navigator?: NavigatorState }).navigator
      return {
        ...capabilities,
        online: navigator?.onLine ?? capabilities.online,
        ...(navigator?.connection?.saveData === undefined ? {} : { saveData: navigator.connection.saveData }),
      }
    },

    async inspect(model, inspectOptions): Promise<PackageInfo> {
      probed ??= getStore().then((s) => probeCapabilities({ estimate: () => s.estimate() }))
      const capabilities = await probed
      const summary = await inspectPackage({
        model: await resolveModel(model),
        backend: await backendFor(inspectOptions.backend, capabilities),
        ...(inspectOptions.dtype ? { dtype: inspectOptions.dtype } : {}),
        store: await getStore(),
        shaderF16: capabilities.webgpu.features?.includes('shader-f16') ?? false,
      })
      return {
        name: summary.name,
        dtype: summary.dtype,
        downloadBytes: summary.downloadBytes,
        cached: summary.cached,
        requiresShaderF16: summary.requiresShaderF16,
        ...(summary.estimatedMemoryBytes === undefined
          ? {}
          : { estimatedMemoryBytes: summary.estimatedMemoryBytes }),
      }
    },

    async load(model, loadOptions: DeviceLoadOptions) {
      const loaded = await loadModel({
        model: await resolveModel(model),
        store: await getStore(),
        ...(loadOptions.backend ? { backend: loadOptions.backend } : {}),
        ...(loadOptions.dtype ? { dtype: loadOptions.dtype } : {}),
        ...(loadOptions.signal ? { signal: loadOptions.signal } : {}),
        ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
        ...(options.wasmBaseUrl === undefined ? {} : { wasmBaseUrl: options.wasmBaseUrl }),
        ...(options.numThreads === undefined ? {} : { numThreads: options.numThreads }),
        ...(loadOptions.onProgress
          ? {
              onProgress: (progress) =>
                loadOptions.onProgress?.({
                  loadedBytes: progress.loaded,
                  totalBytes: progress.total ?? 0,
                  file: progress.file,
                }),
            }
          : {}),
      })
      const session = options.wrapSession ? options.wrapSession(loaded.session) : loaded.session
      return createDeviceModel({ session, tokenizer: loaded.tokenizer, dispose: () => loaded.dispose() })
    },
  }
}
