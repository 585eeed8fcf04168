// The engine in Node: engine.wasm read from this folder (compiled once per process) and package
// files read with positioned reads straight into the engine's memory. Node 22+ validates relaxed
// SIMD, so it runs engine-relaxed.wasm (./simd.ts); ONDEVICE_ENGINE_SIMD=plain forces the plain
// SIMD128 modules (tests and benchmarks compare the two), =relaxed insists on the relaxed ones.
import { existsSync } from 'node:fs'
import { type FileHandle, open, readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BackendError, InvalidArgumentError, ModelError } from '../../core/errors.ts'
import { nodeModulesAbove } from '../node-modules.ts'
import { compileEngine } from './kernels.ts'
import type { WeightFileReader } from './onnx-weights.ts'
import type { EngineThreads } from './session.ts'
import { chooseEngineSimd, type EngineSimd, hostHasRelaxedSimd } from './simd.ts'
import { startNodeThreads } from './threads-node.ts'

const compiled = new Map<string, Promise<WebAssembly.Module>>()

function compileFile(file: string): Promise<WebAssembly.Module> {
  let module = compiled.get(file)
  if (!module) {
    // A path, not `new URL(\`./${file}\`, import.meta.url)`: a server bundle of an app that
    // imports ondevice (webpack's target 'node') emitted every file of this folder for that.
    module = Promise.resolve()
      .then(() => readFile(join(engineFolder(file), file)))
      .then((bytes) => compileEngine(new Uint8Array(bytes)))
    compiled.set(file, module)
    module.catch(() => compiled.delete(file))
  }
  return module
}

/**
 * The folder holding the engine's `file`: this module's own in the published package (dist/) and
 * the repository. A server bundle that sets `import.meta.url` to the bundle's own file (esbuild
 * --platform=node, Rollup for Node) moved this code away from it: every 'wasm' load failed with
 * "ENOENT ... open '<the bundle's folder>/engine.wasm'". Then the installed package's copy, in
 * the nearest node_modules/ondevice above the bundle, is the one.
 */
function engineFolder(file: string): string {
  const here = dirname(fileURLToPath(import.meta.url))
  if (existsSync(join(here, file))) return here
  for (const installed of nodeModulesAbove(here, 'ondevice/dist/wasm/engine'))
    if (existsSync(join(installed, file))) return installed
  throw new BackendError(
    'backend_unavailable',
    `ondevice's WebAssembly engine (${file}) is neither beside this module (${here}) nor in a node_modules/ondevice above it: a bundle of this server moved ondevice's code away from its files. Keep ondevice installed in node_modules beside the bundle${file.endsWith('.wasm') ? `, or copy node_modules/ondevice/dist/wasm/engine/*.wasm into ${here}` : ' (or pass numThreads: 1)'}.`,
  )
}

/**
 * The helpers' script, found as the engine's .wasm is (engineFolder): thread-worker.ts in the
 * repository, thread-worker.js in the published package. A path, not `new URL(..., import.meta.url)`:
 * esbuild --platform=node left that URL pointing at '<the bundle's folder>/thread-worker.js'
 * ("Cannot find module"), and webpack's target 'node' rewrote `new Worker(new URL(...))` into a
 * worker chunk of its own started through its `__webpack_require__.wc` constructor, which failed
 * with "Cannot read properties of undefined (reading 'wc')". webpack leaves a path alone.
 */
function threadWorkerScript(): string {
  const file = import.meta.url.endsWith('.ts') ? 'thread-worker.ts' : 'thread-worker.js'
  return join(engineFolder(file), file)
}

/**
 * The build to run in this process: `simd` when given, else ONDEVICE_ENGINE_SIMD ('plain' or
 * 'relaxed'), else relaxed where Node validates it.
 */
export function nodeEngineSimd(simd?: EngineSimd): EngineSimd {
  const requested = simd ?? (process.env.ONDEVICE_ENGINE_SIMD || undefined)
  if (requested !== undefined && requested !== 'plain' && requested !== 'relaxed')
    throw new InvalidArgumentError(
      'ONDEVICE_ENGINE_SIMD',
      `ONDEVICE_ENGINE_SIMD must be 'plain' or 'relaxed' (or unset to choose by the host), got ${JSON.stringify(requested)}.`,
    )
  if (requested === 'relaxed' && !hostHasRelaxedSimd())
    throw new InvalidArgumentError(
      'ONDEVICE_ENGINE_SIMD',
      `the engine's relaxed-SIMD build was asked for, but this Node (${process.version}) does not validate relaxed SIMD: use Node 22 or later, or leave ONDEVICE_ENGINE_SIMD unset.`,
    )
  return chooseEngineSimd(requested)
}

/** The engine's module (engine-relaxed.wasm or engine.wasm, see nodeEngineSimd), compiled once per process. */
export function loadEngineModule(simd?: EngineSimd): Promise<WebAssembly.Module> {
  return compileFile(nodeEngineSimd(simd) === 'relaxed' ? 'engine-relaxed.wasm' : 'engine.wasm')
}

/**
 * `count` threads for createEngineSession (worker_threads over shared memory, running the
 * shared-memory build of what loadEngineModule picks); undefined for 1.
 */
export async function nodeEngineThreads(
  count: number,
  simd?: EngineSimd,
): Promise<EngineThreads | undefined> {
  if (!Number.isInteger(count) || count < 1 || count > 64)
    throw new InvalidArgumentError(
      'numThreads',
      `numThreads must be an integer from 1 to 64, got ${String(count)}.`,
    )
  if (count === 1) return undefined
  const module = await compileFile(
    nodeEngineSimd(simd) === 'relaxed' ? 'engine-threads-relaxed.wasm' : 'engine-threads.wasm',
  )
  return {
    count,
    module,
    // worker_threads start or fail the load; there is no giving up on them for one thread here.
    start: async (kernels) => {
      await startNodeThreads(kernels, module, count, threadWorkerScript())
      return undefined
    },
  }
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
