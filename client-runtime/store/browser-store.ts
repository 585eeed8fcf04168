// The model store in browsers and Web Workers. Files live in the Origin Private File System
// (OPFS) when the browser has it, else in the Cache API (browser-file-area.ts); a URL package is
// synced into them by the remote-package sync the Node store runs too (remote-package.ts): a file
// becomes visible only after its sha256 matches manifest.json, and a quota failure removes the
// package's entry entirely, so nothing half-stored is ever used.
import { BackendError, InvalidArgumentError, StoreError } from '../../core/errors.ts'
import {
  type BrowserFiles,
  browserFileArea,
  openBrowserFiles,
  readStored,
  removePackage,
  storedSize,
} from './browser-file-area.ts'
import { checkIdleTimeout, checkTimeout } from './idle-timeout.ts'
import { assertPackagePath, manifestEntry, parseManifest, toHex } from './manifest.ts'
import { defaultManifestRefreshTimeoutMs, openRemotePackage } from './remote-package.ts'
import { checkRetryOptions } from './retry.ts'
import type { ModelStore, OpenOptions, StorageEstimate } from './types.ts'

export interface BrowserStoreOptions {
  /** 'opfs' (default where available) or 'cache' (Cache API). */
  readonly backend?: 'opfs' | 'cache'
  /** OPFS folder / Cache API cache name. Default 'ondevice-models'. */
  readonly name?: string
  readonly onWarning?: (message: string) => void
  /**
   * A download that receives no byte for this long (a server that stalls without closing the
   * connection) fails with a retryable download_failed; on OPFS what arrived is kept for a Range
   * resume, as for a cut connection. Default: 30,000 (`defaultIdleTimeoutMs`).
   */
  readonly idleTimeoutMs?: number
  /**
   * With a package's manifest.json stored, how long a load waits for the server's fresh copy
   * before it uses the stored one (a slow or stalled link must not hold up a stored package).
   * Default: 2,000, at most `idleTimeoutMs`.
   */
  readonly manifestRefreshTimeoutMs?: number
  /**
   * A file download that fails with a retryable download_failed (a cut connection, a stall, a
   * network error, HTTP 5xx or 429) is tried again this many times within the same load, each
   * try resuming from what arrived (OPFS; the Cache API starts over). Default 3.
   */
  readonly downloadRetries?: number
  /**
   * The wait before the first retry, doubled for each later one up to a minute (or this wait, if
   * longer). Default 1,000 (1, 2, 4 s).
   */
  readonly downloadRetryDelayMs?: number
}

/**
 * The store needs what browsers give secure contexts only (OPFS or the Cache API, and
 * crypto.subtle for the SHA-256 checks). A page opened by a LAN address over plain HTTP (a phone
 * on `vite --host`) is not one: the load failed with "Cannot read properties of undefined
 * (reading 'digest')".
 */
function insecureContextRefusal(): BackendError | undefined {
  const scope = globalThis as { isSecureContext?: boolean; location?: { origin?: string } }
  if (scope.isSecureContext !== false) return undefined
  const origin = scope.location?.origin ?? 'this page'
  return new BackendError(
    'backend_unavailable',
    `The model cannot be stored or verified on ${origin}: it is not a secure context (neither HTTPS nor localhost), so the browser withholds the storage (OPFS, the Cache API) and the SHA-256 (crypto.subtle) ondevice's store needs. Serve the page over HTTPS (a dev server reached by a LAN address too, e.g. Vite's server.https), or open it on localhost.`,
  )
}

async function packageKey(prefix: string): Promise<string> {
  const digest = toHex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(prefix))).slice(0, 16)
  const slug = new URL(prefix).pathname
    .replace(/[^a-zA-Z0-9._-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(-60)
  return `${slug || 'package'}-${digest}`
}

export function createBrowserStore(options: BrowserStoreOptions = {}): ModelStore {
  const name = options.name ?? 'ondevice-models'
  const warn = options.onWarning ?? ((message: string) => console.warn(`ondevice: ${message}`))
  const idleTimeoutMs = checkIdleTimeout(options.idleTimeoutMs)
  const retry = checkRetryOptions(options.downloadRetries, options.downloadRetryDelayMs)
  const manifestRefreshTimeoutMs = checkTimeout(
    'manifestRefreshTimeoutMs',
    options.manifestRefreshTimeoutMs,
    defaultManifestRefreshTimeoutMs,
  )
  const hasOpfs =
    typeof navigator !== 'undefined' &&
    typeof (navigator.storage as { getDirectory?: unknown } | undefined)?.getDirectory === 'function'
  const kind = options.backend ?? (hasOpfs ? 'opfs' : 'cache')
  if (kind === 'opfs' && !hasOpfs)
    throw new InvalidArgumentError(
      'backend',
      "This browser has no Origin Private File System; use backend 'cache'.",
    )
  let storage: Promise<BrowserFiles> | undefined
  const getStorage = () => (storage ??= openStorage())

  /**
   * WebKit offers navigator.storage.getDirectory and then refuses it ("UnknownError: The
   * operation failed for an unknown transient reason") in a session that keeps no data (a private
   * window; measured in WebKitGTK 2.50 with OPFS on): the Cache API still works there. Without a
   * `backend` asked for, the store falls back to it and says so; with 'opfs' asked for, it fails
   * saying what to change.
   */
  async function openStorage(): Promise<BrowserFiles> {
    try {
      return await openBrowserFiles(kind, name)
    } catch (error) {
      if (kind !== 'opfs') throw error
      const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
      if (options.backend === 'opfs')
        throw new StoreError(
          'unsupported',
          `The browser refused its Origin Private File System (${why}), as WebKit does in a private window. Use backend 'cache' (the Cache API), or leave backend unset to fall back to it.`,
          { cause: error },
        )
      warn(
        `the browser refused its Origin Private File System (${why}), as WebKit does in a private window; the model is kept in the Cache API instead (no resumed downloads).`,
      )
      return openBrowserFiles('cache', name)
    }
  }

  const normalise = (source: string): string => {
    const refusal = insecureContextRefusal()
    if (refusal) throw refusal
    if (typeof source !== 'string' || source.trim() === '')
      throw new InvalidArgumentError('model', 'model must be a URL prefix (where config.json lives).')
    const base = typeof location === 'undefined' ? undefined : location.href
    const url = new URL(source, base)
    return url.href.endsWith('/') ? url.href : `${url.href}/`
  }

  async function estimate(): Promise<StorageEstimate> {
    const result = (await navigator.storage?.estimate?.()) ?? {}
    const usage = result.usage
    const quota = result.quota
    return {
      usageBytes: usage,
      quotaBytes: quota,
      availableBytes: usage !== undefined && quota !== undefined ? Math.max(0, quota - usage) : undefined,
    }
  }

  return {
    estimate,
    isCached: async (source, paths) => {
      const prefix = normalise(source)
      const key = await packageKey(prefix)
      const files = await getStorage()
      const manifestBlob = await readStored(files, key, 'manifest.json')
      const manifest = manifestBlob ? parseManifest(await manifestBlob.text(), prefix) : undefined
      const wanted = paths ?? manifest?.files.map((file) => file.path) ?? []
      if (wanted.length === 0) return false
      for (const path of wanted) {
        assertPackagePath(path)
        const size = await storedSize(files, key, path)
        if (
          size === undefined ||
          (manifestEntry(manifest, path) && manifestEntry(manifest, path)?.bytes !== size)
        )
          return false
      }
      return true
    },
    delete: async (source) => {
      const key = await packageKey(normalise(source))
      await removePackage(await getStorage(), key)
    },
    open: async (source, openOptions: OpenOptions = {}) => {
      const prefix = normalise(source)
      const key = await packageKey(prefix)
      const area = browserFileArea(await getStorage(), key, estimate)
      return openRemotePackage(prefix, area, {
        idleTimeoutMs,
        manifestRefreshTimeoutMs,
        retry,
        retryManifest: openOptions.retryManifest,
        signal: openOptions.signal,
        warn,
      })
    },
  }
}
