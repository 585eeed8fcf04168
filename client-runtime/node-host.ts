// The Node host: packages in a cache folder, ORT as onnxruntime-node ('native', the default) or
// on WASM ondevice's own engine (wasm/engine/), or onnxruntime-web where the engine does not cover
// the package. onnxruntime-node is imported lazily so WASM-only users never load it.

import { BackendError } from '../core/errors.ts'
import { loadEngineModule, localWeightReader, nodeEngineThreads } from '../wasm/engine/node.ts'
import { loadOrtWebForNode } from '../wasm/node.ts'
import type { Backend } from './dtype.ts'
import type { LoadModelOptions, RuntimeHost } from './load-model.ts'
import type { OrtModule } from './ort-session.ts'
import { disableOrtTelemetry } from './ort-telemetry.ts'
import { createNodeStore } from './store/node-store.ts'

let nativeCheck: Promise<string | undefined> | undefined

/** Why onnxruntime-node cannot be used here (an optional peer dependency: not installed, or it failed to load); undefined when it can. */
export function nativeUnavailableReason(): Promise<string | undefined> {
  nativeCheck ??= (async () => {
    disableOrtTelemetry()
    try {
      await import('onnxruntime-node')
      return undefined
    } catch (error) {
      return isNotInstalled(error)
        ? 'not installed'
        : `it failed to load: ${String((error as { message?: string }).message).split('\n')[0]}`
    }
  })()
  return nativeCheck
}

/**
 * Whether importing onnxruntime-node failed because it is not installed (the optional peer left
 * out), rather than installed and broken. Node's resolver says ERR_MODULE_NOT_FOUND; Yarn's Plug'n'Play
 * resolver says MODULE_NOT_FOUND with a pnpCode (MISSING_PEER_DEPENDENCY: the app did not add
 * it). A bare MODULE_NOT_FOUND is not enough: onnxruntime-node's own require of its native
 * binding says that too when the package is there but its binary is not.
 */
export function isNotInstalled(error: unknown): boolean {
  const { code, pnpCode } = (error ?? {}) as { code?: unknown; pnpCode?: unknown }
  return (
    code === 'ERR_MODULE_NOT_FOUND' ||
    (code === 'MODULE_NOT_FOUND' &&
      (pnpCode === 'MISSING_PEER_DEPENDENCY' || pnpCode === 'UNDECLARED_DEPENDENCY'))
  )
}

/**
 * Node's default backend: onnxruntime-node ('native') when it is installed, else WASM, with a
 * note that says so (never an error: onnxruntime-node is an optional peer dependency).
 */
export async function defaultNodeBackend(): Promise<{ backend: Backend; note?: string }> {
  const reason = await nativeUnavailableReason()
  if (reason === undefined) return { backend: 'native' }
  return {
    backend: 'wasm',
    note: `onnxruntime-node is not available (${reason}): running on WebAssembly; \`npm install onnxruntime-node\` adds the faster native backend`,
  }
}

export const nodeHost: RuntimeHost = {
  defaultStore: () => createNodeStore(),
  defaultBackend: async () => {
    const { backend, note } = await defaultNodeBackend()
    return note === undefined ? { backend } : { backend, note }
  },
  // One thread unless numThreads asks for more: helpers split rows, the bits stay the same.
  loadEngine: async (options: LoadModelOptions) => {
    const threads = await nodeEngineThreads(options.numThreads ?? 1)
    return {
      module: await loadEngineModule(),
      ...(threads ? { threads } : {}),
      setup: {
        host: 'node',
        threads: threads?.count ?? 1,
        threadsReason:
          options.numThreads === undefined ? 'default (one thread)' : 'requested by the caller (numThreads)',
      },
    }
  },
  engineFiles: (pkg) => localWeightReader((path) => pkg.localPath(path)),
  loadOrt: async (backend: Backend, options: LoadModelOptions) => {
    if (backend === 'wasm' || backend === 'ort-wasm') {
      const { ort, setup } = await loadOrtWebForNode(
        options.numThreads === undefined ? {} : { numThreads: options.numThreads },
      )
      return { ort, setup: { ...setup } }
    }
    if (backend === 'native') {
      try {
        disableOrtTelemetry()
        const ort = (await import('onnxruntime-node')) as unknown as OrtModule
        return {
          ort,
          setup: {
            host: 'node',
            runtime: 'onnxruntime-node',
            provider: 'cpu',
            // loadModel passes numThreads to each session as intraOpNumThreads.
            threads: options.numThreads ?? 'default (one per core)',
          },
        }
      } catch (error) {
        // Never installed (an optional peer) is the common case: say how to add it.
        const missing = isNotInstalled(error)
        throw new BackendError(
          'backend_unavailable',
          missing
            ? "backend 'native' needs onnxruntime-node, which is not installed: `npm install onnxruntime-node`, or use backend 'wasm'."
            : `onnxruntime-node could not be loaded (${(error as Error).message}); use backend 'wasm' or reinstall onnxruntime-node.`,
          { cause: error },
        )
      }
    }
    throw new BackendError(
      'backend_unavailable',
      "WebGPU is not available in Node; use backend 'native' or 'wasm'.",
    )
  },
}
