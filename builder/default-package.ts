// The embedded default model package: a tiny seeded Qwen3.5-architecture package with the real
// Qwen3 tokenizer, written deterministically on first use into a cache folder the caller names
// (the runtime's cache folder: the SDK's Node device host, the CLI and the demo pass it). It
// exercises the whole stack offline; its weights are random, so its text is not meaningful.
// q4 for the engine, native and WebGPU, q8 for onnxruntime-web's WASM (`ort-wasm`): each backend
// gets the format it runs fastest (52 MB in all).
// Node only. The runtime never imports this module: it takes a package folder
// (docs/architecture.md, "Who may import whom").
import { rename, rm, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { InvalidArgumentError, StoreError } from '../core/errors.ts'

/** Bump when the fixture's contents change, so old caches are not reused. */
const defaultPackageName = 'qwen3_5-tiny-seed1-v4'

export const defaultPackageDescription =
  'the embedded default model (a tiny Qwen3.5-architecture package with random weights and the real Qwen3 tokenizer): its text is not meaningful'

export interface DefaultPackageOptions {
  /** The cache folder to keep it in (it goes to `<cacheDir>/default/<name>`). */
  readonly cacheDir: string
}

const building = new Map<string, Promise<string>>()

async function hasManifest(folder: string): Promise<boolean> {
  return stat(join(folder, 'manifest.json')).then(
    () => true,
    () => false,
  )
}

/**
 * A cache folder that cannot hold the package (a file on the way, no permission, a read-only or
 * full disk) is the caller's setting to change: say which folder and how, not Node's errno.
 */
function cacheFolderError(error: unknown, cacheDir: string): unknown {
  const code = (error as { code?: unknown } | null)?.code
  const reason = error instanceof Error ? error.message : String(error)
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new StoreError(
      'storage_quota_exceeded',
      `No space left to write the default package (~52 MiB) under ${cacheDir} (${reason}). Free some space, or point ONDEVICE_CACHE_DIR (the cacheDir option) at another disk.`,
      { cause: error },
    )
  }
  if (code === 'ENOTDIR' || code === 'EEXIST' || code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new InvalidArgumentError(
      'cacheDir',
      `Cannot write the default package under ${cacheDir} (${reason}): the cache folder must be a writable folder. Point ONDEVICE_CACHE_DIR (the cacheDir option) at one.`,
      { cause: error },
    )
  }
  return error
}

/** Returns the default package's folder, writing it first if it is not in the cache yet. */
export function ensureDefaultPackage(options: DefaultPackageOptions): Promise<string> {
  if (typeof options?.cacheDir !== 'string' || options.cacheDir === '') {
    return Promise.reject(
      new InvalidArgumentError(
        'cacheDir',
        "ensureDefaultPackage needs cacheDir: the folder to keep the default package in (e.g. the runtime store's defaultCacheDir()).",
      ),
    )
  }
  const folder = join(resolve(options.cacheDir), 'default', defaultPackageName)
  let pending = building.get(folder)
  if (pending) return pending
  pending = (async () => {
    if (await hasManifest(folder)) return folder
    // Loaded only when the package must be written: reading the cached one needs no graph writer.
    const { writeQwen35Fixture } = await import('./architectures/qwen3-5-fixture.ts')
    // Build beside the final folder and rename, so a crash never leaves a half-written package
    // where the next run would find it.
    const temporary = `${folder}.tmp-${process.pid}`
    try {
      await rm(temporary, { recursive: true, force: true })
      try {
        await writeQwen35Fixture({ outDir: temporary, seed: 1, size: 'tiny', dtypes: ['q8', 'q4'] })
        await rename(temporary, folder).catch(async (error: unknown) => {
          // Another process finished first: use its copy.
          if (await hasManifest(folder)) return
          throw error
        })
      } finally {
        await rm(temporary, { recursive: true, force: true }).catch(() => undefined)
      }
    } catch (error) {
      throw cacheFolderError(error, options.cacheDir)
    }
    return folder
  })().finally(() => {
    building.delete(folder)
  })
  building.set(folder, pending)
  return pending
}
