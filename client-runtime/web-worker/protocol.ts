// The messages between a page and the dedicated worker that holds the model: the DeviceHost
// interface (device-host/types.ts) and its models, call by call. Every request carries an id; the
// worker answers with progress / part messages for that id and ends with exactly one `result` or
// `error`. A loaded model is named by the handle its load returned. Errors travel as core's
// SerializedError and come back as the same class with the same code.
import type { SerializedError } from '../../core/errors.ts'
import type { ModelToolCallSyntax } from '../../core/structured/call-syntax.ts'
import type { DeviceGenerateRequest, DevicePart } from '../device-host/types.ts'
import type { Backend } from '../dtype.ts'
import type { PackageInfo } from '../inspect.ts'
import type { DeviceCapabilities } from '../probe.ts'
import type { DownloadProgress } from '../store/types.ts'

/** DeviceLoadOptions without what cannot cross a thread (the callback and the signal travel as messages). */
export interface WorkerLoadOptions {
  readonly backend?: Backend
  readonly dtype?: string
  readonly wasmBaseUrl?: string
  readonly numThreads?: number
}

/** What load() resolves to in the worker, and the handle that names the model from then on. */
export interface LoadedModelInfo {
  readonly handle: number
  readonly modelId: string
  readonly backend: string
  readonly dtype: string
  /** DeviceModel.warnings: the load's warnings. */
  readonly warnings: readonly string[]
  /** DeviceModel.toolCallSyntax: how the model writes tool calls. */
  readonly toolCallSyntax?: ModelToolCallSyntax
  /** DeviceModel.packageFingerprint: which weights it runs. */
  readonly packageFingerprint?: string
  /** DeviceModel.sourceModelId: the id of where the package was loaded from, where not modelId. */
  readonly sourceModelId?: string
}

export type WorkerRequest =
  | { readonly type: 'capabilities'; readonly id: number }
  | {
      readonly type: 'inspect'
      readonly id: number
      readonly model: string | undefined
      readonly options: WorkerLoadOptions & { readonly retryManifest?: boolean }
    }
  | {
      readonly type: 'load'
      readonly id: number
      readonly model: string | undefined
      readonly options: WorkerLoadOptions
    }
  | {
      readonly type: 'generate'
      readonly id: number
      readonly handle: number
      readonly request: Omit<DeviceGenerateRequest, 'signal'>
    }
  | { readonly type: 'probe'; readonly id: number; readonly handle: number }
  | { readonly type: 'dispose'; readonly id: number; readonly handle: number }
  /** Stops the request `target` (its signal aborts in the worker). */
  | { readonly type: 'abort'; readonly id: number; readonly target: number }

/** What each request resolves to. */
export interface WorkerResults {
  readonly capabilities: DeviceCapabilities
  readonly inspect: PackageInfo
  readonly load: LoadedModelInfo
  readonly generate: null
  readonly probe: number
  readonly dispose: null
  readonly abort: null
}

export type WorkerResponse =
  /** Sent once, when the server starts: the worker's script loaded and runs (see createBrowserDeviceHost). */
  | { readonly type: 'started' }
  | { readonly type: 'progress'; readonly id: number; readonly progress: DownloadProgress }
  /** Every second of a load: the worker's thread runs (see WorkerDeviceHostOptions.loadSilenceMs). */
  | { readonly type: 'alive'; readonly id: number }
  /**
   * Just before ('making') and after ('made') each `new Worker(...)` the worker makes (the engine's
   * helper threads), from markNestedWorkers: a thread silent after 'making' is blocked inside it
   * (see WorkerDeviceHostOptions.nestedWorkerSilenceMs). Not tied to a request.
   */
  | { readonly type: 'nested-worker'; readonly phase: 'making' | 'made' }
  | { readonly type: 'part'; readonly id: number; readonly part: DevicePart }
  | { readonly type: 'result'; readonly id: number; readonly value: WorkerResults[keyof WorkerResults] }
  | { readonly type: 'error'; readonly id: number; readonly error: SerializedError }

/** The part of a Worker / MessagePort / DedicatedWorkerGlobalScope both ends use. */
export interface MessageEndpoint {
  postMessage(message: unknown): void
  addEventListener(type: 'message', listener: (event: { readonly data: unknown }) => void): void
  removeEventListener(type: 'message', listener: (event: { readonly data: unknown }) => void): void
}
