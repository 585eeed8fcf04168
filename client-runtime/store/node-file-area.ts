// A FileArea over one package's folder in Node's cache: files on disk (so backends can load them
// by path), `.partial` files kept for Range resumes, verified files remembered by the memo, and
// the store's quota counted against everything the cache folder holds.
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { FileArea } from './file-area.ts'
import type { StorageEstimate } from './types.ts'
import { sha256File, type VerifiedMemo } from './verified-memo.ts'

export interface NodeFileAreaOptions {
  /** The package's folder in the cache. */
  readonly directory: string
  /** The cache folder, for messages. */
  readonly cacheDir: string
  readonly memo: VerifiedMemo
  /** Bytes the whole cache may still take (the store's quotaBytes), Infinity when unbounded. */
  readonly bytesLeft: () => Promise<number>
  readonly estimate: () => Promise<StorageEstimate>
}

const sizeOf = (file: string): Promise<number | undefined> =>
  stat(file).then(
    (info) => info.size,
    () => undefined,
  )

export function createNodeFileArea(options: NodeFileAreaOptions): FileArea {
  const { directory, memo } = options
  /** The local path of a package file (the caller checked the path). */
  const local = (path: string): string => join(directory, ...path.split('/'))
  return {
    id: directory,
    location: `in ${options.cacheDir}`,
    whenFull:
      "Free disk space or delete other stored models (the store's delete(url)), raise cacheQuotaBytes, or pick a smaller dtype",
    supportsResume: true,
    size: (path) => sizeOf(local(path)),
    readText: (path) => readFile(local(path), 'utf8').catch(() => undefined),
    readBytes: async (path) => {
      const bytes = await readFile(local(path)).catch(() => undefined)
      return bytes === undefined ? undefined : new Uint8Array(bytes)
    },
    readRange: async (path, offset, length) => {
      const handle = await open(local(path), 'r').catch(() => undefined)
      if (!handle) return undefined
      try {
        const bytes = new Uint8Array(length)
        let done = 0
        while (done < length) {
          const { bytesRead } = await handle.read(bytes, done, length - done, offset + done)
          if (bytesRead === 0) break
          done += bytesRead
        }
        return done === length ? bytes : bytes.subarray(0, done)
      } finally {
        await handle.close()
      }
    },
    writeText: async (path, text) => {
      await mkdir(dirname(local(path)), { recursive: true })
      await writeFile(local(path), text)
    },
    matches: (path, entry) => memo.verify(local(path), entry),
    partialSize: async (path) => (await sizeOf(`${local(path)}.partial`)) ?? 0,
    openPartial: async (path, resume) => {
      const partial = `${local(path)}.partial`
      await mkdir(dirname(partial), { recursive: true })
      const offset = resume ? ((await sizeOf(partial)) ?? 0) : 0
      const handle = await open(partial, resume ? 'a' : 'w')
      return {
        offset,
        write: async (chunk) => {
          await handle.write(chunk)
        },
        close: () => handle.close(),
      }
    },
    hashPartial: (path) => sha256File(`${local(path)}.partial`),
    commit: async (path, sha256) => {
      const file = local(path)
      await rename(`${file}.partial`, file)
      if (sha256 !== undefined) await memo.remember(file, sha256)
    },
    remove: async (path) => {
      const file = local(path)
      await memo.forget(file)
      await rm(file, { force: true })
      await rm(`${file}.partial`, { force: true })
    },
    clear: () => rm(directory, { recursive: true, force: true }),
    isStorageFull: (error) => {
      const code = (error as { code?: string }).code
      return code === 'ENOSPC' || code === 'EDQUOT'
    },
    bytesLeft: options.bytesLeft,
    estimate: options.estimate,
  }
}
