// The engine in a browser page or Web Worker: engine.wasm (and engine-threads.wasm, its shared-
// memory build) from beside this module (bundlers emit them as assets for `new URL('./x.wasm',
// import.meta.url)`; the published package ships them next to this file), fetched and compiled
// once per page or worker. Where the browser validates relaxed SIMD (Chromium 114+; ./simd.ts)
// the relaxed-SIMD builds engine-relaxed.wasm / engine-threads-relaxed.wasm run instead, with
// the same bits; Safari and Firefox get the plain ones. Threads: ./threads-browser.ts.
// Each build that compiled is kept in the Cache API (./engine-cache.ts), so a load with no network
// (offline, once cached) compiles the kept copy instead of failing. The fetch is watched as the
// store's downloads are: no byte for `idleTimeoutMs` (a stalled network on a reloaded page) ends
// it with a retryable error naming the file, or with the kept copy where there is one, and the
// load's signal aborts it. Bytes, fetched or kept, run only when their sha256 is the one these
// scripts were built with (./engine-sha256.ts): under a fixed file name an earlier deploy's .wasm
// (kept, or from the HTTP cache or a service worker) would otherwise run with newer scripts.
import { concatBytes } from '../../core/concat-bytes.ts'
import { AbortedError, BackendError, OndeviceError } from '../../core/errors.ts'
import { htmlPageReason, isWebAssembly } from '../../core/html-page.ts'
import { checkTimeout, startIdleTimer } from '../../core/idle-timer.ts'
import { forgetEngineCopy, keepEngineCopy, keptEngineCopy, sha256Hex } from './engine-cache.ts'
import { type EngineBuild, engineSha256 } from './engine-sha256.ts'
import { chooseEngineSimd, type EngineSimd } from './simd.ts'

/** Default `idleTimeoutMs`: the stores' default for a download (client-runtime/store/idle-timeout.ts). */
export const defaultEngineIdleTimeoutMs = 30_000

export interface EngineFetchOptions {
  /** Aborts this caller's wait (and the fetch itself when no other load waits on it). */
  readonly signal?: AbortSignal
  /**
   * A fetch that receives no byte (headers or body) for this long stalls: the kept copy compiles
   * instead, else a retryable BackendError names the file. Default 30,000.
   */
  readonly idleTimeoutMs?: number
}

/** One fetch and compile per URL, shared by every load of the page or worker that waits on it. */
interface Compiling {
  readonly module: Promise<WebAssembly.Module>
  /** Aborts the fetch: when the last load waiting on it was aborted. */
  readonly controller: AbortController
  waiting: number
  settled: boolean
}

const compiled = new Map<string, Compiling>()

/** `build` names the file whatever the bundler called it (the Cache API entry it is kept under). */
function compileOnce(url: URL, build: EngineBuild, options: EngineFetchOptions): Promise<WebAssembly.Module> {
  const { signal } = options
  let idleTimeoutMs: number
  try {
    idleTimeoutMs = checkTimeout('idleTimeoutMs', options.idleTimeoutMs, defaultEngineIdleTimeoutMs)
  } catch (error) {
    return Promise.reject(error)
  }
  if (signal?.aborted) return Promise.reject(abortedLoad(url))
  let entry = compiled.get(url.href)
  if (!entry) {
    const controller = new AbortController()
    const module = fetchCompileAndKeep(url, build, controller.signal, idleTimeoutMs)
    const created: Compiling = { module, controller, waiting: 0, settled: false }
    entry = created
    compiled.set(url.href, created)
    module.then(
      () => {
        created.settled = true
      },
      () => {
        created.settled = true
        if (compiled.get(url.href) === created) compiled.delete(url.href)
      },
    )
  }
  const current = entry
  current.waiting++
  if (!signal) return current.module
  return new Promise<WebAssembly.Module>((resolve, reject) => {
    const onAbort = () => {
      current.waiting--
      // Nobody else waits: stop the download, and forget it now, so that a load started right
      // after (React StrictMode mounts, unmounts and mounts again at once) starts afresh instead
      // of sharing the aborted one until its rejection lands.
      if (current.waiting === 0 && !current.settled) {
        if (compiled.get(url.href) === current) compiled.delete(url.href)
        current.controller.abort()
      }
      reject(abortedLoad(url))
    }
    signal.addEventListener('abort', onAbort, { once: true })
    current.module.then(
      (module) => {
        signal.removeEventListener('abort', onAbort)
        resolve(module)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

/**
 * The engine's module for this page or worker: engine-relaxed.wasm where the browser has relaxed
 * SIMD, else engine.wasm; `simd` picks one (tests and benchmarks compare them).
 */
export function loadEngineModuleForBrowser(
  simd?: EngineSimd,
  options: EngineFetchOptions = {},
): Promise<WebAssembly.Module> {
  // Each URL stays a literal `new URL('./x.wasm', import.meta.url)`: bundlers look for it.
  return chooseEngineSimd(simd) === 'relaxed'
    ? compileOnce(new URL('./engine-relaxed.wasm', import.meta.url), 'engine-relaxed.wasm', options)
    : compileOnce(new URL('./engine.wasm', import.meta.url), 'engine.wasm', options)
}

/** The shared-memory build of what loadEngineModuleForBrowser picks (engine-threads[-relaxed].wasm). */
export function loadThreadsEngineModuleForBrowser(
  simd?: EngineSimd,
  options: EngineFetchOptions = {},
): Promise<WebAssembly.Module> {
  return chooseEngineSimd(simd) === 'relaxed'
    ? compileOnce(
        new URL('./engine-threads-relaxed.wasm', import.meta.url),
        'engine-threads-relaxed.wasm',
        options,
      )
    : compileOnce(new URL('./engine-threads.wasm', import.meta.url), 'engine-threads.wasm', options)
}

/**
 * Network first (a page always gets the engine its server has now), then the copy kept from the
 * last load that compiled the same build: offline, a stalled network, a server that lost the file,
 * or a captive portal's HTML page. Either runs only with the sha256 these scripts name for the
 * build: fetched bytes of another build (an earlier deploy's file from the HTTP cache, a CDN or a
 * service worker) are fetched once more past the HTTP cache, then refused; a kept copy of another
 * build is dropped. Only bytes that compiled are kept, so a bad answer never poisons the cache. An
 * aborted load ends as such, the kept copy untouched.
 */
async function fetchCompileAndKeep(
  url: URL,
  build: EngineBuild,
  signal: AbortSignal,
  idleTimeoutMs: number,
): Promise<WebAssembly.Module> {
  let bytes: Uint8Array<ArrayBuffer>
  let module: WebAssembly.Module
  try {
    bytes = await fetchEngine(url, signal, idleTimeoutMs, 'default')
    let actual = await sha256Hex(bytes)
    if (actual !== undefined && actual !== engineSha256[build]) {
      // The same URL served another deploy's file: ask the server itself, not the HTTP cache.
      bytes = await fetchEngine(url, signal, idleTimeoutMs, 'no-cache')
      actual = await sha256Hex(bytes)
      if (actual !== undefined && actual !== engineSha256[build]) throw otherBuild(url, build, actual)
    }
    module = await WebAssembly.compile(bytes)
  } catch (error) {
    if (signal.aborted) throw abortedLoad(url)
    // A kept copy compiles no better under the same policy.
    const refused = cspRefusal(error)
    if (refused) throw refused
    const kept = await keptEngineCopy(build)
    if (kept.bytes === undefined) throw kept.droppedOtherBuild ? withDroppedCopy(error, build) : error
    try {
      return await WebAssembly.compile(kept.bytes)
    } catch {
      // Bytes that compiled when kept (a storage fault at most): drop them; the network's error says more.
      await forgetEngineCopy(build)
      throw error
    }
  }
  await keepEngineCopy(build, bytes)
  return module
}

/**
 * A page whose Content-Security-Policy lacks 'wasm-unsafe-eval' may compile no WebAssembly: the
 * browser's CompileError names the directive but not what to add (it reached the app as an
 * OndeviceError 'internal' with only the browser's words).
 */
function cspRefusal(error: unknown): BackendError | undefined {
  const message = (error as { message?: unknown } | undefined)?.message
  if (typeof message !== 'string' || !/content security policy/i.test(message)) return undefined
  return new BackendError(
    'backend_unavailable',
    `The page's Content-Security-Policy does not allow compiling WebAssembly, which ondevice's engine needs: add 'wasm-unsafe-eval' to its script-src ('unsafe-eval' is not needed). The browser said: ${message}`,
    { cause: error },
  )
}

/** The error when the network served `build` with another sha256 than these scripts name. */
function otherBuild(url: URL, build: EngineBuild, actual: string): BackendError {
  return new BackendError(
    'backend_unavailable',
    `ondevice's WebAssembly engine (${url.href}) is another build than this page's scripts were built with: its sha256 is ${actual}, they run ${build} with sha256 ${engineSha256[build]}. The server (or a CDN or service worker in between) serves another deploy's .wasm under this name, ${noKeptCopy}. Deploy the scripts and the engine*.wasm files of one build together (a content hash in the .wasm's file name keeps deploys apart); during a deploy, try again.`,
    { isRetryable: true },
  )
}

/** `error` with a word on the kept copy that was there but of another build (now dropped). */
function withDroppedCopy(error: unknown, build: EngineBuild): unknown {
  if (!(error instanceof OndeviceError)) return error
  return new BackendError(
    error.code,
    `${error.message} The copy of ${build} this browser kept was of another build (an earlier deploy's), which this page's scripts cannot run; it was dropped: load the page once online to keep this version's.`,
    {
      isRetryable: error.isRetryable,
      cause: error,
      ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
    },
  )
}

const noKeptCopy =
  'and no copy of it is kept in this browser (the Cache API keeps the one a load compiled): load the model once online'

/** The engine's bytes, read under an idle timer: every chunk (and the headers) counts as progress. */
async function fetchEngine(
  url: URL,
  signal: AbortSignal,
  idleTimeoutMs: number,
  cache: RequestCache,
): Promise<Uint8Array<ArrayBuffer>> {
  const idle = startIdleTimer(idleTimeoutMs)
  const both = AbortSignal.any([signal, idle.signal])
  let received = 0
  const failed = (error: unknown, network: () => OndeviceError): OndeviceError => {
    if (signal.aborted) return abortedLoad(url)
    if (idle.expired)
      return new BackendError(
        'backend_unavailable',
        `Fetching ondevice's WebAssembly engine (${url.href}) stalled: no bytes for ${idleTimeoutMs} ms${received > 0 ? ` after ${received} bytes` : ''} (the server kept the connection open), ${noKeptCopy}. Try again.`,
        { isRetryable: true, cause: error },
      )
    return error instanceof OndeviceError ? error : network()
  }
  try {
    const response = await fetch(url, { signal: both, cache }).catch((cause: unknown) => {
      throw failed(
        cause,
        () =>
          new BackendError(
            'backend_unavailable',
            `Could not fetch ondevice's WebAssembly engine (${url.href}), ${noKeptCopy}.`,
            { cause, isRetryable: true },
          ),
      )
    })
    idle.touch()
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined)
      throw new BackendError(
        'backend_unavailable',
        `Fetching ondevice's WebAssembly engine (${url.href}) failed with HTTP ${response.status}: serve the bundle's assets with the page (esbuild and Rollup copy none: copy node_modules/ondevice/dist/wasm/engine/*.wasm beside the page's script, docs/sdk.md "A web page").`,
        { isRetryable: response.status >= 500 },
      )
    }
    const chunks: Uint8Array[] = []
    try {
      if (response.body) {
        const reader = response.body.getReader()
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          idle.touch()
          received += value.byteLength
          chunks.push(value)
        }
      }
    } catch (cause) {
      throw failed(
        cause,
        () =>
          new BackendError(
            'backend_unavailable',
            `Reading ondevice's WebAssembly engine (${url.href}) broke off after ${received} bytes, ${noKeptCopy}. Try again.`,
            { cause, isRetryable: true },
          ),
      )
    }
    const bytes = concatBytes(chunks, received)
    if (!isWebAssembly(bytes))
      throw new BackendError(
        'backend_unavailable',
        `ondevice's WebAssembly engine: ${htmlPageReason(url.href)}.`,
      )
    return bytes
  } finally {
    idle.stop()
  }
}

function abortedLoad(url: URL): AbortedError {
  return new AbortedError(
    `Loading ondevice's WebAssembly engine (${url.href}) was aborted by its AbortSignal.`,
  )
}
