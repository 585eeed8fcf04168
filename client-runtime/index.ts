// ondevice/runtime: the on-device side. loadModel() picks the host (Node or browser) itself;
// hosts that bring their own bytes (workerd) use createOrtSession with a PackageReader.
import type { LoadedModel, LoadModelOptions, RuntimeHost } from './load-model.ts'
import { loadModelWith } from './load-model.ts'

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
export { inspectPackage, type PackageSummary } from './inspect.ts'
export type { LoadedModel, LoadModelOptions, RuntimeHost } from './load-model.ts'
export { loadModelWith } from './load-model.ts'
export { type RuntimeModelConfig, readRuntimeConfig } from './model-config.ts'
export {
  createOrtSession,
  type OrtModelSession,
  type OrtModule,
  type OrtSessionOptions,
} from './ort-session.ts'
export { type PackageReader, storedPackageReader } from './package-reader.ts'
export { loadPackageTokenizer, tokenizerFileNames } from './package-tokenizer.ts'
export {
  type Capabilities,
  type DecodeSpeed,
  measureDecodeSpeed,
  type ProbeOptions,
  probeCapabilities,
  type WebGpuReport,
} from './probe.ts'
export type {
  DownloadProgress,
  EnsureOptions,
  ModelStore,
  PackageFileEntry,
  ProgressPhase,
  StorageEstimate,
  StoredPackage,
  StoreManifest,
} from './store/types.ts'

function isNode(): boolean {
  return (
    typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === 'string'
  )
}

let host: Promise<RuntimeHost> | undefined

/** The host for this environment. The Node host is imported by a computed name so browser bundlers never pull it in. */
export function defaultHost(): Promise<RuntimeHost> {
  const nodeHostModule = './node-host.ts'
  host ??= isNode()
    ? import(/* @vite-ignore */ nodeHostModule).then((module: { nodeHost: RuntimeHost }) => module.nodeHost)
    : import('./browser-host.ts').then((module) => module.browserHost)
  return host
}

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
  createModelWorkerProxy,
  type LoadedModelInfo,
  type MessageEndpoint,
  type ModelWorkerProxy,
  startWorkerHost,
  type WorkerGenerateRequest,
  type WorkerHost,
  type WorkerHostOptions,
  type WorkerLoadOptions,
  type WorkerRequest,
  type WorkerResponse,
  type WorkerResults,
} from './web-worker/index.ts'
