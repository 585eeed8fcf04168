// The SDK's device side. The interface (DeviceHost) is the runtime's one engine interface; this
// picks the implementation for the platform (detectPlatform): the runtime in this process (Node),
// the same runtime in a dedicated Web Worker behind a proxy (pages), the runtime right here (an
// app's own worker), or none (Cloudflare Workers and other servers).
import type { DeviceHost } from '../client-runtime/device-host/types.ts'
import { detectPlatform } from '../client-runtime/platform.ts'

export type {
  DeviceGenerateRequest,
  DeviceHost,
  DeviceLoadOptions,
  DeviceModel,
  DevicePart,
  PromptPart,
} from '../client-runtime/device-host/types.ts'
export type { DownloadProgress } from '../client-runtime/store/types.ts'

export interface DefaultDeviceHostOptions {
  /** Browsers: where the app serves onnxruntime-web's files (createClient's runtimeUrl, absolute). */
  readonly runtimeUrl?: string
  /** Node: createClient's cacheDir and cacheQuotaBytes (validated there). */
  readonly cacheDir?: string
  readonly cacheQuotaBytes?: number
}

export async function defaultDeviceHost(
  options: DefaultDeviceHostOptions = {},
): Promise<DeviceHost | undefined> {
  switch (detectPlatform()) {
    case 'node': {
      // '#node-device-host' is node-device.ts under the 'node' condition only (package.json
      // "imports"): it brings the builder's default-package writer, which bundles for browsers and
      // Workers must never contain; they resolve it to no-node-device.ts.
      const { createNodeDeviceHost } = await import('#node-device-host')
      return createNodeDeviceHost({
        ...(options.cacheDir === undefined ? {} : { cacheDir: options.cacheDir }),
        ...(options.cacheQuotaBytes === undefined ? {} : { cacheQuotaBytes: options.cacheQuotaBytes }),
      })
    }
    case 'browser': {
      // A page keeps its thread free: the model runs in a dedicated worker (none: no device).
      if ((globalThis as { Worker?: unknown }).Worker === undefined) return undefined
      const { createBrowserDeviceHost } = await import('./browser-device.ts')
      return createBrowserDeviceHost(
        options.runtimeUrl === undefined ? {} : { runtimeUrl: options.runtimeUrl },
      )
    }
    case 'worker': {
      // Inside an app's own Web Worker: run the model right here.
      const { createRuntimeDeviceHost } = await import('../client-runtime/device-host/runtime-host.ts')
      return createRuntimeDeviceHost(
        options.runtimeUrl === undefined ? {} : { wasmBaseUrl: options.runtimeUrl },
      )
    }
    default:
      return undefined
  }
}
