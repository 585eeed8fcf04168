// `ondevice`: the public API. createClient answers chats on the device when it can and on the
// edge when it can't; decideRoute is the router it uses, exported so an app can show (or test)
// its decisions; EdgeClient talks to the edge worker directly.

// The device host interface (the runtime's one engine interface) and its implementations: the
// runtime in this thread, and the proxy to one a Web Worker serves (serveDeviceHost).
export {
  createDeviceModel,
  createRuntimeDeviceHost,
  type DeviceGenerateRequest,
  type DeviceHost,
  type DeviceLoadOptions,
  type DeviceModel,
  type DeviceModelParts,
  type DevicePart,
  type PromptPart,
  type RuntimeDeviceHostOptions,
} from '../client-runtime/device-host/index.ts'
export type { DownloadProgress } from '../client-runtime/store/types.ts'
export {
  createWorkerDeviceHost,
  type MessageEndpoint,
  serveDeviceHost,
  type WorkerDeviceHost,
  type WorkerDeviceHostOptions,
} from '../client-runtime/web-worker/index.ts'
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
export { parseServerSentEvents, type ServerSentEvent } from './sse.ts'
