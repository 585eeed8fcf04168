// The remote-package sync both stores run (Node's cache folder and the browser's OPFS / Cache API
// alike, through their FileArea): manifest.json fetched fresh when the network answers (only from
// the package's own origin), the stored copy when it does not (offline use); files downloaded
// only when missing, under a `.partial` name, resumed with HTTP Range, watched by an idle timer,
// checked against manifest.json's sha256 before they are committed; concurrent loads of one file
// share one download; the first file that fails stops the load's other downloads (unless another
// load still waits on them); a storage failure leaves nothing of the package behind.
import { AbortedError, ModelError, StoreError } from '../../core/errors.ts'
import { htmlPageReason, isHtmlPage } from '../../core/html-page.ts'
import type { FileArea } from './file-area.ts'
import { formatBytes } from './format-bytes.ts'
import { type IdleTimer, readBodyWithin, stalledError, startIdleTimer } from './idle-timeout.ts'
import {
  assertPackagePath,
  htmlManifestMessage,
  manifestEntry,
  maximumManifestBytes,
  parseManifest,
} from './manifest.ts'
import { crossOriginRedirect, refuseCrossOriginManifest } from './redirect-origin.ts'
import { defaultRetryOptions, type RetryOptions, retryAfterSeconds, withRetries } from './retry.ts'
import { shared } from './shared-work.ts'
import type { DownloadProgress, EnsureOptions, StoredPackage, StoreManifest } from './types.ts'

export interface RemotePackageOptions {
  /** No byte for this long fails a download (and makes manifest.json count as unreachable). */
  readonly idleTimeoutMs: number
  readonly signal?: AbortSignal | undefined
  readonly warn: (message: string) => void
  /**
   * How a response body is read; default: its own reader. Node passes readEagerly (undici would
   * otherwise crash on a server's FIN while paused by a slow disk: see read-eagerly.ts).
   */
  readonly readBody?: (body: ReadableStream<Uint8Array>) => AsyncIterable<Uint8Array>
  /** StoredPackage.directory and localPath, for areas that are folders on disk. */
  readonly directory?: string
  readonly localPath?: (path: string) => string | undefined
  /**
   * With manifest.json stored, how long a load waits for the server's fresh copy before it uses
   * the stored one (a slow or stalled link must not hold up an answer from a stored package).
   * Default: `defaultManifestRefreshTimeoutMs`, and never more than `idleTimeoutMs`.
   */
  readonly manifestRefreshTimeoutMs?: number | undefined
  /**
   * How a file download that fails with a retryable download_failed (cut, stall, network error,
   * 5xx) is tried again within the same load, resuming from what arrived. Default:
   * `defaultRetryOptions`. manifest.json is tried again the same way when none is stored (a first
   * load); a stored copy stands in for it otherwise.
   */
  readonly retry?: RetryOptions | undefined
  /** false: manifest.json, when none is stored, is asked for once (OpenOptions.retryManifest). */
  readonly retryManifest?: boolean | undefined
  /** Called once the server answered for the package (Node records where the folder came from). */
  readonly onReached?: () => Promise<void>
}

/** Default `manifestRefreshTimeoutMs`: a refresh that takes longer is not worth an answer's wait. */
export const defaultManifestRefreshTimeoutMs = 2_000

type FileProgress = Omit<DownloadProgress, 'loadedBytes' | 'totalBytes'>

/** Most bytes one ranged read of a stored file takes (what is held in JavaScript at once). */
const rangeReadBytes = 2 * 1024 * 1024
type Entry = { readonly bytes: number; readonly sha256: string }

/** A request with no body to watch: the whole answer must come within the idle timeout. */
function withTimeout(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs)
  return signal ? AbortSignal.any([signal, timeout]) : timeout
}

async function* readWithReader(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = body.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      yield value
    }
  } finally {
    reader.releaseLock()
  }
}

const writesUnderWay = new Map<string, Promise<unknown>>()

/**
 * Runs `write` once every earlier write under `key` has settled. Two syncs of one package at once
 * (an app's status() while prepare() loads) both store manifest.json: in OPFS the second writer's
 * `.partial` is locked when the first one moves its own over it, and the load failed ("A
 * FileSystemHandle cannot be moved while it is locked").
 */
function oneWriterAtATime<T>(key: string, write: () => Promise<T>): Promise<T> {
  const result = (writesUnderWay.get(key) ?? Promise.resolve()).then(write, write)
  const settled = result.catch(() => undefined)
  writesUnderWay.set(key, settled)
  void settled.then(() => {
    if (writesUnderWay.get(key) === settled) writesUnderWay.delete(key)
  })
  return result
}

/**
 * Runs `work` on `path` while no other tab or worker of the origin does (where the area can tell:
 * `FileArea.exclusive`); one that waits for another tab's download then finds the file stored.
 */
async function exclusively<T>(
  area: FileArea,
  path: string,
  work: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  if (!area.exclusive) return work()
  try {
    return await area.exclusive(path, work, signal)
  } catch (error) {
    // Given up while another tab held the file: the load's abort, as everywhere else.
    if (signal?.aborted && (error as { name?: string }).name === 'AbortError')
      throw new AbortedError(undefined, { cause: signal.reason })
    throw error
  }
}

/** The stored manifest.json, if there is one that still parses (a damaged copy counts as none). */
async function readStoredManifest(area: FileArea, prefix: string): Promise<StoreManifest | undefined> {
  const text = await area.readText('manifest.json')
  if (text === undefined) return undefined
  try {
    return parseManifest(text, prefix)
  } catch {
    return undefined
  }
}

type SyncedManifest = { manifest: StoreManifest | undefined; offline: boolean; stale?: boolean }

/**
 * The manifest as the package's server gives it now, else as stored, else none. With a stored
 * copy, anything but a fresh, valid manifest from the package's own origin within
 * `manifestRefreshTimeoutMs` means the stored copy is used: a network error (offline), a stall
 * or a slow link, a 5xx, a captive portal's or a proxy's answer (a login page, a redirect to
 * another origin, 401/403/407/429), a manifest cut short. The stored copy vouched for the stored
 * files when they were committed, so they stay consistent with it; a refresh that cannot be had
 * must never block or fail a load the device can answer from what it keeps. Only a 404/410 (the
 * package is gone from its server) is taken as the server's word. With no stored copy (a first
 * load) nothing can stand in for the server's: a cut, a stall, a network error, a 5xx or 429 is
 * tried again as the files are (`retry`, Retry-After, the load's signal), not the load's end.
 */
async function syncManifest(
  prefix: string,
  area: FileArea,
  options: RemotePackageOptions,
): Promise<SyncedManifest> {
  const { idleTimeoutMs, signal } = options
  const manifestUrl = new URL('manifest.json', prefix)
  const stored = await readStoredManifest(area, prefix)
  if (!stored) {
    // A browser that knows it is offline would only wait out the pauses: one try says so at once.
    const offlineNow = (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine === false
    const retry = options.retry ?? defaultRetryOptions
    return withRetries(
      () => fetchFirstManifest(prefix, manifestUrl, area, options, offlineNow),
      offlineNow || options.retryManifest === false ? { ...retry, retries: 0 } : retry,
      signal,
      'nothing of the package was stored',
    )
  }
  // A server that stalls on manifest.json counts as unreachable (the stored copy is used).
  const timer = startIdleTimer(idleTimeoutMs, signal)
  const refreshTimeoutMs = Math.min(
    idleTimeoutMs,
    options.manifestRefreshTimeoutMs ?? defaultManifestRefreshTimeoutMs,
  )
  const refreshDeadline = AbortSignal.timeout(refreshTimeoutMs)
  const aborted = (error: unknown): AbortedError | undefined =>
    signal?.aborted ? new AbortedError(undefined, { cause: error }) : undefined
  let response: Response
  try {
    response = await fetch(manifestUrl, { signal: AbortSignal.any([timer.signal, refreshDeadline]) })
  } catch (error) {
    timer.stop()
    const abort = aborted(error)
    if (abort) throw abort
    // A reachable server that was only slow is not "offline": stored .partial files may resume.
    return { manifest: stored, offline: !(timer.expired || refreshDeadline.aborted), stale: true }
  }
  let fresh: { manifest: StoreManifest; text: string } | undefined
  try {
    fresh = await readFreshManifest(response, manifestUrl, prefix, timer, idleTimeoutMs)
  } catch (error) {
    const abort = aborted(error)
    if (abort) throw abort
  } finally {
    timer.stop()
  }
  if (fresh) {
    const { text } = fresh
    await oneWriterAtATime(`${area.id}\u0000manifest.json`, () =>
      exclusively(area, 'manifest.json', () => area.writeText('manifest.json', text)),
    )
    await options.onReached?.()
    return { manifest: fresh.manifest, offline: false }
  }
  const gone =
    (response.status === 404 || response.status === 410) &&
    crossOriginRedirect(manifestUrl, response) === undefined
  if (!gone) return { manifest: stored, offline: false, stale: true }
  return noManifest(prefix, response, signal, idleTimeoutMs, options)
}

/**
 * One try at manifest.json with nothing stored to stand in for it. A network error, a stall, a
 * 5xx or 429 and a body cut short are retryable download_failed errors (the caller tries again),
 * unless config.json is stored (a package without a manifest, used offline as stored).
 */
async function fetchFirstManifest(
  prefix: string,
  manifestUrl: URL,
  area: FileArea,
  options: RemotePackageOptions,
  offlineNow: boolean,
): Promise<SyncedManifest> {
  const { idleTimeoutMs, signal } = options
  const timer = startIdleTimer(idleTimeoutMs, signal)
  const unreachable = async (why: string, offline: boolean, retryAfter?: number): Promise<SyncedManifest> => {
    if ((await area.size('config.json')) !== undefined) return { manifest: undefined, offline }
    throw new StoreError(
      'download_failed',
      `Could not reach ${prefix} (${why}) and nothing of it is stored. Check the URL and the network${offlineNow ? ' (the browser reports no network connection)' : ''}; the next try fetches its manifest.json again.`,
      { isRetryable: true, ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }) },
    )
  }
  let response: Response
  try {
    response = await fetch(manifestUrl, { signal: timer.signal })
  } catch (error) {
    timer.stop()
    if (signal?.aborted) throw new AbortedError(undefined, { cause: error })
    return unreachable(timer.expired ? `no answer in ${idleTimeoutMs} ms` : 'network error', true)
  }
  if (response.ok) {
    let fresh: { manifest: StoreManifest; text: string }
    try {
      // Throws for a redirect to another origin: manifest.json vouches for every other file.
      fresh = (await readFreshManifest(response, manifestUrl, prefix, timer, idleTimeoutMs)) as {
        manifest: StoreManifest
        text: string
      }
    } catch (error) {
      throw signal?.aborted ? new AbortedError(undefined, { cause: error }) : error
    } finally {
      timer.stop()
    }
    await oneWriterAtATime(`${area.id}\u0000manifest.json`, () =>
      exclusively(area, 'manifest.json', () => area.writeText('manifest.json', fresh.text)),
    )
    await options.onReached?.()
    return { manifest: fresh.manifest, offline: false }
  }
  timer.stop()
  await refuseCrossOriginManifest(manifestUrl, response)
  if (response.status >= 500 || response.status === 429) {
    await response.body?.cancel().catch(() => undefined)
    // A server that is rate limiting or overloaded may say when to come back (the retry waits that long).
    const retryAfter = retryAfterSeconds(response.headers.get('retry-after'))
    return unreachable(
      `HTTP ${response.status}${retryAfter === undefined ? '' : `, Retry-After: ${retryAfter} s`}`,
      false,
      retryAfter,
    )
  }
  return noManifest(prefix, response, signal, idleTimeoutMs, options)
}

/**
 * manifest.json answered 4xx (not 429): a package without one (its files used without an
 * integrity check) when config.json is there, else no package at this prefix.
 */
async function noManifest(
  prefix: string,
  response: Response,
  signal: AbortSignal | undefined,
  idleTimeoutMs: number,
  options: RemotePackageOptions,
): Promise<SyncedManifest> {
  await response.body?.cancel().catch(() => undefined)
  const config = await fetch(new URL('config.json', prefix), {
    method: 'HEAD',
    signal: withTimeout(signal, idleTimeoutMs),
  }).catch(() => undefined)
  if (!config?.ok) {
    throw new ModelError(
      'model_not_found',
      `No model package at ${prefix}: manifest.json gave HTTP ${response.status} and config.json ${config ? `HTTP ${config.status}` : 'failed'}. Check the URL prefix (it should end where config.json lives).`,
    )
  }
  await options.onReached?.()
  return { manifest: undefined, offline: false }
}

/**
 * Reads and parses a manifest.json response (bounded, idle-watched); undefined when the answer is
 * not a manifest at all (not 2xx), throws when it is a bad one (a redirect to another origin, an
 * HTML page, invalid JSON, too large, cut short).
 */
async function readFreshManifest(
  response: Response,
  manifestUrl: URL,
  prefix: string,
  timer: IdleTimer,
  idleTimeoutMs: number,
): Promise<{ manifest: StoreManifest; text: string } | undefined> {
  await refuseCrossOriginManifest(manifestUrl, response)
  if (!response.ok) {
    await response.body?.cancel().catch(() => undefined)
    return undefined
  }
  timer.touch()
  // The same bounded, idle-watched read as the edge's MODEL_URL reader.
  const bytes = await readBodyWithin(response, manifestUrl, {
    idle: timer,
    idleTimeoutMs,
    maxBytes: maximumManifestBytes,
    tooLarge: (received) =>
      new StoreError(
        'integrity_failed',
        `${manifestUrl.href} is larger than a manifest may be (${received} bytes and more; at most ${maximumManifestBytes}): the server is not sending an ondevice package's manifest.json.`,
      ),
  })
  const text = new TextDecoder().decode(bytes)
  // A server's fallback page where manifest.json should be (a single-page app's index.html, as
  // Vite's servers answer any path they lack) means no package at this URL: the code a 404 gives
  // (noManifest), not model_invalid, which says the package itself is broken.
  if (isHtmlPage(undefined, text)) throw new ModelError('model_not_found', htmlManifestMessage(prefix))
  return { manifest: parseManifest(text, prefix), text }
}

/** The first byte of a `Content-Range: bytes FIRST-LAST/TOTAL` header; undefined when there is none. */
function contentRangeStart(header: string | null): number | undefined {
  const match = /^\s*bytes\s+(\d+)-\d+\/(?:\d+|\*)\s*$/i.exec(header ?? '')
  return match ? Number(match[1]) : undefined
}

/** Opens a URL package over `area`: syncs manifest.json, then downloads files as `ensure` asks. */
export async function openRemotePackage(
  prefix: string,
  area: FileArea,
  options: RemotePackageOptions,
): Promise<StoredPackage> {
  const { idleTimeoutMs } = options
  const readBody = options.readBody ?? readWithReader
  // stale: the stored manifest.json stands in for one the network did not give (offline, a
  // stall, a captive portal or a proxy answering in the server's place).
  const { manifest, offline, stale = false } = await syncManifest(prefix, area, options)
  const warnings: string[] = []
  if (!manifest) {
    warnings.push(`${prefix} has no manifest.json: its files are used without an integrity check.`)
    options.warn(warnings[0] as string)
  }
  const stalled = (url: URL, written: number, cause: unknown): StoreError =>
    stalledError(url, idleTimeoutMs, written, cause)
  const storageFull = async (path: string, cause: unknown): Promise<StoreError> => {
    // Leave nothing half-stored: the package goes as a whole.
    await area.clear()
    return new StoreError(
      'storage_quota_exceeded',
      `Storage ran out while storing ${path} of ${prefix} ${area.location}. Nothing was kept. ${area.whenFull}, then retry.`,
      { cause },
    )
  }

  const remoteSizes = new Map<string, number | undefined>()
  /** HTTP HEAD's content-length (-1: the file exists, size unknown; undefined: no such file). */
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
        paths.map(async (path) => (await area.size(path)) ?? (offline ? undefined : await headSize(path))),
      )
      total = sizes.every((size) => size !== undefined && size >= 0)
        ? sizes.reduce<number>((sum, size) => sum + (size as number), 0)
        : undefined
    }
    // Check room for what is missing before starting, so a full disk fails fast and clean.
    if (total !== undefined) {
      let missing = 0
      for (const [index, path] of paths.entries()) {
        if ((await area.size(path)) !== entries[index]?.bytes) missing += entries[index]?.bytes ?? 0
      }
      const room = missing > 0 ? (await area.estimate()).availableBytes : undefined
      if (room !== undefined && missing > room) {
        throw new StoreError(
          'storage_quota_exceeded',
          `Not enough storage for ${prefix}: ${formatBytes(missing)} to download, ${formatBytes(room)} available ${area.location}. ${area.whenFull}.`,
        )
      }
    }
    const loadedByFile = new Map<string, number>()
    const report = (progress: FileProgress): void => {
      // What a progress bar shows never goes backwards, nor past the total: a retry that starts
      // over (a server that ignores Range, an area that cannot resume, a resumed file that failed
      // its check) reports the most this file had reached until it passes it again.
      let fileLoaded = Math.max(loadedByFile.get(progress.file) ?? 0, progress.fileLoadedBytes)
      if (progress.fileTotalBytes !== undefined) fileLoaded = Math.min(fileLoaded, progress.fileTotalBytes)
      loadedByFile.set(progress.file, fileLoaded)
      let loaded = 0
      for (const value of loadedByFile.values()) loaded += value
      if (total !== undefined) loaded = Math.min(loaded, total)
      ensureOptions.onProgress?.({
        ...progress,
        fileLoadedBytes: fileLoaded,
        loadedBytes: loaded,
        totalBytes: total,
      })
    }
    // The first file that fails fails the load: this load leaves its other files' downloads at
    // once, and each stops unless another load still waits on it (shared-work.ts). What they wrote
    // stays as a `.partial` for the next try's Range resume where the area supports resuming.
    const failed = new AbortController()
    const signal = ensureOptions.signal
      ? AbortSignal.any([ensureOptions.signal, failed.signal])
      : failed.signal
    let failure: { readonly error: unknown } | undefined
    await Promise.allSettled(
      paths.map(async (path, index) => {
        try {
          await shared<FileProgress>(
            `${area.id}/${path}`,
            (workSignal, workReport) =>
              exclusively(
                area,
                path,
                () => fetchFile(path, entries[index], workReport, workSignal),
                workSignal,
              ),
            { signal, onProgress: report },
          )
          const size = (await area.size(path)) ?? 0
          report({ phase: 'done', file: path, fileLoadedBytes: size, fileTotalBytes: size })
        } catch (error) {
          // The first failure is the load's error; the aborts it causes in the others are not.
          failure ??= { error }
          failed.abort(error)
          throw error
        }
      }),
    )
    if (failure) throw failure.error
  }

  const fetchFile = async (
    path: string,
    entry: Entry | undefined,
    report: (progress: FileProgress) => void,
    signal: AbortSignal | undefined,
  ): Promise<void> => {
    const existing = await area.size(path)
    if (existing !== undefined) {
      if (!entry) return
      report({ phase: 'verify', file: path, fileLoadedBytes: existing, fileTotalBytes: entry.bytes })
      if (await area.matches(path, entry)) {
        report({ phase: 'cached', file: path, fileLoadedBytes: existing, fileTotalBytes: entry.bytes })
        return
      }
      await area.remove(path)
    }
    if (offline)
      throw new StoreError(
        'download_failed',
        `${path} of ${prefix} is not stored and the network is unreachable. Connect once to download it.`,
        { isRetryable: true },
      )
    for (let attempt = 0; ; attempt++) {
      const resumed = await withRetries(
        () => download(path, entry?.bytes, report, signal),
        options.retry ?? defaultRetryOptions,
        signal,
      )
      if (!entry) {
        await area.commit(path, undefined)
        return
      }
      report({ phase: 'verify', file: path, fileLoadedBytes: entry.bytes, fileTotalBytes: entry.bytes })
      const actual = await area.hashPartial(path)
      if (actual === entry.sha256) {
        try {
          await area.commit(path, actual)
        } catch (error) {
          if (area.isStorageFull(error)) throw await storageFull(path, error)
          throw error
        }
        return
      }
      // Never keep bytes that failed their check. A resumed file may have been spliced from two
      // versions of the file, so that case gets one clean retry from byte 0.
      await area.remove(path)
      if (!resumed || attempt > 0) {
        throw new StoreError(
          'integrity_failed',
          `${new URL(path, prefix).href} failed its sha256 check (expected ${entry.sha256}, got ${actual}): the server sent different bytes than manifest.json promises. Nothing was kept; rebuild or re-upload the package.`,
        )
      }
    }
  }

  /** Streams the file into its `.partial`, resuming from its current length. Returns whether it resumed. */
  const download = async (
    path: string,
    expectedBytes: number | undefined,
    report: (progress: FileProgress) => void,
    signal: AbortSignal | undefined,
  ): Promise<boolean> => {
    let offset = area.supportsResume ? await area.partialSize(path) : 0
    if (expectedBytes !== undefined && offset > expectedBytes) {
      await area.remove(path)
      offset = 0
    }
    const url = new URL(path, prefix)
    const idle = startIdleTimer(idleTimeoutMs, signal)
    try {
      return await downloadBody(path, url, offset, expectedBytes, report, signal, idle)
    } finally {
      idle.stop()
    }
  }

  const downloadBody = async (
    path: string,
    url: URL,
    startOffset: number,
    expectedBytes: number | undefined,
    report: (progress: FileProgress) => void,
    signal: AbortSignal | undefined,
    idle: IdleTimer,
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
      if (stale) {
        // The server's manifest.json did not come either: the network answers in its place (a
        // captive portal's login page, a proxy). Not a missing file: retryable once it lets through.
        throw new StoreError(
          'download_failed',
          `${path} of ${prefix} could not be downloaded: an HTML page came back for ${url.href}, and the package's manifest.json could not be refreshed either (the stored copy is used), so the network is answering in the server's place (a captive portal's login page, a proxy). Sign in to the network or try again later; what is stored is kept.`,
          { isRetryable: true },
        )
      }
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
      await area.remove(path)
      throw new StoreError(
        'integrity_failed',
        `${url.href} is shorter than the ${expectedBytes} bytes manifest.json promises. Nothing was kept; rebuild or re-upload the package.`,
      )
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel()
      // A server that is rate limiting or overloaded may say when to come back (the retry waits that long).
      const retryAfter = retryAfterSeconds(response.headers.get('retry-after'))
      throw new StoreError(
        'download_failed',
        `Downloading ${url.href} gave HTTP ${response.status}${retryAfter === undefined ? '' : ` (Retry-After: ${retryAfter} s)`}. Try again later.`,
        {
          isRetryable: response.status >= 500 || response.status === 429,
          ...(retryAfter === undefined ? {} : { retryAfterSeconds: retryAfter }),
        },
      )
    }
    let resumed = response.status === 206
    const rangeStart = contentRangeStart(response.headers.get('content-range'))
    if (resumed && rangeStart !== undefined && rangeStart !== offset) {
      if (rangeStart === 0) {
        // The whole file as a 206 (a server or proxy that answers every request so): start over.
        resumed = false
      } else {
        // Another range than asked for: appending it would splice the file from wrong pieces.
        await response.body.cancel().catch(() => undefined)
        await area.remove(path)
        throw new StoreError(
          'download_failed',
          `${url.href} answered bytes from ${rangeStart} when asked for ${offset}: the server (or a proxy) mishandles HTTP Range. What was downloaded is dropped; the next try starts over.`,
          { isRetryable: true },
        )
      }
    }
    if (!resumed) offset = 0
    const lengthHeader = Number(response.headers.get('content-length') ?? Number.NaN)
    const fileTotal = expectedBytes ?? (Number.isFinite(lengthHeader) ? lengthHeader + offset : undefined)
    let writer: Awaited<ReturnType<FileArea['openPartial']>>
    try {
      writer = await area.openPartial(path, resumed)
    } catch (error) {
      await response.body.cancel().catch(() => undefined)
      if (area.isStorageFull(error)) throw await storageFull(path, error)
      throw error
    }
    let written = writer.offset
    const bytesLeft = await area.bytesLeft()
    try {
      report({ phase: 'download', file: path, fileLoadedBytes: written, fileTotalBytes: fileTotal })
      for await (const chunk of readBody(response.body)) {
        if (written - offset + chunk.byteLength > bytesLeft) {
          throw Object.assign(new Error('quota'), { code: 'EDQUOT' })
        }
        if (expectedBytes !== undefined && written + chunk.byteLength > expectedBytes) {
          // More bytes than manifest.json promises: stop storing them at once.
          throw Object.assign(new Error('oversized'), { code: 'EOVERSIZED' })
        }
        idle.touch()
        await writer.write(chunk)
        written += chunk.byteLength
        report({ phase: 'download', file: path, fileLoadedBytes: written, fileTotalBytes: fileTotal })
      }
    } catch (error) {
      await writer.close().catch(() => undefined)
      if ((error as { code?: string }).code === 'EDQUOT' || area.isStorageFull(error))
        throw await storageFull(path, error)
      if ((error as { code?: string }).code === 'EOVERSIZED') {
        await area.remove(path)
        throw new StoreError(
          'integrity_failed',
          `${url.href} is larger than the ${expectedBytes} bytes manifest.json promises. Nothing was kept; rebuild or re-upload the package.`,
        )
      }
      // An area that cannot resume (the Cache API holds a download in memory) has no use for it.
      if (!area.supportsResume) await area.remove(path).catch(() => undefined)
      if (signal?.aborted) throw new AbortedError(undefined, { cause: error })
      // Like a cut connection: a resumable area keeps the .partial for a Range resume.
      if (idle.expired) throw stalled(url, written, error)
      throw new StoreError(
        'download_failed',
        `Downloading ${url.href} broke off after ${written} bytes: ${(error as Error).message}. The next try resumes from there.`,
        { isRetryable: true, cause: error },
      )
    }
    try {
      await writer.close()
    } catch (error) {
      if (area.isStorageFull(error)) throw await storageFull(path, error)
      throw error
    }
    if (expectedBytes !== undefined && written !== expectedBytes) {
      // The body ended cleanly (a cut connection throws above), so the server's file is shorter
      // than manifest.json says: keeping it for a resume would only fail again.
      await area.remove(path)
      throw new StoreError(
        'integrity_failed',
        `${url.href} ended after ${written} of the ${expectedBytes} bytes manifest.json promises: the server's file is not the one the manifest describes. Nothing was kept; rebuild or re-upload the package.`,
      )
    }
    return resumed
  }

  const read = async <T>(path: string, how: (path: string) => Promise<T | undefined>): Promise<T> => {
    await ensure([path])
    const value = await how(path)
    if (value === undefined)
      throw new StoreError(
        'download_failed',
        `${path} of ${prefix} vanished from the store after it was stored; load it again.`,
        {
          isRetryable: true,
        },
      )
    return value
  }

  return {
    source: prefix,
    kind: 'url',
    manifest,
    warnings,
    directory: options.directory,
    ensure,
    exists: async (path) => {
      if (manifest) return manifestEntry(manifest, path) !== undefined
      assertPackagePath(path)
      if ((await area.size(path)) !== undefined) return true
      if (offline) return false
      return (await headSize(path)) !== undefined
    },
    size: async (path) => {
      const known = manifestEntry(manifest, path)?.bytes
      if (known !== undefined) return known
      assertPackagePath(path)
      const stored = await area.size(path)
      if (stored !== undefined) return stored
      const size = offline ? undefined : await headSize(path)
      return size === undefined || size < 0 ? undefined : size
    },
    readText: (path) => read(path, (file) => area.readText(file)),
    readBytes: (path) => read(path, (file) => area.readBytes(file)),
    // Stored files were verified before they were committed (and ensure() checked them for this
    // load): the engine reads them in pieces, never a whole weight file in JavaScript.
    readInto: async (path, offset, target) => {
      assertPackagePath(path)
      for (let done = 0; done < target.length; ) {
        const length = Math.min(rangeReadBytes, target.length - done)
        const bytes = await area.readRange(path, offset + done, length)
        if (bytes === undefined || bytes.length !== length)
          throw new StoreError(
            'download_failed',
            `${path} of ${prefix} ${bytes === undefined ? 'is no longer stored' : `ends at byte ${offset + done + bytes.length}, before the ${offset + target.length} the model reads`} ${area.location}; load it again.`,
            { isRetryable: true },
          )
        target.set(bytes, done)
        done += length
      }
    },
    localPath: (path) => options.localPath?.(path),
    discard: async (paths) => {
      for (const path of paths) {
        assertPackagePath(path)
        await area.remove(path)
      }
    },
  }
}
