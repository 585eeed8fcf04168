// Where a store keeps one downloaded package's files: a folder on disk (Node), an OPFS folder or
// a Cache API cache (browsers). The remote-package sync (remote-package.ts) runs over this
// interface alone, so both stores download, resume, verify and fall back offline the same way.
import type { StorageEstimate } from './types.ts'

/** A `.partial` file being written; `offset` is where the writes start (its length on a resume). */
export interface PartialWriter {
  readonly offset: number
  write(chunk: Uint8Array): Promise<void>
  close(): Promise<void>
}

/** One package's files, by package-relative path (checked by the caller). */
export interface FileArea {
  /** Unique per package and store location: names shared work (one download per file at a time). */
  readonly id: string
  /** Where the files go, for messages ("in /home/me/.cache/ondevice", "in the browser's storage"). */
  readonly location: string
  /**
   * What the user can do when the storage runs out, ending the store's storage_quota_exceeded
   * messages: a browser user cannot raise the origin's quota, a Node app can.
   */
  readonly whenFull: string
  /** A `.partial` file outlives a failed download, so the next one resumes with HTTP Range. */
  readonly supportsResume: boolean
  /** Size of a stored (committed) file; undefined when there is none. */
  size(path: string): Promise<number | undefined>
  readText(path: string): Promise<string | undefined>
  readBytes(path: string): Promise<Uint8Array | undefined>
  /**
   * Bytes [offset, offset + length) of a stored file, without reading the rest (a Blob slice in
   * browsers, a positioned read on disk); undefined when there is no such file. Shorter at the end.
   */
  readRange(path: string, offset: number, length: number): Promise<Uint8Array | undefined>
  /** Stores a small file at once (manifest.json). */
  writeText(path: string, text: string): Promise<void>
  /**
   * True when the stored file is the one `entry` describes. Stored files were verified before
   * they were committed, so a size check catches truncation; an area that can tell a changed file
   * cheaply (Node: size + mtime memo) hashes it again when in doubt.
   */
  matches(path: string, entry: { readonly bytes: number; readonly sha256: string }): Promise<boolean>
  /** Length of the `.partial` file (0 when there is none). */
  partialSize(path: string): Promise<number>
  /** Starts the `.partial` file, or appends to it when `resume` (and the area supports it). */
  openPartial(path: string, resume: boolean): Promise<PartialWriter>
  /** sha256 (hex) of the `.partial` file. */
  hashPartial(path: string): Promise<string>
  /** Makes the `.partial` file the stored file; `sha256` when it was verified against it. */
  commit(path: string, sha256: string | undefined): Promise<void>
  /** Drops the stored file and its `.partial` (and whatever the area remembers of them). */
  remove(path: string): Promise<void>
  /** Drops the whole package (a storage failure leaves nothing half-stored). */
  clear(): Promise<void>
  /** The storage ran out (quota, full disk). */
  isStorageFull(error: unknown): boolean
  /**
   * Runs `work` while no other tab or worker of this origin runs work on the same file of this
   * package (the browser's Web Locks, held across contexts): each tab has its own store, and two
   * first loads at once wrote the same `.partial` files. Absent where one process owns the area.
   * `signal` gives up the wait (a DOMException named AbortError).
   */
  exclusive?<T>(path: string, work: () => Promise<T>, signal?: AbortSignal): Promise<T>
  /** Bytes the package may still add (the store's quota), when bounded; checked while writing. */
  bytesLeft(): Promise<number>
  estimate(): Promise<StorageEstimate>
}
