// ondevice/runtime: the on-device side. loadModel() picks the host (Node or browser) itself;
// hosts that bring their own bytes (workerd) use createOrtSession with a PackageReader.
import { defaultHost } from './default-host.ts'
import type { LoadedModel, LoadModelOptions } from './load-model.ts'
import { loadModelWith } from './load-model.ts'

export { withCurrentNetwork } from './current-network.ts'
export { type DecodeSpeed, measureDecodeSpeed } from './decode-speed.ts'
export { defaultHost } from './default-host.ts'
export {
  createDeviceModel,
  createRuntimeDeviceHost,
  type DeviceGenerateRequest,
  type DeviceHost,
  type DeviceInspectOptions,
  type DeviceLoadOptions,
  type DeviceModel,
  type DeviceModelParts,
  type DevicePart,
  type PromptPart,
  type RuntimeDeviceHostOptions,
} from './device-host/index.ts'
export {
  availableDtypes,
  type Backend,
  backends,
  chooseDtype,
  type DtypeChoiceOptions,
  dtypeOfFile,
  knownDtypes,
  layoutFiles,
  normalizeDtype,
  type OnnxLayout,
  onnxLayout,
  type PackageContents,
  preferredDtypes,
} from './dtype.ts'
export { inspectPackage, type PackageInfo } from './inspect.ts'
export type { LoadedModel, LoadModelOptions, RuntimeHost } from './load-model.ts'
export { loadModelWith } from './load-model.ts'
export { type RuntimeModelConfig, readRuntimeConfig } from './model-config.ts'
export {
  createOrtSession,
  type OrtModel,
  type OrtModelSession,
  type OrtModule,
  type OrtSessionOptions,
  openOrtModel,
} from './ort-session.ts'
export { type PackageReader, storedPackageReader } from './package-reader.ts'
export { loadPackageTokenizer, tokenizerFileNames } from './package-tokenizer.ts'
export { detectPlatform, type Platform } from './platform.ts'
export {
  type DeviceCapabilities,
  type ProbeOptions,
  probeCapabilities,
  type WebGpuReport,
} from './probe.ts'
export type {
  DownloadProgress,
  EnsureOptions,
  ModelStore,
  OpenOptions,
  PackageFileEntry,
  ProgressPhase,
  StorageEstimate,
  StoredPackage,
  StoreManifest,
} from './store/types.ts'

/**
 * Loads a model package (folder or URL prefix) onto this device: picks the backend and the
 * fastest weight format for it, downloads and verifies what is missing, and returns a ready
 * session and tokenizer.
 */
export async function loadModel(options: LoadModelOptions): Promise<LoadedModel> {
  return loadModelWith(await defaultHost(), options)
}

export { type BrowserStoreOptions, createBrowserStore } from './store/browser-store.ts'
export {
  createWorkerDeviceHost,
  type DeviceHostServer,
  type LoadedModelInfo,
  type MessageEndpoint,
  markNestedWorkers,
  type NestedWorkerScope,
  serveDeviceHost,
  type WorkerDeviceHost,
  type WorkerLoadOptions,
  type WorkerRequest,
  type WorkerResponse,
  type WorkerResults,
} from './web-worker/index.ts'
