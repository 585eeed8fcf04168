// A chunk of the app's build loaded with import() the first time it is needed (runtime-on-demand.ts).
import { BackendError } from '../core/errors.ts'

/**
 * `load()` once, its result shared; a load that fails (the runtime's chunk did not come: a brief
 * network failure, a deploy that removed it) rejects with a retryable BackendError and the next
 * call tries again, instead of the page keeping the failure until it reloads.
 */
export function onDemand<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined
  return () =>
    (loading ??= load().catch((error: unknown) => {
      loading = undefined
      const reason = error instanceof Error ? error.message : String(error)
      throw new BackendError(
        'backend_unavailable',
        `ondevice's on-device runtime did not load (${reason}): it is a chunk of the app's build, loaded the first time the device runs a model. Serve the build's chunks with the page (offline: from its service worker or the HTTP cache, docs/sdk.md "Offline") and try again.`,
        { isRetryable: true, cause: error },
      )
    }))
}
