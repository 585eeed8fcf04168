// Ranged reads of a package file, checked against manifest.json without holding the file: what
// lets the engine copy weights from R2, static assets or a URL straight into its memory in a
// Worker isolate (128 MB) instead of keeping every weight file in JavaScript while it loads.
//
// The engine reads a file in its own order (by layer and tensor, back and forth: not the order
// of the file), and manifest.json has one SHA-256 for the whole file. So before the first byte of
// a file is handed over, the file streams past once: its SHA-256 is checked against the manifest
// and a SHA-256 of every 256 KiB block is kept (32 bytes per block). Reads then fetch the blocks
// they need with ranged reads and check each against its recorded digest, so every byte the
// engine gets is a byte of the file the manifest vouches for, even if the source changed between
// the pass and the read. The cost: the file is transferred about twice (the pass, then the reads),
// and the load takes longer (2.3-3.0x the whole-file reader's over local HTTP in Node).
import { StoreError } from '../core/errors.ts'
import { createSha256Stream } from './sha256-stream.ts'

/** What a source offers for this: the whole file as a stream, and byte ranges of it. */
export interface RangedSource {
  /** The file's bytes in order (a reader that downloads stops past `expectedBytes`). */
  stream(path: string, expectedBytes: number): AsyncIterable<Uint8Array>
  /** Bytes [offset, offset + length) of the file; throws RangesUnsupportedError when it cannot. */
  readRange(path: string, offset: number, length: number): Promise<Uint8Array>
}

/** The source cannot read a range (a server that ignores Range): the file is read whole instead. */
export class RangesUnsupportedError extends Error {
  override readonly name = 'RangesUnsupportedError'
}

/** Bytes per verified block: small enough to waste little on a small read, few digests per file. */
export const verifiedBlockBytes = 256 * 1024
/**
 * Most bytes one ranged read asks for (what the reader holds in JavaScript at once). Larger reads
 * load faster but leave more garbage: with 4 MiB the tiny Qwen3.5 q8 fixture loaded in 1.5-1.9x
 * the whole-file reader's time over local HTTP in Node (2.3-3.0x with 2 MiB, same process,
 * alternating), but workerd's peak resident memory was no lower than the whole-file reader's
 * (128-133 MiB against 130-136; 122-127 with 2 MiB). Memory is what the isolate is short of.
 */
export const maximumRangeBytes = 2 * 1024 * 1024

export interface VerifiedRangesOptions {
  readonly source: RangedSource
  /** The file's manifest entry (undefined: not listed). */
  readonly entry: (path: string) => { readonly bytes: number; readonly sha256: string } | undefined
  /** The whole file, verified, for a source that turns out not to serve ranges. */
  readonly readWhole: (path: string) => Promise<Uint8Array>
  /** Names the package in messages. */
  readonly where: string
}

export interface VerifiedRanges {
  size(path: string): Promise<number | undefined>
  readInto(path: string, offset: number, target: Uint8Array): Promise<void>
  /** Drops the block kept for the next small read, and any file read whole (the load ended). */
  release(): void
}

type Prepared =
  | { readonly kind: 'blocks'; readonly bytes: number; readonly digests: Uint8Array }
  | { readonly kind: 'whole'; readonly bytes: Uint8Array }

async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>))
}

const sameDigest = (digests: Uint8Array, block: number, digest: Uint8Array): boolean => {
  for (let i = 0; i < 32; i++) if (digests[block * 32 + i] !== digest[i]) return false
  return true
}

export function verifiedRanges(options: VerifiedRangesOptions): VerifiedRanges {
  const { source, where } = options
  const prepared = new Map<string, Promise<Prepared>>()
  /** The last block read, kept for the small reads that follow each other within it. */
  let cached: { path: string; block: number; bytes: Uint8Array } | undefined

  const entryOf = (path: string) => {
    const entry = options.entry(path)
    if (!entry)
      throw new StoreError('integrity_failed', `${path} is not listed in manifest.json of ${where}.`)
    return entry
  }

  /** The pass: the whole file's SHA-256 against the manifest, and every block's digest. */
  const pass = async (path: string): Promise<Prepared> => {
    const entry = entryOf(path)
    const blocks = Math.ceil(entry.bytes / verifiedBlockBytes)
    const digests = new Uint8Array(blocks * 32)
    const whole = createSha256Stream()
    const block = new Uint8Array(Math.min(verifiedBlockBytes, Math.max(entry.bytes, 1)))
    let filled = 0
    let index = 0
    let received = 0
    const closeBlock = async () => {
      digests.set(await sha256(block.subarray(0, filled)), index * 32)
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
      await whole.update(chunk)
      for (let offset = 0; offset < chunk.byteLength; ) {
        const take = Math.min(block.length - filled, chunk.byteLength - offset)
        block.set(chunk.subarray(offset, offset + take), filled)
        filled += take
        offset += take
        if (filled === block.length) await closeBlock()
      }
    }
    if (filled > 0) await closeBlock()
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
    return { kind: 'blocks', bytes: entry.bytes, digests }
  }

  const prepare = (path: string): Promise<Prepared> => {
    let found = prepared.get(path)
    if (!found) {
      found = pass(path)
      prepared.set(path, found)
      found.catch(() => prepared.delete(path))
    }
    return found
  }

  /** Blocks first..last (inclusive) of the file, each checked against its digest. */
  const readBlocks = async (
    path: string,
    file: Extract<Prepared, { kind: 'blocks' }>,
    first: number,
    last: number,
  ): Promise<Uint8Array> => {
    const start = first * verifiedBlockBytes
    const end = Math.min(file.bytes, (last + 1) * verifiedBlockBytes)
    const bytes = await source.readRange(path, start, end - start)
    if (bytes.byteLength !== end - start)
      throw new StoreError(
        'integrity_failed',
        `Reading bytes ${start}..${end} of ${path} from ${where} gave ${bytes.byteLength} bytes: the file changed after it was verified. Upload the package again; the next load checks it afresh.`,
        { isRetryable: true },
      )
    // The blocks' digests at once (WebCrypto may run them in parallel), then checked in order.
    const digests = await Promise.all(
      Array.from({ length: last - first + 1 }, (_, index) =>
        sha256(bytes.subarray(index * verifiedBlockBytes, (index + 1) * verifiedBlockBytes)),
      ),
    )
    for (let block = first; block <= last; block++) {
      const digest = digests[block - first] as Uint8Array
      if (!sameDigest(file.digests, block, digest))
        throw new StoreError(
          'integrity_failed',
          `Bytes ${block * verifiedBlockBytes}.. of ${path} from ${where} differ from the file verified against manifest.json moments before: it changed during the load. Upload the package again; the next load checks it afresh.`,
          { isRetryable: true },
        )
    }
    return bytes
  }

  return {
    size: async (path) => options.entry(path)?.bytes,
    release() {
      cached = undefined
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
      let file = await prepare(path)
      if (offset < 0 || offset + target.length > (file.kind === 'whole' ? file.bytes.length : file.bytes))
        throw new RangeError(`${path} is shorter than its weights`)
      let done = 0
      while (done < target.length) {
        if (file.kind === 'whole') {
          target.set(file.bytes.subarray(offset + done, offset + target.length), done)
          return
        }
        const position = offset + done
        const first = Math.floor(position / verifiedBlockBytes)
        if (cached?.path === path && cached.block === first) {
          const from = position - first * verifiedBlockBytes
          const take = Math.min(cached.bytes.length - from, target.length - done)
          target.set(cached.bytes.subarray(from, from + take), done)
          done += take
          continue
        }
        const lastNeeded = Math.floor((offset + target.length - 1) / verifiedBlockBytes)
        const last = Math.min(lastNeeded, first + maximumRangeBytes / verifiedBlockBytes - 1)
        let bytes: Uint8Array
        try {
          bytes = await readBlocks(path, file, first, last)
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
          file = await whole
          continue
        }
        const from = position - first * verifiedBlockBytes
        const take = Math.min(bytes.byteLength - from, target.length - done)
        target.set(bytes.subarray(from, from + take), done)
        done += take
        const lastStart = (last - first) * verifiedBlockBytes
        cached = { path, block: last, bytes: bytes.slice(lastStart) }
      }
    },
  }
}
