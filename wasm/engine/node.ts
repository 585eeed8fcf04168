// The engine in Node: engine.wasm read from this folder (compiled once per process) and package
// files read with positioned reads straight into the engine's memory.
import { type FileHandle, open, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { InvalidArgumentError, ModelError } from '../../core/errors.ts'
import { compileEngine } from './kernels.ts'
import type { WeightFileReader } from './onnx-weights.ts'
import type { EngineThreads } from './session.ts'
import { startNodeThreads } from './threads-node.ts'

let compiled: Promise<WebAssembly.Module> | undefined
let compiledThreads: Promise<WebAssembly.Module> | undefined

/** engine.wasm, compiled once per process. */
export function loadEngineModule(): Promise<WebAssembly.Module> {
  compiled ??= readFile(fileURLToPath(new URL('./engine.wasm', import.meta.url))).then((bytes) =>
    compileEngine(new Uint8Array(bytes)),
  )
  return compiled
}

/** `count` threads for createEngineSession (worker_threads over shared memory); undefined for 1. */
export async function nodeEngineThreads(count: number): Promise<EngineThreads | undefined> {
  if (!Number.isInteger(count) || count < 1 || count > 64)
    throw new InvalidArgumentError(
      'numThreads',
      `numThreads must be an integer from 1 to 64, got ${String(count)}.`,
    )
  if (count === 1) return undefined
  compiledThreads ??= readFile(fileURLToPath(new URL('./engine-threads.wasm', import.meta.url))).then(
    (bytes) => compileEngine(new Uint8Array(bytes)),
  )
  const module = await compiledThreads
  return { count, module, start: (kernels) => startNodeThreads(kernels, module, count) }
}

/** A WeightFileReader over a package folder on disk (each file opened once until close()). */
export function folderWeightReader(folder: string): WeightFileReader {
  return localWeightReader((path) => join(folder, path))
}

/**
 * A WeightFileReader over files on disk, wherever `locate` says each package path is (a model
 * store keeps them in its cache folder). Each file is opened once until close().
 */
export function localWeightReader(locate: (path: string) => string | undefined): WeightFileReader {
  const where = (path: string): string => {
    const found = locate(path)
    if (found === undefined)
      throw new ModelError('model_not_found', `${path} is not stored locally; ensure the package first.`)
    return found
  }
  const handles = new Map<string, Promise<FileHandle>>()
  const handle = (path: string): Promise<FileHandle> => {
    let opened = handles.get(path)
    if (!opened) {
      opened = open(where(path), 'r')
      handles.set(path, opened)
      opened.catch(() => handles.delete(path))
    }
    return opened
  }
  return {
    async readAll(path) {
      try {
        return new Uint8Array(await readFile(where(path)))
      } catch (error) {
        throw new ModelError('model_not_found', `${path} could not be read: ${(error as Error).message}`, {
          cause: error,
        })
      }
    },
    async size(path) {
      try {
        return (await stat(where(path))).size
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
            `${where(path)} ended at byte ${offset + done}, before the weights it should hold.`,
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
