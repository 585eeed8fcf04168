// The engine in a browser page or Web Worker: engine.wasm from beside this module (bundlers emit
// it as an asset for `new URL('./engine.wasm', import.meta.url)`; the published package ships it
// next to this file), fetched and compiled once per page or worker. One thread here: helper
// threads over shared memory are wired for Node only so far (docs/wasm-engine.md).
import { BackendError } from '../../core/errors.ts'
import { htmlPageReason, isWebAssembly } from '../../core/html-page.ts'

let compiled: Promise<WebAssembly.Module> | undefined

/** engine.wasm compiled for this page or worker. */
export function loadEngineModuleForBrowser(): Promise<WebAssembly.Module> {
  compiled ??= (async () => {
    const url = new URL('./engine.wasm', import.meta.url)
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
  })()
  compiled.catch(() => {
    compiled = undefined
  })
  return compiled
}
