// onnxruntime-web in a browser page or Web Worker. The .wasm files come from the app's own
// origin (a base URL the app serves them under; never a CDN, so the app works offline and under
// a strict CSP) and are kept in the Cache API so a cached app starts without the network.
// Threads need a cross-origin isolated page (COOP/COEP headers); otherwise one thread, and the
// setup says so.
import { BackendError, InvalidArgumentError } from '../core/errors.ts'
import { htmlPageReason, isHtmlPage, isWebAssembly } from '../core/html-page.ts'
import { isolationHint } from './engine/threads-browser.ts'
import type { ConfiguredOrt, OrtWebModule } from './types.ts'

export type BrowserOrtFlavor = 'webgpu' | 'wasm'

export interface BrowserWasmOptions {
  /**
   * Where the app serves onnxruntime-web's dist files (`ort-wasm-simd-threaded*.wasm|mjs`), e.g.
   * '/ort/'. Must be on this page's origin.
   */
  readonly wasmBaseUrl: string
  /** 'webgpu' loads the build with the WebGPU execution provider (and WASM); 'wasm' the smaller WASM-only build. */
  readonly flavor?: BrowserOrtFlavor
  /** Threads when cross-origin isolated. Default: up to 4 (hardware concurrency minus one). */
  readonly numThreads?: number
  /** Cache API cache for the .wasm binary; false to rely on the HTTP cache only. */
  readonly cacheName?: string | false
}

interface BrowserGlobals {
  readonly crossOriginIsolated?: boolean
  readonly location?: { readonly href: string; readonly origin: string }
  readonly navigator?: { readonly hardwareConcurrency?: number }
  readonly caches?: CacheStorage
}

const wasmFileByFlavor: Record<BrowserOrtFlavor, string> = {
  webgpu: 'ort-wasm-simd-threaded.jsep.wasm',
  wasm: 'ort-wasm-simd-threaded.wasm',
}

const configured = new Map<BrowserOrtFlavor, Promise<ConfiguredOrt>>()

/** Returns onnxruntime-web configured for this page or worker (once per flavor). */
export function loadOrtWebForBrowser(options: BrowserWasmOptions): Promise<ConfiguredOrt> {
  const flavor = options.flavor ?? 'webgpu'
  if (flavor !== 'webgpu' && flavor !== 'wasm') {
    throw new InvalidArgumentError('flavor', `flavor must be 'webgpu' or 'wasm', got ${String(flavor)}.`)
  }
  const baseUrl = resolveSameOriginBase(options.wasmBaseUrl)
  let pending = configured.get(flavor)
  if (!pending) {
    pending = configure(flavor, baseUrl, options)
    configured.set(flavor, pending)
    pending.catch(() => configured.delete(flavor))
  }
  return pending
}

/** onnxruntime-web's threads by default on a cross-origin isolated page: up to 4 (cores minus one). */
function defaultOrtWebThreads(cores: number): number {
  return Math.max(1, Math.min(4, cores - 1))
}

/**
 * For a load's warnings, as the engine says it (threads-browser.ts): the threads onnxruntime-web
 * would run by default (`numThreads` unset) are lost to a page that is not cross-origin isolated.
 * An app that forgot COOP/COEP ran on one thread without a word, where the engine warned.
 * Undefined where nothing is lost (an isolated page, one core or two, numThreads given: a load
 * that asked for more than it got says so itself).
 */
export function ortWebDefaultThreadsWarning(numThreads: number | undefined): string | undefined {
  if (numThreads !== undefined) return undefined
  const globals = globalThis as BrowserGlobals
  if (globals.crossOriginIsolated === true) return undefined
  const cores = globals.navigator?.hardwareConcurrency ?? 1
  const wanted = defaultOrtWebThreads(cores)
  if (wanted <= 1) return undefined
  return `onnxruntime-web runs on one thread where it would run ${wanted} on this device (${cores} cores): the page is not cross-origin isolated, so there is no shared memory: ${isolationHint}. Pass numThreads: 1 to run one thread without this warning.`
}

function resolveSameOriginBase(wasmBaseUrl: string): string {
  if (typeof wasmBaseUrl !== 'string' || wasmBaseUrl === '') {
    throw new InvalidArgumentError(
      'wasmBaseUrl',
      "wasmBaseUrl is required: the path where your app serves onnxruntime-web's dist/*.wasm files, e.g. '/ort/'.",
    )
  }
  const page = (globalThis as BrowserGlobals).location
  const url = page ? new URL(wasmBaseUrl, page.href) : new URL(wasmBaseUrl)
  if (page && url.origin !== page.origin) {
    throw new InvalidArgumentError(
      'wasmBaseUrl',
      `wasmBaseUrl must be on this app's origin (${page.origin}), got ${url.origin}: serve onnxruntime-web's .wasm files yourself instead of from a CDN.`,
    )
  }
  return url.href.endsWith('/') ? url.href : `${url.href}/`
}

async function configure(
  flavor: BrowserOrtFlavor,
  baseUrl: string,
  options: BrowserWasmOptions,
): Promise<ConfiguredOrt> {
  const imported =
    flavor === 'webgpu' ? await import('onnxruntime-web') : await import('onnxruntime-web/wasm')
  const ort = ((imported as { default?: OrtWebModule }).default ?? imported) as OrtWebModule
  const globals = globalThis as BrowserGlobals
  const isolated = globals.crossOriginIsolated === true
  const cores = globals.navigator?.hardwareConcurrency ?? 1
  const threads = isolated ? (options.numThreads ?? defaultOrtWebThreads(cores)) : 1
  const threadsReason = isolated
    ? options.numThreads === undefined
      ? `cross-origin isolated page, ${cores} cores`
      : 'requested by the caller'
    : 'page is not cross-origin isolated (serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp for threads)'

  // ORT's own log (its environment's) at errors only, as the sessions are (client-runtime's
  // ort-session.ts): warnings on a successful load would reach the app's console as errors.
  ort.env.logLevel = 'error'
  ort.env.wasm.wasmPaths = baseUrl
  ort.env.wasm.numThreads = threads
  ort.env.wasm.proxy = false
  const wasmUrl = `${baseUrl}${wasmFileByFlavor[flavor]}`
  let wasmSource = wasmUrl
  const cacheName = options.cacheName ?? `ondevice-ort-${ort.env.versions.web ?? 'unknown'}`
  if (cacheName !== false && globals.caches) {
    ort.env.wasm.wasmBinary = await fetchThroughCache(globals.caches, cacheName, wasmUrl)
    wasmSource = `${wasmUrl} (Cache API: ${cacheName})`
  }
  return {
    ort,
    setup: {
      host: 'browser',
      threads,
      threadsReason,
      wasmSource,
      ortVersion: ort.env.versions.web ?? 'unknown',
    },
  }
}

/**
 * Cache-first fetch of the .wasm so a cached app starts offline. Only a real WebAssembly binary
 * is ever cached: an HTML page (a dev server's index.html fallback for a missing file) cached
 * here would break the device in that browser profile for good. A bad entry left by an older
 * version is dropped and fetched again.
 */
async function fetchThroughCache(caches: CacheStorage, cacheName: string, url: string): Promise<Uint8Array> {
  const cache = await caches.open(cacheName)
  const hit = await cache.match(url)
  if (hit) {
    const cached = new Uint8Array(await hit.arrayBuffer())
    if (isWebAssembly(cached)) return cached
    await cache.delete(url).catch(() => false)
  }
  let response: Response
  try {
    response = await fetch(url, { credentials: 'same-origin' })
  } catch (error) {
    throw new BackendError(
      'backend_unavailable',
      `Could not fetch ${url} (offline and not cached yet?). Serve onnxruntime-web's runtime files under createClient's runtimeUrl (the ondevice/vite plugin does).`,
      { cause: error, isRetryable: true },
    )
  }
  if (!response.ok) {
    throw new BackendError(
      'backend_unavailable',
      `Fetching ${url} gave HTTP ${response.status}: serve onnxruntime-web's dist/${url.slice(url.lastIndexOf('/') + 1)} there (the ondevice/vite plugin does), or point createClient's runtimeUrl at where it is served.`,
    )
  }
  const bytes = new Uint8Array(await response.arrayBuffer())
  if (!isWebAssembly(bytes)) {
    const what = isHtmlPage(response.headers.get('content-type'), bytes)
      ? htmlPageReason(url)
      : `${url} is not a WebAssembly binary (content-type ${response.headers.get('content-type') ?? 'none'}, ${bytes.byteLength} bytes)`
    throw new BackendError(
      'backend_unavailable',
      `ONNX Runtime's WebAssembly binary could not be loaded: ${what}. Serve onnxruntime-web's dist/${url.slice(url.lastIndexOf('/') + 1)} at that URL (the ondevice/vite plugin does) or point createClient's runtimeUrl at where it is served. Nothing was cached.`,
    )
  }
  // A failed put (quota) only costs a re-download next time.
  await cache
    .put(url, new Response(bytes, { headers: { 'content-type': 'application/wasm' } }))
    .catch(() => undefined)
  return bytes
}
