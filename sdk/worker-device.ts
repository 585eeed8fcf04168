// The DeviceHost over the runtime's Web Worker proxy: the model, its store and its generation
// loop live in a dedicated worker (the page's thread stays free), and the SDK drives it through
// the runtime's typed protocol. Browsers use it by default; any MessageEndpoint works (a Worker,
// a MessagePort, node:worker_threads in tests).

import type { Backend, Capabilities } from '../client-runtime/index.ts'
import type { ModelWorkerProxy } from '../client-runtime/web-worker/index.ts'
import { InvalidArgumentError } from '../core/errors.ts'
import type { DeviceHost, DeviceLoadOptions, DeviceModel } from './device.ts'
import type { DeviceCapabilities, PackageInfo } from './route.ts'

export interface WorkerDeviceHostOptions {
  /** Browser: where the app serves onnxruntime-web's .wasm files (default '/ort/'). */
  readonly wasmBaseUrl?: string
  readonly contextLength?: number
  readonly numThreads?: number
  /** Tokens the load-time probe decodes (default 16). */
  readonly probeTokens?: number
}

interface NavigatorState {
  readonly onLine?: boolean
  readonly connection?: { readonly saveData?: boolean }
}

export function createWorkerDeviceHost(
  proxy: ModelWorkerProxy,
  options: WorkerDeviceHostOptions = {},
): DeviceHost {
  let probed: Promise<Capabilities> | undefined
  const capabilities = (): Promise<Capabilities> => {
    probed ??= proxy.capabilities()
    return probed
  }
  const requireModel = (model: string | undefined): string => {
    if (model === undefined) {
      throw new InvalidArgumentError(
        'model',
        'model is required here: pass the URL prefix of a model package (where its config.json is served).',
      )
    }
    return model
  }
  const backendFor = async (requested: Backend | undefined): Promise<Backend> =>
    requested ?? ((await capabilities()).webgpu.available ? 'webgpu' : 'wasm')

  return {
    async capabilities(): Promise<DeviceCapabilities> {
      const reported = await capabilities()
      // The page sees network changes first: read them here, fresh each time.
      const navigator = (globalThis as { navigator?: NavigatorState }).navigator
      return {
        ...reported,
        online: navigator?.onLine ?? reported.online,
        ...(navigator?.connection?.saveData === undefined ? {} : { saveData: navigator.connection.saveData }),
      }
    },

    async inspect(model, inspectOptions): Promise<PackageInfo> {
      const summary = await proxy.inspect(
        requireModel(model),
        await backendFor(inspectOptions.backend),
        inspectOptions.dtype,
      )
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

    async load(model, loadOptions: DeviceLoadOptions): Promise<DeviceModel> {
      const info = await proxy.load(
        {
          model: requireModel(model),
          ...(loadOptions.backend ? { backend: loadOptions.backend } : {}),
          ...(loadOptions.dtype ? { dtype: loadOptions.dtype } : {}),
          ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
          ...(options.wasmBaseUrl === undefined ? {} : { wasmBaseUrl: options.wasmBaseUrl }),
          ...(options.numThreads === undefined ? {} : { numThreads: options.numThreads }),
        },
        {
          ...(loadOptions.signal ? { signal: loadOptions.signal } : {}),
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
        },
      )
      return {
        modelId: info.modelId,
        backend: info.backend,
        dtype: info.dtype,
        encodeChat: (messages) => proxy.encodeChatTurns(messages, { addGenerationPrompt: true }),
        generate: (request) =>
          proxy.generate(
            {
              promptTokenIds: request.promptTokenIds,
              ...(request.promptBoundaries ? { promptBoundaries: request.promptBoundaries } : {}),
              ...(request.sampling ? { sampling: request.sampling } : {}),
              ...(request.maxTokens === undefined ? {} : { maxTokens: request.maxTokens }),
              ...(request.stop ? { stop: request.stop } : {}),
            },
            request.signal ? { signal: request.signal } : {},
          ),
        probe: async () => (await proxy.measureDecodeSpeed(options.probeTokens ?? 16)).tokensPerSecond,
        dispose: () => proxy.unload(),
      }
    },
  }
}
