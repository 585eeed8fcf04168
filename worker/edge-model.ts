// Turns a package reader into the HostedModel the app serves: core's Tokenizer from the package's
// tokenizer files, and sessions from ondevice's WebAssembly engine (backend 'wasm', where it
// covers the package) or the runtime's ORT sessions (openOrtModel): the same session code the device runs,
// so edge and device produce the same tokens from the same file and backend.

import { type Backend, chooseDtype } from '../client-runtime/dtype.ts'
import { type OrtModule, openOrtModel } from '../client-runtime/ort-session.ts'
import type { PackageReader } from '../client-runtime/package-reader.ts'
import { loadPackageTokenizer } from '../client-runtime/package-tokenizer.ts'
import { type PackageFileEntry, packageFingerprint, parseModelConfig } from '../core/model-package.ts'
import type { ModelSession } from '../core/model-session.ts'
import type { Tokenizer } from '../core/tokenizer.ts'
import { EngineUnsupportedError } from '../wasm/engine/models/load-context.ts'
import { packageWeightReader } from '../wasm/engine/package-files.ts'
import { createEngineSession, engineCoversModelType, furtherEngineSessions } from '../wasm/engine/session.ts'
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
  /**
   * The compiled engine.wasm: with backend 'wasm', the engine runs the package where it covers it
   * (onnxruntime-web, reported as 'ort-wasm', where not). Without it, 'wasm' is onnxruntime-web.
   */
  readonly engine?: WebAssembly.Module | undefined
  /**
   * manifest.json's files (their sha256), for the fingerprint of the weights served
   * (HostedModelInfo.packageFingerprint). Without them the edge says none, and a device cannot
   * tell whether a handoff here continues its answer with the same model.
   */
  readonly manifestFiles?: readonly PackageFileEntry[] | undefined
}

export async function loadEdgeModel(options: EdgeModelOptions): Promise<HostedModel> {
  const [tokenizer, configText] = await Promise.all([
    loadPackageTokenizer(options.reader),
    options.reader.readText('config.json'),
  ])
  const config = parseModelConfig(configText)
  const onWasm = options.backend === 'wasm' || options.backend === 'ort-wasm'
  const engine =
    options.backend === 'wasm' && options.engine && engineCoversModelType(config.modelType)
      ? options.engine
      : undefined
  const dtype =
    options.dtype ||
    (await chooseDtype({
      backend: engine ? 'wasm' : onWasm ? 'ort-wasm' : options.backend,
      modelType: config.modelType,
      listed: options.availableDtypes,
      exists: options.reader.exists?.bind(options.reader),
      source: `The package of ${options.modelId}`,
    }))
  if (engine) {
    const open = () =>
      createEngineSession({
        module: engine,
        files: packageWeightReader(options.reader),
        dtype,
        config,
        modelId: options.modelId,
        ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
      })
    try {
      // Further sessions inside the first one's instance: the weights once, a cache each.
      const first = await open()
      return hosted(options, tokenizer, first, furtherEngineSessions(first, open))
    } catch (error) {
      if (!(error instanceof EngineUnsupportedError)) throw error
      console.warn(
        JSON.stringify({
          level: 'warn',
          message: `The WebAssembly engine does not cover this package (${error.message}); serving it with onnxruntime-web's WASM (backend 'ort-wasm').`,
        }),
      )
    }
  }
  const sessionOptions = {
    backend: onWasm ? ('ort-wasm' as const) : options.backend,
    dtype,
    modelId: options.modelId,
    ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
  }
  // Loaded now: a package that cannot run fails the load (503 with the reason) instead of failing
  // every request later. Every session shares these weights, each with its own cache.
  const model = await openOrtModel(options.ort, options.reader, sessionOptions)
  const first = model.createSession()
  const hostedModel = hosted(options, tokenizer, first, async () => model.createSession())
  return {
    ...hostedModel,
    dispose: async () => {
      await hostedModel.dispose?.()
      await model.dispose()
    },
  }
}

/**
 * The first session is kept as the spare for the first request; later ones are opened on demand
 * (over the same weights: ONNX Runtime's InferenceSession, or the engine's instance). Every session
 * handed out is disposed with the model.
 */
function hosted(
  options: EdgeModelOptions,
  tokenizer: Tokenizer,
  first: ModelSession,
  open: () => Promise<ModelSession>,
): HostedModel {
  let spare: ModelSession | undefined = first
  const sessions = new Set<ModelSession>([first])
  const fingerprint = packageFingerprint(options.manifestFiles, first.info.dtype)
  return {
    info: {
      modelId: options.modelId,
      backend: first.info.backend,
      dtype: first.info.dtype,
      contextLength: first.info.contextLength,
      ...(fingerprint === undefined ? {} : { packageFingerprint: fingerprint }),
    },
    tokenizer,
    async createSession() {
      if (spare) {
        const session = spare
        spare = undefined
        return session
      }
      const session = await open()
      sessions.add(session)
      return session
    },
    async dispose() {
      const all = [...sessions]
      sessions.clear()
      spare = undefined
      await Promise.all(all.map((session) => session.dispose().catch(() => undefined)))
    },
  }
}
