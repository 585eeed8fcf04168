// onnxruntime-web (WASM) for Node: the binary is read from this package's own node_modules,
// never fetched. ORT's environment is global per process, so the first call configures it and
// later calls get the same module and setup back.
import { readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import ort from 'onnxruntime-web'
import { InvalidArgumentError } from '../core/errors.ts'
import type { ConfiguredOrt } from './types.ts'

export interface NodeWasmOptions {
  /** WASM threads (worker_threads). Default: up to 4, one less than the cores, at least 1. */
  readonly numThreads?: number
}

let configured: Promise<ConfiguredOrt> | undefined

/** Returns onnxruntime-web configured for Node (first call wins; later options must agree). */
export function loadOrtWebForNode(options: NodeWasmOptions = {}): Promise<ConfiguredOrt> {
  const requested = options.numThreads
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 1 || requested > 64)) {
    throw new InvalidArgumentError(
      'numThreads',
      `numThreads must be an integer from 1 to 64, got ${String(requested)}.`,
    )
  }
  configured ??= configure(requested)
  return configured.then((result) => {
    if (requested !== undefined && requested !== result.setup.threads) {
      throw new InvalidArgumentError(
        'numThreads',
        `onnxruntime-web was already set up with ${result.setup.threads} thread(s) in this process; ORT's WASM settings are global, so pass the same numThreads everywhere (or none).`,
      )
    }
    return result
  })
}

async function configure(requested: number | undefined): Promise<ConfiguredOrt> {
  const wasmPath = fileURLToPath(import.meta.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'))
  // Handing ORT the bytes (rather than letting it locate the file from its own URL) keeps this
  // working when the code is bundled or run from another folder.
  ort.env.wasm.wasmBinary = await readFile(wasmPath)
  const threads = requested ?? Math.max(1, Math.min(4, availableParallelism() - 1))
  ort.env.wasm.numThreads = threads
  ort.env.wasm.proxy = false
  return {
    ort,
    setup: {
      host: 'node',
      threads,
      threadsReason:
        requested === undefined ? `default for ${availableParallelism()} cores` : 'requested by the caller',
      wasmSource: wasmPath,
      ortVersion: ort.env.versions.web ?? 'unknown',
    },
  }
}
