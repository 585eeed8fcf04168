// The model store on Node: a package is a local folder (read in place) or a URL prefix
// (downloaded into a cache folder, `~/.cache/ondevice` unless configured). Every file named in
// manifest.json is checked against its sha256 before first use; a verified file is remembered by
// size and mtime (verified.json) so it is not hashed again on every run. Downloads resume with
// HTTP Range, land under a `.partial` name until verified, and concurrent loads of the same file
// share one download.

import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { AbortedError, InvalidArgumentError, ModelError, StoreError } from '../../core/errors.ts'
import { htmlPageReason, isHtmlPage } from '../../core/html-page.ts'
import {
  checkIdleTimeout,
  defaultIdleTimeoutMs,
  readBodyWithin,
  stalledError,
  startIdleTimer,
} from './idle-timeout.ts'
import { assertPackagePath, manifestEntry, maximumManifestBytes, parseManifest } from './manifest.ts'
import { readEagerly } from './read-eagerly.ts'
import { refuseCrossOriginManifest } from './redirect-origin.ts'
import type {
  DownloadProgress,
  EnsureOptions,
  ModelStore,
  StorageEstimate,
  StoredPackage,
  StoreManifest,
} from './types.ts'

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
}

export { defaultIdleTimeoutMs }

/** `$ONDEVICE_CACHE_DIR`, else `$XDG_CACHE_HOME/ondevice`, else `~/.cache/ondevice`. */
export function defaultCacheDir(): string {
  if (process.env.ONDEVICE_CACHE_DIR) return resolve(process.env.ONDEVICE_CACHE_DIR)
  if (process.env.XDG_CACHE_HOME) return join(process.env.XDG_CACHE_HOME, 'ondevice')
  return join(homedir(), '.cache', 'ondevice')
}

export function isUrlSource(source: string): boolean {
  return /^https?:\/\//i.test(source)
}

interface VerifiedEntry {
  readonly size: number
  readonly mtimeMs: number
  readonly sha256: string
}

/** Work in flight per absolute local file path, shared by every store in this process. */
const inFlight = new Map<string, Promise<void>>()

export function createNodeStore(options: NodeStoreOptions = {}): ModelStore {
  const cacheDir = resolve(options.cacheDir ?? defaultCacheDir())
  if (options.quotaBytes !== undefined && (!Number.isFinite(options.quotaBytes) || options.quotaBytes <= 0)) {
    throw new InvalidArgumentError('quotaBytes', 'quotaBytes must be a positive number of bytes.')
  }
  const warn = options.onWarning ?? ((message: string) => console.warn(`ondevice: ${message}`))
  const idleTimeoutMs = checkIdleTimeout(options.idleTimeoutMs)
  const memoPath = join(cacheDir, 'verified.json')
  let memo: Promise<Map<string, VerifiedEntry>> | undefined
  let memoWrite: Promise<void> = Promise.resolve()

  function loadMemo(): Promise<Map<string, VerifiedEntry>> {
    memo ??= readFile(memoPath, 'utf8')
      .then((text) => new Map(Object.entries(JSON.parse(text) as Record<string, VerifiedEntry>)))
      .catch(() => new Map<string, VerifiedEntry>())
    return memo
  }

  async function remember(path: string, entry: VerifiedEntry | undefined): Promise<void> {
    const map = await loadMemo()
    if (entry) map.set(path, entry)
    else map.delete(path)
    // Serialised and atomic (write then rename) so a crash never leaves half a memo.
    memoWrite = memoWrite.then(async () => {
      await mkdir(cacheDir, { recursive: true })
      const temporary = `${memoPath}.${process.pid}.tmp`
      await writeFile(temporary, JSON.stringify(Object.fromEntries(map)))
      await rename(temporary, memoPath)
    })
    await memoWrite
  }

  /** Hashes `path` unless the memo says this exact size+mtime already had `sha256`. */
  async function verifyFile(
    path: string,
    expected: { bytes: number; sha256: string },
    label: string,
  ): Promise<boolean> {
    const info = await stat(path)
    if (info.size !== expected.bytes) return false
    const known = (await loadMemo()).get(path)
    if (
      known &&
      known.size === info.size &&
      known.mtimeMs === info.mtimeMs &&
      known.sha256 === expected.sha256
    )
      return true
    const actual = await sha256File(path)
    if (actual !== expected.sha256) {
      await remember(path, undefined)
      return false
    }
    await remember(path, { size: info.size, mtimeMs: info.mtimeMs, sha256: actual })
    void label
    return true
  }

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
    await mkdir(cacheDir, { recursive: true })
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

  async function openFolder(folder: string): Promise<StoredPackage> {
    let info: Awaited<ReturnType<typeof stat>>
    try {
      info = await stat(folder)
    } catch {
      throw new ModelError(
        'model_not_found',
        `No model package at ${folder}: the path does not exist. Pass a package folder (config.json, tokenizer.json, onnx/) or a URL prefix.`,
      )
    }
    if (!info.isDirectory())
      throw new ModelError(
        'model_invalid',
        `${folder} is a file, not a model package folder. Pass the folder that holds config.json.`,
      )
    const manifestText = await readFile(join(folder, 'manifest.json'), 'utf8').catch(() => undefined)
    const manifest = manifestText === undefined ? undefined : parseManifest(manifestText, folder)
    const hasConfig = await stat(join(folder, 'config.json')).then(
      () => true,
      () => false,
    )
    if (!hasConfig) {
      throw new ModelError(
        'model_invalid',
        `${folder} is not a model package: it has no config.json. Point --model at a folder written by 'ondevice convert' / 'ondevice fixture', or an onnx-community model folder.`,
      )
    }
    const warnings: string[] = []
    if (!manifest) {
      warnings.push(`${folder} has no manifest.json: its files are used without an integrity check.`)
      warn(warnings[0] as string)
    }
    const verified = new Set<string>()
    const local = (path: string): string => {
      assertPackagePath(path)
      return join(folder, ...path.split('/'))
    }
    const ensure = async (paths: readonly string[], ensureOptions: EnsureOptions = {}): Promise<void> => {
      const total = paths.reduce<number | undefined>((sum, path) => {
        const bytes = manifestEntry(manifest, path)?.bytes
        return sum === undefined || bytes === undefined ? undefined : sum + bytes
      }, 0)
      let loaded = 0
      for (const path of paths) {
        ensureOptions.signal?.throwIfAborted()
        const file = local(path)
        const size = await stat(file).then(
          (s) => s.size,
          () => undefined,
        )
        if (size === undefined)
          throw new ModelError(
            'model_not_found',
            `The package ${folder} has no file ${path}. Rebuild or re-copy the package.`,
          )
        const entry = manifestEntry(manifest, path)
        if (manifest && !entry)
          throw new ModelError(
            'model_invalid',
            `${path} is not listed in ${folder}/manifest.json, so it cannot be verified. Rebuild the package so its manifest lists every file.`,
          )
        if (entry && !verified.has(path)) {
          await shared(file, async () => {
            if (!(await verifyFile(file, entry, path))) {
              throw new StoreError(
                'integrity_failed',
                `${join(folder, path)} does not match the sha256/size in manifest.json: the file is corrupted or was changed. Rebuild or re-copy the package.`,
              )
            }
          })
          verified.add(path)
        }
        loaded += size
        ensureOptions.onProgress?.({
          phase: 'cached',
          file: path,
          fileLoadedBytes: size,
          fileTotalBytes: size,
          loadedBytes: loaded,
          totalBytes: total,
        })
      }
    }
    return {
      source: folder,
      kind: 'folder',
      manifest,
      warnings,
      directory: folder,
      ensure,
      exists: async (path) =>
        manifest
          ? manifestEntry(manifest, path) !== undefined
          : stat(local(path)).then(
              () => true,
              () => false,
            ),
      size: async (path) =>
        manifestEntry(manifest, path)?.bytes ??
        stat(local(path)).then(
          (s) => s.size,
          () => undefined,
        ),
      readText: async (path) => {
        await ensure([path])
        return readFile(local(path), 'utf8')
      },
      readBytes: async (path) => {
        await ensure([path])
        return new Uint8Array(await readFile(local(path)))
      },
      localPath: (path) => local(path),
      // The folder belongs to the user, not the store: nothing is removed from it.
      discard: async (paths) => {
        for (const path of paths) assertPackagePath(path)
      },
    }
  }

  async function openUrl(prefix: string, openOptions: EnsureOptions): Promise<StoredPackage> {
    const directory = packageDirFor(prefix)
    const warnings: string[] = []
    let manifest: StoreManifest | undefined
    let offline = false
    const manifestUrl = new URL('manifest.json', prefix)
    // A server that stalls on manifest.json counts as unreachable (the stored copy, if any, is used).
    const manifestTimer = startIdleTimer(idleTimeoutMs, openOptions.signal)
    const manifestResponse = await fetch(manifestUrl, { signal: manifestTimer.signal }).catch(
      (error: unknown) => {
        manifestTimer.stop()
        if (openOptions.signal?.aborted) throw new AbortedError(undefined, { cause: error })
        offline = true
        return undefined
      },
    )
    if (manifestResponse) await refuseCrossOriginManifest(manifestUrl, manifestResponse)
    if (manifestResponse?.ok) {
      manifestTimer.touch()
      let text: string
      try {
        // The same bounded, idle-watched read as the edge's MODEL_URL reader.
        const bytes = await readBodyWithin(manifestResponse, manifestUrl, {
          idle: manifestTimer,
          idleTimeoutMs,
          maxBytes: maximumManifestBytes,
          tooLarge: (received) =>
            new StoreError(
              'integrity_failed',
              `${manifestUrl.href} is larger than a manifest may be (${received} bytes and more; at most ${maximumManifestBytes}): the server is not sending an ondevice package's manifest.json.`,
            ),
        })
        text = new TextDecoder().decode(bytes)
      } catch (error) {
        if (openOptions.signal?.aborted) throw new AbortedError(undefined, { cause: error })
        throw error
      } finally {
        manifestTimer.stop()
      }
      manifest = parseManifest(text, prefix)
      await mkdir(directory, { recursive: true })
      await writeFile(join(directory, 'manifest.json'), text)
      await writeFile(join(directory, 'source.json'), JSON.stringify({ source: prefix }))
    } else if (offline || (manifestResponse && manifestResponse.status >= 500)) {
      manifestTimer.stop()
      // No network (or a failing server): a previously stored manifest keeps the package usable offline.
      const cached = await readFile(join(directory, 'manifest.json'), 'utf8').catch(() => undefined)
      if (cached !== undefined) manifest = parseManifest(cached, prefix)
      else if (
        !(await stat(join(directory, 'config.json')).then(
          () => true,
          () => false,
        ))
      ) {
        throw new StoreError(
          'download_failed',
          `Could not reach ${prefix} (${manifestResponse ? `HTTP ${manifestResponse.status}` : manifestTimer.expired ? `no answer in ${idleTimeoutMs} ms` : 'network error'}) and nothing of it is cached. Check the URL and the network.`,
          { isRetryable: true },
        )
      }
    } else {
      manifestTimer.stop()
      await manifestResponse?.body?.cancel()
      const config = await fetch(new URL('config.json', prefix), {
        method: 'HEAD',
        signal: withTimeout(openOptions.signal, idleTimeoutMs),
      }).catch(() => undefined)
      if (!config?.ok) {
        throw new ModelError(
          'model_not_found',
          `No model package at ${prefix}: manifest.json gave HTTP ${manifestResponse?.status} and config.json ${config ? `HTTP ${config.status}` : 'failed'}. Check the URL prefix (it should end where config.json lives).`,
        )
      }
      await mkdir(directory, { recursive: true })
      await writeFile(join(directory, 'source.json'), JSON.stringify({ source: prefix }))
    }
    if (!manifest) {
      warnings.push(`${prefix} has no manifest.json: its files are used without an integrity check.`)
      warn(warnings[0] as string)
    }

    const local = (path: string): string => {
      assertPackagePath(path)
      return join(directory, ...path.split('/'))
    }
    const remoteSizes = new Map<string, number | undefined>()
    const headSize = async (path: string): Promise<number | undefined> => {
      if (remoteSizes.has(path)) return remoteSizes.get(path)
      const response = await fetch(new URL(path, prefix), {
        method: 'HEAD',
        signal: AbortSignal.timeout(idleTimeoutMs),
      }).catch(() => undefined)
      const size = response?.ok ? Number(response.headers.get('content-length') ?? Number.NaN) : undefined
      const known = size !== undefined && Number.isFinite(size) ? size : response?.ok ? -1 : undefined
      remoteSizes.set(path, known)
      return known
    }

    const ensure = async (paths: readonly string[], ensureOptions: EnsureOptions = {}): Promise<void> => {
      for (const path of paths) assertPackagePath(path)
      const entries = paths.map((path) => {
        const entry = manifestEntry(manifest, path)
        if (manifest && !entry)
          throw new ModelError(
            'model_invalid',
            `${path} is not listed in ${prefix}manifest.json, so it cannot be verified.`,
          )
        return entry
      })
      let total = entries.reduce<number | undefined>(
        (sum, entry) => (sum === undefined || entry === undefined ? undefined : sum + entry.bytes),
        0,
      )
      if (!manifest) {
        // No manifest: sizes from the files already stored, else from HTTP HEAD, so progress has a total.
        const sizes = await Promise.all(
          paths.map(
            async (path) =>
              (await stat(local(path)).then(
                (s) => s.size,
                () => undefined,
              )) ?? (await headSize(path)),
          ),
        )
        total = sizes.every((size) => size !== undefined && size >= 0)
          ? sizes.reduce<number>((sum, size) => sum + (size as number), 0)
          : undefined
      }
      // Check room for what is missing before starting, so a full disk fails fast and clean.
      if (total !== undefined) {
        let missing = 0
        for (const [index, path] of paths.entries()) {
          const have = await stat(local(path)).then(
            (s) => s.size,
            () => 0,
          )
          if (have !== entries[index]?.bytes) missing += entries[index]?.bytes ?? 0
        }
        const room = (await estimate()).availableBytes
        if (missing > 0 && room !== undefined && missing > room) {
          throw new StoreError(
            'storage_quota_exceeded',
            `Not enough storage for ${prefix}: ${formatBytes(missing)} to download, ${formatBytes(room)} available in ${cacheDir}. Free space, raise the quota, or pick a smaller dtype.`,
          )
        }
      }
      const fileLoaded = new Map<string, number>()
      const report = (progress: Omit<DownloadProgress, 'loadedBytes' | 'totalBytes'>): void => {
        fileLoaded.set(progress.file, progress.fileLoadedBytes)
        let loaded = 0
        for (const value of fileLoaded.values()) loaded += value
        ensureOptions.onProgress?.({ ...progress, loadedBytes: loaded, totalBytes: total })
      }
      await Promise.all(
        paths.map((path, index) =>
          shared(local(path), () => fetchFile(path, entries[index], report, ensureOptions.signal)).then(
            async () => {
              const size = (await stat(local(path))).size
              report({ phase: 'done', file: path, fileLoadedBytes: size, fileTotalBytes: size })
            },
          ),
        ),
      )
    }

    const fetchFile = async (
      path: string,
      entry: { bytes: number; sha256: string } | undefined,
      report: (progress: Omit<DownloadProgress, 'loadedBytes' | 'totalBytes'>) => void,
      signal: AbortSignal | undefined,
    ): Promise<void> => {
      const file = local(path)
      const existing = await stat(file).then(
        (s) => s,
        () => undefined,
      )
      if (existing) {
        if (!entry) return
        report({ phase: 'verify', file: path, fileLoadedBytes: existing.size, fileTotalBytes: entry.bytes })
        if (await verifyFile(file, entry, path)) {
          report({ phase: 'cached', file: path, fileLoadedBytes: existing.size, fileTotalBytes: entry.bytes })
          return
        }
        await rm(file, { force: true })
      }
      if (offline)
        throw new StoreError(
          'download_failed',
          `${path} of ${prefix} is not cached and the network is unreachable. Connect once to download it.`,
          { isRetryable: true },
        )
      for (let attempt = 0; ; attempt++) {
        const resumed = await download(path, file, entry?.bytes, report, signal)
        if (!entry) {
          await rename(`${file}.partial`, file)
          return
        }
        report({ phase: 'verify', file: path, fileLoadedBytes: entry.bytes, fileTotalBytes: entry.bytes })
        const actual = await sha256File(`${file}.partial`)
        if (actual === entry.sha256) {
          await rename(`${file}.partial`, file)
          const info = await stat(file)
          await remember(file, { size: info.size, mtimeMs: info.mtimeMs, sha256: actual })
          return
        }
        // Never keep bytes that failed their check. A resumed file may have been spliced from two
        // versions of the file, so that case gets one clean retry from byte 0.
        await rm(`${file}.partial`, { force: true })
        if (!resumed || attempt > 0) {
          throw new StoreError(
            'integrity_failed',
            `${new URL(path, prefix).href} failed its sha256 check (expected ${entry.sha256}, got ${actual}): the server sent different bytes than manifest.json promises. Nothing was kept; rebuild or re-upload the package.`,
          )
        }
      }
    }

    /** Streams the file into `<file>.partial`, resuming from its current length. Returns whether it resumed. */
    const download = async (
      path: string,
      file: string,
      expectedBytes: number | undefined,
      report: (progress: Omit<DownloadProgress, 'loadedBytes' | 'totalBytes'>) => void,
      signal: AbortSignal | undefined,
    ): Promise<boolean> => {
      const partial = `${file}.partial`
      await mkdir(dirname(file), { recursive: true })
      let offset = await stat(partial).then(
        (s) => s.size,
        () => 0,
      )
      if (expectedBytes !== undefined && offset > expectedBytes) {
        await rm(partial, { force: true })
        offset = 0
      }
      const url = new URL(path, prefix)
      const idle = startIdleTimer(idleTimeoutMs, signal)
      try {
        return await downloadBody(path, url, partial, offset, expectedBytes, report, signal, idle)
      } finally {
        idle.stop()
      }
    }

    const stalled = (url: URL, written: number, cause: unknown): StoreError =>
      stalledError(url, idleTimeoutMs, written, cause)

    const downloadBody = async (
      path: string,
      url: URL,
      partial: string,
      startOffset: number,
      expectedBytes: number | undefined,
      report: (progress: Omit<DownloadProgress, 'loadedBytes' | 'totalBytes'>) => void,
      signal: AbortSignal | undefined,
      idle: ReturnType<typeof startIdleTimer>,
    ): Promise<boolean> => {
      let offset = startOffset
      let response: Response
      try {
        response = await fetch(url, {
          headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
          signal: idle.signal,
        })
      } catch (error) {
        if (signal?.aborted) throw new AbortedError(undefined, { cause: error })
        if (idle.expired) throw stalled(url, offset, error)
        throw new StoreError(
          'download_failed',
          `Downloading ${url.href} failed: ${(error as Error).message}. Check the network; the next try resumes where this one stopped.`,
          { isRetryable: true, cause: error },
        )
      }
      idle.touch()
      if (response.status === 404) {
        await response.body?.cancel()
        throw new ModelError(
          'model_not_found',
          `${url.href} gave HTTP 404: the package at ${prefix} has no file ${path}.`,
        )
      }
      if (response.ok && isHtmlPage(response.headers.get('content-type')) && !path.endsWith('.html')) {
        // Never store a fallback page as a package file (nothing is written; the partial stays).
        await response.body?.cancel()
        throw new ModelError(
          'model_not_found',
          `${path} of ${prefix} could not be downloaded: ${htmlPageReason(url.href)}. Check that the model URL is the package folder (where config.json is served).`,
        )
      }
      if (response.status === 416 && expectedBytes !== undefined && offset === expectedBytes) {
        await response.body?.cancel()
        return true
      }
      if (response.status === 416 && expectedBytes !== undefined) {
        // The server's file is shorter than what we hold: it is not the file manifest.json describes.
        await response.body?.cancel()
        await rm(partial, { force: true })
        throw new StoreError(
          'integrity_failed',
          `${url.href} is shorter than the ${expectedBytes} bytes manifest.json promises. Nothing was kept; rebuild or re-upload the package.`,
        )
      }
      if (!response.ok || !response.body) {
        await response.body?.cancel()
        throw new StoreError(
          'download_failed',
          `Downloading ${url.href} gave HTTP ${response.status}. Try again later.`,
          { isRetryable: response.status >= 500 || response.status === 429 },
        )
      }
      const resumed = response.status === 206
      if (!resumed) offset = 0
      const lengthHeader = Number(response.headers.get('content-length') ?? Number.NaN)
      const fileTotal = expectedBytes ?? (Number.isFinite(lengthHeader) ? lengthHeader + offset : undefined)
      const handle = await open(partial, resumed ? 'a' : 'w')
      let written = offset
      const quotaLeft =
        options.quotaBytes === undefined
          ? Number.POSITIVE_INFINITY
          : options.quotaBytes - (await usageBytes())
      try {
        report({ phase: 'download', file: path, fileLoadedBytes: written, fileTotalBytes: fileTotal })
        for await (const chunk of readEagerly(response.body)) {
          if (written - offset + chunk.byteLength > quotaLeft) {
            throw Object.assign(new Error('quota'), { code: 'EDQUOT' })
          }
          if (expectedBytes !== undefined && written + chunk.byteLength > expectedBytes) {
            // More bytes than manifest.json promises: stop storing them at once.
            throw Object.assign(new Error('oversized'), { code: 'EOVERSIZED' })
          }
          idle.touch()
          await handle.write(chunk)
          written += chunk.byteLength
          report({ phase: 'download', file: path, fileLoadedBytes: written, fileTotalBytes: fileTotal })
        }
      } catch (error) {
        await handle.close()
        const code = (error as { code?: string }).code
        if (code === 'ENOSPC' || code === 'EDQUOT') {
          // Leave nothing half-stored: the package folder goes as a whole.
          await rm(directory, { recursive: true, force: true })
          throw new StoreError(
            'storage_quota_exceeded',
            `Storage ran out while downloading ${path} of ${prefix} into ${cacheDir}. Nothing was kept; free space or raise the quota, then retry.`,
            { cause: error },
          )
        }
        if (code === 'EOVERSIZED') {
          await rm(partial, { force: true })
          throw new StoreError(
            'integrity_failed',
            `${url.href} is larger than the ${expectedBytes} bytes manifest.json promises. Nothing was kept; rebuild or re-upload the package.`,
          )
        }
        if (signal?.aborted) throw new AbortedError(undefined, { cause: error })
        // Like a cut connection: the .partial stays for a Range resume.
        if (idle.expired) throw stalled(url, written, error)
        throw new StoreError(
          'download_failed',
          `Downloading ${url.href} broke off after ${written} bytes: ${(error as Error).message}. The next try resumes from there.`,
          { isRetryable: true, cause: error },
        )
      }
      await handle.close()
      if (expectedBytes !== undefined && written !== expectedBytes) {
        // The body ended cleanly (a cut connection throws above), so the server's file is shorter
        // than manifest.json says: keeping it for a resume would only fail again.
        await rm(partial, { force: true })
        throw new StoreError(
          'integrity_failed',
          `${url.href} ended after ${written} of the ${expectedBytes} bytes manifest.json promises: the server's file is not the one the manifest describes. Nothing was kept; rebuild or re-upload the package.`,
        )
      }
      return resumed
    }

    return {
      source: prefix,
      kind: 'url',
      manifest,
      warnings,
      directory,
      ensure,
      exists: async (path) => {
        if (manifest) return manifestEntry(manifest, path) !== undefined
        if (
          await stat(local(path)).then(
            () => true,
            () => false,
          )
        )
          return true
        return (await headSize(path)) !== undefined
      },
      size: async (path) => {
        const known = manifestEntry(manifest, path)?.bytes
        if (known !== undefined) return known
        const size = await headSize(path)
        return size === undefined || size < 0 ? undefined : size
      },
      readText: async (path) => {
        await ensure([path])
        return readFile(local(path), 'utf8')
      },
      readBytes: async (path) => {
        await ensure([path])
        return new Uint8Array(await readFile(local(path)))
      },
      localPath: (path) => local(path),
      discard: async (paths) => {
        for (const path of paths) {
          const file = local(path)
          await remember(file, undefined)
          await rm(file, { force: true })
          await rm(`${file}.partial`, { force: true })
        }
      },
    }
  }

  return {
    open: async (source, openOptions = {}) => {
      if (typeof source !== 'string' || source.trim() === '') {
        throw new InvalidArgumentError(
          'model',
          'model must be a package folder path or a URL prefix (http:// or https://).',
        )
      }
      if (isUrlSource(source)) return openUrl(source.endsWith('/') ? source : `${source}/`, openOptions)
      return openFolder(resolve(source.startsWith('file:') ? fileURLToPath(source) : source))
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
      const map = await loadMemo()
      for (const key of [...map.keys()]) if (key.startsWith(directory + sep)) await remember(key, undefined)
      await rm(directory, { recursive: true, force: true })
    },
    estimate,
  }
}

/** A HEAD request has no body to watch: the whole answer must come within the idle timeout. */
function withTimeout(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs)
  return signal ? AbortSignal.any([signal, timeout]) : timeout
}

/** One piece of work per key at a time; concurrent callers await the same promise. */
function shared(key: string, work: () => Promise<void>): Promise<void> {
  const running = inFlight.get(key)
  if (running) return running
  const started = work().finally(() => inFlight.delete(key))
  inFlight.set(key, started)
  return started
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
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

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(1)} ${units[unit]}`
}
