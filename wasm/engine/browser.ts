// The engine in a browser page or Web Worker: engine.wasm (and engine-threads.wasm, its shared-
// memory build) from beside this module (bundlers emit them as assets for `new URL('./x.wasm',
// import.meta.url)`; the published package ships them next to this file), fetched and compiled
// once per page or worker. Where the browser validates relaxed SIMD (Chromium 114+; ./simd.ts)
// the relaxed-SIMD builds engine-relaxed.wasm / engine-threads-relaxed.wasm run instead, with
// the same bits; Safari and Firefox get the plain ones. Threads: ./threads-browser.ts.
import { BackendError } from '../../core/errors.ts'
import { htmlPageReason, isWebAssembly } from '../../core/html-page.ts'
import { chooseEngineSimd, type EngineSimd } from './simd.ts'

const compiled = new Map<string, Promise<WebAssembly.Module>>()

function compileOnce(url: URL): Promise<WebAssembly.Module> {
  let module = compiled.get(url.href)
  if (!module) {
    module = fetchAndCompile(url)
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
  return compileOnce(
    chooseEngineSimd(simd) === 'relaxed'
      ? new URL('./engine-relaxed.wasm', import.meta.url)
      : new URL('./engine.wasm', import.meta.url),
  )
}

/** The shared-memory build of what loadEngineModuleForBrowser picks (engine-threads[-relaxed].wasm). */
export function loadThreadsEngineModuleForBrowser(simd?: EngineSimd): Promise<WebAssembly.Module> {
  return compileOnce(
    chooseEngineSimd(simd) === 'relaxed'
      ? new URL('./engine-threads-relaxed.wasm', import.meta.url)
      : new URL('./engine-threads.wasm', import.meta.url),
  )
}

async function fetchAndCompile(url: URL): Promise<WebAssembly.Module> {
  const response = await fetch(url).catch((cause: unknown) => {
    throw new BackendError(
      'backend_unavailable',
      `Could not fetch ondevice's WebAssembly engine (${url.href}).`,
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
  return WebAssembly.compile(bytes)
}
