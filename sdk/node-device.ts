// The device side in Node: the runtime in this process (onnxruntime-node, or WASM when asked).
import type { DeviceHost } from './device.ts'
import { createRuntimeDeviceHost } from './runtime-device.ts'

export async function createNodeDeviceHost(): Promise<DeviceHost> {
  return createRuntimeDeviceHost()
}
