// The model worker's body (device-worker.ts imports it): the runtime's DeviceHost, served as-is to
// the page's proxy (see browser-device.ts). An app that needs other runtime options (wasmBaseUrl,
// contextLength) writes the same two lines with them in a worker of its own.
import { createRuntimeDeviceHost } from '../client-runtime/device-host/runtime-host.ts'
import { type MessageEndpoint, serveDeviceHost } from '../client-runtime/web-worker/index.ts'

serveDeviceHost(globalThis as unknown as MessageEndpoint, createRuntimeDeviceHost())
