// loadModel: one call from a package source (folder or URL prefix) to a ready session and
// tokenizer. Picks the backend's fastest weight format the package carries (or the caller's),
// makes only those files available through the store (download, resume, verify), then builds the
// ORT session and the tokenizer. Host specifics (which store, how to get ORT) come in a RuntimeHost
// so this file runs in browsers, workers and Node alike.
import { InvalidArgumentError, ModelError, refuseUnknownNames } from '../core/errors.ts'
import { modelIdFromLocation } from '../core/model-id.ts'
import { type ModelConfig, parseModelConfig } from '../core/model-package.ts'
import type { ModelSession } from '../core/model-session.ts'
import type { Tokenizer } from '../core/tokenizer.ts'
import { EngineUnsupportedError } from '../wasm/engine/models/load-context.ts'
import type { WeightFileReader } from '../wasm/engine/onnx-weights.ts'
import { packageWeightReader } from '../wasm/engine/package-files.ts'
import {
  createEngineSession,
  type EngineThreads,
  engineCoversModelType,
  furtherEngineSessions,
} from '../wasm/engine/session.ts'
import {
  availableDtypes,
  type Backend,
  backends,
  chooseDtype,
  layoutFiles,
  normalizeDtype,
  type OnnxLayout,
  onnxLayout,
} from './dtype.ts'
import { type OrtModule, openOrtModel } from './ort-session.ts'
import { storedPackageReader } from './package-reader.ts'
import { loadPackageTokenizer, tokenizerFileNames } from './package-tokenizer.ts'
import type { DownloadProgress, ModelStore, StoredPackage, StoreManifest } from './store/types.ts'

export interface LoadModelOptions {
  /** A package folder (Node) or URL prefix (where config.json lives). */
  readonly model: string
  /** Default: 'native' on Node, 'webgpu' in a browser with a hardware WebGPU adapter, else 'wasm'. */
  readonly backend?: Backend
  /** Weight format; default: the fastest on this backend that the package carries. */
  readonly dtype?: string
  /** Where packages are kept; default: the host's (cache folder on Node, OPFS / Cache API in browsers). */
  readonly store?: ModelStore
  readonly onProgress?: (progress: DownloadProgress) => void
  readonly signal?: AbortSignal
  /** Caps the context (cache memory) below the model's. */
  readonly contextLength?: number
  /** Browser only: where the app serves onnxruntime-web's .wasm files (default '/ort/'). */
  readonly wasmBaseUrl?: string
  /**
   * Threads, 1 to 64. WASM ('wasm', 'ort-wasm'): Node default 1; browsers need a cross-origin
   * isolated page (COOP/COEP headers; otherwise one thread, with a warning when more were asked
   * for), where the engine's default is min(2, cores - 1); the engine gives the same bits for any
   * count. 'native': onnxruntime-node's intra-op threads (default: its own, one per core).
   */
  readonly numThreads?: number
  /**
   * Sessions the model is sized for, 1 to 256 (default 1): ondevice's engine ('wasm') keeps one
   * KV cache per session in wasm32's 4 GiB, so a long context's caches are sized for this many
   * (a server passes its MAX_CONCURRENT). More can still be made while they fit. Others ignore it.
   */
  readonly sessions?: number
  /** WebGPU: keep the cache in GPU buffers between steps (default true); false copies it through the CPU each step. */
  readonly keepCacheOnGpu?: boolean
}

export interface LoadedModel {
  readonly session: ModelSession
  readonly tokenizer: Tokenizer
  readonly manifest: StoreManifest | undefined
  readonly config: ModelConfig
  readonly dtype: string
  readonly backend: Backend
  /** The package source, normalised. */
  readonly source: string
  /** Things a person should know that did not stop the load (no manifest, thread fallback, ...). */
  readonly warnings: readonly string[]
  /** How the backend was set up (threads and why, wasm source), when the host reports it. */
  readonly backendSetup: Readonly<Record<string, unknown>> | undefined
  /**
   * Whether `createSession` shares the loaded weights (ONNX Runtime: one InferenceSession for
   * every session; ondevice's engine: one instance, a cache per session) or loads them again.
   */
  readonly sharesWeights: boolean
  /**
   * One more session over this model, with an empty cache of its own, for a second generation
   * at once (a server's concurrent slots). Disposed with the model.
   */
  createSession(): Promise<ModelSession>
  /** Disposes `session`, every session `createSession` made, and frees the weights. */
  dispose(): Promise<void>
}

/** Sessions handed out by one LoadedModel, all disposed with it. */
function sessionsDisposedTogether(first: ModelSession): {
  add<T extends ModelSession>(session: T): T
  dispose(): Promise<void>
} {
  const sessions = new Set<ModelSession>([first])
  return {
    add(session) {
      sessions.add(session)
      return session
    },
    async dispose() {
      const all = [...sessions]
      sessions.clear()
      await Promise.all(all.map((session) => session.dispose()))
    },
  }
}

/** What differs between hosts. */
export interface RuntimeHost {
  defaultStore(): ModelStore
  /** The backend when the caller names none, with a note when it is a fallback a person should know about. */
  defaultBackend(): Promise<{ readonly backend: Backend; readonly note?: string }>
  /** ORT for the backend plus a description of its setup. */
  loadOrt(
    backend: Backend,
    options: LoadModelOptions,
  ): Promise<{
    ort: OrtModule
    setup?: Readonly<Record<string, unknown>>
    /** What the load result should say of the setup (threads lost to a page that is not cross-origin isolated). */
    warning?: string
  }>
  /** Whether the WebGPU adapter runs f16 shaders (picks q4f16 over q4). */
  shaderF16?(): Promise<boolean>
  /**
   * ondevice's WebAssembly engine (wasm/engine/engine.wasm compiled for this host) for backend
   * 'wasm'. A host without it runs 'wasm' on onnxruntime-web.
   */
  loadEngine?(options: LoadModelOptions): Promise<{
    module: WebAssembly.Module
    /** Helper threads (options.numThreads > 1 where the host has them). */
    threads?: EngineThreads
    /** Something the caller asked for that this host cannot give (e.g. threads on a page that is not cross-origin isolated). */
    warning?: string
    setup?: Readonly<Record<string, unknown>>
  }>
  /** How the engine reads package files here (default: whole files through the store). */
  engineFiles?(pkg: StoredPackage): WeightFileReader
}

/** A bad option's value as the caller wrote it: a string quoted (so '2' does not read as 2). */
function shown(value: unknown): string {
  return typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value))
}

/** Every field of LoadModelOptions: any other name is a mistake, refused rather than ignored. */
const loadModelOptionNames: readonly (keyof LoadModelOptions)[] = [
  'model',
  'backend',
  'dtype',
  'store',
  'onProgress',
  'signal',
  'contextLength',
  'wasmBaseUrl',
  'numThreads',
  'sessions',
  'keepCacheOnGpu',
]

export async function loadModelWith(host: RuntimeHost, options: LoadModelOptions): Promise<LoadedModel> {
  if (typeof options !== 'object' || options === null)
    throw new InvalidArgumentError(
      'options',
      "loadModel() needs an options object like { model: './my-model' }.",
    )
  // A misspelt name (numthreads, contextLenght) was dropped without a word, the default taken.
  refuseUnknownNames(options, loadModelOptionNames, 'loadModel() option')
  if (typeof options.model !== 'string' || options.model.trim() === '') {
    throw new InvalidArgumentError(
      'model',
      'model must be a package folder path or a URL prefix (where config.json lives).',
    )
  }
  if (options.backend !== undefined && !backends.includes(options.backend)) {
    throw new InvalidArgumentError(
      'backend',
      `backend must be one of ${backends.join(', ')}, got ${JSON.stringify(options.backend)}.`,
    )
  }
  if (
    options.numThreads !== undefined &&
    (!Number.isInteger(options.numThreads) || options.numThreads < 1 || options.numThreads > 64)
  )
    throw new InvalidArgumentError(
      'numThreads',
      `numThreads must be an integer from 1 to 64, got ${shown(options.numThreads)}; omit it for the backend's default.`,
    )
  if (
    options.sessions !== undefined &&
    (!Number.isInteger(options.sessions) || options.sessions < 1 || options.sessions > 256)
  )
    throw new InvalidArgumentError(
      'sessions',
      `sessions must be an integer from 1 to 256, got ${shown(options.sessions)}; omit it for 1.`,
    )
  const requestedDtype = options.dtype === undefined ? undefined : normalizeDtype(options.dtype)
  const chosen = options.backend === undefined ? await host.defaultBackend() : { backend: options.backend }
  const backend = chosen.backend
  const store = options.store ?? host.defaultStore()
  const pkg = await store.open(options.model, { ...(options.signal ? { signal: options.signal } : {}) })
  const warnings = [...pkg.warnings, ...(chosen.note === undefined ? [] : [chosen.note])]

  const present = new Map<string, boolean>()
  for (const path of tokenizerFileNames) present.set(path, await pkg.exists(path))
  if (!present.get('config.json'))
    throw new ModelError('model_invalid', `${pkg.source} is not a model package: it has no config.json.`)
  if (!present.get('tokenizer.json'))
    throw new ModelError(
      'model_invalid',
      `${pkg.source} has no tokenizer.json; ondevice needs the model's Hugging Face tokenizer next to config.json.`,
    )
  const config = parseModelConfig(await pkg.readText('config.json'))

  // 'wasm' runs on the engine where it has the architecture; the dtype order follows whoever runs it.
  const engineWanted = backend === 'wasm' && host.loadEngine !== undefined
  const engineKnowsArchitecture = engineWanted && engineCoversModelType(config.modelType)
  const dtypeBackend: Backend = backend === 'wasm' && !engineKnowsArchitecture ? 'ort-wasm' : backend
  const dtype =
    requestedDtype ??
    (await chooseDtype({
      backend: dtypeBackend,
      modelType: config.modelType,
      listed: pkg.manifest?.dtypes,
      exists: (path) => pkg.exists(path),
      shaderF16: (await host.shaderF16?.()) ?? false,
      source: pkg.source,
    }))
  const layout = await withAvailableEmbedding(pkg, onnxLayout(config.modelType, dtype))
  const onnxFiles = await filesWithExternalData(pkg, layout)
  if (onnxFiles.missing.length > 0) {
    throw new ModelError(
      'model_not_found',
      `${pkg.source} has no ${dtype} weights (${onnxFiles.missing.join(', ')} missing)${requestedDtype ? '; pick a dtype the package carries' : ''}. Available: ${(await availableDtypes({ modelType: config.modelType, listed: pkg.manifest?.dtypes, exists: (path) => pkg.exists(path) })).join(', ') || 'none'}.`,
    )
  }
  const wanted = [...tokenizerFileNames.filter((path) => present.get(path)), ...onnxFiles.files]
  await pkg.ensure(wanted, {
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  })

  const tokenizer = await loadPackageTokenizer(storedPackageReader(pkg))

  const manifestName = (pkg.manifest as { name?: unknown } | undefined)?.name
  const modelId =
    typeof manifestName === 'string' ? manifestName : (modelIdFromLocation(pkg.source) ?? 'model')
  if (engineWanted && host.loadEngine) {
    if (!engineKnowsArchitecture)
      warnings.push(
        `The WebAssembly engine has no ${config.modelType} decoder yet; running onnxruntime-web's WASM (backend 'ort-wasm') instead.`,
      )
    else {
      const engine = await host.loadEngine(options)
      if (engine.warning !== undefined) warnings.push(engine.warning)
      try {
        const open = async () =>
          createEngineSession({
            module: engine.module,
            files: host.engineFiles?.(pkg) ?? packageWeightReader(storedPackageReader(pkg)),
            dtype,
            config,
            modelId,
            ...(options.contextLength !== undefined ? { contextLength: options.contextLength } : {}),
            ...(engine.threads ? { threads: engine.threads } : {}),
            ...(options.sessions !== undefined ? { sessions: options.sessions } : {}),
          })
        const session = await open()
        // Helper threads that never started: the engine went on on one thread and says so.
        const oneThread = session.build.threadsReason
        if (oneThread !== undefined) warnings.push(`The WebAssembly engine runs on one thread: ${oneThread}.`)
        const sessions = sessionsDisposedTogether(session)
        // Further sessions inside the same instance (one copy of the weights).
        const further = furtherEngineSessions(session, open)
        return {
          session,
          tokenizer,
          manifest: pkg.manifest,
          config,
          dtype,
          backend: 'wasm',
          source: pkg.source,
          warnings,
          // The engine's build and, for a q4 model on the relaxed one, its measured dot forms.
          backendSetup: { engine: 'ondevice-wasm', ...engine.setup, ...session.build },
          // The engine's weights live once in its instance's linear memory; each session has its
          // own cache there (see docs/wasm-engine.md).
          sharesWeights: true,
          createSession: async () => sessions.add(await further()),
          dispose: () => sessions.dispose(),
        }
      } catch (error) {
        if (!(error instanceof EngineUnsupportedError)) throw error
        warnings.push(
          `The WebAssembly engine does not cover this package (${error.message}); running onnxruntime-web's WASM (backend 'ort-wasm') instead.`,
        )
      }
    }
  }
  const ortBackend: Backend = engineWanted ? 'ort-wasm' : backend
  const { ort, setup, warning: ortWarning } = await host.loadOrt(ortBackend, options)
  if (ortWarning !== undefined) warnings.push(ortWarning)
  // onnxruntime-web takes its threads when it is set up: fewer than asked (a page that is not
  // cross-origin isolated) is said as the engine says it, not left to a setup record.
  const ortThreads = setup?.['threads']
  if (options.numThreads !== undefined && typeof ortThreads === 'number' && ortThreads < options.numThreads)
    warnings.push(
      `numThreads ${options.numThreads} asked for, onnxruntime-web runs on ${ortThreads === 1 ? 'one thread' : `${ortThreads} threads`}: ${String(setup?.['threadsReason'] ?? 'as it was set up')}.`,
    )
  const model = await openOrtModel(ort, storedPackageReader(pkg), {
    backend: ortBackend,
    dtype,
    layout,
    modelId,
    ...(options.contextLength !== undefined ? { contextLength: options.contextLength } : {}),
    ...(options.keepCacheOnGpu !== undefined ? { keepCacheOnGpu: options.keepCacheOnGpu } : {}),
    // onnxruntime-node takes threads per session (onnxruntime-web's are set when it is configured).
    ...(ortBackend === 'native' && options.numThreads !== undefined
      ? { sessionOptions: { intraOpNumThreads: options.numThreads, interOpNumThreads: 1 } }
      : {}),
  }).catch((error: unknown) => dropUnloadableGraphs(pkg, onnxFiles.files, error))
  const session = model.createSession()
  const sessions = sessionsDisposedTogether(session)
  return {
    session,
    tokenizer,
    manifest: pkg.manifest,
    config,
    dtype,
    backend: ortBackend,
    source: pkg.source,
    warnings,
    backendSetup: setup,
    sharesWeights: true,
    // Each session keeps its cache in its own tensors, fed to the shared InferenceSession(s).
    createSession: async () => sessions.add(model.createSession()),
    dispose: async () => {
      await sessions.dispose()
      await model.dispose()
    },
  }
}

/**
 * ONNX Runtime's own words for a file that is not a model at all (cut, or some other file under
 * the .onnx name): `Protobuf parsing failed` / `INVALID_PROTOBUF` (status 7), `No graph was found
 * in the protobuf`, `INVALID_GRAPH` (status 10). Not matched on purpose: unsupported operators or
 * opsets, out of memory, a missing backend: the file is fine there, so it is kept.
 */
const invalidModelPattern =
  /protobuf parsing failed|no graph was found|INVALID_PROTOBUF|INVALID_GRAPH|ERROR_CODE: (7|10)\b/i

function describeError(error: unknown): string {
  const messages: string[] = []
  for (let current = error, depth = 0; current instanceof Error && depth < 4; depth++) {
    const text = current.message
    // A wrapping error usually quotes its cause already: list each message once.
    if (!messages.some((message) => message.includes(text))) messages.push(text)
    current = current.cause
  }
  return messages.join(' / ')
}

/**
 * A graph that ONNX Runtime cannot parse passed its sha256 check, so the manifest itself vouches
 * for bad bytes. Keeping it would make every later load fail the same way from the cache; drop
 * the dtype's ONNX files from the store (a local folder is left alone) and say what is wrong.
 */
async function dropUnloadableGraphs(
  pkg: StoredPackage,
  files: readonly string[],
  error: unknown,
): Promise<never> {
  const detail = describeError(error)
  if (!invalidModelPattern.test(detail)) throw error
  const owned = pkg.kind === 'url' && pkg.discard !== undefined
  if (owned) await pkg.discard?.(files)
  throw new ModelError(
    'model_invalid',
    `${pkg.source} has an ONNX file that is not a valid model (${detail})${pkg.manifest ? ', although it matches the sha256 in manifest.json: the package itself is broken, not the download' : ''}. ${owned ? `Its ONNX files (${files.join(', ')}) were removed from the cache, so the next load downloads them again. ` : ''}Rebuild or re-upload the package (ondevice convert / ondevice fixture).`,
    { cause: error },
  )
}

async function filesWithExternalData(
  pkg: StoredPackage,
  layout: OnnxLayout,
): Promise<{ files: string[]; missing: string[] }> {
  const files: string[] = []
  const missing: string[] = []
  for (const file of layoutFiles(layout)) {
    if (!(await pkg.exists(file))) {
      missing.push(file)
      continue
    }
    files.push(file)
    for (let index = 0; index < 64; index++) {
      const shard = index === 0 ? `${file}_data` : `${file}_data_${index}`
      if (!(await pkg.exists(shard))) break
      files.push(shard)
    }
  }
  return { files, missing }
}

/**
 * Published Qwen3.5 packages don't always ship an embedding graph per decoder dtype; when the
 * matching one is missing, use another the package has (the embedding is a table lookup, cheap in
 * any format).
 */
async function withAvailableEmbedding(pkg: StoredPackage, layout: OnnxLayout): Promise<OnnxLayout> {
  if (layout.kind !== 'split' || (await pkg.exists(layout.embedTokens))) return layout
  for (const dtype of ['q8', 'fp16', 'fp32', 'q4', 'q4f16', 'int8', 'uint8']) {
    const candidate = onnxLayout('qwen3_5', dtype)
    if (candidate.kind === 'split' && (await pkg.exists(candidate.embedTokens)))
      return { ...layout, embedTokens: candidate.embedTokens }
  }
  return layout
}
