// The device side in a browser page: the runtime's DeviceHost runs in a dedicated Web Worker
// (OPFS / Cache API store, onnxruntime-web with WebGPU or WASM; device-worker.ts), and the page
// drives it through a proxy that is itself a DeviceHost, so generation never blocks the page.
import type { DeviceHost } from '../client-runtime/device-host/types.ts'
import { createWorkerDeviceHost, type MessageEndpoint } from '../client-runtime/web-worker/index.ts'

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
  return createWorkerDeviceHost(worker as unknown as MessageEndpoint, { wasmBaseUrl: runtimeUrl })
}
