// The model store in browsers and Web Workers. Files live in the Origin Private File System
// (OPFS) when the browser has it (streamed to disk, resumable with HTTP Range, read back lazily),
// else in the Cache API (whole responses). A file is written under a `.partial` name and only
// becomes visible after its sha256 matches manifest.json. A quota failure removes the package's
// entry entirely, so nothing half-stored is ever used.

import { AbortedError, InvalidArgumentError, ModelError, StoreError } from '../../core/errors.ts'
import { htmlPageReason, isHtmlPage } from '../../core/html-page.ts'
import { checkIdleTimeout, type IdleTimer, stalledError, startIdleTimer } from './idle-timeout.ts'
import { assertPackagePath, manifestEntry, parseManifest, toHex } from './manifest.ts'
import { refuseCrossOriginManifest } from './redirect-origin.ts'
import type { DownloadProgress, EnsureOptions, ModelStore, StorageEstimate, StoreManifest } from './types.ts'

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
}

/** Storage of whole files by key; one implementation per browser API. */
interface FileArea {
  read(key: string): Promise<Blob | undefined>
  size(key: string): Promise<number | undefined>
  /** Appends (resume) or starts a `.partial` file; returns a writer. */
  openPartial(
    key: string,
    resume: boolean,
  ): Promise<{ offset: number; write(chunk: Uint8Array): Promise<void>; close(): Promise<void> }>
  partialBlob(key: string): Promise<Blob | undefined>
  commit(key: string): Promise<void>
  remove(key: string): Promise<void>
  removePrefix(prefix: string): Promise<void>
  readonly supportsResume: boolean
}

const inFlight = new Map<string, Promise<void>>()

function shared(key: string, work: () => Promise<void>): Promise<void> {
  const running = inFlight.get(key)
  if (running) return running
  const started = work().finally(() => inFlight.delete(key))
  inFlight.set(key, started)
  return started
}

function isQuotaError(error: unknown): boolean {
  return (error as { name?: string }).name === 'QuotaExceededError'
}

async function opfsArea(name: string): Promise<FileArea> {
  const root = await (
    navigator.storage as StorageManager & { getDirectory(): Promise<FileSystemDirectoryHandle> }
  ).getDirectory()
  const top = await root.getDirectoryHandle(name, { create: true })
  // Keys are '<package-key>/<path>'; OPFS folders mirror them.
  const locate = async (
    key: string,
    create: boolean,
  ): Promise<{ folder: FileSystemDirectoryHandle; file: string } | undefined> => {
    const parts = key.split('/')
    let folder = top
    try {
      for (const part of parts.slice(0, -1)) folder = await folder.getDirectoryHandle(part, { create })
    } catch {
      return undefined
    }
    return { folder, file: parts.at(-1) as string }
  }
  const fileOf = async (key: string): Promise<File | undefined> => {
    const where = await locate(key, false)
    if (!where) return undefined
    try {
      return await (await where.folder.getFileHandle(where.file)).getFile()
    } catch {
      return undefined
    }
  }
  return {
    supportsResume: true,
    read: fileOf,
    size: async (key) => (await fileOf(key))?.size,
    partialBlob: (key) => fileOf(`${key}.partial`),
    openPartial: async (key, resume) => {
      const where = (await locate(`${key}.partial`, true)) as {
        folder: FileSystemDirectoryHandle
        file: string
      }
      const handle = await where.folder.getFileHandle(where.file, { create: true })
      const offset = resume ? (await handle.getFile()).size : 0
      const writable = await handle.createWritable({ keepExistingData: resume })
      if (resume) await writable.seek(offset)
      else await writable.truncate(0)
      return {
        offset,
        write: (chunk) => writable.write(chunk as unknown as ArrayBuffer),
        close: () => writable.close(),
      }
    },
    commit: async (key) => {
      const where = (await locate(key, true)) as { folder: FileSystemDirectoryHandle; file: string }
      const partial = await where.folder.getFileHandle(`${where.file}.partial`)
      const moved = partial as FileSystemFileHandle & { move?: (name: string) => Promise<void> }
      if (moved.move) {
        await moved.move(where.file)
        return
      }
      // No move(): copy the bytes over (older browsers).
      const target = await (await where.folder.getFileHandle(where.file, { create: true })).createWritable()
      await (await partial.getFile()).stream().pipeTo(target)
      await where.folder.removeEntry(`${where.file}.partial`)
    },
    remove: async (key) => {
      const where = await locate(key, false)
      await where?.folder.removeEntry(where.file).catch(() => undefined)
    },
    removePrefix: async (prefix) => {
      await top.removeEntry(prefix.replace(/\/$/, ''), { recursive: true }).catch(() => undefined)
    },
  }
}

async function cacheArea(name: string): Promise<FileArea> {
  const cache = await caches.open(name)
  const url = (key: string) => `https://ondevice.invalid/${key}`
  const pending = new Map<string, Uint8Array[]>()
  return {
    supportsResume: false,
    read: async (key) => (await cache.match(url(key)))?.blob(),
    size: async (key) => (await (await cache.match(url(key)))?.blob())?.size,
    partialBlob: async (key) => {
      const chunks = pending.get(key)
      return chunks ? new Blob(chunks as BlobPart[]) : undefined
    },
    openPartial: async (key) => {
      const chunks: Uint8Array[] = []
      pending.set(key, chunks)
      return {
        offset: 0,
        write: async (chunk) => void chunks.push(chunk.slice()),
        close: async () => undefined,
      }
    },
    commit: async (key) => {
      const chunks = pending.get(key) ?? []
      pending.delete(key)
      await cache.put(url(key), new Response(new Blob(chunks as BlobPart[])))
    },
    remove: async (key) => {
      pending.delete(key)
      await cache.delete(url(key))
    },
    removePrefix: async (prefix) => {
      for (const request of await cache.keys())
        if (request.url.startsWith(url(prefix))) await cache.delete(request)
    },
  }
}

async function sha256Blob(blob: Blob): Promise<string> {
  return toHex(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()))
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
  const stalled = (url: URL, written: number, cause: unknown): StoreError =>
    stalledError(url, idleTimeoutMs, written, cause)
  const hasOpfs =
    typeof navigator !== 'undefined' &&
    typeof (navigator.storage as { getDirectory?: unknown } | undefined)?.getDirectory === 'function'
  const kind = options.backend ?? (hasOpfs ? 'opfs' : 'cache')
  if (kind === 'opfs' && !hasOpfs)
    throw new InvalidArgumentError(
      'backend',
      "This browser has no Origin Private File System; use backend 'cache'.",
    )
  let area: Promise<FileArea> | undefined
  const getArea = () => (area ??= kind === 'opfs' ? opfsArea(name) : cacheArea(name))

  const normalise = (source: string): string => {
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
      const files = await getArea()
      const manifestBlob = await files.read(`${key}/manifest.json`)
      const manifest = manifestBlob ? parseManifest(await manifestBlob.text(), prefix) : undefined
      const wanted = paths ?? manifest?.files.map((file) => file.path) ?? []
      if (wanted.length === 0) return false
      for (const path of wanted) {
        assertPackagePath(path)
        const size = await files.size(`${key}/${path}`)
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
      await (await getArea()).removePrefix(`${key}/`)
    },
    open: async (source, openOptions: EnsureOptions = {}) => {
      const prefix = normalise(source)
      const key = await packageKey(prefix)
      const files = await getArea()
      const warnings: string[] = []
      let manifest: StoreManifest | undefined
      let offline = false
      const manifestUrl = new URL('manifest.json', prefix)
      // A server that stalls on manifest.json counts as unreachable (the stored copy, if any, is used).
      const manifestTimer = startIdleTimer(idleTimeoutMs, openOptions.signal)
      const response = await fetch(manifestUrl, { signal: manifestTimer.signal }).catch(() => {
        manifestTimer.stop()
        if (openOptions.signal?.aborted) throw new AbortedError()
        offline = true
        return undefined
      })
      if (!response?.ok) manifestTimer.stop()
      // The same rule as the Node store: manifest.json only from the package's own origin.
      if (response) await refuseCrossOriginManifest(manifestUrl, response)
      if (response?.ok) {
        manifestTimer.touch()
        let text: string
        try {
          text = await response.text()
        } catch (error) {
          if (openOptions.signal?.aborted) throw new AbortedError(undefined, { cause: error })
          if (manifestTimer.expired) throw stalled(manifestUrl, 0, error)
          throw new StoreError('download_failed', `Reading ${manifestUrl.href} broke off. Try again.`, {
            isRetryable: true,
            cause: error,
          })
        } finally {
          manifestTimer.stop()
        }
        manifest = parseManifest(text, prefix)
        const writer = await files.openPartial(`${key}/manifest.json`, false)
        await writer.write(new TextEncoder().encode(text))
        await writer.close()
        await files.commit(`${key}/manifest.json`)
      } else if (offline || (response && response.status >= 500)) {
        const cached = await files.read(`${key}/manifest.json`)
        if (cached) manifest = parseManifest(await cached.text(), prefix)
        else if (!(await files.size(`${key}/config.json`))) {
          throw new StoreError(
            'download_failed',
            `Could not reach ${prefix} and nothing of it is stored. Check the URL and the network.`,
            { isRetryable: true },
          )
        }
      } else {
        const config = await fetch(new URL('config.json', prefix), { method: 'HEAD' }).catch(() => undefined)
        if (!config?.ok)
          throw new ModelError(
            'model_not_found',
            `No model package at ${prefix}: manifest.json gave HTTP ${response?.status} and config.json ${config ? `HTTP ${config.status}` : 'failed'}.`,
          )
      }
      if (!manifest) {
        warnings.push(`${prefix} has no manifest.json: its files are used without an integrity check.`)
        warn(warnings[0] as string)
      }

      const fetchFile = async (
        path: string,
        report: (progress: Omit<DownloadProgress, 'loadedBytes' | 'totalBytes'>) => void,
        signal: AbortSignal | undefined,
      ): Promise<void> => {
        const entry = manifestEntry(manifest, path)
        const fileKey = `${key}/${path}`
        const existing = await files.read(fileKey)
        if (existing) {
          // Stored files were verified before they were committed; a size check catches truncation.
          if (!entry || existing.size === entry.bytes) {
            report({
              phase: 'cached',
              file: path,
              fileLoadedBytes: existing.size,
              fileTotalBytes: existing.size,
            })
            return
          }
          await files.remove(fileKey)
        }
        if (offline)
          throw new StoreError(
            'download_failed',
            `${path} of ${prefix} is not stored and the network is unreachable.`,
            { isRetryable: true },
          )
        const partialSize = files.supportsResume ? ((await files.partialBlob(fileKey))?.size ?? 0) : 0
        const resume = partialSize > 0 && (entry === undefined || partialSize < entry.bytes)
        const url = new URL(path, prefix)
        const idle = startIdleTimer(idleTimeoutMs, signal)
        try {
          await download(path, url, entry, fileKey, resume, partialSize, report, signal, idle)
        } finally {
          idle.stop()
        }
      }

      const download = async (
        path: string,
        url: URL,
        entry: ReturnType<typeof manifestEntry>,
        fileKey: string,
        resume: boolean,
        partialSize: number,
        report: (progress: Omit<DownloadProgress, 'loadedBytes' | 'totalBytes'>) => void,
        signal: AbortSignal | undefined,
        idle: IdleTimer,
      ): Promise<void> => {
        let response: Response
        try {
          response = await fetch(url, {
            headers: resume ? { range: `bytes=${partialSize}-` } : {},
            signal: idle.signal,
          })
        } catch (error) {
          if (signal?.aborted) throw new AbortedError(undefined, { cause: error })
          if (idle.expired) throw stalled(url, 0, error)
          throw new StoreError(
            'download_failed',
            `Downloading ${url.href} failed: ${(error as Error).message}. The next try resumes.`,
            { isRetryable: true, cause: error },
          )
        }
        if (response.status === 404)
          throw new ModelError(
            'model_not_found',
            `${url.href} gave HTTP 404: the package at ${prefix} has no file ${path}.`,
          )
        if (response.ok && isHtmlPage(response.headers.get('content-type')) && !path.endsWith('.html')) {
          // Never store a fallback page as a package file.
          await response.body?.cancel()
          throw new ModelError(
            'model_not_found',
            `${path} of ${prefix} could not be downloaded: ${htmlPageReason(url.href)}. Check that the model URL is the package folder (where config.json is served).`,
          )
        }
        if (!response.ok || !response.body)
          throw new StoreError('download_failed', `Downloading ${url.href} gave HTTP ${response.status}.`, {
            isRetryable: response.status >= 500,
          })
        idle.touch()
        const writer = await files.openPartial(fileKey, resume && response.status === 206)
        let written = writer.offset
        const length = Number(response.headers.get('content-length') ?? Number.NaN)
        const fileTotal = entry?.bytes ?? (Number.isFinite(length) ? length + written : undefined)
        const reader = response.body.getReader()
        try {
          for (;;) {
            const { done, value } = await reader.read()
            if (done) break
            idle.touch()
            await writer.write(value)
            written += value.byteLength
            report({ phase: 'download', file: path, fileLoadedBytes: written, fileTotalBytes: fileTotal })
          }
          await writer.close()
        } catch (error) {
          await writer.close().catch(() => undefined)
          if (isQuotaError(error)) {
            await files.removePrefix(`${key}/`)
            throw new StoreError(
              'storage_quota_exceeded',
              `The browser's storage quota ran out while storing ${path} of ${prefix}. Nothing was kept; free space (delete other models) and retry.`,
              { cause: error },
            )
          }
          if (signal?.aborted) throw new AbortedError(undefined, { cause: error })
          // Like a cut connection: on OPFS the .partial stays for a Range resume.
          if (idle.expired) throw stalled(url, written, error)
          throw new StoreError(
            'download_failed',
            `Downloading ${url.href} broke off after ${written} bytes. The next try resumes.`,
            { isRetryable: true, cause: error },
          )
        }
        if (entry) {
          report({ phase: 'verify', file: path, fileLoadedBytes: written, fileTotalBytes: fileTotal })
          const blob = (await files.partialBlob(fileKey)) as Blob
          const actual = await sha256Blob(blob)
          if (actual !== entry.sha256 || blob.size !== entry.bytes) {
            await files.remove(`${fileKey}.partial`)
            throw new StoreError(
              'integrity_failed',
              `${url.href} failed its sha256 check (expected ${entry.sha256}, got ${actual}). Nothing was kept.`,
            )
          }
        }
        try {
          await files.commit(fileKey)
          report({ phase: 'done', file: path, fileLoadedBytes: written, fileTotalBytes: written })
        } catch (error) {
          if (isQuotaError(error)) {
            await files.removePrefix(`${key}/`)
            throw new StoreError(
              'storage_quota_exceeded',
              `The browser's storage quota ran out while storing ${path} of ${prefix}. Nothing was kept.`,
              { cause: error },
            )
          }
          throw error
        }
      }

      const ensure = async (paths: readonly string[], ensureOptions: EnsureOptions = {}): Promise<void> => {
        for (const path of paths) {
          assertPackagePath(path)
          if (manifest && !manifestEntry(manifest, path))
            throw new ModelError(
              'model_invalid',
              `${path} is not listed in ${prefix}manifest.json, so it cannot be verified.`,
            )
        }
        const total = paths.reduce<number | undefined>((sum, path) => {
          const bytes = manifestEntry(manifest, path)?.bytes
          return sum === undefined || bytes === undefined ? undefined : sum + bytes
        }, 0)
        if (total !== undefined) {
          const room = (await estimate()).availableBytes
          let missing = 0
          for (const path of paths)
            if ((await files.size(`${key}/${path}`)) === undefined)
              missing += manifestEntry(manifest, path)?.bytes ?? 0
          if (room !== undefined && missing > room) {
            throw new StoreError(
              'storage_quota_exceeded',
              `Not enough browser storage for ${prefix}: ${missing} bytes to store, ${room} available. Free space or pick a smaller model.`,
            )
          }
        }
        const loadedByFile = new Map<string, number>()
        const report = (progress: Omit<DownloadProgress, 'loadedBytes' | 'totalBytes'>): void => {
          loadedByFile.set(progress.file, progress.fileLoadedBytes)
          let loaded = 0
          for (const value of loadedByFile.values()) loaded += value
          ensureOptions.onProgress?.({ ...progress, loadedBytes: loaded, totalBytes: total })
        }
        await Promise.all(
          paths.map((path) =>
            shared(`${name}/${key}/${path}`, () => fetchFile(path, report, ensureOptions.signal)),
          ),
        )
      }
      const readBlob = async (path: string): Promise<Blob> => {
        await ensure([path])
        return (await files.read(`${key}/${path}`)) as Blob
      }
      return {
        source: prefix,
        kind: 'url',
        manifest,
        warnings,
        directory: undefined,
        ensure,
        exists: async (path) => {
          if (manifest) return manifestEntry(manifest, path) !== undefined
          if ((await files.size(`${key}/${path}`)) !== undefined) return true
          if (offline) return false
          return (await fetch(new URL(path, prefix), { method: 'HEAD' }).catch(() => undefined))?.ok ?? false
        },
        size: async (path) => manifestEntry(manifest, path)?.bytes ?? (await files.size(`${key}/${path}`)),
        readText: async (path) => (await readBlob(path)).text(),
        readBytes: async (path) => new Uint8Array(await (await readBlob(path)).arrayBuffer()),
        localPath: () => undefined,
        discard: async (paths) => {
          for (const path of paths) {
            assertPackagePath(path)
            await files.remove(`${key}/${path}`)
            await files.remove(`${key}/${path}.partial`)
          }
        },
      }
    },
  }
}
