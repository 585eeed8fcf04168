// `ondevice`: the public API. createClient answers chats on the device when it can and on the
// edge when it can't; decideRoute is the router it uses, exported so an app can show (or test)
// its decisions; EdgeClient talks to the edge worker directly.

export type { ChatMessage } from '../core/chat-template.ts'
// The errors every call may throw, and the stream part types, so apps need only this import.
export {
  AbortedError,
  BackendError,
  ContextLengthError,
  EdgeError,
  InvalidArgumentError,
  ModelError,
  OndeviceError,
  StoreError,
} from '../core/errors.ts'
export { fromErrorBody as edgeErrorFrom } from '../core/protocol/index.ts'
export type { SamplingOptions } from '../core/sampling/index.ts'
export type {
  ErrorPart,
  FinishPart,
  FinishReason,
  HandoffPart,
  Route,
  RoutePart,
  StreamPart,
  TextDeltaPart,
  Usage,
} from '../core/stream-parts.ts'
// Device hosts, for apps that wrap them (ClientInternals.deviceHost): the browser default (the
// model in a dedicated Web Worker: OPFS / Cache API store, onnxruntime-web on WebGPU or WASM),
// one over any worker endpoint, and the runtime in this thread (Node, or inside an app's worker).
export { type BrowserDeviceHostOptions, createBrowserDeviceHost } from './browser-device.ts'
export {
  type ChatResult,
  type ClientEvents,
  type ClientInternals,
  type ClientStatus,
  createClient,
  type OndeviceClient,
  type PrepareOptions,
} from './client.ts'
export type {
  DeviceGenerateRequest,
  DeviceHost,
  DeviceLoadOptions,
  DeviceModel,
  DownloadProgress,
} from './device.ts'
export { createDeviceModel, type DeviceModelParts } from './device-model.ts'
export { type EdgeChatRequest, EdgeClient, type EdgeOptions, parseRetryAfter } from './edge-client.ts'
export type { ChatRequest, ClientOptions, DeviceBackendChoice, SamplingRequest } from './options.ts'
export {
  type DeviceBackend,
  type DeviceCapabilities,
  decideRoute,
  defaultThresholds,
  type EdgeAvailability,
  formatBytes,
  type PackageInfo,
  type RouteDecision,
  type RoutePolicy,
  type RouteThresholds,
  routePolicies,
} from './route.ts'
export { createRuntimeDeviceHost, type RuntimeDeviceHostOptions } from './runtime-device.ts'
export { parseServerSentEvents, type ServerSentEvent } from './sse.ts'
export { createWorkerDeviceHost, type WorkerDeviceHostOptions } from './worker-device.ts'
