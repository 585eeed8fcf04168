// The model store's public shapes. A store turns a package source (a local folder or a URL
// prefix) into files that are present locally and verified against manifest.json, downloading
// only the files a load needs.

/** One entry of manifest.json's `files`. */
export interface PackageFileEntry {
  readonly path: string
  readonly bytes: number
  readonly sha256: string
}

/** The parts of manifest.json the store relies on (the builder's manifest has more). */
export interface StoreManifest {
  readonly format: string
  readonly files: readonly PackageFileEntry[]
  readonly dtypes?: readonly string[]
  readonly modelType?: string
  readonly estimatedMemoryBytes?: Readonly<Record<string, number>>
}

export type ProgressPhase = 'download' | 'verify' | 'cached' | 'done'

/**
 * Emitted while files are made available; sizes in bytes. The one progress shape: the store
 * reports it, loadModel passes it on, and the SDK's `progress` event and `onProgress` carry it.
 */
export interface DownloadProgress {
  readonly phase: ProgressPhase
  /** Package-relative path of the file this event is about. */
  readonly file: string
  readonly fileLoadedBytes: number
  /** Undefined when neither the manifest nor the server says. */
  readonly fileTotalBytes: number | undefined
  /** Bytes available so far across every file of this request (cached ones count). */
  readonly loadedBytes: number
  /** Bytes the request needs in all; undefined when unknown. */
  readonly totalBytes: number | undefined
}

export interface EnsureOptions {
  readonly onProgress?: (progress: DownloadProgress) => void
  readonly signal?: AbortSignal
}

export interface OpenOptions extends EnsureOptions {
  /**
   * false: a URL package's manifest.json, when none is stored yet, is asked for once instead of
   * with the store's retries (the SDK's router, while the edge can answer, rather than keep a
   * request waiting). Default true.
   */
  readonly retryManifest?: boolean
}

export interface StorageEstimate {
  /** Bytes the store may still write (disk free space, or browser quota minus usage). */
  readonly availableBytes: number | undefined
  readonly usageBytes: number | undefined
  readonly quotaBytes: number | undefined
}

/** A package opened from a store: read files once `ensure` made them available and verified. */
export interface StoredPackage {
  /** The source as given, normalised (absolute folder, or URL prefix ending in '/'). */
  readonly source: string
  readonly kind: 'folder' | 'url'
  /** manifest.json, when the package has one. */
  readonly manifest: StoreManifest | undefined
  /** Problems worth telling a person about that do not stop the load (e.g. no manifest). */
  readonly warnings: readonly string[]
  /** The local folder holding the files, where the store keeps them in a file system. */
  readonly directory: string | undefined
  /** Downloads (if needed) and verifies these files; shares work with concurrent callers. */
  ensure(paths: readonly string[], options?: EnsureOptions): Promise<void>
  /** True when the file exists in the package (manifest, folder listing or HTTP HEAD). */
  exists(path: string): Promise<boolean>
  /** Size in bytes, from the manifest, the file system or HTTP. Undefined when unknown. */
  size(path: string): Promise<number | undefined>
  readText(path: string): Promise<string>
  readBytes(path: string): Promise<Uint8Array>
  /**
   * Copies bytes of an ensured file from `offset` into `target` without reading the file whole
   * (what the engine loads weights through, straight into its memory). Optional: stores without
   * ranged reads leave it out and the engine reads files whole.
   */
  readInto?(path: string, offset: number, target: Uint8Array): Promise<void>
  /** Local file path of an ensured file (Node stores), for backends that load from paths. */
  localPath(path: string): string | undefined
  /**
   * Drops these files from the store (stored copy, partial download, verification memo), so the
   * next `ensure` fetches them again; used when a verified file turns out unusable (e.g. not an
   * ONNX model although it matches manifest.json). A local folder package is never touched.
   * Optional so that stores written before it still type-check.
   */
  discard?(paths: readonly string[]): Promise<void>
}

export interface ModelStore {
  /** Opens a package: reads (downloads) manifest.json if there is one, checks the source exists. */
  open(source: string, options?: OpenOptions): Promise<StoredPackage>
  /** True when every listed file (default: the manifest's files) is stored and complete. */
  isCached(source: string, paths?: readonly string[]): Promise<boolean>
  /** Removes everything stored for a URL source (a local folder is never touched). */
  delete(source: string): Promise<void>
  estimate(): Promise<StorageEstimate>
}
