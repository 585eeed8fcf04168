// Node's memo of verified files: a file checked against its sha256 is remembered by path, size
// and mtime (verified.json in the cache folder), so it is not hashed again on every run. Writes are
// serialised and atomic (write then rename), so a crash never leaves half a memo.
import { createHash, randomUUID } from 'node:crypto'
import { open, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { prepareCacheFolder } from './cache-folder.ts'

interface VerifiedEntry {
  readonly size: number
  readonly mtimeMs: number
  readonly sha256: string
}

export interface VerifiedMemo {
  /** Hashes `path` unless the memo says this exact size+mtime already had `expected.sha256`. */
  verify(path: string, expected: { readonly bytes: number; readonly sha256: string }): Promise<boolean>
  /** Records a file just verified (its current size and mtime). */
  remember(path: string, sha256: string): Promise<void>
  forget(path: string): Promise<void>
  /** Forgets every file under `folder` (a deleted package). */
  forgetUnder(folder: string): Promise<void>
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  // One buffer read into again and again: a stream's fresh 64 KiB chunk per read left hundreds of
  // MiB of garbage for the collector on a large package, and how much of it the process still held
  // when the weights loaded varied from run to run (the Qwen3.5 tiny fixture's load peaked
  // anywhere from 44 to 79 MiB).
  const chunk = new Uint8Array(1 << 20)
  const file = await open(path, 'r')
  try {
    for (;;) {
      const { bytesRead } = await file.read(chunk, 0, chunk.length, null)
      if (bytesRead === 0) break
      hash.update(chunk.subarray(0, bytesRead))
    }
  } finally {
    await file.close()
  }
  return hash.digest('hex')
}

export function createVerifiedMemo(cacheDir: string): VerifiedMemo {
  const memoPath = join(cacheDir, 'verified.json')
  let memo: Promise<Map<string, VerifiedEntry>> | undefined
  let memoWrite: Promise<void> = Promise.resolve()

  const load = (): Promise<Map<string, VerifiedEntry>> => {
    memo ??= readFile(memoPath, 'utf8')
      .then((text) => new Map(Object.entries(JSON.parse(text) as Record<string, VerifiedEntry>)))
      .catch(() => new Map<string, VerifiedEntry>())
    return memo
  }

  const save = async (map: Map<string, VerifiedEntry>): Promise<void> => {
    memoWrite = memoWrite.then(async () => {
      await prepareCacheFolder(cacheDir)
      // A name of this write's own: every client's memo over this folder writes here, and with
      // the process id alone two at once shared one file, so one rename found it gone (ENOENT)
      // and that client's load failed. Random, not a count: each copy of this module (a worker
      // thread's, each bundle's in a bundled server) counted from 0 in the same process.
      const temporary = `${memoPath}.${process.pid}.${randomUUID()}.tmp`
      await writeFile(temporary, JSON.stringify(Object.fromEntries(map)))
      await rename(temporary, memoPath)
    })
    await memoWrite
  }

  const set = async (path: string, entry: VerifiedEntry | undefined): Promise<void> => {
    const map = await load()
    if (entry) map.set(path, entry)
    else map.delete(path)
    await save(map)
  }

  return {
    async verify(path, expected) {
      const info = await stat(path)
      if (info.size !== expected.bytes) return false
      const known = (await load()).get(path)
      if (
        known &&
        known.size === info.size &&
        known.mtimeMs === info.mtimeMs &&
        known.sha256 === expected.sha256
      )
        return true
      const actual = await sha256File(path)
      if (actual !== expected.sha256) {
        await set(path, undefined)
        return false
      }
      await set(path, { size: info.size, mtimeMs: info.mtimeMs, sha256: actual })
      return true
    },
    async remember(path, sha256) {
      const info = await stat(path)
      await set(path, { size: info.size, mtimeMs: info.mtimeMs, sha256 })
    },
    forget: (path) => set(path, undefined),
    async forgetUnder(folder) {
      const map = await load()
      let changed = false
      for (const key of [...map.keys()])
        if (key.startsWith(folder)) {
          map.delete(key)
          changed = true
        }
      if (changed) await save(map)
    },
  }
}
