// The device side in a browser page: the model runs in a dedicated Web Worker (the runtime's
// worker host: OPFS / Cache API store, onnxruntime-web with WebGPU or WASM), driven from the page
// through the runtime's typed proxy, so generation never blocks the page.
import { createModelWorkerProxy, type MessageEndpoint } from '../client-runtime/web-worker/index.ts'
import type { DeviceHost } from './device.ts'
import { createWorkerDeviceHost } from './worker-device.ts'

export async function createBrowserDeviceHost(): Promise<DeviceHost> {
  // Bundlers (Vite, webpack, esbuild) recognise this pattern and emit the worker as its own chunk.
  const worker = new Worker(new URL('./device-worker.ts', import.meta.url), {
    type: 'module',
    name: 'ondevice-model',
  })
  return createWorkerDeviceHost(createModelWorkerProxy(worker as unknown as MessageEndpoint))
}
