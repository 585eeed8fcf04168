// The engine in a browser page or Web Worker: engine.wasm (and engine-threads.wasm, its shared-
// memory build) from beside this module (bundlers emit them as assets for `new URL('./x.wasm',
// import.meta.url)`; the published package ships them next to this file), fetched and compiled
// once per page or worker. Where the browser validates relaxed SIMD (Chromium 114+; ./simd.ts)
// the relaxed-SIMD builds engine-relaxed.wasm / engine-threads-relaxed.wasm run instead, with
// the same bits; Safari and Firefox get the plain ones. Threads: ./threads-browser.ts.
// Each build that compiled is kept in the Cache API (./engine-cache.ts), so a load with no network
// (offline, once cached) compiles the kept copy instead of failing.
import { BackendError } from '../../core/errors.ts'
import { htmlPageReason, isWebAssembly } from '../../core/html-page.ts'
import { forgetEngineCopy, keepEngineCopy, keptEngineCopy } from './engine-cache.ts'
import { chooseEngineSimd, type EngineSimd } from './simd.ts'

const compiled = new Map<string, Promise<WebAssembly.Module>>()

/** `build` names the file whatever the bundler called it (the Cache API entry it is kept under). */
function compileOnce(url: URL, build: string): Promise<WebAssembly.Module> {
  let module = compiled.get(url.href)
  if (!module) {
    module = fetchCompileAndKeep(url, build)
    compiled.set(url.href, module)
    module.catch(() => compiled.delete(url.href))
  }
  return module
}

/**
 * The engine's module for this page or worker: engine-relaxed.wasm where the browser has relaxed
 * SIMD, else engine.wasm; `simd` picks one (tests and benchmarks compare them).
 */
export function loadEngineModuleForBrowser(simd?: EngineSimd): Promise<WebAssembly.Module> {
  // Each URL stays a literal `new URL('./x.wasm', import.meta.url)`: bundlers look for it.
  return chooseEngineSimd(simd) === 'relaxed'
    ? compileOnce(new URL('./engine-relaxed.wasm', import.meta.url), 'engine-relaxed.wasm')
    : compileOnce(new URL('./engine.wasm', import.meta.url), 'engine.wasm')
}

/** The shared-memory build of what loadEngineModuleForBrowser picks (engine-threads[-relaxed].wasm). */
export function loadThreadsEngineModuleForBrowser(simd?: EngineSimd): Promise<WebAssembly.Module> {
  return chooseEngineSimd(simd) === 'relaxed'
    ? compileOnce(new URL('./engine-threads-relaxed.wasm', import.meta.url), 'engine-threads-relaxed.wasm')
    : compileOnce(new URL('./engine-threads.wasm', import.meta.url), 'engine-threads.wasm')
}

/**
 * Network first (a page always gets the engine its server has now), then the copy kept from the
 * last load that compiled the same URL: offline, a server that lost the file, or a captive
 * portal's HTML page. Only bytes that compiled are kept, so a bad answer never poisons the cache.
 */
async function fetchCompileAndKeep(url: URL, build: string): Promise<WebAssembly.Module> {
  let bytes: Uint8Array<ArrayBuffer>
  let module: WebAssembly.Module
  try {
    bytes = await fetchEngine(url)
    module = await WebAssembly.compile(bytes)
  } catch (error) {
    const kept = await keptEngineCopy(build, url.href)
    if (kept === undefined) throw error
    try {
      return await WebAssembly.compile(kept)
    } catch {
      // Bytes that compiled when kept (a storage fault at most): drop them; the network's error says more.
      await forgetEngineCopy(build)
      throw error
    }
  }
  await keepEngineCopy(build, url.href, bytes)
  return module
}

async function fetchEngine(url: URL): Promise<Uint8Array<ArrayBuffer>> {
  const response = await fetch(url).catch((cause: unknown) => {
    throw new BackendError(
      'backend_unavailable',
      `Could not fetch ondevice's WebAssembly engine (${url.href}), and no copy of it is kept in this browser (the Cache API keeps the one a load compiled): load the model once online.`,
      {
        cause,
        isRetryable: true,
      },
    )
  })
  if (!response.ok)
    throw new BackendError(
      'backend_unavailable',
      `Fetching ondevice's WebAssembly engine (${url.href}) failed with HTTP ${response.status}: serve the bundle's assets with the page.`,
      { isRetryable: response.status >= 500 },
    )
  const bytes = new Uint8Array(await response.arrayBuffer())
  if (!isWebAssembly(bytes))
    throw new BackendError(
      'backend_unavailable',
      `ondevice's WebAssembly engine: ${htmlPageReason(url.href)}.`,
    )
  return bytes
}
