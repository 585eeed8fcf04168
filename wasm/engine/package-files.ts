// A WeightFileReader over any package reader that hands out whole files (browser stores, R2,
// memory): each file is read once and kept while the model loads, then dropped by close(). Hosts
// with positioned reads (Node: ./node.ts) avoid this JS copy of the data file.
import type { WeightFileReader } from './onnx-weights.ts'

export interface WholeFileReader {
  readBytes(path: string): Promise<Uint8Array>
  exists?(path: string): Promise<boolean>
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
