// The model worker's body (device-worker.ts imports it): the runtime's DeviceHost, served as-is to
// the page's proxy (see browser-device.ts). An app that needs other runtime options (wasmBaseUrl,
// contextLength) writes the same lines with them in a worker of its own (and passes it to
// createBrowserDeviceHost as `worker`).
import { createRuntimeDeviceHost } from '../client-runtime/device-host/runtime-host.ts'
import {
  type MessageEndpoint,
  markNestedWorkers,
  type NestedWorkerScope,
  serveDeviceHost,
} from '../client-runtime/web-worker/index.ts'

const scope = globalThis as unknown as MessageEndpoint & NestedWorkerScope
// Each helper thread's `new Worker(...)` says so to the page first: Firefox's worker sometimes
// blocks for good inside one, and the page then starts this worker again on one thread within
// seconds (proxy.ts, nestedWorkerSilenceMs).
markNestedWorkers(scope, scope)
serveDeviceHost(scope, createRuntimeDeviceHost())
