// The device side in Node: the runtime in this process (onnxruntime-node, or WASM when asked).
// Node only, so it may bring the embedded default package (no `model` given): the builder
// writes it into the runtime's cache folder once. Browser code never reaches this module
// (device.ts imports it only in Node).
import { ensureDefaultPackage } from '../builder/default-package.ts'
import {
  createRuntimeDeviceHost,
  type RuntimeDeviceHostOptions,
} from '../client-runtime/device-host/runtime-host.ts'
import type { DeviceHost } from '../client-runtime/device-host/types.ts'
import { usableCacheDir } from '../client-runtime/store/node-store.ts'

/** The embedded default package's folder in the runtime's cache (written on first use). */
export async function nodeDefaultModel(): Promise<string> {
  return ensureDefaultPackage({ cacheDir: await usableCacheDir() })
}

export async function createNodeDeviceHost(
  options: Omit<RuntimeDeviceHostOptions, 'defaultModel'> = {},
): Promise<DeviceHost> {
  return createRuntimeDeviceHost({ defaultModel: nodeDefaultModel, ...options })
}
