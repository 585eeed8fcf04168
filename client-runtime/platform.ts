// Where this code runs, decided in one place: the runtime picks its host (store, ORT) by it, the
// capability probe reports it, and the SDK picks its device host by it. Read from globals only,
// so it works before anything is loaded and in every bundle.

/**
 * - `node`: Node (and runtimes that present as it): onnxruntime-node, a cache folder.
 * - `browser`: a page (a `document`): the model runs in a dedicated Web Worker.
 * - `worker`: a Web Worker (dedicated, shared or service): the model runs right here.
 * - `edge`: Cloudflare Workers (workerd): no device to run on.
 * - `other`: anything else.
 */
export type Platform = 'node' | 'browser' | 'worker' | 'edge' | 'other'

interface PlatformGlobals {
  readonly process?: { readonly versions?: { readonly node?: string } }
  readonly document?: unknown
  readonly WorkerGlobalScope?: unknown
  readonly navigator?: { readonly userAgent?: string }
}

export function detectPlatform(): Platform {
  const globals = globalThis as PlatformGlobals
  if (typeof globals.process?.versions?.node === 'string') return 'node'
  // workerd sets this user agent (and defines WorkerGlobalScope too): test it before the worker check.
  if (globals.navigator?.userAgent === 'Cloudflare-Workers') return 'edge'
  if (globals.document !== undefined) return 'browser'
  if (globals.WorkerGlobalScope !== undefined) return 'worker'
  return 'other'
}
