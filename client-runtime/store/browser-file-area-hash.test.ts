// How the browser store hashes a downloaded `.partial` file before committing it: never the whole
// file in memory at once (a 500 MB weights file took 500 MB+ of the model worker through
// WebCrypto's one-shot digest), the same digest as node:crypto for every length around SHA-256's
// block and padding edges and the store's slice edges, and a resumed file (a new page load: a new
// area) still verified over all its bytes. The file storage under the area is an in-memory stand-in
// whose Blobs record every read; OPFS itself runs in Chromium (browser-store.test.ts).
// And what a browser user is told when the storage runs out: nothing a page's user cannot do.
import { createHash, randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { type BrowserFiles, browserFileArea, hashSliceBytes, sha256Blob } from './browser-file-area.ts'
import { openRemotePackage } from './remote-package.ts'

const reference = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

/** A Blob whose reads (arrayBuffer, bytes, stream, text) report how many bytes each one takes at once. */
function recordingBlob(parts: Uint8Array[], reads: number[]): Blob {
  const wrap = (blob: Blob): Blob =>
    new Proxy(blob, {
      get(target, name) {
        if (name === 'slice') return (start?: number, end?: number) => wrap(target.slice(start, end))
        if (name === 'arrayBuffer' || name === 'bytes' || name === 'stream' || name === 'text') {
          reads.push(target.size)
          return (target[name] as () => unknown).bind(target)
        }
        const value = Reflect.get(target, name, target)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
  return wrap(new Blob(parts as BlobPart[]))
}

/** In-memory `.partial` files with resume, as OPFS gives them to the area. */
function memoryFiles(reads: number[], failWrites = false): BrowserFiles {
  const partials = new Map<string, Uint8Array[]>()
  const stored = new Map<string, Uint8Array[]>()
  const blobOf = (parts: Uint8Array[] | undefined) => (parts ? recordingBlob(parts, reads) : undefined)
  return {
    name: 'test',
    files: {
      supportsResume: true,
      read: async (key) => blobOf(stored.get(key)),
      size: async (key) => stored.get(key)?.reduce((sum, part) => sum + part.length, 0),
      partialBlob: async (key) => blobOf(partials.get(key)),
      openPartial: async (key, resume) => {
        const parts = resume ? (partials.get(key) ?? []) : []
        partials.set(key, parts)
        return {
          offset: parts.reduce((sum, part) => sum + part.length, 0),
          write: async (chunk) => {
            if (failWrites && !key.endsWith('manifest.json'))
              throw new DOMException('The quota has been exceeded.', 'QuotaExceededError')
            parts.push(chunk.slice())
          },
          close: async () => undefined,
        }
      },
      commit: async (key) => {
        stored.set(key, partials.get(key) ?? [])
        partials.delete(key)
      },
      remove: async (key) => {
        stored.delete(key)
        partials.delete(key)
      },
      removePrefix: async () => undefined,
    },
  }
}

const estimate = async () => ({ usageBytes: undefined, quotaBytes: undefined, availableBytes: undefined })

describe('the browser store hashing a downloaded file', () => {
  it('reads a large .partial in slices, never the whole file at once, and gets its sha256', async () => {
    const reads: number[] = []
    const storage = memoryFiles(reads)
    const bytes = new Uint8Array(randomBytes(3 * hashSliceBytes + 12_345))
    // Written by a writer of another page load (as after a reload), so the area must read it back.
    const before = await storage.files.openPartial('pkg/onnx/model.onnx', false)
    await before.write(bytes)
    const area = browserFileArea(storage, 'pkg', estimate)
    expect(await area.hashPartial('onnx/model.onnx')).toBe(reference(bytes))
    expect(reads.length).toBeGreaterThan(1)
    expect(Math.max(...reads)).toBeLessThanOrEqual(hashSliceBytes)
  })

  it('hashes what it writes as it goes, so the check after the download reads nothing back', async () => {
    const reads: number[] = []
    const area = browserFileArea(memoryFiles(reads), 'pkg', estimate)
    const bytes = new Uint8Array(randomBytes(1_000_003))
    const writer = await area.openPartial('onnx/model.onnx', false)
    for (let at = 0; at < bytes.length; at += 65_536) await writer.write(bytes.subarray(at, at + 65_536))
    await writer.close()
    expect(await area.hashPartial('onnx/model.onnx')).toBe(reference(bytes))
    expect(reads).toEqual([])
  })

  it('a download resumed by a new page load is verified over all its bytes, the old ones in slices', async () => {
    const reads: number[] = []
    const storage = memoryFiles(reads)
    const bytes = new Uint8Array(randomBytes(hashSliceBytes + 70_001))
    const cut = hashSliceBytes + 5
    const first = await browserFileArea(storage, 'pkg', estimate).openPartial('w.bin', false)
    await first.write(bytes.subarray(0, cut))
    await first.close()
    // The next page load: a new area, nothing remembered.
    const area = browserFileArea(storage, 'pkg', estimate)
    const second = await area.openPartial('w.bin', true)
    expect(second.offset).toBe(cut)
    await second.write(bytes.subarray(cut))
    await second.close()
    expect(await area.hashPartial('w.bin')).toBe(reference(bytes))
    expect(Math.max(...reads)).toBeLessThanOrEqual(hashSliceBytes)
    // And a retry in the same page load carries on from its running hash without reading again.
    reads.length = 0
    const again = await area.openPartial('w.bin', false)
    await again.write(bytes.subarray(0, 1000))
    const resumed = await area.openPartial('w.bin', true)
    await resumed.write(bytes.subarray(1000))
    expect(await area.hashPartial('w.bin')).toBe(reference(bytes))
    expect(reads).toEqual([])
  })

  it("equals node:crypto's sha256 at every block, padding and slice edge", async () => {
    const slice = 256
    const lengths = [
      0,
      1,
      55,
      56,
      63,
      64,
      65,
      119,
      120,
      127,
      128,
      129,
      slice - 1,
      slice,
      slice + 1,
      2 * slice + 63,
    ]
    for (const length of lengths) {
      const bytes = new Uint8Array(randomBytes(length))
      expect(await sha256Blob(new Blob([bytes]), slice), `length ${length}`).toBe(reference(bytes))
      const area = browserFileArea(memoryFiles([]), 'pkg', estimate)
      const writer = await area.openPartial('f', false)
      for (let at = 0; at < length; at += 7) await writer.write(bytes.subarray(at, at + 7))
      expect(await area.hashPartial('f'), `length ${length}, written in pieces`).toBe(reference(bytes))
    }
    expect(await sha256Blob(new Blob([]))).toBe(reference(new Uint8Array(0)))
  })
})

describe("the browser store's storage-full errors", () => {
  it('say what a browser user can do (site settings, deleting stored models, a smaller dtype), not to raise the quota', async () => {
    const weights = new Uint8Array(randomBytes(50_000))
    const manifest = JSON.stringify({
      format: 'ondevice-package/1',
      files: [{ path: 'w.bin', bytes: weights.length, sha256: reference(weights) }],
    })
    const server = createServer((request, response) => {
      if (request.url === '/pkg/manifest.json') response.end(manifest)
      else if (request.url === '/pkg/w.bin') response.end(weights)
      else response.writeHead(404).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const prefix = `http://127.0.0.1:${(server.address() as AddressInfo).port}/pkg/`
    const options = { idleTimeoutMs: 5_000, warn: () => undefined, retry: { retries: 0, delayMs: 0 } }
    try {
      // Not enough room before the download starts.
      const small = async () => ({ usageBytes: 0, quotaBytes: 1_000, availableBytes: 1_000 })
      const before = await openRemotePackage(prefix, browserFileArea(memoryFiles([]), 'pkg', small), options)
      const early = await before.ensure(['w.bin']).then(
        () => new Error('it did not fail'),
        (error: unknown) => error as Error,
      )
      // The browser refusing a write mid-download.
      const full = await openRemotePackage(
        prefix,
        browserFileArea(memoryFiles([], true), 'pkg', estimate),
        options,
      )
      const midway = await full.ensure(['w.bin']).then(
        () => new Error('it did not fail'),
        (error: unknown) => error as Error,
      )
      for (const error of [early, midway]) {
        expect(error).toMatchObject({ code: 'storage_quota_exceeded' })
        expect(error.message).toMatch(/site settings/)
        expect(error.message).toMatch(/createBrowserStore\(\)\.delete\(url\)/)
        expect(error.message).toMatch(/smaller dtype/)
        expect(error.message).not.toMatch(/quota/i)
      }
      expect(early.message).toMatch(/^Not enough storage/)
      expect(midway.message).toMatch(/^Storage ran out/)
    } finally {
      server.close()
    }
  })
})
