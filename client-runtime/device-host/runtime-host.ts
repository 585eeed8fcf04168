// The DeviceHost over the runtime in this thread: the capability probe, package inspection, the
// store and loadModel, with core's generation loop on the loaded session. Node runs it in
// process; a browser runs it inside the dedicated Web Worker that serves the page (web-worker/);
// an app's own worker may run it directly.
import { InvalidArgumentError } from '../../core/errors.ts'
import { modelIdFromLocation } from '../../core/model-id.ts'
import { packageFingerprint } from '../../core/model-package.ts'
import type { ModelSession } from '../../core/model-session.ts'
import { withCurrentNetwork } from '../current-network.ts'
import { defaultHost } from '../default-host.ts'
import type { Backend } from '../dtype.ts'
import { inspectPackage, type PackageInfo } from '../inspect.ts'
import { loadModelWith, type RuntimeHost } from '../load-model.ts'
import { type DeviceCapabilities, hardwareWebGpu, probeCapabilities, type WebGpuReport } from '../probe.ts'
import type { ModelStore } from '../store/types.ts'
import { createDeviceModel } from './device-model.ts'
import type { DeviceHost, DeviceLoadOptions, DeviceModel } from './types.ts'

export interface RuntimeDeviceHostOptions {
  /** Where packages are stored; default: the runtime host's (cache folder on Node, OPFS / Cache API in browsers). */
  readonly store?: ModelStore
  /** The runtime host (store, ORT); default: the one for this platform. */
  readonly host?: RuntimeHost
  /** Caps the context (cache memory) below the model's. */
  readonly contextLength?: number
  /** Browser: where the app serves onnxruntime-web's .wasm files (default '/ort/'). */
  readonly wasmBaseUrl?: string
  /** WASM threads, for every load that names none (see loadModel's numThreads). */
  readonly numThreads?: number
  /**
   * The package folder to use when no model is given (Node: the embedded default, see the SDK's
   * node-device.ts). Without it a model is required: the runtime itself takes a folder or URL.
   */
  readonly defaultModel?: () => Promise<string>
  /** Tokens the load-time probe decodes (default 16). */
  readonly probeTokens?: number
  /** Tests: wraps each loaded session (fault injection on a real ORT session). */
  readonly wrapSession?: (session: ModelSession) => ModelSession
}

type Probed = DeviceCapabilities & { readonly webgpu: WebGpuReport }

/**
 * A device host answers chats, and a package without a chat template (a llama2.c conversion such
 * as stories260K) can only continue plain text: its load succeeded silently and every request
 * then failed. The edge refuses such a load outright; the device says so at load.
 */
const untemplatedWarning =
  "This package has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja): every chat request is refused (InvalidArgumentError 'messages'). Use a package with a template (a converted Hugging Face chat model, or ondevice fixture for a test); plain text goes through ondevice/core's generate() on tokenizer.encode()."

export function createRuntimeDeviceHost(options: RuntimeDeviceHostOptions = {}): DeviceHost {
  let runtimeHost: Promise<RuntimeHost> | undefined
  const getHost = (): Promise<RuntimeHost> =>
    (runtimeHost ??= options.host ? Promise.resolve(options.host) : defaultHost())
  let store: Promise<ModelStore> | undefined
  const getStore = (): Promise<ModelStore> =>
    (store ??= options.store ? Promise.resolve(options.store) : getHost().then((host) => host.defaultStore()))
  // The probe asks for a WebGPU adapter and imports onnxruntime-node: do it once.
  let probed: Promise<Probed> | undefined
  const probe = (): Promise<Probed> =>
    (probed ??= getStore().then((s) => probeCapabilities({ estimate: () => s.estimate() })))
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

  const backendFor = async (requested: Backend | undefined): Promise<Backend> => {
    if (requested) return requested
    if (hardwareWebGpu((await probe()).webgpu)) return 'webgpu'
    return (await (await getHost()).defaultBackend()).backend
  }

  return {
    async capabilities(): Promise<DeviceCapabilities> {
      return withCurrentNetwork(await probe())
    },

    async inspect(model, inspectOptions): Promise<PackageInfo> {
      const capabilities = await probe()
      return inspectPackage({
        model: await resolveModel(model),
        backend: await backendFor(inspectOptions.backend),
        ...(inspectOptions.dtype ? { dtype: inspectOptions.dtype } : {}),
        store: await getStore(),
        shaderF16: capabilities.webgpu.features?.includes('shader-f16') ?? false,
        ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
        ...(inspectOptions.retryManifest === false ? { retryManifest: false } : {}),
        ...(inspectOptions.signal === undefined ? {} : { signal: inspectOptions.signal }),
      })
    },

    async load(model, loadOptions: DeviceLoadOptions): Promise<DeviceModel> {
      const loaded = await loadModelWith(await getHost(), {
        model: await resolveModel(model),
        store: await getStore(),
        ...(loadOptions.backend ? { backend: loadOptions.backend } : {}),
        ...(loadOptions.dtype ? { dtype: loadOptions.dtype } : {}),
        ...(loadOptions.signal ? { signal: loadOptions.signal } : {}),
        ...(loadOptions.onProgress ? { onProgress: loadOptions.onProgress } : {}),
        ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
        ...((loadOptions.wasmBaseUrl ?? options.wasmBaseUrl) === undefined
          ? {}
          : { wasmBaseUrl: loadOptions.wasmBaseUrl ?? options.wasmBaseUrl }),
        ...((loadOptions.numThreads ?? options.numThreads) === undefined
          ? {}
          : { numThreads: loadOptions.numThreads ?? options.numThreads }),
      })
      const session = options.wrapSession ? options.wrapSession(loaded.session) : loaded.session
      return createDeviceModel({
        session,
        tokenizer: loaded.tokenizer,
        dispose: () => loaded.dispose(),
        // A page's app never sees loaded.* otherwise: the model answers through the DeviceModel.
        warnings:
          loaded.tokenizer.chatTemplate === undefined
            ? [...loaded.warnings, untemplatedWarning]
            : loaded.warnings,
        ...(options.probeTokens === undefined ? {} : { probeTokens: options.probeTokens }),
        ...fingerprintOf(loaded.manifest?.files, loaded.dtype),
        ...sourceModelIdOf(loaded.source, session.info.modelId),
      })
    },
  }
}

/** DeviceModel.sourceModelId, where it is not modelId (a manifest with a name of its own). */
function sourceModelIdOf(source: string, modelId: string): { sourceModelId?: string } {
  const id = modelIdFromLocation(source)
  return id === undefined || id === modelId ? {} : { sourceModelId: id }
}

function fingerprintOf(
  files: Parameters<typeof packageFingerprint>[0],
  dtype: string,
): { packageFingerprint?: string } {
  const fingerprint = packageFingerprint(files, dtype)
  return fingerprint === undefined ? {} : { packageFingerprint: fingerprint }
}
