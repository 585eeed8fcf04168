// `ondevice`'s createBrowserDeviceHost: browser-device.ts's, loaded with import() when first used.
// A page imports `ondevice` for createClient, which reaches browser-device.ts through import()
// already (device.ts); esbuild with --splitting loads up front every chunk its entry reaches
// through a static import, re-exports the page never uses included, and this re-export was one
// (the proxy's recovery from a blocked model worker then pushed that page past its budget,
// test/browser/page-bundle-size.test.ts). It resolves asynchronously anyway.
import type { WorkerDeviceHost } from '../client-runtime/web-worker/proxy.ts'
import type { BrowserDeviceHostOptions } from './browser-device.ts'

/** Starts the model's worker (browser-device.ts, createBrowserDeviceHost). */
export async function createBrowserDeviceHost(
  options: BrowserDeviceHostOptions = {},
): Promise<WorkerDeviceHost> {
  return (await import('./browser-device.ts')).createBrowserDeviceHost(options)
}
