// The device side in a browser page: the runtime's DeviceHost runs in a dedicated Web Worker
// (OPFS / Cache API store, onnxruntime-web with WebGPU or WASM; device-worker.ts), and the page
// drives it through a proxy that is itself a DeviceHost, so generation never blocks the page.
import type { DeviceHost } from '../client-runtime/device-host/types.ts'
import { createWorkerDeviceHost, type MessageEndpoint } from '../client-runtime/web-worker/index.ts'
import { BackendError } from '../core/errors.ts'

export interface BrowserDeviceHostOptions {
  /** Where the app serves onnxruntime-web's runtime files (createClient's `runtimeUrl`); default '/ort/'. */
  readonly runtimeUrl?: string
}

/**
 * Starts the model's worker; resolves once its script runs, rejects with a BackendError when it
 * cannot start (its script did not load: offline without the app's build at hand, a 404 or an
 * HTML page for it). The worker's own 'started' message is the only sign it runs: without it a
 * worker that never started would leave every call waiting.
 */
export async function createBrowserDeviceHost(options: BrowserDeviceHostOptions = {}): Promise<DeviceHost> {
  // Bundlers (Vite, webpack, esbuild) recognise this pattern and emit the worker as its own chunk.
  const worker = new Worker(new URL('./device-worker.ts', import.meta.url), {
    type: 'module',
    name: 'ondevice-model',
  })
  // The worker resolves relative URLs against its own script: hand it an absolute one.
  const runtimeUrl = new URL(options.runtimeUrl ?? '/ort/', globalThis.location.href).href
  const host = createWorkerDeviceHost(worker as unknown as MessageEndpoint, { wasmBaseUrl: runtimeUrl })
  await new Promise<void>((resolve, reject) => {
    const stop = () => {
      worker.removeEventListener('message', onMessage)
      worker.removeEventListener('error', onError)
    }
    const onMessage = (event: MessageEvent) => {
      if ((event.data as { type?: unknown } | null)?.type !== 'started') return
      stop()
      resolve()
    }
    const onError = (event: Event) => {
      stop()
      host.close()
      worker.terminate()
      // A script that did not load gives a bare Event; one that threw while starting, its message.
      const thrown = (event as ErrorEvent).message
      reject(
        new BackendError(
          'backend_unavailable',
          `ondevice's model worker did not start (${thrown ? thrown : "its script, a chunk of the app's build (device-worker-*.js), did not load"}): offline, the app's own build must come from its service worker or the HTTP cache (docs/sdk.md, "Offline"); online, serve the build's worker chunks with the page. A bundler that leaves the worker's URL as it is (esbuild, Rollup) emits no such chunk: bundle node_modules/ondevice/dist/sdk/device-worker.js as an entry of its own into the folder of the page's script (docs/sdk.md, "A web page").`,
          { isRetryable: true },
        ),
      )
    }
    worker.addEventListener('message', onMessage)
    worker.addEventListener('error', onError)
  })
  return host
}
