// The engine in a browser page or Web Worker: engine.wasm (and engine-threads.wasm, its shared-
// memory build) from beside this module (bundlers emit them as assets for `new URL('./x.wasm',
// import.meta.url)`; the published package ships them next to this file), fetched and compiled
// once per page or worker. Threads: ./threads-browser.ts.
import { BackendError } from '../../core/errors.ts'
import { htmlPageReason, isWebAssembly } from '../../core/html-page.ts'

let compiled: Promise<WebAssembly.Module> | undefined
let compiledThreads: Promise<WebAssembly.Module> | undefined

/** engine.wasm compiled for this page or worker. */
export function loadEngineModuleForBrowser(): Promise<WebAssembly.Module> {
  // The URL stays a literal `new URL('./engine.wasm', import.meta.url)`: bundlers look for it.
  compiled ??= fetchAndCompile(new URL('./engine.wasm', import.meta.url))
  compiled.catch(() => {
    compiled = undefined
  })
  return compiled
}

/** engine-threads.wasm (the same kernels over shared memory) compiled for this page or worker. */
export function loadThreadsEngineModuleForBrowser(): Promise<WebAssembly.Module> {
  compiledThreads ??= fetchAndCompile(new URL('./engine-threads.wasm', import.meta.url))
  compiledThreads.catch(() => {
    compiledThreads = undefined
  })
  return compiledThreads
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
