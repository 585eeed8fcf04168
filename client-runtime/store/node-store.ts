// The model store on Node: a package is a local folder (read in place: folder-package.ts) or a
// URL prefix (downloaded into a cache folder, `~/.cache/ondevice` unless configured, by the
// remote-package sync both stores share, over a folder of that cache: node-file-area.ts). Every
// file named in manifest.json is checked against its sha256 before first use; a verified file is
// remembered by size and mtime (verified-memo.ts) so it is not hashed again on every run.

import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises'
import { join, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { InvalidArgumentError } from '../../core/errors.ts'
import { defaultCacheDir, prepareCacheFolder } from './cache-folder.ts'
import { openFolderPackage } from './folder-package.ts'
import { checkIdleTimeout, checkTimeout, defaultIdleTimeoutMs } from './idle-timeout.ts'
import { assertPackagePath, manifestEntry, parseManifest } from './manifest.ts'
import { createNodeFileArea } from './node-file-area.ts'
import { readEagerly } from './read-eagerly.ts'
import { defaultManifestRefreshTimeoutMs, openRemotePackage } from './remote-package.ts'
import { checkRetryOptions } from './retry.ts'
import type { ModelStore, StorageEstimate } from './types.ts'
import { createVerifiedMemo } from './verified-memo.ts'

export interface NodeStoreOptions {
  /** Where downloaded packages and the verification memo live. Default: `defaultCacheDir()`. */
  readonly cacheDir?: string
  /** Most bytes the cache folder may hold; a download that would pass it fails with storage_quota_exceeded. */
  readonly quotaBytes?: number
  /** Receives warnings (e.g. a package without manifest.json). Default: console.warn. */
  readonly onWarning?: (message: string) => void
  /**
   * A download that receives no byte for this long (a server that stalls without closing the
   * connection) fails with a retryable download_failed; what arrived is kept for a Range resume,
   * as for a cut connection. Default: 30,000 (`defaultIdleTimeoutMs`).
   */
  readonly idleTimeoutMs?: number
  /**
   * With a package's manifest.json stored, how long a load waits for the server's fresh copy
   * before it uses the stored one (a slow or stalled link must not hold up a stored package).
   * Default: 2,000 (`defaultManifestRefreshTimeoutMs`), at most `idleTimeoutMs`.
   */
  readonly manifestRefreshTimeoutMs?: number
  /**
   * A file download that fails with a retryable download_failed (a cut connection, a stall, a
   * network error, HTTP 5xx or 429) is tried again this many times within the same load, each
   * try resuming from what arrived. Default 3.
   */
  readonly downloadRetries?: number
  /**
   * The wait before the first retry, doubled for each later one up to a minute (or this wait, if
   * longer). Default 1,000 (1, 2, 4 s).
   */
  readonly downloadRetryDelayMs?: number
}

export { defaultCacheDir, prepareCacheFolder, usableCacheDir } from './cache-folder.ts'
export { formatBytes } from './format-bytes.ts'
export { defaultIdleTimeoutMs }

export function isUrlSource(source: string): boolean {
  return /^https?:\/\//i.test(source)
}

export function createNodeStore(options: NodeStoreOptions = {}): ModelStore {
  const cacheDir = resolve(options.cacheDir ?? defaultCacheDir())
  if (options.quotaBytes !== undefined && (!Number.isFinite(options.quotaBytes) || options.quotaBytes <= 0)) {
    throw new InvalidArgumentError('quotaBytes', 'quotaBytes must be a positive number of bytes.')
  }
  const warn = options.onWarning ?? ((message: string) => console.warn(`ondevice: ${message}`))
  const idleTimeoutMs = checkIdleTimeout(options.idleTimeoutMs)
  const retry = checkRetryOptions(options.downloadRetries, options.downloadRetryDelayMs)
  const manifestRefreshTimeoutMs = checkTimeout(
    'manifestRefreshTimeoutMs',
    options.manifestRefreshTimeoutMs,
    defaultManifestRefreshTimeoutMs,
  )
  const memo = createVerifiedMemo(cacheDir)

  function packageDirFor(prefix: string): string {
    const url = new URL(prefix)
    const slug = `${url.host}${url.pathname}`
      .replace(/[^a-zA-Z0-9._-]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 80)
    const hash = createHash('sha256').update(prefix).digest('hex').slice(0, 12)
    return join(cacheDir, 'packages', `${slug}-${hash}`)
  }

  async function usageBytes(): Promise<number> {
    return folderBytes(join(cacheDir, 'packages'))
  }

  async function estimate(): Promise<StorageEstimate> {
    await prepareCacheFolder(cacheDir)
    const disk = await statfs(cacheDir)
    const diskFree = Number(disk.bavail) * Number(disk.bsize)
    const usage = await usageBytes()
    const quotaLeft = options.quotaBytes === undefined ? Number.POSITIVE_INFINITY : options.quotaBytes - usage
    return {
      availableBytes: Math.max(0, Math.min(diskFree, quotaLeft)),
      usageBytes: usage,
      quotaBytes: options.quotaBytes ?? usage + diskFree,
    }
  }

  const openUrl = (prefix: string, signal: AbortSignal | undefined, retryManifest: boolean | undefined) => {
    const directory = packageDirFor(prefix)
    const area = createNodeFileArea({
      directory,
      cacheDir,
      memo,
      bytesLeft: async () =>
        options.quotaBytes === undefined
          ? Number.POSITIVE_INFINITY
          : options.quotaBytes - (await usageBytes()),
      estimate,
    })
    return openRemotePackage(prefix, area, {
      idleTimeoutMs,
      manifestRefreshTimeoutMs,
      retry,
      retryManifest,
      signal,
      warn,
      readBody: readEagerly,
      directory,
      localPath: (path) => {
        assertPackagePath(path)
        return join(directory, ...path.split('/'))
      },
      // Where the folder came from, for a person looking into the cache.
      onReached: async () => {
        await mkdir(directory, { recursive: true })
        await writeFile(join(directory, 'source.json'), JSON.stringify({ source: prefix }))
      },
    })
  }

  return {
    open: async (source, openOptions = {}) => {
      if (typeof source !== 'string' || source.trim() === '') {
        throw new InvalidArgumentError(
          'model',
          'model must be a package folder path or a URL prefix (http:// or https://).',
        )
      }
      if (isUrlSource(source)) {
        // Checked before any download: an unusable folder fails now, naming ONDEVICE_CACHE_DIR.
        await prepareCacheFolder(cacheDir)
        return openUrl(
          source.endsWith('/') ? source : `${source}/`,
          openOptions.signal,
          openOptions.retryManifest,
        )
      }
      return openFolderPackage(
        resolve(source.startsWith('file:') ? fileURLToPath(source) : source),
        memo,
        warn,
      )
    },
    isCached: async (source, paths) => {
      if (!isUrlSource(source)) {
        const folder = resolve(source.startsWith('file:') ? fileURLToPath(source) : source)
        return stat(join(folder, 'config.json')).then(
          () => true,
          () => false,
        )
      }
      const directory = packageDirFor(source.endsWith('/') ? source : `${source}/`)
      const manifestText = await readFile(join(directory, 'manifest.json'), 'utf8').catch(() => undefined)
      const manifest = manifestText === undefined ? undefined : parseManifest(manifestText, source)
      const wanted = paths ?? manifest?.files.map((file) => file.path) ?? []
      if (wanted.length === 0) return false
      for (const path of wanted) {
        assertPackagePath(path)
        const size = await stat(join(directory, ...path.split('/'))).then(
          (s) => s.size,
          () => undefined,
        )
        if (size === undefined) return false
        const entry = manifestEntry(manifest, path)
        if (entry && entry.bytes !== size) return false
      }
      return true
    },
    delete: async (source) => {
      if (!isUrlSource(source)) {
        throw new InvalidArgumentError(
          'source',
          `delete() removes downloaded packages only; ${source} is a local folder, which the store never owns. Remove it yourself if you mean to.`,
        )
      }
      const directory = packageDirFor(source.endsWith('/') ? source : `${source}/`)
      await memo.forgetUnder(directory + sep)
      await rm(directory, { recursive: true, force: true })
    },
    estimate,
  }
}

async function folderBytes(folder: string): Promise<number> {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true }).catch(() => [])
  let total = 0
  for (const entry of entries) {
    if (entry.isFile())
      total += await stat(join(entry.parentPath, entry.name)).then(
        (s) => s.size,
        () => 0,
      )
  }
  return total
}
