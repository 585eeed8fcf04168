// The device side in a browser page: the model runs in a dedicated Web Worker (the runtime's
// worker host: OPFS / Cache API store, onnxruntime-web with WebGPU or WASM), driven from the page
// through the runtime's typed proxy, so generation never blocks the page.
import { createModelWorkerProxy, type MessageEndpoint } from '../client-runtime/web-worker/index.ts'
import type { DeviceHost } from './device.ts'
import { createWorkerDeviceHost } from './worker-device.ts'

export interface BrowserDeviceHostOptions {
  /** Where the app serves onnxruntime-web's runtime files (createClient's `runtimeUrl`); default '/ort/'. */
  readonly runtimeUrl?: string
}

export async function createBrowserDeviceHost(options: BrowserDeviceHostOptions = {}): Promise<DeviceHost> {
  // Bundlers (Vite, webpack, esbuild) recognise this pattern and emit the worker as its own chunk.
  const worker = new Worker(new URL('./device-worker.ts', import.meta.url), {
    type: 'module',
    name: 'ondevice-model',
  })
  // The worker resolves relative URLs against its own script: hand it an absolute one.
  const runtimeUrl = new URL(options.runtimeUrl ?? '/ort/', globalThis.location.href).href
  return createWorkerDeviceHost(createModelWorkerProxy(worker as unknown as MessageEndpoint), {
    wasmBaseUrl: runtimeUrl,
  })
}
