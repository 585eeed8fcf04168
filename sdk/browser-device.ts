// The device side in a browser page: the runtime's browser host (OPFS / Cache API store,
// onnxruntime-web with WebGPU or WASM). It runs on the page's thread until the runtime's Web
// Worker proxy is wired in here; the DeviceHost interface stays the same.
import type { DeviceHost } from './device.ts'
import { createRuntimeDeviceHost } from './runtime-device.ts'

export async function createBrowserDeviceHost(): Promise<DeviceHost> {
  return createRuntimeDeviceHost()
}
