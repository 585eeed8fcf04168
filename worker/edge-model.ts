// Turns a package reader into the HostedModel the app serves: core's Tokenizer from the package's
// tokenizer files, and ORT sessions from the runtime's createOrtSession (the same session code the
// device runs, so edge and device produce the same tokens from the same file and backend family).

import { type Backend, chooseDtype } from '../client-runtime/dtype.ts'
import { createOrtSession, type OrtModule } from '../client-runtime/ort-session.ts'
import type { PackageReader } from '../client-runtime/package-reader.ts'
import { loadPackageTokenizer } from '../client-runtime/package-tokenizer.ts'
import { parseModelConfig } from '../core/model-package.ts'
import type { HostedModel } from './model-host.ts'

export interface EdgeModelOptions {
  readonly ort: OrtModule
  readonly reader: PackageReader
  readonly modelId: string
  readonly backend: Backend
  /** Weight format; default: the backend's fastest one the package has. */
  readonly dtype?: string | undefined
  /** Dtypes the package holds (from manifest.json), to choose without probing files. */
  readonly availableDtypes?: readonly string[] | undefined
  /** Caps the context (bounds the KV cache in a 128 MB isolate). */
  readonly contextLength?: number | undefined
}

export async function loadEdgeModel(options: EdgeModelOptions): Promise<HostedModel> {
  const tokenizer = await loadPackageTokenizer(options.reader)
  const dtype =
    options.dtype ||
    (await chooseDtype({
      backend: options.backend,
      modelType: parseModelConfig(await options.reader.readText('config.json')).modelType,
      listed: options.availableDtypes,
      exists: options.reader.exists?.bind(options.reader),
      source: `The package of ${options.modelId}`,
    }))
  const sessionOptions = {
    backend: options.backend,
    dtype,
    modelId: options.modelId,
    ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
  }
  // The first session is made now: a package that cannot run fails the load (503 with the
  // reason) instead of failing every request later.
  const first = await createOrtSession(options.ort, options.reader, sessionOptions)
  let spare: typeof first | undefined = first
  return {
    info: {
      modelId: options.modelId,
      backend: first.info.backend,
      dtype: first.info.dtype,
      contextLength: first.info.contextLength,
    },
    tokenizer,
    async createSession() {
      if (spare) {
        const session = spare
        spare = undefined
        return session
      }
      return createOrtSession(options.ort, options.reader, sessionOptions)
    },
  }
}
