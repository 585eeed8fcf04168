// The worker side of the page's watch on nested workers: Firefox 153 ESR's worker sometimes never
// returns from a `new Worker(...)` made inside it (the engine's helper threads; about one fresh
// worker in a hundred under load, docs/wasm-engine.md, Threads). Its thread is then blocked for
// good and says nothing more, so only the page can notice, and it can only tell that this is
// where the worker stopped if the worker said so just before. markNestedWorkers makes every
// `new Worker(...)` in this worker say 'making' before and 'made' after, whoever calls it (the
// engine's helpers, onnxruntime-web's threads), and the page's proxy (proxy.ts) takes a worker
// silent after 'making' for blocked within seconds instead of the load's long bound.
import type { MessageEndpoint, WorkerResponse } from './protocol.ts'

/** The part of a worker's global scope markNestedWorkers replaces. */
export interface NestedWorkerScope {
  Worker?: typeof Worker
}

/**
 * Replaces `scope.Worker` (the model worker's global scope) with a subclass that posts
 * `{ type: 'nested-worker', phase }` to `endpoint` around each construction. Call it once, before
 * serveDeviceHost, in a worker that serves the page's proxy (the SDK's model worker does). A scope
 * without Worker is left as it is. (`object &`: a worker's `self` declared as
 * DedicatedWorkerGlobalScope, whose interface lists no Worker, was refused as having nothing in
 * common with NestedWorkerScope, all of whose fields are optional.)
 */
export function markNestedWorkers(scope: object & NestedWorkerScope, endpoint: MessageEndpoint): void {
  const Base = scope.Worker
  if (typeof Base !== 'function') return
  const say = (phase: 'making' | 'made') =>
    endpoint.postMessage({ type: 'nested-worker', phase } satisfies WorkerResponse)
  scope.Worker = class extends Base {
    constructor(url: string | URL, options?: WorkerOptions) {
      say('making')
      try {
        super(url, options)
      } finally {
        say('made')
      }
    }
  }
}
