// The structured-output code on demand. A page that only chats should not download and parse
// the schema compiler before its first answer (it is about a third of the SDK's JavaScript), so
// the SDK (a request's validation) and the generation loop (the device's Web Worker) load
// structured-output.ts the first time a request has `responseFormat` or `tools`, with a dynamic
// import() that bundlers (Vite, webpack, esbuild with --splitting) turn into a chunk of its own.
import { BackendError } from '../errors.ts'

export type StructuredOutput = typeof import('./structured-output.ts')

let loaded: StructuredOutput | undefined
let loading: Promise<StructuredOutput> | undefined

/**
 * Loads the structured-output code once; later calls share the load. A load that fails (the
 * chunk did not come: offline without the app's build at hand, a deploy that removed it, an HTML
 * page instead of it) rejects with a retryable BackendError naming the chunk, and the next call
 * tries again.
 */
export function loadStructuredOutput(): Promise<StructuredOutput> {
  if (loaded !== undefined) return Promise.resolve(loaded)
  loading ??= import('./structured-output.ts').then(
    (module) => {
      loaded = module
      return module
    },
    (error: unknown) => {
      loading = undefined
      const reason = error instanceof Error ? error.message : String(error)
      throw new BackendError(
        'backend_unavailable',
        `ondevice's structured-output code did not load (${reason}): it is a chunk of the app's build (structured-output-*.js), loaded the first time a request has responseFormat or tools. Serve the build's chunks with the page (offline: from its service worker or the HTTP cache, docs/sdk.md "Offline") and send the request again.`,
        { isRetryable: true, cause: error },
      )
    },
  )
  return loading
}

/** The structured-output code when a request loaded it already, else undefined (nothing is loaded). */
export function loadedStructuredOutput(): StructuredOutput | undefined {
  return loaded
}
