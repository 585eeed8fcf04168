// The copy of each engine build (engine.wasm, engine-relaxed.wasm, engine-threads*.wasm) that a
// load in this browser fetched and compiled, kept in the Cache API so that a later load with no
// network (offline once the package is cached, the promise) compiles it instead of failing. The
// page's own scripts (the device worker, the helper threads' worker) are the app's to keep
// offline, like the rest of its build (docs/sdk.md, "Offline").
//
// One entry per build under a fixed key, holding the URL it came from: a copy is only used for
// that same URL (bundlers put a content hash in the name, so the URL names the bytes), and the
// next deploy's build replaces it instead of piling up beside it. Storage faults (no Cache API in
// an insecure context, a full quota, private modes that refuse it) only cost the offline copy.
import { isWebAssembly } from '../../core/html-page.ts'

/** The Cache API cache the engine's builds are kept in. */
export const engineCacheName = 'ondevice-engine'

/** The header that holds the URL a kept build came from. */
const sourceHeader = 'x-ondevice-source'

const keyOf = (build: string): string => `https://ondevice.invalid/engine/${build}`

async function openCache(): Promise<Cache | undefined> {
  const storage = (globalThis as { caches?: CacheStorage }).caches
  return storage ? storage.open(engineCacheName) : undefined
}

/** The kept bytes of `build` when they came from `url`; undefined when none (or no Cache API). */
export async function keptEngineCopy(
  build: string,
  url: string,
): Promise<Uint8Array<ArrayBuffer> | undefined> {
  try {
    const hit = await (await openCache())?.match(keyOf(build))
    if (!hit || hit.headers.get(sourceHeader) !== url) return undefined
    const bytes = new Uint8Array(await hit.arrayBuffer())
    return isWebAssembly(bytes) ? bytes : undefined
  } catch {
    return undefined
  }
}

/** Keeps bytes of `build` fetched from `url`; call it only with bytes that compiled. */
export async function keepEngineCopy(
  build: string,
  url: string,
  bytes: Uint8Array<ArrayBuffer>,
): Promise<void> {
  try {
    await (await openCache())?.put(
      keyOf(build),
      new Response(bytes, {
        headers: { 'content-type': 'application/wasm', [sourceHeader]: url },
      }),
    )
  } catch {
    // A failed put costs the offline copy only; the load itself has its module.
  }
}

/** Drops the kept copy of `build` (one that no longer compiles). */
export async function forgetEngineCopy(build: string): Promise<void> {
  try {
    await (await openCache())?.delete(keyOf(build))
  } catch {
    // Nothing kept, or no Cache API.
  }
}
