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
import { createNodeStore, prepareCacheFolder, usableCacheDir } from '../client-runtime/store/node-store.ts'

/** The embedded default package's folder in the runtime's cache (written on first use). */
export async function nodeDefaultModel(): Promise<string> {
  return ensureDefaultPackage({ cacheDir: await usableCacheDir() })
}

export interface NodeDeviceHostOptions extends Omit<RuntimeDeviceHostOptions, 'defaultModel'> {
  /** createClient's cacheDir: downloads and the default package go there instead of the default folder. */
  readonly cacheDir?: string
  /** createClient's cacheQuotaBytes: the store's quota. */
  readonly cacheQuotaBytes?: number
}

export async function createNodeDeviceHost(options: NodeDeviceHostOptions = {}): Promise<DeviceHost> {
  const { cacheDir, cacheQuotaBytes, ...hostOptions } = options
  if (cacheDir === undefined && cacheQuotaBytes === undefined) {
    return createRuntimeDeviceHost({ defaultModel: nodeDefaultModel, ...hostOptions })
  }
  const store = createNodeStore({
    ...(cacheDir === undefined ? {} : { cacheDir }),
    ...(cacheQuotaBytes === undefined ? {} : { quotaBytes: cacheQuotaBytes }),
  })
  const defaultModel = async (): Promise<string> => {
    if (cacheDir === undefined) return nodeDefaultModel()
    await prepareCacheFolder(cacheDir)
    return ensureDefaultPackage({ cacheDir })
  }
  return createRuntimeDeviceHost({ defaultModel, store, ...hostOptions })
}
