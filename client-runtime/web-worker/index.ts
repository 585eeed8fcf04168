// The model in a dedicated Web Worker: the worker runs startWorkerHost(self); the page talks to
// it through createModelWorkerProxy(worker). One typed protocol (protocol.ts) in between.
export { startWorkerHost, type WorkerHost, type WorkerHostOptions } from './host.ts'
export type {
  LoadedModelInfo,
  MessageEndpoint,
  WorkerGenerateRequest,
  WorkerLoadOptions,
  WorkerRequest,
  WorkerResponse,
  WorkerResults,
} from './protocol.ts'
export { createModelWorkerProxy, type ModelWorkerProxy } from './proxy.ts'
