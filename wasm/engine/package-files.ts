// A WeightFileReader over a package reader. One with verified ranged reads (the edge's package
// from R2, static assets or a URL: worker/verified-ranges.ts) is read in pieces straight into the
// engine's memory. One that hands out whole files (browser stores, memory) has each file read once
// and kept while the model loads, then dropped by close(). Hosts with positioned reads (Node:
// ./node.ts) avoid the JS copy too.
import type { WeightFileReader } from './onnx-weights.ts'

export interface WholeFileReader {
  readBytes(path: string): Promise<Uint8Array>
  exists?(path: string): Promise<boolean>
  /** Verified ranged reads (the edge's verified package over R2, static assets or a URL). */
  readInto?(path: string, offset: number, target: Uint8Array): Promise<void>
  size?(path: string): Promise<number | undefined>
  close?(): Promise<void>
}

/**
 * The engine's files from a package reader: ranged reads straight into the engine's memory where
 * the reader has them (no file is held in JavaScript; only the small .onnx graphs are read whole),
 * else each file whole while the model loads.
 */
export function packageWeightReader(reader: WholeFileReader): WeightFileReader {
  const { readInto, size } = reader
  if (!readInto || !size) return wholeFileWeightReader(reader)
  return {
    readAll: (path) => reader.readBytes(path),
    size: (path) => size.call(reader, path),
    readInto: (path, offset, target) => readInto.call(reader, path, offset, target),
    close: async () => reader.close?.(),
  }
}

export function wholeFileWeightReader(reader: WholeFileReader): WeightFileReader {
  const files = new Map<string, Promise<Uint8Array>>()
  const read = (path: string): Promise<Uint8Array> => {
    let bytes = files.get(path)
    if (!bytes) {
      bytes = reader.readBytes(path)
      files.set(path, bytes)
      bytes.catch(() => files.delete(path))
    }
    return bytes
  }
  return {
    readAll: (path) => read(path),
    async size(path) {
      if (reader.exists) return (await reader.exists(path)) ? (await read(path)).length : undefined
      try {
        return (await read(path)).length
      } catch (error) {
        // Only "no such file" means absent; a file that fails its checks must say so.
        if ((error as { code?: unknown }).code === 'model_not_found') return undefined
        throw error
      }
    },
    async readInto(path, offset, target) {
      const bytes = await read(path)
      if (offset + target.length > bytes.length) throw new RangeError(`${path} is shorter than its weights`)
      target.set(bytes.subarray(offset, offset + target.length))
    },
    async close() {
      files.clear()
    },
  }
}
