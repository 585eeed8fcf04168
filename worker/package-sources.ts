// Where an edge deployment gets its model package: an R2 bucket, the Worker's static assets
// (files up to 25 MiB each), or any URL prefix. Each is a PackageReader; `verifyPackage` wraps one
// so every file is checked against manifest.json (size and SHA-256 through WebCrypto) before the
// runtime sees a byte, so a corrupted or swapped upload fails loudly instead of answering garbage.

import type { PackageReader } from '../client-runtime/package-reader.ts'
import {
  bodyReadError,
  checkIdleTimeout,
  type IdleTimer,
  readBodyWithin,
  stalledError,
  startIdleTimer,
} from '../client-runtime/store/idle-timeout.ts'
import {
  assertPackagePath,
  manifestEntry,
  maximumManifestBytes,
  parseManifest,
  toHex,
} from '../client-runtime/store/manifest.ts'
import { refuseCrossOriginManifest } from '../client-runtime/store/redirect-origin.ts'
import type { StoreManifest } from '../client-runtime/store/types.ts'
import { ModelError, StoreError } from '../core/errors.ts'
import { htmlPageReason, isHtmlPage } from '../core/html-page.ts'
import { blockDigestsPath } from '../core/model-package.ts'
import { RangesUnsupportedError, verifiedRanges } from './verified-ranges.ts'

export type { PackageReader }

/** The slice of Workers' R2Bucket this needs (structural, so Node code type-checks without workers-types). */
export interface R2BucketLike {
  get(
    key: string,
    options?: { readonly range?: { readonly offset: number; readonly length: number } },
  ): Promise<{ arrayBuffer(): Promise<ArrayBuffer>; readonly body?: ReadableStream<Uint8Array> } | null>
}

/** Bytes a body is read into where it is a byte stream (Node's fetch, workerd's): one buffer per body. */
const pieceBytes = 512 * 1024
/**
 * Fewest bytes one read waits for (unless the body ends): workerd hands a body over in pieces of a
 * few KiB, and a read per piece (plus what the caller does per piece) cost a streamed load at the
 * edge seconds of CPU.
 */
const leastPieceBytes = 128 * 1024

type ByobReader = ReadableStreamBYOBReader & {
  /** workerd's: at least `minBytes` unless the stream ends. */
  readAtLeast?(minBytes: number, view: Uint8Array): Promise<ReadableStreamReadResult<Uint8Array>>
  read(view: Uint8Array, options?: { min?: number }): Promise<ReadableStreamReadResult<Uint8Array>>
}

/**
 * A body's pieces; the reader is released (and the body cancelled) when the consumer stops early.
 * A byte stream is read into one reused buffer, at least leastPieceBytes at a time, so a piece is
 * valid only until the next one is asked for (the verified reader copies each at once).
 */
async function* chunksOf(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  let byob: ByobReader | undefined
  try {
    byob = body.getReader({ mode: 'byob' }) as ByobReader
  } catch {
    // Not a byte stream: its own chunks, as they come.
  }
  const reader = byob ?? body.getReader()
  let finished = false
  try {
    if (byob) {
      let buffer = new ArrayBuffer(pieceBytes)
      for (;;) {
        const view = new Uint8Array(buffer)
        const { done, value } = byob.readAtLeast
          ? await byob.readAtLeast(leastPieceBytes, view)
          : await byob.read(view, { min: leastPieceBytes })
        // The read took the buffer over and handed it back in `value` (possibly with the last bytes).
        if (value) buffer = value.buffer as ArrayBuffer
        if (value && value.byteLength > 0) yield value
        if (done) {
          finished = true
          return
        }
      }
    }
    const chunks = reader as ReadableStreamDefaultReader<Uint8Array>
    for (;;) {
      const { done, value } = await chunks.read()
      if (done) {
        finished = true
        return
      }
      yield value
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined)
    reader.releaseLock()
  }
}

/** The slice of a Workers `Fetcher` (the ASSETS binding) this needs. */
export interface FetcherLike {
  fetch(request: Request): Promise<Response>
}

function joinPrefix(prefix: string, path: string): string {
  assertPackagePath(path)
  const clean = prefix.replace(/^\/+|\/+$/g, '')
  return clean === '' ? path : `${clean}/${path}`
}

function missing(path: string, where: string): ModelError {
  return new ModelError(
    'model_not_found',
    `${path} is not in the model package at ${where}. Upload the whole package folder there.`,
  )
}

function readerFromBytes(readBytes: (path: string) => Promise<Uint8Array>): PackageReader {
  return {
    readBytes,
    async readText(path) {
      return new TextDecoder().decode(await readBytes(path))
    },
  }
}

/** Package files stored in R2 under `prefix` (e.g. `qwen3-0.6b/` holding config.json, onnx/...). */
export function r2PackageReader(bucket: R2BucketLike, prefix: string): PackageReader {
  const where = `R2 prefix '${prefix}'`
  return {
    ...readerFromBytes(async (path) => {
      const object = await bucket.get(joinPrefix(prefix, path))
      if (object === null) throw missing(path, where)
      return new Uint8Array(await object.arrayBuffer())
    }),
    async *stream(path) {
      const object = await bucket.get(joinPrefix(prefix, path))
      if (object === null) throw missing(path, where)
      if (!object.body) {
        yield new Uint8Array(await object.arrayBuffer())
        return
      }
      yield* chunksOf(object.body)
    },
    async *readRange(path, offset, length) {
      const object = await bucket.get(joinPrefix(prefix, path), { range: { offset, length } })
      if (object === null) throw missing(path, where)
      if (!object.body) {
        yield new Uint8Array(await object.arrayBuffer())
        return
      }
      yield* chunksOf(object.body)
    },
  }
}

/** Written next to a file too large for one static asset: how to put its chunks back together. */
export interface ChunkIndex {
  readonly bytes: number
  readonly chunks: readonly { readonly path: string; readonly bytes: number }[]
}

/** `onnx/model.onnx_data` → `onnx/model.onnx_data.chunks.json` (and `.chunk-0`, `.chunk-1`, ...). */
export const chunkIndexPath = (path: string): string => `${path}.chunks.json`

/**
 * Package files deployed as static assets under `prefix`. Workers cap one asset at 25 MiB, so
 * `prepareAssetsPackage` (worker/prepare-assets.ts) splits larger files into chunks with an index;
 * this reader joins them back, and verification then checks the whole file against the manifest.
 */
export function assetsPackageReader(assets: FetcherLike, prefix: string): PackageReader {
  const where = `static assets path '/${prefix.replace(/^\/+/, '')}'`
  const get = async (path: string, range?: { offset: number; length: number }): Promise<Response> => {
    // The host part is ignored by the assets binding; only the path selects the file.
    const response = await assets.fetch(
      new Request(`https://assets.invalid/${joinPrefix(prefix, path)}`, {
        headers: range ? { range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {},
      }),
    )
    if (!response.ok && response.status !== 404) {
      await response.body?.cancel().catch(() => undefined)
      throw new StoreError(
        'download_failed',
        `Reading ${path} from ${where} failed with HTTP ${response.status}.`,
        { isRetryable: true },
      )
    }
    return response
  }
  const readIndex = async (path: string): Promise<ChunkIndex> => {
    const indexResponse = await get(chunkIndexPath(path))
    if (!indexResponse.ok) throw missing(path, where)
    const index = (await indexResponse.json()) as ChunkIndex
    if (!Array.isArray(index.chunks) || typeof index.bytes !== 'number') {
      throw new ModelError(
        'model_invalid',
        `${chunkIndexPath(path)} in ${where} is not a chunk index; prepare the assets again.`,
      )
    }
    return index
  }
  /** Whether each file is one asset or chunks (learnt by the first read of it). */
  const layouts = new Map<string, 'whole' | ChunkIndex>()
  const layout = async (path: string): Promise<'whole' | ChunkIndex> => {
    const known = layouts.get(path)
    if (known) return known
    const probe = await get(path, { offset: 0, length: 1 })
    await probe.body?.cancel().catch(() => undefined)
    const found = probe.ok ? 'whole' : await readIndex(path)
    layouts.set(path, found)
    return found
  }
  /** Whether the binding answers Range requests (learnt by the first one; wrangler dev's does not). */
  let rangesServed: boolean | undefined
  /** Without ranges: the one asset (a chunk: prepare-assets keeps them small) last read whole. */
  let held: { readonly path: string; readonly bytes: Uint8Array } | undefined
  /** One asset's bytes [offset, offset + length): a Range request, else from the asset read whole. */
  async function* rangeOf(path: string, offset: number, length: number): AsyncGenerator<Uint8Array> {
    if (rangesServed !== false) {
      const response = await get(path, { offset, length })
      if (response.status === 404) throw missing(path, where)
      if (response.status === 206) {
        rangesServed = true
        if (response.body) yield* chunksOf(response.body)
        return
      }
      await response.body?.cancel().catch(() => undefined)
      rangesServed = false
    }
    if (held?.path !== path) {
      held = undefined
      const response = await get(path)
      if (!response.ok) throw missing(path, where)
      held = { path, bytes: new Uint8Array(await response.arrayBuffer()) }
    }
    yield held.bytes.subarray(offset, offset + length)
  }
  return {
    ...readerFromBytes(async (path) => {
      const whole = await get(path)
      if (whole.ok) return new Uint8Array(await whole.arrayBuffer())
      await whole.body?.cancel().catch(() => undefined)
      const index = await readIndex(path)
      const bytes = new Uint8Array(index.bytes)
      let offset = 0
      // One chunk at a time: only the joined file and one chunk are in memory at once.
      for (const chunk of index.chunks) {
        const response = await get(chunk.path)
        if (!response.ok) throw missing(chunk.path, where)
        const part = new Uint8Array(await response.arrayBuffer())
        if (part.byteLength !== chunk.bytes || offset + part.byteLength > bytes.byteLength) {
          throw new StoreError(
            'integrity_failed',
            `${chunk.path} in ${where} has ${part.byteLength} bytes; its index says ${chunk.bytes}. Prepare the assets again.`,
          )
        }
        bytes.set(part, offset)
        offset += part.byteLength
      }
      if (offset !== bytes.byteLength)
        throw new StoreError(
          'integrity_failed',
          `The chunks of ${path} in ${where} add up to ${offset} bytes, not ${bytes.byteLength}.`,
        )
      return bytes
    }),
    async *stream(path) {
      const whole = await get(path)
      if (whole.ok && whole.body) {
        layouts.set(path, 'whole')
        yield* chunksOf(whole.body)
        return
      }
      await whole.body?.cancel().catch(() => undefined)
      const index = await readIndex(path)
      layouts.set(path, index)
      for (const chunk of index.chunks) {
        const response = await get(chunk.path)
        if (!response.ok || !response.body) throw missing(chunk.path, where)
        yield* chunksOf(response.body)
      }
    },
    async *readRange(path, offset, length) {
      const found = await layout(path)
      if (found === 'whole') {
        yield* rangeOf(path, offset, length)
        return
      }
      // The range may span chunks: each chunk's part by its own Range request, in order.
      let chunkStart = 0
      for (const chunk of found.chunks) {
        const from = Math.max(offset, chunkStart)
        const to = Math.min(offset + length, chunkStart + chunk.bytes)
        if (from < to) {
          let received = 0
          for await (const piece of rangeOf(chunk.path, from - chunkStart, to - from)) {
            received += piece.byteLength
            yield piece
          }
          // A chunk shorter than its index says: what came is all there is (the reader reports it).
          if (received !== to - from) return
        }
        chunkStart += chunk.bytes
      }
    },
    async close() {
      held = undefined
    },
  }
}

export interface UrlPackageReaderOptions {
  /** A download that receives no byte for this long fails (retryable). Default 30,000 (as the stores). */
  readonly idleTimeoutMs?: number
}

/**
 * Package files under an http(s) URL prefix. Each read is watched as the device stores watch
 * theirs (one shared implementation, readBodyWithin): an idle timeout, so a server that stalls
 * mid-body fails the load (and the next request retries it) instead of leaving it pending forever,
 * and a size bound (the manifest's size for a listed file, maximumManifestBytes for manifest.json),
 * so a server that sends more than the file holds is cut off at once.
 */
const connectionAttempts = 3

/** undici's "fetch failed" hides the reason (ECONNRESET, ECONNREFUSED, ...) in `cause`. */
function describeCause(error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined
  if (cause === undefined || cause === null) return ''
  const code = typeof cause === 'object' && 'code' in cause ? String(cause.code) : undefined
  return `: ${code ?? String(cause)}`
}

export function urlPackageReader(
  baseUrl: string,
  fetchImplementation: typeof fetch = fetch,
  options: UrlPackageReaderOptions = {},
): PackageReader {
  let base: URL
  try {
    base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`)
  } catch {
    throw new ModelError(
      'model_invalid',
      `MODEL_URL '${baseUrl}' is not a URL: set it to the http(s) prefix that holds config.json.`,
    )
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new ModelError('model_invalid', `MODEL_URL '${baseUrl}' must be an http(s) URL.`)
  }
  const idleTimeoutMs = checkIdleTimeout(options.idleTimeoutMs)
  /** A GET answered 2xx (the caller reads or cancels its body), watched by `idle` from the start. */
  const open = async (path: string, idle: IdleTimer, range?: string): Promise<Response> => {
    assertPackagePath(path)
    const url = new URL(path, base)
    let response: Response | undefined
    // A GET is idempotent: a connection that fails before any response (typically a kept-alive
    // socket the server closed while idle: ECONNRESET) is retried on a fresh one, twice.
    for (let attempt = 1; response === undefined; attempt++) {
      try {
        response = await fetchImplementation(url, {
          signal: idle.signal,
          ...(range ? { headers: { range } } : {}),
        })
      } catch (cause) {
        if (idle.expired) throw stalledError(url, idleTimeoutMs, 0, cause)
        if (attempt >= connectionAttempts)
          throw new StoreError(
            'download_failed',
            `Fetching ${path} from ${base.href} failed (${String(cause)}${describeCause(cause)}) after ${attempt} attempts.`,
            { isRetryable: true, cause },
          )
        await new Promise((resolve) => setTimeout(resolve, 50 * 4 ** (attempt - 1)))
        idle.touch()
      }
    }
    idle.touch()
    // The same rule as the device stores: manifest.json, which vouches for every other file,
    // only from MODEL_URL's own origin; other files may be redirected (their sha256 is checked).
    if (path === 'manifest.json') await refuseCrossOriginManifest(url, response)
    if (response.status === 404) {
      await response.body?.cancel().catch(() => undefined)
      throw missing(path, base.href)
    }
    if (response.ok && isHtmlPage(response.headers.get('content-type')) && !path.endsWith('.html')) {
      await response.body?.cancel().catch(() => undefined)
      throw new ModelError(
        'model_invalid',
        `${path} of the package at ${base.href}: ${htmlPageReason(url.href)}. Set MODEL_URL to the package folder (where config.json is served).`,
      )
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined)
      throw new StoreError(
        'download_failed',
        `Fetching ${path} from ${base.href} failed with HTTP ${response.status}.`,
        { isRetryable: true },
      )
    }
    return response
  }
  const readBytes = async (
    path: string,
    readOptions: { readonly expectedBytes?: number } = {},
  ): Promise<Uint8Array> => {
    const idle = startIdleTimer(idleTimeoutMs, undefined)
    try {
      const response = await open(path, idle)
      const maxBytes =
        readOptions.expectedBytes ??
        (path === 'manifest.json' ? maximumManifestBytes : Number.MAX_SAFE_INTEGER)
      return await readBodyWithin(response, new URL(path, base), {
        idle,
        idleTimeoutMs,
        maxBytes,
        tooLarge: (received) =>
          new StoreError(
            'integrity_failed',
            readOptions.expectedBytes === undefined
              ? `${path} from ${base.href} has at least ${received} bytes; a manifest has at most ${maxBytes}. MODEL_URL does not serve an ondevice package.`
              : `${path} from ${base.href} has at least ${received} bytes; manifest.json says ${maxBytes}. Upload the package again.`,
          ),
      })
    } finally {
      idle.stop()
    }
  }
  return {
    readBytes,
    async readText(path) {
      return new TextDecoder().decode(await readBytes(path))
    },
    async *stream(path) {
      const idle = startIdleTimer(idleTimeoutMs, undefined)
      const url = new URL(path, base)
      let received = 0
      try {
        const response = await open(path, idle)
        if (!response.body) return
        try {
          for await (const chunk of chunksOf(response.body)) {
            idle.touch()
            received += chunk.byteLength
            yield chunk
          }
        } catch (error) {
          throw bodyReadError(error, url, idle, idleTimeoutMs, received)
        }
      } finally {
        idle.stop()
      }
    },
    async *readRange(path, offset, length) {
      const idle = startIdleTimer(idleTimeoutMs, undefined)
      const url = new URL(path, base)
      let received = 0
      try {
        const response = await open(path, idle, `bytes=${offset}-${offset + length - 1}`)
        if (response.status !== 206) {
          // A server that ignores Range sends the whole file: not for a read of a few blocks.
          await response.body?.cancel().catch(() => undefined)
          throw new RangesUnsupportedError(
            `${base.href} answered a Range request with HTTP ${response.status}`,
          )
        }
        if (!response.body) return
        const tooLarge = () =>
          new StoreError(
            'integrity_failed',
            `${path} from ${base.href} sent ${received} bytes or more for a range of ${length}. Check the server's Range support.`,
          )
        const declared = Number(response.headers.get('content-length') ?? Number.NaN)
        if (Number.isFinite(declared) && declared > length) {
          received = declared
          await response.body.cancel().catch(() => undefined)
          throw tooLarge()
        }
        // The body's pieces as they arrive (into the engine's memory): never the range whole here.
        try {
          for await (const piece of chunksOf(response.body)) {
            idle.touch()
            received += piece.byteLength
            if (received > length) throw tooLarge()
            yield piece
          }
        } catch (error) {
          throw bodyReadError(error, url, idle, idleTimeoutMs, received)
        }
      } finally {
        idle.stop()
      }
    },
  }
}

export interface VerifiedPackage {
  readonly reader: PackageReader
  readonly manifest: StoreManifest | undefined
  /** Things worth a log line that do not stop the load (e.g. no manifest). */
  readonly warnings: readonly string[]
}

export interface VerifyOptions {
  /** Refuse a package without manifest.json (default true at the edge: nothing unverified runs). */
  readonly requireManifest?: boolean
  /** Names the source in messages. */
  readonly source: string
}

/**
 * Reads manifest.json and returns a reader that checks every file against it. With a manifest,
 * files it does not list are refused as absent (so nothing unverified reaches the runtime).
 */
export async function verifyPackage(reader: PackageReader, options: VerifyOptions): Promise<VerifiedPackage> {
  const { source } = options
  let manifest: StoreManifest | undefined
  const warnings: string[] = []
  try {
    manifest = parseManifest(await reader.readText('manifest.json'), source)
  } catch (error) {
    if (!(error instanceof ModelError && error.code === 'model_not_found')) throw error
    if (options.requireManifest ?? true) {
      throw new ModelError(
        'model_invalid',
        `The package at ${source} has no manifest.json, so its files cannot be verified. Build it with \`ondevice convert\` / \`ondevice fixture\`, or set MODEL_REQUIRE_MANIFEST=false to run it unverified.`,
      )
    }
    warnings.push(`The package at ${source} has no manifest.json: its files are not verified.`)
  }
  if (!manifest) return { reader, manifest, warnings }
  const known = manifest
  const readBytes = async (path: string): Promise<Uint8Array> => {
    const entry = manifestEntry(known, path)
    if (!entry)
      throw new ModelError('model_not_found', `${path} is not listed in manifest.json of ${source}.`)
    let bytes: Uint8Array
    try {
      bytes = await reader.readBytes(path, { expectedBytes: entry.bytes })
    } catch (error) {
      // Listed but absent: an incomplete upload. Never treat it as an optional file that is
      // simply not there (a missing tokenizer_config.json would load a model without its chat
      // template, healthy by every check, and fail every chat).
      if (error instanceof ModelError && error.code === 'model_not_found') {
        throw new ModelError(
          'model_invalid',
          `${path} is listed in manifest.json of ${source} but is missing there: the upload is incomplete. Upload every file manifest.json lists (the whole package folder).`,
          { cause: error },
        )
      }
      throw error
    }
    if (bytes.byteLength !== entry.bytes) {
      throw new StoreError(
        'integrity_failed',
        `${path} of ${source} is ${bytes.byteLength} bytes; manifest.json says ${entry.bytes}. Upload the package again.`,
      )
    }
    const digest = toHex(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>))
    if (digest !== entry.sha256) {
      throw new StoreError(
        'integrity_failed',
        `${path} of ${source} has SHA-256 ${digest}; manifest.json says ${entry.sha256}. The file is corrupted or was replaced: upload the package again.`,
      )
    }
    return bytes
  }
  /**
   * The package's block digests of a weight file. Listed but missing (an upload of `onnx/` and the
   * JSON files alone): the file is verified by a pass instead, as for an older package, and the
   * log says what to upload; a digest file that fails its own check is a broken package.
   */
  const readBlockDigests = async (path: string): Promise<Uint8Array | undefined> => {
    const digestsPath = blockDigestsPath(path)
    if (!manifestEntry(known, digestsPath)) return undefined
    try {
      return await readBytes(digestsPath)
    } catch (error) {
      const missing =
        error instanceof ModelError &&
        error.cause instanceof ModelError &&
        error.cause.code === 'model_not_found'
      if (!missing) throw error
      console.warn(
        JSON.stringify({
          level: 'warn',
          message: `${digestsPath} is listed in manifest.json of ${source} but missing there: ${path} streams past once more to be verified. Upload the whole package folder, block-sha256/ included.`,
        }),
      )
      return undefined
    }
  }
  // A source that streams and reads ranges lets the engine copy weights without holding a file.
  const { stream, readRange } = reader
  const ranges =
    stream && readRange
      ? verifiedRanges({
          source: { stream: stream.bind(reader), readRange: readRange.bind(reader) },
          entry: (path) => manifestEntry(known, path),
          readWhole: readBytes,
          blockDigests: readBlockDigests,
          where: source,
        })
      : undefined
  return {
    manifest,
    warnings,
    reader: {
      readBytes,
      // The manifest is the package's table of contents: no round trip to ask whether a file exists.
      exists: async (path) => path === 'manifest.json' || manifestEntry(known, path) !== undefined,
      async readText(path) {
        return path === 'manifest.json'
          ? reader.readText(path)
          : new TextDecoder().decode(await readBytes(path))
      },
      ...(ranges
        ? {
            readInto: ranges.readInto,
            size: ranges.size,
            async close() {
              ranges.release()
              await reader.close?.()
            },
          }
        : {}),
    },
  }
}
