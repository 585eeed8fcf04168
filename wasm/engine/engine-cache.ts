// The copy of each engine build (engine.wasm, engine-relaxed.wasm, engine-threads*.wasm) that a
// load in this browser fetched and compiled, kept in the Cache API so that a later load with no
// network (offline once the package is cached, the promise) compiles it instead of failing. The
// page's own scripts (the device worker, the helper threads' worker) are the app's to keep
// offline, like the rest of its build (docs/sdk.md, "Offline").
//
// A copy is kept under the sha256 this version's scripts name for its build (engine-sha256.ts,
// written by build.ts with the .wasm files) and is used only when its bytes still have it. The
// URL alone did not name the bytes: an app serving the .wasm under a fixed name (no content hash)
// deploys a new version under the same URL, and a reload offline ran the earlier deploy's engine
// with the new scripts (a missing kernel, or one whose arguments had changed: a crash or wrong
// numbers). Keeping a copy drops every entry this version does not name (earlier deploys' builds,
// the former URL-keyed entries), so they never pile up. Storage faults (no Cache API in an insecure
// context, a full quota, private modes that refuse it) only cost the offline copy.
import { isWebAssembly } from '../../core/html-page.ts'
import { type EngineBuild, engineSha256 } from './engine-sha256.ts'

/** The Cache API cache the engine's builds are kept in. */
export const engineCacheName = 'ondevice-engine'

const keyOf = (build: EngineBuild): string =>
  `https://ondevice.invalid/engine/${engineSha256[build]}/${build}`

/** The keys this version's scripts can use; any other entry is an earlier deploy's. */
const currentKeys = new Set((Object.keys(engineSha256) as EngineBuild[]).map(keyOf))

async function openCache(): Promise<Cache | undefined> {
  const storage = (globalThis as { caches?: CacheStorage }).caches
  return storage ? storage.open(engineCacheName) : undefined
}

/** The hex sha256 of `bytes`; undefined where WebCrypto's digest is missing (an insecure context). */
export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string | undefined> {
  const subtle = (globalThis as { crypto?: Crypto }).crypto?.subtle
  if (subtle === undefined) return undefined
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes))
  let hex = ''
  for (const byte of digest) hex += byte.toString(16).padStart(2, '0')
  return hex
}

/** What the cache holds for a build. */
export interface KeptEngineCopy {
  /** The kept bytes, whose sha256 is the one this version's scripts name; absent when none. */
  readonly bytes?: Uint8Array<ArrayBuffer>
  /** A copy of the same build from another deploy was there (and is now dropped): not usable. */
  readonly droppedOtherBuild?: boolean
}

/**
 * The kept copy of `build` that this version's scripts can run: its bytes only when their sha256
 * is the one engine-sha256.ts names. Anything else kept for it (an earlier deploy's, a damaged
 * copy) is dropped and said so.
 */
export async function keptEngineCopy(build: EngineBuild): Promise<KeptEngineCopy> {
  try {
    const cache = await openCache()
    if (!cache) return {}
    const hit = await cache.match(keyOf(build))
    let droppedOtherBuild = false
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer())
      if (isWebAssembly(bytes) && (await sha256Hex(bytes)) === engineSha256[build]) return { bytes }
      await cache.delete(keyOf(build))
      droppedOtherBuild = true
    }
    if (await dropOtherDeploys(cache, build)) droppedOtherBuild = true
    return droppedOtherBuild ? { droppedOtherBuild } : {}
  } catch {
    return {}
  }
}

/**
 * Keeps bytes of `build`: call it only with bytes that compiled. Bytes whose sha256 is not the one
 * this version names are not kept; entries of other deploys are dropped (before the put).
 */
export async function keepEngineCopy(build: EngineBuild, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  try {
    if ((await sha256Hex(bytes)) !== engineSha256[build]) return
    const cache = await openCache()
    if (!cache) return
    // Earlier deploys' copies go first: with the origin's quota nearly used up (a stored model
    // leaves it so), putting this one beside them failed, and the copy left was one these
    // scripts cannot run.
    await dropOtherDeploys(cache)
    await cache.put(keyOf(build), new Response(bytes, { headers: { 'content-type': 'application/wasm' } }))
  } catch {
    // A failed put costs the offline copy only; the load itself has its module.
  }
}

/** Drops the kept copy of `build` (one that no longer compiles). */
export async function forgetEngineCopy(build: EngineBuild): Promise<void> {
  try {
    await (await openCache())?.delete(keyOf(build))
  } catch {
    // Nothing kept, or no Cache API.
  }
}

/**
 * Deletes every entry whose key this version does not use (earlier deploys' builds, and the
 * entries `https://ondevice.invalid/engine/<build>` that versions before the sha256 keys wrote).
 * Returns whether one of them was a copy of `build`.
 */
async function dropOtherDeploys(cache: Cache, build?: EngineBuild): Promise<boolean> {
  let ofBuild = false
  for (const request of await cache.keys()) {
    if (currentKeys.has(request.url)) continue
    await cache.delete(request)
    if (build !== undefined && request.url.endsWith(`/${build}`)) ofBuild = true
  }
  return ofBuild
}
