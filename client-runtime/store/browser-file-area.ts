// The browser store's FileArea: one package's files under its key in the Origin Private File
// System (streamed to disk, resumable with HTTP Range, read back lazily) or in the Cache API
// (whole responses, no resume). A file is written under a `.partial` name and becomes visible
// only when committed, after its sha256 matched manifest.json.
import { StoreError } from '../../core/errors.ts'
import { JavaScriptSha256 } from '../../core/sha256.ts'
import type { FileArea, PartialWriter } from './file-area.ts'
import { toHex } from './manifest.ts'
import type { StorageEstimate } from './types.ts'

/** Storage of whole files by key ('<package-key>/<path>'); one implementation per browser API. */
interface KeyedFiles {
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

/** The part of a FileSystemSyncAccessHandle (dedicated workers only) the store uses. */
interface SyncAccess {
  getSize(): number
  truncate(size: number): void
  write(buffer: Uint8Array, options: { at: number }): number
  flush(): void
  close(): void
}

/** Flushed this often, so a tab closed mid-download keeps nearly everything that arrived. */
const flushEveryBytes = 4 * 2 ** 20

/** A `.partial` file written in place through a sync access handle. */
function inPlaceWriter(
  access: SyncAccess,
  resume: boolean,
): { offset: number; write(chunk: Uint8Array): Promise<void>; close(): Promise<void> } {
  if (!resume) access.truncate(0)
  const offset = resume ? access.getSize() : 0
  let at = offset
  let unflushed = 0
  return {
    offset,
    write: async (chunk) => {
      for (let done = 0; done < chunk.byteLength; ) {
        const wrote = access.write(chunk.subarray(done), { at: at + done })
        if (wrote <= 0) throw new Error(`the browser wrote no byte of the file at ${at + done}`)
        done += wrote
      }
      at += chunk.byteLength
      unflushed += chunk.byteLength
      if (unflushed >= flushEveryBytes) {
        access.flush()
        unflushed = 0
      }
    },
    close: async () => {
      try {
        access.flush()
      } finally {
        access.close()
      }
    },
  }
}

async function opfsFiles(name: string): Promise<KeyedFiles> {
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
      // In a dedicated worker (where the SDK's model worker runs the store) the bytes go straight
      // into the file, so what arrived survives the tab being closed or reloaded mid-download and
      // the next load resumes with Range. A writable stream writes to a swap file that only
      // close() applies: a reload lost everything of the file being downloaded (a page has no
      // sync access handles, and keeps that).
      const syncAccess = (
        handle as FileSystemFileHandle & { createSyncAccessHandle?: () => Promise<SyncAccess> }
      ).createSyncAccessHandle
      if (typeof syncAccess === 'function') return inPlaceWriter(await syncAccess.call(handle), resume)
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

async function cacheFiles(name: string): Promise<KeyedFiles> {
  let cache = await caches.open(name)
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
      const body = new Blob(chunks as BlobPart[])
      await cache.put(url(key), new Response(body))
      if (await cache.match(url(key))) return
      // WebKit, in a session that keeps no data (measured: WebKitGTK 2.50 driven by WebDriver),
      // hands a page a cache an earlier page opened with nothing in it and put() that keeps
      // nothing. Such a cache holds nothing to lose: opened afresh, it keeps what is put.
      if ((await cache.keys()).length === 0) {
        await caches.delete(name)
        cache = await caches.open(name)
        await cache.put(url(key), new Response(body))
        if (await cache.match(url(key))) return
      }
      throw new StoreError(
        'unsupported',
        `The browser did not keep ${key.slice(key.indexOf('/') + 1)} in its Cache API: it was gone as soon as it was stored, so the model cannot be kept on this device in this window (a private window, or the browser's settings for this site, may keep no data). Open the page in a normal window, or give createClient an edge to answer there.`,
      )
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

/** The files of every package a store holds, in OPFS or the Cache API. */
export interface BrowserFiles {
  readonly name: string
  readonly files: KeyedFiles
}

export async function openBrowserFiles(kind: 'opfs' | 'cache', name: string): Promise<BrowserFiles> {
  return { name, files: kind === 'opfs' ? await opfsFiles(name) : await cacheFiles(name) }
}

/** Reads a stored file (undefined when there is none). */
export function readStored(storage: BrowserFiles, key: string, path: string): Promise<Blob | undefined> {
  return storage.files.read(`${key}/${path}`)
}

export function storedSize(storage: BrowserFiles, key: string, path: string): Promise<number | undefined> {
  return storage.files.size(`${key}/${path}`)
}

export function removePackage(storage: BrowserFiles, key: string): Promise<void> {
  return storage.files.removePrefix(`${key}/`)
}

/** The most of a file the store holds in memory at once while hashing it. */
export const hashSliceBytes = 4 * 2 ** 20

/**
 * The sha256 of a Blob read one slice at a time. WebCrypto's digest() takes one buffer, so
 * `digest(await blob.arrayBuffer())` held the whole file in memory at once: 500 MB+ of the model
 * worker for a 500 MB weights file, at the end of a long download, which can end the tab on a phone.
 */
export async function sha256Blob(blob: Blob, sliceBytes = hashSliceBytes): Promise<string> {
  const hash = new JavaScriptSha256()
  await hashInto(hash, blob, 0, blob.size, sliceBytes)
  return toHex(hash.digest())
}

async function hashInto(
  hash: JavaScriptSha256,
  blob: Blob,
  from: number,
  to: number,
  sliceBytes: number,
): Promise<void> {
  for (let at = from; at < to; at += sliceBytes)
    hash.update(new Uint8Array(await blob.slice(at, Math.min(at + sliceBytes, to)).arrayBuffer()))
}

/** A `.partial` file's hash so far, fed by its writer; `bytes` is how many bytes it has seen. */
interface RunningHash {
  readonly hash: JavaScriptSha256
  bytes: number
}

/** The FileArea of the package stored under `key`. */
export function browserFileArea(
  storage: BrowserFiles,
  key: string,
  estimate: () => Promise<StorageEstimate>,
): FileArea {
  const { files } = storage
  const at = (path: string) => `${key}/${path}`
  // In a page and in a Web Worker alike; absent in an insecure context (plain http on a LAN host).
  const locks = (globalThis.navigator as { locks?: LockManager } | undefined)?.locks
  // Each .partial is hashed as it is written, so verifying it after the download reads nothing
  // again (a pure-JavaScript SHA-256 is several times slower than WebCrypto's one-shot digest,
  // which needs the whole file in memory; spread over the download, its cost mostly hides behind
  // the network). A resumed file (a retry, or the next page load) first hashes the bytes already
  // on disk, slice by slice, so the digest still covers every byte of the file. hashPartial falls
  // back to reading the file in slices when the running hash does not cover it exactly.
  const running = new Map<string, RunningHash>()
  const openPartial = async (path: string, resume: boolean): Promise<PartialWriter> => {
    let state = running.get(path)
    running.delete(path)
    if (!resume || !files.supportsResume) state = { hash: new JavaScriptSha256(), bytes: 0 }
    else {
      // Before the writer opens: a sync access handle locks the file against reads.
      const prefix = (await files.partialBlob(at(path))) ?? new Blob([])
      if (state?.bytes !== prefix.size) {
        state = { hash: new JavaScriptSha256(), bytes: prefix.size }
        await hashInto(state.hash, prefix, 0, prefix.size, hashSliceBytes)
      }
    }
    const writer = await files.openPartial(at(path), resume)
    const hashed = state
    // A file that changed between the hashing and the opening (it should not: the store's lock is
    // held) leaves the running hash unused and hashPartial reads the file.
    if (hashed.bytes === writer.offset) running.set(path, hashed)
    return {
      offset: writer.offset,
      write: async (chunk) => {
        try {
          await writer.write(chunk)
        } catch (error) {
          // Some of the chunk may be on disk: the running hash no longer matches the file.
          running.delete(path)
          throw error
        }
        if (running.get(path) === hashed) {
          hashed.hash.update(chunk)
          hashed.bytes += chunk.byteLength
        }
      },
      close: () => writer.close(),
    }
  }
  const hashPartial = async (path: string): Promise<string> => {
    const blob = (await files.partialBlob(at(path))) ?? new Blob([])
    const state = running.get(path)
    running.delete(path)
    if (state !== undefined && state.bytes === blob.size) return toHex(state.hash.digest())
    return sha256Blob(blob)
  }
  return {
    ...(locks
      ? {
          exclusive: <T>(path: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T> =>
            // (TypeScript's DOM types say Promise<Promise<T>>; the lock's promise settles as work's.)
            locks.request(
              `ondevice-store:${storage.name}/${at(path)}`,
              signal ? { signal } : {},
              work,
            ) as Promise<unknown> as Promise<T>,
        }
      : {}),
    id: `${storage.name}/${key}`,
    location: "in the browser's storage",
    // The browser sets the origin's quota from the device's free space; nobody can raise it.
    whenFull:
      "Free space on the device, or in the browser's site settings (the stored data of sites no longer used); the app can delete other stored models (createBrowserStore().delete(url)) or pick a smaller dtype",
    supportsResume: files.supportsResume,
    size: (path) => files.size(at(path)),
    readText: async (path) => (await files.read(at(path)))?.text(),
    readBytes: async (path) => {
      const blob = await files.read(at(path))
      return blob === undefined ? undefined : new Uint8Array(await blob.arrayBuffer())
    },
    readRange: async (path, offset, length) => {
      const blob = await files.read(at(path))
      return blob === undefined
        ? undefined
        : new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer())
    },
    writeText: async (path, text) => {
      const writer = await files.openPartial(at(path), false)
      await writer.write(new TextEncoder().encode(text))
      await writer.close()
      await files.commit(at(path))
    },
    // Stored files were verified before they were committed; a size check catches truncation.
    matches: async (path, entry) => (await files.size(at(path))) === entry.bytes,
    partialSize: async (path) =>
      files.supportsResume ? ((await files.partialBlob(at(path)))?.size ?? 0) : 0,
    openPartial,
    hashPartial,
    commit: (path) => files.commit(at(path)),
    remove: async (path) => {
      running.delete(path)
      await files.remove(at(path))
      await files.remove(`${at(path)}.partial`)
    },
    clear: () => {
      running.clear()
      return files.removePrefix(`${key}/`)
    },
    isStorageFull: (error) => (error as { name?: string }).name === 'QuotaExceededError',
    bytesLeft: async () => Number.POSITIVE_INFINITY,
    estimate,
  }
}
