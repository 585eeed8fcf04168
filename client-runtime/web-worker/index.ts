// The model in a dedicated Web Worker: the worker serves a DeviceHost with
// serveDeviceHost(self, createRuntimeDeviceHost()); the page drives it through
// createWorkerDeviceHost(worker), itself a DeviceHost. One typed protocol (protocol.ts) in between.

export { markNestedWorkers, type NestedWorkerScope } from './nested-workers.ts'
export type {
  LoadedModelInfo,
  MessageEndpoint,
  WorkerLoadOptions,
  WorkerRequest,
  WorkerResponse,
  WorkerResults,
} from './protocol.ts'
export { createWorkerDeviceHost, type WorkerDeviceHost, type WorkerDeviceHostOptions } from './proxy.ts'
export { type DeviceHostServer, serveDeviceHost } from './serve.ts'
