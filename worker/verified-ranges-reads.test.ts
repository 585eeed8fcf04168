// verifiedRanges over a source in memory, read the way the engine reads (anywhere, any length,
// ends inside blocks, several reads at once): every byte handed out is the file's, a ranged read's
// body goes into the target as it arrives (nothing holds a range whole), and a source that sends
// too few, too many or changed bytes fails the read with integrity_failed. Fast: no engine, no HTTP.
import { createHash, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { digestBlockBytes } from '../core/model-package.ts'
import {
  maximumRangeBytes,
  type RangedSource,
  RangesUnsupportedError,
  verifiedRanges,
} from './verified-ranges.ts'

const path = 'onnx/model.onnx_data'
// Not a whole number of blocks, and more than one ranged read's worth.
const file = new Uint8Array(randomBytes(2 * maximumRangeBytes + 5 * digestBlockBytes + 12_345))
const entry = { bytes: file.length, sha256: createHash('sha256').update(file).digest('hex') }

interface Served {
  ranges: [number, number][]
  /** Whole-file streams (verification passes). */
  streams: number
  /** Pieces that were not in the target yet when the reader asked for the next one. */
  notLanded: number
}

/** A source that hands out `bytes` in 64 KiB pieces (ranges through `alter` when given). */
function memorySource(
  bytes: Uint8Array,
  options: {
    alter?: (offset: number, piece: Uint8Array) => Uint8Array | undefined
    ranges?: boolean
    /** The target of a read from byte 0 of the file. */
    target?: () => Uint8Array | undefined
  } = {},
): RangedSource & { served: Served } {
  const served: Served = { ranges: [], streams: 0, notLanded: 0 }
  return {
    served,
    async *stream() {
      served.streams++
      for (let offset = 0; offset < bytes.length; offset += 65_536) yield bytes.slice(offset, offset + 65_536)
    },
    async *readRange(_path, offset, length) {
      if (options.ranges === false) throw new RangesUnsupportedError('no ranges here')
      served.ranges.push([offset, length])
      const target = options.target?.()
      for (let at = offset; at < offset + length; at += 65_536) {
        const piece = bytes.slice(at, Math.min(offset + length, at + 65_536))
        const sent = options.alter ? options.alter(at, piece) : piece
        if (sent === undefined) return
        yield sent
        // Once the reader asks for the next piece, this one is in the target (or on the side).
        if (target && Buffer.compare(target.subarray(at, at + piece.length), piece) !== 0) served.notLanded++
      }
    },
  }
}

/** The package's block digests of `bytes` (what the builder writes). */
function blockDigestsOf(bytes: Uint8Array): Uint8Array {
  const digests = new Uint8Array(Math.ceil(bytes.length / digestBlockBytes) * 32)
  for (let at = 0, index = 0; at < bytes.length; at += digestBlockBytes, index++)
    digests.set(
      createHash('sha256')
        .update(bytes.subarray(at, at + digestBlockBytes))
        .digest(),
      index * 32,
    )
  return digests
}

const reader = (
  source: RangedSource,
  readWhole = async () => file.slice(),
  blockDigests?: () => Promise<Uint8Array>,
) =>
  verifiedRanges({
    source,
    entry: (name) => (name === path ? entry : undefined),
    readWhole,
    where: 'memory',
    ...(blockDigests
      ? { blockDigests: (name: string) => (name === path ? blockDigests() : Promise.resolve(undefined)) }
      : {}),
  })

describe('verified ranged reads', () => {
  it('hands out exactly the file for reads anywhere, of any length, ends inside blocks, several at once', async () => {
    const source = memorySource(file)
    const ranges = reader(source)
    const reads: [number, number][] = [
      [0, 1],
      [3, digestBlockBytes],
      [digestBlockBytes - 7, 14],
      [file.length - 1, 1],
      [file.length - 300_000, 300_000],
      [maximumRangeBytes - 5, maximumRangeBytes + 10],
      [0, file.length],
      [1_000_000, Math.min(file.length - 1_000_000, 3 * maximumRangeBytes)],
    ]
    for (let i = 0; i < 40; i++) {
      const offset = Math.floor(Math.random() * file.length)
      reads.push([offset, Math.floor(Math.random() * Math.min(3 * digestBlockBytes, file.length - offset))])
    }
    // In order, then all at once (the engine awaits each read, but nothing here relies on it).
    for (const [offset, length] of reads) {
      const target = new Uint8Array(length)
      await ranges.readInto(path, offset, target)
      expect(Buffer.compare(target, file.subarray(offset, offset + length)), `${offset}+${length}`).toBe(0)
    }
    const targets = reads.map(([, length]) => new Uint8Array(length))
    await Promise.all(reads.map(([offset], index) => ranges.readInto(path, offset, targets[index]!)))
    for (const [index, [offset, length]] of reads.entries())
      expect(Buffer.compare(targets[index]!, file.subarray(offset, offset + length))).toBe(0)
    for (const [, length] of source.served.ranges) expect(length).toBeLessThanOrEqual(maximumRangeBytes)
    await expect(ranges.readInto(path, file.length - 10, new Uint8Array(11))).rejects.toThrow(RangeError)
  })

  it("puts a range's body into the target piece by piece, never holding the range whole", async () => {
    let current: Uint8Array | undefined
    const source = memorySource(file, { target: () => current })
    const ranges = reader(source)
    current = new Uint8Array(file.length)
    await ranges.readInto(path, 0, current)
    expect(Buffer.compare(current, file)).toBe(0)
    expect(source.served.ranges.length).toBeGreaterThan(1)
    expect(source.served.notLanded).toBe(0)
  })

  it('a range that ends early: integrity_failed, retryable, saying the file changed', async () => {
    const source = memorySource(file, {
      alter: (offset, piece) => (offset >= maximumRangeBytes + 3 * 65_536 ? undefined : piece),
    })
    const ranges = reader(source)
    await expect(ranges.readInto(path, 0, new Uint8Array(file.length))).rejects.toMatchObject({
      code: 'integrity_failed',
      isRetryable: true,
      message: expect.stringMatching(/gave \d+ bytes: the file changed/),
    })
  })

  it('a range with more bytes than asked for: integrity_failed', async () => {
    const source = memorySource(file, {
      alter: (offset, piece) => (offset === 0 ? new Uint8Array([...piece, ...piece.subarray(0, 10)]) : piece),
    })
    await expect(reader(source).readInto(path, 0, new Uint8Array(1000))).rejects.toMatchObject({
      code: 'integrity_failed',
      message: expect.stringMatching(/more bytes than asked for/),
    })
  })

  it('one changed byte in any block, in a read split across ranges in flight: integrity_failed naming the block', async () => {
    for (const at of [0, digestBlockBytes + 1, maximumRangeBytes + 77, file.length - 1]) {
      const source = memorySource(file, {
        alter: (offset, piece) => {
          if (at < offset || at >= offset + piece.length) return piece
          const changed = piece.slice()
          changed[at - offset]! ^= 0x10
          return changed
        },
      })
      const block = Math.floor(at / digestBlockBytes)
      await expect(
        reader(source).readInto(path, 0, new Uint8Array(file.length)),
        `byte ${at}`,
      ).rejects.toMatchObject({
        code: 'integrity_failed',
        isRetryable: true,
        message: expect.stringContaining(`Bytes ${block * digestBlockBytes}.. of ${path}`),
      })
    }
  })

  it('a file that fails its SHA-256 or its size in the pass: integrity_failed before any range is read', async () => {
    const changed = file.slice()
    changed[12_345]! ^= 1
    const source = memorySource(changed)
    await expect(reader(source).readInto(path, 0, new Uint8Array(10))).rejects.toMatchObject({
      code: 'integrity_failed',
      message: expect.stringMatching(/SHA-256/),
    })
    const short = memorySource(file.subarray(0, file.length - 1))
    await expect(reader(short).readInto(path, 0, new Uint8Array(10))).rejects.toMatchObject({
      code: 'integrity_failed',
      message: expect.stringMatching(/manifest.json says/),
    })
    expect(source.served.ranges).toEqual([])
    expect(short.served.ranges).toEqual([])
  })

  it('a source without ranges: the file read whole (verified by the caller), once', async () => {
    let wholeReads = 0
    const ranges = reader(memorySource(file, { ranges: false }), async () => {
      wholeReads++
      return file.slice()
    })
    const target = new Uint8Array(5000)
    await ranges.readInto(path, 777, target)
    await ranges.readInto(path, 7777, target)
    expect(Buffer.compare(target, file.subarray(7777, 7777 + 5000))).toBe(0)
    expect(wholeReads).toBe(1)
  })

  it('with the package’s block digests: no pass over the file, the same bytes, a changed byte refused naming its block', async () => {
    const source = memorySource(file)
    const ranges = reader(source, undefined, async () => blockDigestsOf(file))
    const target = new Uint8Array(3 * digestBlockBytes + 99)
    await ranges.readInto(path, digestBlockBytes - 50, target)
    expect(
      Buffer.compare(target, file.subarray(digestBlockBytes - 50, digestBlockBytes - 50 + target.length)),
    ).toBe(0)
    expect(source.served.streams).toBe(0)
    const at = 2 * digestBlockBytes + 5
    const changed = memorySource(file, {
      alter: (offset, piece) => {
        if (at < offset || at >= offset + piece.length) return piece
        const copy = piece.slice()
        copy[at - offset]! ^= 0x02
        return copy
      },
    })
    await expect(
      reader(changed, undefined, async () => blockDigestsOf(file)).readInto(
        path,
        0,
        new Uint8Array(file.length),
      ),
    ).rejects.toMatchObject({
      code: 'integrity_failed',
      isRetryable: true,
      message: expect.stringContaining(
        `Bytes ${2 * digestBlockBytes}.. of ${path} from memory fail their SHA-256 (the package's block digests`,
      ),
    })
    expect(changed.served.streams).toBe(0)
  })

  it('block digests of the wrong length, or a file shorter than manifest.json says: integrity_failed', async () => {
    const digests = blockDigestsOf(file)
    for (const wrong of [digests.subarray(32), new Uint8Array(digests.length + 32)]) {
      const source = memorySource(file)
      await expect(
        reader(source, undefined, async () => wrong).readInto(path, 0, new Uint8Array(10)),
      ).rejects.toMatchObject({
        code: 'integrity_failed',
        message: expect.stringMatching(/the package is inconsistent/),
      })
      expect(source.served.ranges).toEqual([])
    }
    const short = memorySource(file.subarray(0, file.length - 1))
    await expect(
      reader(short, undefined, async () => digests).readInto(path, file.length - 100, new Uint8Array(100)),
    ).rejects.toMatchObject({
      code: 'integrity_failed',
      message: expect.stringMatching(/shorter than the \d+ bytes manifest.json says/),
    })
  })
})
