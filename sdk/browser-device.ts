// The device side in a browser page: the runtime's DeviceHost runs in a dedicated Web Worker
// (OPFS / Cache API store, onnxruntime-web with WebGPU or WASM; device-worker.ts), and the page
// drives it through a proxy that is itself a DeviceHost, so generation never blocks the page.
// A worker whose thread blocks for good during a load (Firefox 153 ESR, inside the `new Worker`
// of the engine's helper threads) is stopped and started again, and the load goes on there on one
// thread (web-worker/proxy.ts, `restart`).
import {
  createWorkerDeviceHost,
  type MessageEndpoint,
  type WorkerDeviceHost,
} from '../client-runtime/web-worker/index.ts'
import { BackendError, InvalidArgumentError, refuseUnknownNames } from '../core/errors.ts'

export interface BrowserDeviceHostOptions {
  /** Where the app serves onnxruntime-web's runtime files (createClient's `runtimeUrl`); default '/ort/'. */
  readonly runtimeUrl?: string
  /**
   * Starts the model worker: an app's own worker that serves the runtime (its script calls
   * markNestedWorkers and serveDeviceHost, as sdk/device-worker-host.ts does, with the runtime
   * options it needs). Called again for a fresh worker when one blocked during a load. Default:
   * the SDK's own model worker.
   */
  readonly worker?: () => Worker
}

/** The SDK's model worker. */
function sdkModelWorker(): Worker {
  // Bundlers (Vite, webpack, esbuild) recognise this pattern and emit the worker as its own chunk.
  return new Worker(new URL('./device-worker.ts', import.meta.url), {
    type: 'module',
    name: 'ondevice-model',
  })
}

/**
 * Resolves with `worker` once its script runs; rejects with a BackendError when it cannot start
 * (its script did not load: offline without the app's build at hand, a 404 or an HTML page for
 * it). The worker's own 'started' message is the only sign it runs: without it a worker that never
 * started would leave every call waiting.
 */
function started(worker: Worker): Promise<Worker> {
  return new Promise<Worker>((resolve, reject) => {
    const stop = () => {
      worker.removeEventListener('message', onMessage)
      worker.removeEventListener('error', onError)
    }
    const onMessage = (event: MessageEvent) => {
      if ((event.data as { type?: unknown } | null)?.type !== 'started') return
      stop()
      resolve(worker)
    }
    const onError = (event: Event) => {
      stop()
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
}

/**
 * Starts the model's worker; resolves once its script runs, rejects with a BackendError when it
 * cannot start. The host's `close()` stops listening and terminates the worker.
 */
export async function createBrowserDeviceHost(
  options: BrowserDeviceHostOptions = {},
): Promise<WorkerDeviceHost> {
  // A misspelt name (wroker, runtimeURL) would be dropped without a word and the default taken.
  refuseUnknownNames(options, ['runtimeUrl', 'worker'], 'createBrowserDeviceHost option')
  if (options.worker !== undefined && typeof options.worker !== 'function')
    throw new InvalidArgumentError(
      'worker',
      "createBrowserDeviceHost's worker is a function that starts the model worker, called again for a fresh one: { worker: () => new Worker(new URL('./model-worker.ts', import.meta.url), { type: 'module' }) }, not a Worker.",
    )
  // Called where there is no page (a server render, Node): say so, not "Worker is not defined".
  const globals = globalThis as { Worker?: unknown; location?: unknown }
  if (
    globals.location === undefined ||
    (options.worker === undefined && typeof globals.Worker !== 'function')
  )
    throw new BackendError(
      'backend_unavailable',
      `createBrowserDeviceHost starts the model's Web Worker from a browser page, and this is not one (${globals.location === undefined ? 'no location' : 'no Worker'}). In Node, createClient runs the model in this process without it; in a server render (Next.js, Nuxt, SvelteKit, ...), call it in the browser only, e.g. in a useEffect or onMount.`,
    )
  const makeWorker = options.worker ?? sdkModelWorker
  // The current worker: close() terminates this one, a restart replaces it at once.
  let worker = makeWorker()
  // The worker resolves relative URLs against its own script: hand it an absolute one.
  const runtimeUrl = new URL(options.runtimeUrl ?? '/ort/', globalThis.location.href).href
  const host = createWorkerDeviceHost(worker as unknown as MessageEndpoint, {
    wasmBaseUrl: runtimeUrl,
    restart: async () => {
      // The blocked worker's models go with it. The page's own `new Worker` does not block: with
      // Firefox's block holding the old one, the fresh one loads (docs/wasm-engine.md, Threads).
      worker.terminate()
      worker = makeWorker()
      return (await started(worker)) as unknown as MessageEndpoint
    },
  })
  try {
    await started(worker)
  } catch (error) {
    host.close()
    throw error
  }
  return {
    ...host,
    close: () => {
      host.close()
      worker.terminate()
    },
  }
}
