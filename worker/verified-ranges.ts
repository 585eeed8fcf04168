// Ranged reads of a package file, checked against manifest.json without holding the file: what
// lets the engine copy weights from R2, static assets or a URL straight into its memory in a
// Worker isolate (128 MB) instead of keeping every weight file in JavaScript while it loads.
//
// The engine reads a file in its own order (by layer and tensor, back and forth: not the order
// of the file), so a read is checked block by block: reads fetch the 256 KiB blocks they need
// with ranged reads and check each against its SHA-256, so every byte the engine gets is a byte
// of the file the manifest vouches for. The digests are the package's own where the builder
// wrote them (core/model-package.ts, "Block digests": a small file listed in the manifest, read
// whole and verified), so the file is transferred once. A package without them (an older
// builder's) costs a first pass: the file streams past once, its SHA-256 is checked against the
// manifest and each block's digest is kept, and it is transferred about twice. A ranged read's
// body streams straight into the engine's memory (only the blocks at either end of a read, which
// it needs in part, are assembled on the side), so its size costs no memory: reads are large and
// a few run at once.
import { StoreError } from '../core/errors.ts'
import { blockDigestsBytes, blockDigestsPath, digestBlockBytes } from '../core/model-package.ts'
import { createSha256Stream, sha256Of } from './sha256-stream.ts'

/** What a source offers for this: the whole file as a stream, and byte ranges of it. */
export interface RangedSource {
  /**
   * The file's bytes in order (a reader that downloads stops past `expectedBytes`). A piece may be
   * a view of a buffer the source reuses: it is used before the next is asked for, never kept.
   */
  stream(path: string, expectedBytes: number): AsyncIterable<Uint8Array>
  /**
   * Bytes [offset, offset + length) of the file as they arrive (a reader that downloads stops
   * past `length`); throws RangesUnsupportedError, before the first piece, when it cannot.
   */
  readRange(path: string, offset: number, length: number): AsyncIterable<Uint8Array>
}

/** The source cannot read a range (a server that ignores Range): the file is read whole instead. */
export class RangesUnsupportedError extends Error {
  override readonly name = 'RangesUnsupportedError'
}

/**
 * Most bytes one ranged read asks for. A read's body lands in the engine's memory as it arrives,
 * so this bounds the work lost to a failed request, not memory: larger reads cost fewer round
 * trips (each one a request to R2 or the server).
 */
export const maximumRangeBytes = 8 * 1024 * 1024
/**
 * Ranged reads in flight at once for one engine read larger than maximumRangeBytes: a source far
 * away (R2, a CDN) answers each after a round trip, and a few at once keep the transfer busy. Each
 * holds only what its body has buffered.
 */
export const rangesInFlight = 4
/** Verified blocks kept for small reads that come back to them (the ends of earlier reads). */
const cachedBlocks = 4

export interface VerifiedRangesOptions {
  readonly source: RangedSource
  /** The file's manifest entry (undefined: not listed). */
  readonly entry: (path: string) => { readonly bytes: number; readonly sha256: string } | undefined
  /** The whole file, verified, for a source that turns out not to serve ranges. */
  readonly readWhole: (path: string) => Promise<Uint8Array>
  /**
   * The package's block digests of `path`, read whole and verified against manifest.json, or
   * undefined where the package has none (then a first pass over the file makes them).
   */
  readonly blockDigests?: (path: string) => Promise<Uint8Array | undefined>
  /** Names the package in messages. */
  readonly where: string
}

export interface VerifiedRanges {
  size(path: string): Promise<number | undefined>
  readInto(path: string, offset: number, target: Uint8Array): Promise<void>
  /** Drops the blocks kept for small reads, and any file read whole (the load ended). */
  release(): void
}

type Prepared =
  | {
      readonly kind: 'blocks'
      readonly bytes: number
      readonly digests: Uint8Array
      /** Where the digests came from: the package's own file, or this reader's pass over the file. */
      readonly listed: boolean
    }
  | { readonly kind: 'whole'; readonly bytes: Uint8Array }
type Blocks = Extract<Prepared, { kind: 'blocks' }>

const sameDigest = (digests: Uint8Array, block: number, digest: Uint8Array): boolean => {
  for (let i = 0; i < 32; i++) if (digests[block * 32 + i] !== digest[i]) return false
  return true
}

/** Runs `work` over `items`, at most `limit` at once; every one settles before the first error is thrown. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0
  const errors: unknown[] = []
  const lane = async () => {
    while (next < items.length && errors.length === 0) {
      const item = items[next++] as T
      try {
        await work(item)
      } catch (error) {
        errors.push(error)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane))
  if (errors.length > 0) throw errors.find((error) => error instanceof RangesUnsupportedError) ?? errors[0]
}

export function verifiedRanges(options: VerifiedRangesOptions): VerifiedRanges {
  const { source, where } = options
  const prepared = new Map<string, Promise<Prepared>>()
  /** Verified blocks at the ends of recent reads (a read's ends fall inside blocks it needs in part). */
  const cache: { path: string; block: number; bytes: Uint8Array }[] = []

  const entryOf = (path: string) => {
    const entry = options.entry(path)
    if (!entry)
      throw new StoreError('integrity_failed', `${path} is not listed in manifest.json of ${where}.`)
    return entry
  }

  const changed = (path: string, file: Blocks, block: number) =>
    new StoreError(
      'integrity_failed',
      `Bytes ${block * digestBlockBytes}.. of ${path} from ${where} ${file.listed ? `fail their SHA-256 (the package's block digests, ${blockDigestsPath(path)}, listed in manifest.json): the file was replaced during the load or is corrupted` : 'differ from the file verified against manifest.json moments before: it changed during the load'}. Upload the package again; the next load checks it afresh.`,
      { isRetryable: true },
    )

  /** The package's own block digests: one per block of the size manifest.json gives, or the package is inconsistent. */
  const listed = (path: string, found: Uint8Array): Prepared => {
    const entry = entryOf(path)
    if (found.byteLength !== blockDigestsBytes(entry.bytes))
      throw new StoreError(
        'integrity_failed',
        `${blockDigestsPath(path)} of ${where} has ${found.byteLength} bytes, but ${path}'s ${entry.bytes} bytes (manifest.json) need ${blockDigestsBytes(entry.bytes)}: the package is inconsistent. Rebuild it (ondevice convert / ondevice fixture) and upload it again.`,
      )
    return { kind: 'blocks', bytes: entry.bytes, digests: found, listed: true }
  }

  /** The pass: the whole file's SHA-256 against the manifest, and every block's digest. */
  const pass = async (path: string): Promise<Prepared> => {
    const entry = entryOf(path)
    const blocks = Math.ceil(entry.bytes / digestBlockBytes)
    const digests = new Uint8Array(blocks * 32)
    const whole = createSha256Stream()
    const block = new Uint8Array(Math.min(digestBlockBytes, Math.max(entry.bytes, 1)))
    /** Digests not yet settled (WebCrypto); node:crypto's are written at once. */
    const pending: Promise<void>[] = []
    let filled = 0
    let index = 0
    let received = 0
    const closeBlock = () => {
      const at = index * 32
      const digest = sha256Of(block.subarray(0, filled))
      if (digest instanceof Promise) pending.push(digest.then((value) => digests.set(value, at)))
      else digests.set(digest, at)
      index++
      filled = 0
    }
    for await (const chunk of source.stream(path, entry.bytes)) {
      received += chunk.byteLength
      if (received > entry.bytes)
        throw new StoreError(
          'integrity_failed',
          `${path} of ${where} has more than the ${entry.bytes} bytes manifest.json says. Upload the package again.`,
        )
      const hashing = whole.update(chunk)
      if (hashing) await hashing
      for (let offset = 0; offset < chunk.byteLength; ) {
        const take = Math.min(block.length - filled, chunk.byteLength - offset)
        block.set(chunk.subarray(offset, offset + take), filled)
        filled += take
        offset += take
        if (filled === block.length) closeBlock()
      }
      // WebCrypto took its copy of each block when called; settle them now and then, not all at the end.
      if (pending.length >= 16) await Promise.all(pending.splice(0))
    }
    if (filled > 0) closeBlock()
    await Promise.all(pending)
    if (received !== entry.bytes)
      throw new StoreError(
        'integrity_failed',
        `${path} of ${where} is ${received} bytes; manifest.json says ${entry.bytes}. Upload the package again.`,
      )
    const digest = await whole.digest()
    if (digest !== entry.sha256)
      throw new StoreError(
        'integrity_failed',
        `${path} of ${where} has SHA-256 ${digest}; manifest.json says ${entry.sha256}. The file is corrupted or was replaced: upload the package again.`,
      )
    return { kind: 'blocks', bytes: entry.bytes, digests, listed: false }
  }

  const prepare = (path: string): Promise<Prepared> => {
    let found = prepared.get(path)
    if (!found) {
      found = (options.blockDigests?.(path) ?? Promise.resolve(undefined)).then((digests) =>
        digests ? listed(path, digests) : pass(path),
      )
      prepared.set(path, found)
      found.catch(() => prepared.delete(path))
    }
    return found
  }

  const cached = (path: string, block: number) =>
    cache.find((entry) => entry.path === path && entry.block === block)
  const keep = (path: string, block: number, bytes: Uint8Array) => {
    if (cached(path, block)) return
    cache.push({ path, block, bytes })
    if (cache.length > cachedBlocks) cache.shift()
  }

  /**
   * Blocks first..last (inclusive) of the file, read with one ranged read: the bytes in
   * [offset, offset + target.length) land in `target` as they arrive, a block that reaches outside
   * it is assembled on the side (and kept for the next read), and each block is checked against
   * its digest before this returns.
   */
  const readBlocks = async (
    path: string,
    file: Blocks,
    first: number,
    last: number,
    offset: number,
    target: Uint8Array,
  ): Promise<void> => {
    const start = first * digestBlockBytes
    const end = Math.min(file.bytes, (last + 1) * digestBlockBytes)
    const targetEnd = offset + target.length
    const blockEnd = (block: number) => Math.min(file.bytes, (block + 1) * digestBlockBytes)
    // The blocks at the ends that reach outside the target, assembled whole.
    const sides = new Map<number, Uint8Array>()
    if (start < offset) sides.set(first, new Uint8Array(blockEnd(first) - start))
    if (end > targetEnd && !sides.has(last)) sides.set(last, new Uint8Array(end - last * digestBlockBytes))
    const checks: (Uint8Array | Promise<Uint8Array>)[] = []
    let block = first
    let position = start
    const closeBlocks = () => {
      // Every block that has all its bytes now: its digest (node:crypto at once; WebCrypto copies).
      while (block <= last && position >= blockEnd(block)) {
        const side = sides.get(block)
        const from = block * digestBlockBytes
        checks.push(sha256Of(side ?? target.subarray(from - offset, blockEnd(block) - offset)))
        block++
      }
    }
    for await (const chunk of source.readRange(path, start, end - start)) {
      if (position + chunk.byteLength > end)
        throw new StoreError(
          'integrity_failed',
          `Reading bytes ${start}..${end} of ${path} from ${where} gave more bytes than asked for: the source answers ranges wrongly. Check its Range support.`,
          { isRetryable: true },
        )
      const chunkEnd = position + chunk.byteLength
      const from = Math.max(position, offset)
      const to = Math.min(chunkEnd, targetEnd)
      if (from < to) target.set(chunk.subarray(from - position, to - position), from - offset)
      for (const [index, side] of sides) {
        const sideStart = index * digestBlockBytes
        const a = Math.max(position, sideStart)
        const b = Math.min(chunkEnd, sideStart + side.length)
        if (a < b) side.set(chunk.subarray(a - position, b - position), a - sideStart)
      }
      position = chunkEnd
      closeBlocks()
    }
    if (position !== end)
      throw new StoreError(
        'integrity_failed',
        `Reading bytes ${start}..${end} of ${path} from ${where} gave ${position - start} bytes: ${file.listed ? `the file is shorter than the ${file.bytes} bytes manifest.json says (replaced during the load, or cut)` : 'the file changed after it was verified'}. Upload the package again; the next load checks it afresh.`,
        { isRetryable: true },
      )
    const digests = await Promise.all(checks)
    for (let index = first; index <= last; index++)
      if (!sameDigest(file.digests, index, digests[index - first] as Uint8Array))
        throw changed(path, file, index)
    for (const [index, side] of sides) keep(path, index, side)
  }

  return {
    size: async (path) => options.entry(path)?.bytes,
    release() {
      cache.length = 0
      // Files read whole (a source without ranges) are read again by the next load; the block
      // digests (32 bytes per 256 KiB) stay, so the next load skips the verification pass.
      for (const [path, file] of prepared)
        void file.then(
          (found) => {
            if (found.kind === 'whole' && prepared.get(path) === file) prepared.delete(path)
          },
          () => undefined,
        )
    },
    async readInto(path, offset, target) {
      const file = await prepare(path)
      const size = file.kind === 'whole' ? file.bytes.length : file.bytes
      if (offset < 0 || offset + target.length > size)
        throw new RangeError(`${path} is shorter than its weights`)
      if (file.kind === 'whole') {
        target.set(file.bytes.subarray(offset, offset + target.length))
        return
      }
      // Blocks kept from earlier reads at either end, then one ranged read per maximumRangeBytes
      // of what is left between them, a few at once.
      let low = offset
      let high = offset + target.length
      for (let found = cached(path, Math.floor(low / digestBlockBytes)); found && low < high; ) {
        const blockStart = found.block * digestBlockBytes
        const to = Math.min(high, blockStart + found.bytes.length)
        target.set(found.bytes.subarray(low - blockStart, to - blockStart), low - offset)
        low = to
        found = cached(path, Math.floor(low / digestBlockBytes))
      }
      for (let found = cached(path, Math.floor((high - 1) / digestBlockBytes)); found && low < high; ) {
        const blockStart = found.block * digestBlockBytes
        const from = Math.max(low, blockStart)
        target.set(found.bytes.subarray(from - blockStart, high - blockStart), from - offset)
        high = from
        found = cached(path, Math.floor((high - 1) / digestBlockBytes))
      }
      if (low >= high) return
      const first = Math.floor(low / digestBlockBytes)
      const last = Math.floor((high - 1) / digestBlockBytes)
      const perRead = maximumRangeBytes / digestBlockBytes
      const reads: [number, number][] = []
      for (let block = first; block <= last; block += perRead)
        reads.push([block, Math.min(last, block + perRead - 1)])
      const part = target.subarray(low - offset, high - offset)
      try {
        await eachLimited(reads, rangesInFlight, ([a, z]) => readBlocks(path, file, a, z, low, part))
      } catch (error) {
        if (!(error instanceof RangesUnsupportedError)) throw error
        // A source without ranges: this file is read whole (verified), as before streaming.
        console.warn(
          JSON.stringify({
            level: 'warn',
            message: `${error.message}: ${path} is read whole while the model loads (it needs its size in memory on top of the model). Serve the package from a source with HTTP Range support.`,
          }),
        )
        const whole = options.readWhole(path).then((read): Prepared => ({ kind: 'whole', bytes: read }))
        prepared.set(path, whole)
        const read = (await whole) as Extract<Prepared, { kind: 'whole' }>
        target.set(read.bytes.subarray(offset, offset + target.length))
      }
    },
  }
}
