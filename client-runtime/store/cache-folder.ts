// The Node cache folder (ONDEVICE_CACHE_DIR, else $XDG_CACHE_HOME/ondevice, else
// ~/.cache/ondevice), made and checked once before anything is written there: a folder that
// cannot hold files fails at once, naming the setting and how to fix it, instead of failing
// deep inside a download or hanging.
import { mkdir, rm, stat, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { InvalidArgumentError } from '../../core/errors.ts'

/** `$ONDEVICE_CACHE_DIR`, else `$XDG_CACHE_HOME/ondevice`, else `~/.cache/ondevice`. */
export function defaultCacheDir(): string {
  if (process.env.ONDEVICE_CACHE_DIR) return resolve(process.env.ONDEVICE_CACHE_DIR)
  if (process.env.XDG_CACHE_HOME) return join(process.env.XDG_CACHE_HOME, 'ondevice')
  return join(homedir(), '.cache', 'ondevice')
}

const errorCode = (error: unknown): unknown => (error as { code?: unknown } | null)?.code

/**
 * `mkdir -p`, one level at a time. Not `mkdir(path, { recursive: true })`: Node's never settles
 * (a native loop at 100% CPU) when a parent exists but answers ENOENT for a new child, as /proc
 * and a dangling symbolic link do. Here that ENOENT is final and reaches the caller.
 */
export async function makeFolder(folder: string): Promise<void> {
  const missing: string[] = []
  let current = resolve(folder)
  for (;;) {
    const found = await stat(current).then(
      (info) => info,
      (error: unknown) => {
        if (errorCode(error) !== 'ENOENT') throw error
        return undefined
      },
    )
    if (found) {
      if (!found.isDirectory()) throw Object.assign(new Error(`${current} is a file`), { code: 'ENOTDIR' })
      break
    }
    missing.push(current)
    const parent = dirname(current)
    if (parent === current) break
    current = parent
  }
  for (const path of missing.reverse()) {
    await mkdir(path).catch(async (error: unknown) => {
      if (errorCode(error) !== 'EEXIST') throw error
      // Made meanwhile by another process: fine if it is a folder. A name that exists but that
      // stat did not find is a link to nothing.
      const info = await stat(path).catch(() => undefined)
      if (info?.isDirectory()) return
      throw Object.assign(
        new Error(info ? `${path} is a file` : `${path} is a link to a path that does not exist`),
        { code: info ? 'ENOTDIR' : 'ENOENT' },
      )
    })
  }
}

/** Which setting chose `cacheDir`, for the error message. */
function settingOf(cacheDir: string): { readonly name: string; readonly param: string } {
  const { ONDEVICE_CACHE_DIR: fromVariable, XDG_CACHE_HOME: xdg } = process.env
  if (fromVariable && resolve(fromVariable) === cacheDir)
    return { name: `ONDEVICE_CACHE_DIR=${fromVariable}`, param: 'ONDEVICE_CACHE_DIR' }
  if (!fromVariable && xdg && resolve(xdg, 'ondevice') === cacheDir)
    return { name: `XDG_CACHE_HOME=${xdg} (the cache is its ondevice folder)`, param: 'XDG_CACHE_HOME' }
  if (!fromVariable && !xdg && resolve(homedir(), '.cache', 'ondevice') === cacheDir)
    return { name: 'the default, ~/.cache/ondevice', param: 'ONDEVICE_CACHE_DIR' }
  return { name: 'the cacheDir option', param: 'cacheDir' }
}

function why(error: unknown): string {
  const code = errorCode(error)
  const detail = error instanceof Error ? error.message : String(error)
  const explanation =
    code === 'ENOENT'
      ? 'it cannot be made there: a folder on its path takes no new folders (such as /proc or /sys) or is a link to nothing'
      : code === 'ENOTDIR' || code === 'EEXIST'
        ? 'it, or a folder on its path, is a file'
        : code === 'EACCES' || code === 'EPERM'
          ? 'this user may not write there'
          : code === 'EROFS'
            ? 'it is on a read-only file system'
            : code === 'ENOSPC' || code === 'EDQUOT'
              ? 'the disk is full'
              : undefined
  return explanation === undefined ? detail : `${explanation} (${detail})`
}

const prepared = new Map<string, Promise<void>>()

/**
 * Makes the cache folder and checks that a file can be written in it, once per folder and
 * process (a failure is not remembered: a folder fixed meanwhile is tried again). Throws
 * InvalidArgumentError naming the setting (ONDEVICE_CACHE_DIR, ...) and how to fix it.
 */
export function prepareCacheFolder(cacheDir: string): Promise<void> {
  const folder = resolve(cacheDir)
  let pending = prepared.get(folder)
  if (pending) return pending
  pending = (async () => {
    try {
      await makeFolder(folder)
      // A real write: permission bits say nothing for root, and only a write meets a read-only mount.
      const probe = join(folder, `.write-check-${process.pid}`)
      await writeFile(probe, '')
      await rm(probe, { force: true })
    } catch (error) {
      const setting = settingOf(folder)
      throw new InvalidArgumentError(
        setting.param,
        `The model cache folder ${folder} (from ${setting.name}) cannot be used: ${why(error)}. ${
          setting.param === 'cacheDir'
            ? 'Pass cacheDir a folder this user can create and write, or omit it for ~/.cache/ondevice.'
            : 'Point ONDEVICE_CACHE_DIR at a folder this user can create and write (e.g. ONDEVICE_CACHE_DIR=$HOME/.cache/ondevice), or unset it for ~/.cache/ondevice.'
        }`,
        { cause: error },
      )
    }
  })()
  prepared.set(folder, pending)
  pending.catch(() => prepared.delete(folder))
  return pending
}

/** The cache folder (`defaultCacheDir()`), made and checked: for callers about to write there. */
export async function usableCacheDir(): Promise<string> {
  const folder = defaultCacheDir()
  await prepareCacheFolder(folder)
  return folder
}
