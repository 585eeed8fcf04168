// `ondevice`'s createWorkerDeviceHost and serveDeviceHost: client-runtime/web-worker's (ondevice/runtime
// exports those as they are), loaded with import() when first used. Why not re-exported: esbuild
// with --splitting decides which chunks an entry imports file by file, following every static
// import of every file the entry reaches, whether or not the entry uses what it imports (its
// linker's markFileReachableForCodeSplitting; evanw/esbuild#2922). The proxy (proxy.ts) is used by
// the page's own on-demand chunk (browser-device.ts) and the server (serve.ts) by the model
// worker's entry, so their code sits in chunks shared with those, and `ondevice`'s re-export made
// a page that only chats import those chunks up front (`import "./chunk-….js"`, nothing used):
// 3 KiB gzip of 31.6 (test/browser/page-bundle-size.test.ts). No side effect, top-level statement or
// `sideEffects` entry kept them: the same happens to two side-effect-free files.
//
// Nothing a caller sees changes: every method of a DeviceHost is asynchronous, so the proxy is
// made at the first call (before it is asked, a worker says only 'started', which the proxy
// ignores anyway); the server listens at once, holding what arrives until its chunk is there.
import type { DeviceHost } from '../client-runtime/device-host/types.ts'
import type { MessageEndpoint, WorkerResponse } from '../client-runtime/web-worker/protocol.ts'
import type { WorkerDeviceHost, WorkerDeviceHostOptions } from '../client-runtime/web-worker/proxy.ts'
import type { DeviceHostServer } from '../client-runtime/web-worker/serve.ts'
import { serializeError } from '../core/errors.ts'
import { onDemand } from './on-demand.ts'

type MessageListener = (event: { readonly data: unknown }) => void

/** The page's DeviceHost over a model worker (client-runtime/web-worker/proxy.ts). */
export function createWorkerDeviceHost(
  endpoint: MessageEndpoint,
  options: WorkerDeviceHostOptions = {},
): WorkerDeviceHost {
  let closed = false
  let made: WorkerDeviceHost | undefined
  const proxy = onDemand(() =>
    import('../client-runtime/web-worker/proxy.ts').then((module) => {
      made = module.createWorkerDeviceHost(endpoint, options)
      // Closed before its first call: each call fails as the proxy's own do after close().
      if (closed) made.close()
      return made
    }),
  )
  return {
    capabilities: async () => (await proxy()).capabilities(),
    inspect: async (model, inspectOptions) => (await proxy()).inspect(model, inspectOptions),
    load: async (model, loadOptions) => (await proxy()).load(model, loadOptions),
    close: () => {
      closed = true
      made?.close()
    },
  }
}

/** Serves `host` to the page's proxy over `endpoint`, a worker's `self` (client-runtime/web-worker/serve.ts). */
export function serveDeviceHost(endpoint: MessageEndpoint, host: DeviceHost): DeviceHostServer {
  // Listening from now on: a request that came before the chunk would be lost (a worker's message
  // with no listener is dropped), and the page's proxy would wait for its answer for ever.
  const held: { readonly data: unknown }[] = []
  const hold: MessageListener = (event) => held.push(event)
  endpoint.addEventListener('message', hold)
  const server = onDemand(() =>
    import('../client-runtime/web-worker/serve.ts').then((module) =>
      module.serveDeviceHost(
        {
          postMessage: (message) => endpoint.postMessage(message),
          // The server's listener gets what was held first, in order, then each message as it comes.
          addEventListener: (type, listener) => {
            endpoint.addEventListener(type, listener)
            endpoint.removeEventListener('message', hold)
            for (const event of held.splice(0)) listener(event)
          },
          removeEventListener: (type, listener) => endpoint.removeEventListener(type, listener),
        },
        host,
      ),
    ),
  )
  const started = server().catch((error: unknown) => {
    // Without its chunk (offline without the app's build at hand) the worker still says it runs,
    // and answers each request with why (a retryable BackendError), rather than never.
    const refuse: MessageListener = (event) => {
      const id = (event.data as { id?: unknown } | null)?.id
      if (typeof id === 'number')
        endpoint.postMessage({ type: 'error', id, error: serializeError(error) } satisfies WorkerResponse)
    }
    endpoint.removeEventListener('message', hold)
    endpoint.addEventListener('message', refuse)
    endpoint.postMessage({ type: 'started' } satisfies WorkerResponse)
    for (const event of held.splice(0)) refuse(event)
    return { close: async () => endpoint.removeEventListener('message', refuse) }
  })
  return { close: async () => (await started).close() }
}
