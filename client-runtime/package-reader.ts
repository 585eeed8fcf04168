// How a session gets a package's bytes. Hosts that bring their own storage (workerd: R2 or static
// assets; a test: memory) implement this; loadModel adapts the model store to it.

export interface PackageReader {
  readText(path: string): Promise<string>
  /**
   * `expectedBytes`: the size manifest.json gives the file, when known; a reader that downloads
   * stops reading past it instead of holding whatever a server sends.
   */
  readBytes(path: string, options?: { readonly expectedBytes?: number }): Promise<Uint8Array>
  /** Whether a file exists; used to find `.onnx_data` shards. Without it, reads are attempted. */
  exists?(path: string): Promise<boolean>
  /** A local file path, for backends that load from disk (onnxruntime-node needs it for external data). */
  localPath?(path: string): string | undefined
  /**
   * The file's bytes in order, never held whole (sources that stream: R2, static assets, a URL).
   * A piece may be a view of a buffer the source reuses: valid until the next piece is asked for.
   */
  stream?(path: string, expectedBytes: number): AsyncIterable<Uint8Array>
  /**
   * Bytes [offset, offset + length) of the file as they arrive, for sources with ranged reads
   * (unchecked: the verified reader checks them and puts them straight into the engine's memory).
   * Throws RangesUnsupportedError (worker/verified-ranges.ts) when the source cannot read a range.
   * Pieces as `stream`'s: valid until the next is asked for.
   */
  readRange?(path: string, offset: number, length: number): AsyncIterable<Uint8Array>
  /**
   * Verified bytes of a file from `offset` into `target` (verifyPackage's reader over a source with
   * `stream` and `readRange`): what the engine copies weights through, never holding a file whole.
   */
  readInto?(path: string, offset: number, target: Uint8Array): Promise<void>
  /** The file's size (undefined: no such file), where the reader knows it without reading it. */
  size?(path: string): Promise<number | undefined>
  /** Drops what the reader keeps for ranged reads (called when a model's load ends). */
  close?(): Promise<void>
}

import type { StoredPackage } from './store/types.ts'

/** A PackageReader over a store's package: every read is verified against manifest.json first. */
export function storedPackageReader(pkg: StoredPackage): PackageReader {
  const { readInto } = pkg
  return {
    readText: (path) => pkg.readText(path),
    readBytes: (path) => pkg.readBytes(path),
    exists: (path) => pkg.exists(path),
    localPath: (path) => pkg.localPath(path),
    ...(readInto
      ? {
          readInto: (path: string, offset: number, target: Uint8Array) =>
            readInto.call(pkg, path, offset, target),
          size: async (path: string) => ((await pkg.exists(path)) ? pkg.size(path) : undefined),
        }
      : {}),
  }
}
