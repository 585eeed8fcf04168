// The engine in Node: engine.wasm read from this folder (compiled once per process) and package
// files read with positioned reads straight into the engine's memory.
import { type FileHandle, open, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ModelError } from '../../core/errors.ts'
import { compileEngine } from './kernels.ts'
import type { WeightFileReader } from './onnx-weights.ts'

let compiled: Promise<WebAssembly.Module> | undefined

/** engine.wasm, compiled once per process. */
export function loadEngineModule(): Promise<WebAssembly.Module> {
  compiled ??= readFile(fileURLToPath(new URL('./engine.wasm', import.meta.url))).then((bytes) =>
    compileEngine(new Uint8Array(bytes)),
  )
  return compiled
}

/** A WeightFileReader over a package folder on disk (each file opened once until close()). */
export function folderWeightReader(folder: string): WeightFileReader {
  const handles = new Map<string, Promise<FileHandle>>()
  const handle = (path: string): Promise<FileHandle> => {
    let opened = handles.get(path)
    if (!opened) {
      opened = open(join(folder, path), 'r')
      handles.set(path, opened)
      opened.catch(() => handles.delete(path))
    }
    return opened
  }
  return {
    async readAll(path) {
      try {
        return new Uint8Array(await readFile(join(folder, path)))
      } catch (error) {
        throw new ModelError(
          'model_not_found',
          `${join(folder, path)} could not be read: ${(error as Error).message}`,
          { cause: error },
        )
      }
    },
    async size(path) {
      try {
        return (await stat(join(folder, path))).size
      } catch {
        return undefined
      }
    },
    async readInto(path, offset, target) {
      const file = await handle(path)
      let done = 0
      while (done < target.length) {
        const { bytesRead } = await file.read(target, done, target.length - done, offset + done)
        if (bytesRead === 0)
          throw new ModelError(
            'model_invalid',
            `${join(folder, path)} ended at byte ${offset + done}, before the weights it should hold.`,
          )
        done += bytesRead
      }
    },
    async close() {
      const open = [...handles.values()]
      handles.clear()
      for (const file of open) await (await file.catch(() => undefined))?.close()
    },
  }
}
