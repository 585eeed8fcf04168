// `ondevice`: the public API. createClient answers chats on the device when it can and on the
// edge when it can't; decideRoute is the router it uses, exported so an app can show (or test)
// its decisions; EdgeClient talks to the edge worker directly.

// The device host interface (the runtime's one engine interface) and its implementations: the
// runtime in this thread (createRuntimeDeviceHost, below), and the proxy to one a Web Worker
// serves (serveDeviceHost).
export type {
  DeviceGenerateRequest,
  DeviceHost,
  DeviceLoadOptions,
  DeviceModel,
  DeviceModelParts,
  DevicePart,
  PromptPart,
  RuntimeDeviceHostOptions,
} from '../client-runtime/device-host/index.ts'
export type { DownloadProgress } from '../client-runtime/store/types.ts'
export type {
  MessageEndpoint,
  NestedWorkerScope,
  WorkerDeviceHost,
  WorkerDeviceHostOptions,
} from '../client-runtime/web-worker/index.ts'
// As it is: it must replace the worker's Worker before anything makes one, and its chunk is 0.2 KiB
// (createWorkerDeviceHost and serveDeviceHost are loaded on first use: below).
export { markNestedWorkers } from '../client-runtime/web-worker/nested-workers.ts'
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
  type PartialAnswer,
  StoreError,
} from '../core/errors.ts'
// From its own file, not core/protocol/'s index: that index also holds the request validation,
// which imports the structured-output compiler (see runtime-on-demand.ts for why that matters).
export { fromErrorBody as edgeErrorFrom } from '../core/protocol/errors.ts'
export type { SamplingOptions } from '../core/sampling/index.ts'
export type {
  ErrorPart,
  FinishPart,
  FinishReason,
  HandoffPart,
  ReasoningDeltaPart,
  Route,
  RoutePart,
  StreamPart,
  TextDeltaPart,
  ToolCall,
  ToolCallPart,
  Usage,
} from '../core/stream-parts.ts'
export type { ResponseFormat, ToolChoice, ToolDefinition } from '../core/structured/constraint.ts'
// Device hosts, for apps that wrap them (ClientInternals.deviceHost): the browser default (the
// model in a dedicated Web Worker: OPFS / Cache API store, onnxruntime-web on WebGPU or WASM).
// (Loaded on first use: esbuild's pages would load it up front, test/browser/page-bundle-size.test.ts.)
export type { BrowserDeviceHostOptions } from './browser-device.ts'
export { createBrowserDeviceHost } from './browser-device-on-demand.ts'
export {
  type ChatResult,
  type ClientEvents,
  type ClientInternals,
  type ClientStatus,
  createClient,
  type OndeviceClient,
  type PrepareOptions,
} from './client.ts'
export { type EdgeChatRequest, EdgeClient, type EdgeOptions, parseRetryAfter } from './edge-client.ts'
export type {
  ChatRequest,
  ChatRequestMessage,
  ClientOptions,
  DeviceBackendChoice,
  SamplingRequest,
} from './options.ts'
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
// The runtime in this thread (Node, an app's own Web Worker), loaded on first use: a page that
// imports `ondevice` for createClient never loads it up front, whatever its bundler.
export { createDeviceModel, createRuntimeDeviceHost } from './runtime-on-demand.ts'
export { parseServerSentEvents, type ServerSentEvent } from './sse.ts'
// The proxy to a model worker and the server in it, loaded on first use too: the page's own
// on-demand chunk and the model worker use them, and a re-export made a page that only chats
// import their chunks up front under esbuild (worker-device-on-demand.ts says why).
export { createWorkerDeviceHost, serveDeviceHost } from './worker-device-on-demand.ts'
