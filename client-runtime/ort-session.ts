// A core ModelSession over ONNX Runtime (onnxruntime-web on WASM or WebGPU, onnxruntime-node on
// the CPU). Every cache tensor is built from the graph's own `inputMetadata` (never hard-coded
// shapes), `present*` outputs are fed back as the next step's `past*` inputs, and the attention
// mask and position ids always cover exactly the tokens the cache holds. Both package layouts
// run here: one `model*.onnx` (Llama, Qwen3) and `embed_tokens` + `decoder_model_merged`
// (Qwen3.5, with conv and recurrent state next to the KV cache on its full-attention layers).
import type * as Ort from 'onnxruntime-web'
import { sessionContextLength } from '../core/context-length.ts'
import {
  AbortedError,
  BackendError,
  ContextLengthError,
  InvalidArgumentError,
  ModelError,
  toOndeviceError,
} from '../core/errors.ts'
import type { ModelSession, ModelSessionInfo, RunOptions } from '../core/model-session.ts'
import { type Backend, backends, layoutFiles, normalizeDtype, type OnnxLayout, onnxLayout } from './dtype.ts'
import { type RuntimeModelConfig, readRuntimeConfig } from './model-config.ts'
import type { PackageReader } from './package-reader.ts'

/**
 * onnxruntime-web's or onnxruntime-node's module (`import * as ort from 'onnxruntime-web'`): both
 * satisfy it. Declared without onnxruntime's own types, which the declarations ondevice publishes
 * would otherwise import: theirs name a DOM-only type (HTMLImageElement, in Tensor.fromImage), so
 * a model worker typed with the WebWorker lib alone failed to compile on them through ondevice.
 */
export interface OrtModule {
  readonly InferenceSession: { create(...args: never[]): Promise<unknown> }
  readonly Tensor: abstract new (...args: never[]) => unknown
}

/** The parts of onnxruntime this file uses, with onnxruntime's types (what an OrtModule is). */
interface OrtApi {
  readonly InferenceSession: typeof Ort.InferenceSession
  readonly Tensor: typeof Ort.Tensor
}

export interface OrtSessionOptions {
  readonly backend: Backend
  /** Weight format to load ('q4', 'q8', 'fp32', ...); picks the ONNX file names. */
  readonly dtype: string
  /** Shown in usage reports; default: config.json's `_name_or_path` or 'model'. */
  readonly modelId?: string
  /** Caps the context below config.json's max_position_embeddings (to bound cache memory). */
  readonly contextLength?: number
  /** Overrides the ONNX file names derived from model_type and dtype. */
  readonly layout?: OnnxLayout
  /**
   * Extra ORT session options (onnxruntime's `InferenceSession.SessionOptions`, merged over ours;
   * declared as `object` for the reason OrtModule is).
   */
  readonly sessionOptions?: object
  /** WebGPU: keep outputs (the cache) in GPU buffers between steps. Default true; false copies to the CPU each step. */
  readonly keepCacheOnGpu?: boolean
  /** Recurrent-state checkpoints kept for rewind (Qwen3.5). Default 2. */
  readonly maxCheckpoints?: number
}

/**
 * A loaded model: the ONNX Runtime session(s) that hold the weights, and the plan for feeding
 * them. Generation sessions over it (`createSession`) each keep their own cache and share the
 * weights: the cache lives in JavaScript tensors fed to every run as inputs, so nothing of one
 * generation stays in the InferenceSession for the next run to see.
 */
export interface OrtModel {
  readonly config: RuntimeModelConfig
  readonly layout: OnnxLayout
  readonly backend: Backend
  readonly dtype: string
  readonly modelId: string
  readonly contextLength: number
  /** A new session over these weights, with an empty cache of its own. */
  createSession(): OrtModelSession
  /**
   * Drops the model's own hold on the weights: they are released once every session made from it
   * is disposed too. `createSession` fails afterwards.
   */
  dispose(): Promise<void>
}

export interface OrtModelSession extends ModelSession {
  readonly config: RuntimeModelConfig
  readonly layout: OnnxLayout
  /** The decoder graph's input names, as published (for diagnostics). */
  readonly inputNames: readonly string[]
}

type StateKind = 'key_value' | 'conv' | 'recurrent'

interface StateInput {
  readonly input: string
  readonly output: string
  readonly kind: StateKind
  readonly layer: number
  readonly type: Ort.Tensor.Type
  /** Shape of the empty state (batch 1, sequence 0 for key/value). */
  readonly emptyDims: readonly number[]
}

interface Checkpoint {
  readonly length: number
  readonly states: ReadonlyMap<
    string,
    { readonly type: Ort.Tensor.Type; readonly dims: readonly number[]; readonly data: Ort.Tensor.DataType }
  >
}

const executionProvidersByBackend: Record<Backend, readonly string[]> = {
  wasm: ['wasm'],
  'ort-wasm': ['wasm'],
  // ORT falls back to WASM inside the session for any op WebGPU lacks.
  webgpu: ['webgpu', 'wasm'],
  native: ['cpu'],
}

/**
 * Builds a ModelSession from a package's files. `ort` is onnxruntime-web (wasm/webgpu) or
 * onnxruntime-node (native). The session owns its weights: disposing it releases them. Use
 * `openOrtModel` for several sessions over one copy of the weights.
 */
export async function createOrtSession(
  ort: OrtModule,
  reader: PackageReader,
  options: OrtSessionOptions,
): Promise<OrtModelSession> {
  const model = await openOrtModel(ort, reader, options)
  const session = model.createSession()
  await model.dispose()
  return session
}

/** Loads a package's weights once, for any number of sessions (see OrtModel). */
export async function openOrtModel(
  module: OrtModule,
  reader: PackageReader,
  options: OrtSessionOptions,
): Promise<OrtModel> {
  const ort = module as unknown as OrtApi
  if (!options || !backends.includes(options.backend)) {
    throw new InvalidArgumentError(
      'backend',
      `backend must be one of ${backends.join(', ')}, got ${JSON.stringify(options?.backend)}.`,
    )
  }
  const dtype = normalizeDtype(options.dtype)
  let configJson: unknown
  try {
    configJson = JSON.parse(await reader.readText('config.json'))
  } catch (error) {
    if (error instanceof SyntaxError)
      throw new ModelError('model_invalid', `config.json is not valid JSON: ${error.message}.`, {
        cause: error,
      })
    throw error
  }
  const config = readRuntimeConfig(configJson, 'the package')
  const contextLength = sessionContextLength(options.contextLength, config.contextLength)
  const layout = options.layout ?? onnxLayout(config.modelType, dtype)
  const modelId =
    options.modelId ??
    (typeof (configJson as { _name_or_path?: unknown })._name_or_path === 'string'
      ? (configJson as { _name_or_path: string })._name_or_path
      : 'model')

  const sessions: Ort.InferenceSession[] = []
  try {
    const embed =
      layout.kind === 'split' ? await openGraph(ort, reader, layout.embedTokens, options) : undefined
    if (embed) sessions.push(embed)
    const decoder = await openGraph(
      ort,
      reader,
      layout.kind === 'split' ? layout.decoder : layout.model,
      options,
    )
    sessions.push(decoder)
    const plan = planInputs(decoder, config, layout)
    return new SharedOrtModel(ort, {
      embed,
      decoder,
      plan,
      config,
      layout,
      backend: options.backend,
      dtype,
      modelId,
      contextLength,
      maxCheckpoints: options.maxCheckpoints ?? 2,
    })
  } catch (error) {
    await Promise.all(sessions.map((session) => session.release().catch(() => undefined)))
    throw error
  }
}

async function openGraph(
  ort: OrtApi,
  reader: PackageReader,
  path: string,
  options: OrtSessionOptions,
): Promise<Ort.InferenceSession> {
  const shards = await findExternalData(reader, path)
  const sessionOptions: Ort.InferenceSession.SessionOptions = {
    executionProviders: [...executionProvidersByBackend[options.backend]],
    graphOptimizationLevel: 'all',
    // Errors only (ORT's default is warnings): a successful load logs none of ORT's warnings,
    // which the app's user can do nothing about (on WebGPU, "Some nodes were not assigned to the
    // preferred execution providers" on every load, at console.error level, in the page and the
    // worker). A failed load still throws with ORT's message.
    logSeverityLevel: 3,
    ...(options.sessionOptions as Ort.InferenceSession.SessionOptions | undefined),
  }
  try {
    const local = options.backend === 'native' ? reader.localPath?.(path) : undefined
    if (local !== undefined) {
      // From a path, onnxruntime-node maps the weights and finds `.onnx_data` next to the file.
      await reader.readBytes(path).then(() => undefined) // verifies the file before native code reads it
      return await ort.InferenceSession.create(local, sessionOptions)
    }
    if (options.backend === 'native' && shards.length > 0) {
      throw new ModelError(
        'model_invalid',
        `${path} keeps its weights in ${shards.join(', ')}; the native backend (ONNX Runtime for Node) loads external data only from files, so give the reader a localPath().`,
      )
    }
    const bytes = await reader.readBytes(path)
    if (shards.length > 0) {
      const externalData = await Promise.all(
        shards.map(async (shard) => ({
          path: shard.slice(shard.lastIndexOf('/') + 1),
          data: await reader.readBytes(shard),
        })),
      )
      ;(sessionOptions as { externalData?: unknown }).externalData = externalData
    }
    if (
      options.backend === 'webgpu' &&
      (options.keepCacheOnGpu ?? true) &&
      (options.sessionOptions as Ort.InferenceSession.SessionOptions | undefined)?.preferredOutputLocation ===
        undefined
    ) {
      // Keep every output (the present.* caches above all) on the GPU so the next step feeds
      // them back without a round trip through the CPU; only the last logits row is read back.
      sessionOptions.preferredOutputLocation = 'gpu-buffer'
    }
    return await ort.InferenceSession.create(bytes, sessionOptions)
  } catch (error) {
    if (error instanceof ModelError || (error as { code?: string }).code === 'model_not_found') throw error
    // A page whose Content-Security-Policy lacks 'wasm-unsafe-eval': ORT's "no available backend
    // found" wraps the browser's CompileError, which names the directive but not the fix.
    const message = String((error as { message?: unknown } | undefined)?.message ?? error)
    if (/content security policy/i.test(message))
      throw new BackendError(
        'backend_unavailable',
        `The page's Content-Security-Policy does not allow compiling WebAssembly, which ONNX Runtime (${options.backend}) needs: add 'wasm-unsafe-eval' to its script-src ('unsafe-eval' is not needed). ONNX Runtime said: ${message}`,
        { cause: error },
      )
    const wrapped = toOndeviceError(error)
    if (wrapped.code !== 'internal') throw wrapped
    throw new BackendError(
      'backend_failed',
      `ONNX Runtime (${options.backend}) could not load ${path}: ${(error as Error).message}`,
      { cause: error },
    )
  }
}

/** `x.onnx_data`, `x.onnx_data_1`, ... as far as they exist. */
async function findExternalData(reader: PackageReader, path: string): Promise<string[]> {
  const shards: string[] = []
  for (let index = 0; index < 64; index++) {
    const candidate = index === 0 ? `${path}_data` : `${path}_data_${index}`
    const exists = reader.exists
      ? await reader.exists(candidate)
      : await reader.readBytes(candidate).then(
          () => true,
          () => false,
        )
    if (!exists) break
    shards.push(candidate)
  }
  return shards
}

interface InputPlan {
  readonly tokenInput: 'input_ids' | 'inputs_embeds'
  readonly states: readonly StateInput[]
  readonly positionRank: 2 | 3
  readonly others: ReadonlySet<string>
  readonly logitsOutput: string
  /** Shape of num_logits_to_keep as the graph declares it: a scalar ([]) or [1]. */
  readonly logitsToKeepDims: readonly number[]
}

const stateName = /^(?:past_key_values\.(\d+)\.(key|value)|past_conv\.(\d+)|past_recurrent\.(\d+))$/

/** Maps each decoder input to what feeds it, and checks the graph against config.json. */
function planInputs(
  decoder: Ort.InferenceSession,
  config: RuntimeModelConfig,
  layout: OnnxLayout,
): InputPlan {
  const states: StateInput[] = []
  const others = new Set<string>()
  let tokenInput: InputPlan['tokenInput'] | undefined
  let positionRank: 2 | 3 = 2
  let logitsToKeepDims: number[] = []
  const metadata = new Map(decoder.inputMetadata.map((entry) => [entry.name, entry]))
  for (const name of decoder.inputNames) {
    const meta = metadata.get(name)
    const shape = meta?.isTensor ? meta.shape : []
    const type = (meta?.isTensor ? meta.type : 'float32') as Ort.Tensor.Type
    const match = stateName.exec(name)
    if (match) {
      const kind: StateKind =
        match[1] !== undefined ? 'key_value' : match[3] !== undefined ? 'conv' : 'recurrent'
      const layer = Number(match[1] ?? match[3] ?? match[4])
      const output = name.startsWith('past_key_values.')
        ? `present.${name.slice('past_key_values.'.length)}`
        : name.replace(/^past_/, 'present_')
      if (!decoder.outputNames.includes(output)) {
        throw new ModelError(
          'model_invalid',
          `The decoder has input ${name} but no output ${output} to carry it to the next step. Rebuild the package.`,
        )
      }
      const emptyDims = shape.map((dimension, axis) => {
        if (axis === 0) return 1
        if (kind === 'key_value' && axis === 2) return 0
        if (typeof dimension !== 'number') {
          throw new ModelError(
            'model_invalid',
            `Input ${name} has a symbolic dimension ${JSON.stringify(dimension)} at axis ${axis}; ondevice needs the cache's head and width dimensions fixed in the graph.`,
          )
        }
        return dimension
      })
      states.push({ input: name, output, kind, layer, type, emptyDims })
      continue
    }
    switch (name) {
      case 'input_ids':
      case 'inputs_embeds':
        tokenInput = name
        break
      case 'position_ids':
        positionRank = shape.length === 3 ? 3 : 2
        others.add(name)
        break
      case 'num_logits_to_keep':
      case 'logits_to_keep':
        logitsToKeepDims = shape.length === 0 ? [] : [1]
        others.add(name)
        break
      case 'attention_mask':
      case 'use_cache_branch':
        others.add(name)
        break
      default:
        throw new ModelError(
          'model_invalid',
          `The decoder has an input ondevice does not know how to feed: ${name}. Supported: input_ids or inputs_embeds, attention_mask, position_ids, past_key_values.N.key/value, past_conv.N, past_recurrent.N.`,
        )
    }
  }
  if (!tokenInput)
    throw new ModelError('model_invalid', 'The decoder has neither input_ids nor inputs_embeds.')
  if (layout.kind === 'split' && tokenInput !== 'inputs_embeds')
    throw new ModelError(
      'model_invalid',
      'A split (embed_tokens + decoder) package needs a decoder that takes inputs_embeds.',
    )
  if (layout.kind === 'single' && tokenInput !== 'input_ids')
    throw new ModelError('model_invalid', 'A single-graph package needs a model that takes input_ids.')

  // The graph must carry exactly the caches config.json's layers call for.
  const expectLayers = (kind: StateKind, layerType: string): void => {
    const wanted = config.layerTypes.flatMap((type, index) => (type === layerType ? [index] : []))
    const have = [...new Set(states.filter((state) => state.kind === kind).map((state) => state.layer))].sort(
      (a, b) => a - b,
    )
    if (wanted.join(',') !== have.join(',')) {
      throw new ModelError(
        'model_invalid',
        `The ONNX inputs do not match config.json: config.json (${config.modelType}, ${config.numHiddenLayers} layers) calls for ${kind} cache inputs on layers [${wanted.join(', ')}], the graph has them on [${have.join(', ')}]. The package's config.json and ONNX files come from different models.`,
      )
    }
  }
  expectLayers('key_value', 'full_attention')
  expectLayers('conv', 'linear_attention')
  expectLayers('recurrent', 'linear_attention')
  const logitsOutput = decoder.outputNames.includes('logits') ? 'logits' : undefined
  if (!logitsOutput)
    throw new ModelError(
      'model_invalid',
      `The decoder has no 'logits' output (outputs: ${decoder.outputNames.join(', ')}).`,
    )
  const logitsMeta = decoder.outputMetadata.find((entry) => entry.name === logitsOutput)
  const vocabulary = logitsMeta?.isTensor ? logitsMeta.shape.at(-1) : undefined
  if (typeof vocabulary === 'number' && vocabulary !== config.vocabularySize) {
    throw new ModelError(
      'model_invalid',
      `The ONNX logits have ${vocabulary} entries but config.json says vocab_size ${config.vocabularySize}. The package's config.json and ONNX files come from different models.`,
    )
  }
  return { tokenInput, states, positionRank, others, logitsOutput, logitsToKeepDims }
}

interface SessionParts {
  readonly embed: Ort.InferenceSession | undefined
  readonly decoder: Ort.InferenceSession
  readonly plan: InputPlan
  readonly config: RuntimeModelConfig
  readonly layout: OnnxLayout
  readonly backend: Backend
  readonly dtype: string
  readonly modelId: string
  readonly contextLength: number
  readonly maxCheckpoints: number
}

/**
 * The weights and whoever holds them: the model itself until its dispose(), and each live
 * session. The InferenceSessions are released when the last hold goes.
 *
 * onnxruntime-node takes several run() calls on one InferenceSession (ONNX Runtime's Run is
 * thread-safe; each run has its own inputs and outputs; the 1.30 binding runs each one whole on
 * the JavaScript thread, so they interleave step by step), so its runs are not held back here.
 * onnxruntime-web's are taken one at a time per model: its WebGPU build suspends inside a run
 * (asyncify) and binds a session's outputs once per InferenceSession, so two runs in flight on
 * one session would step on each other. Plain WASM runs whole on the calling thread anyway.
 */
class SharedOrtModel implements OrtModel {
  readonly parts: SessionParts
  readonly #ort: OrtApi
  readonly #concurrent: boolean
  #holds = 1
  #ownHold = true
  #released: Promise<void> | undefined
  #runs: Promise<unknown> = Promise.resolve()

  constructor(ort: OrtApi, parts: SessionParts) {
    this.#ort = ort
    this.parts = parts
    this.#concurrent = parts.backend === 'native'
  }

  get config(): RuntimeModelConfig {
    return this.parts.config
  }
  get layout(): OnnxLayout {
    return this.parts.layout
  }
  get backend(): Backend {
    return this.parts.backend
  }
  get dtype(): string {
    return this.parts.dtype
  }
  get modelId(): string {
    return this.parts.modelId
  }
  get contextLength(): number {
    return this.parts.contextLength
  }

  createSession(): OrtModelSession {
    if (!this.#ownHold)
      throw new BackendError('backend_failed', 'This model was disposed; load the model again.')
    this.#holds++
    return new OrtSessionImpl(this.#ort, this)
  }

  /** Runs one step's graphs: at once on native, one step after the other on onnxruntime-web. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (this.#concurrent) return work()
    const next = this.#runs.then(work, work)
    this.#runs = next.catch(() => undefined)
    return next
  }

  release(): Promise<void> {
    this.#holds--
    if (this.#holds > 0) return Promise.resolve()
    this.#released ??= Promise.all([this.parts.embed?.release(), this.parts.decoder.release()]).then(
      () => undefined,
    )
    return this.#released
  }

  dispose(): Promise<void> {
    if (!this.#ownHold) return this.#released ?? Promise.resolve()
    this.#ownHold = false
    return this.release()
  }
}

class OrtSessionImpl implements OrtModelSession {
  readonly info: ModelSessionInfo
  readonly config: RuntimeModelConfig
  readonly layout: OnnxLayout
  readonly inputNames: readonly string[]
  readonly #ort: OrtApi
  readonly #model: SharedOrtModel
  readonly #parts: SessionParts
  readonly #hasRecurrent: boolean
  #tokens: number[] = []
  #state = new Map<string, Ort.Tensor>()
  #checkpoints: Checkpoint[] = []
  #queue: Promise<unknown> = Promise.resolve()
  #disposed = false

  constructor(ort: OrtApi, model: SharedOrtModel) {
    this.#ort = ort
    this.#model = model
    const parts = model.parts
    this.#parts = parts
    this.config = parts.config
    this.layout = parts.layout
    this.inputNames = parts.decoder.inputNames
    this.#hasRecurrent = parts.plan.states.some((state) => state.kind !== 'key_value')
    this.info = {
      modelId: parts.modelId,
      vocabularySize: parts.config.vocabularySize,
      contextLength: parts.contextLength,
      backend: parts.backend,
      dtype: parts.dtype,
    }
    this.#resetState()
  }

  get tokens(): readonly number[] {
    return this.#tokens
  }

  append(tokenIds: readonly number[], options: RunOptions = {}): Promise<Float32Array> {
    return this.#serial(() => this.#append(tokenIds, options))
  }

  rewind(length: number): Promise<boolean> {
    return this.#serial(() => this.#rewind(length))
  }

  reset(): Promise<void> {
    return this.#serial(async () => {
      this.#checkDisposed()
      this.#resetState()
      this.#checkpoints = []
    })
  }

  dispose(): Promise<void> {
    return this.#serial(async () => {
      if (this.#disposed) return
      this.#disposed = true
      this.#disposeState(this.#state)
      // The model keeps a disposed session listed until it is disposed itself: drop the cache's
      // tensors (CPU ones are freed by the garbage collector only when nothing holds them).
      this.#state = new Map()
      this.#tokens = []
      this.#checkpoints = []
      await this.#model.release()
    })
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work)
    this.#queue = next.catch(() => undefined)
    return next
  }

  #checkDisposed(): void {
    if (this.#disposed)
      throw new BackendError('backend_failed', 'This model session was disposed; load the model again.')
  }

  #resetState(): void {
    this.#disposeState(this.#state)
    this.#tokens = []
    this.#state = new Map(
      this.#parts.plan.states.map((state) => [
        state.input,
        new this.#ort.Tensor(
          state.type as 'float32',
          zeros(state.type, product(state.emptyDims)) as Float32Array,
          state.emptyDims,
        ),
      ]),
    )
  }

  #disposeState(state: Map<string, Ort.Tensor>): void {
    for (const tensor of state.values()) if (tensor.location !== 'cpu') tensor.dispose()
  }

  async #append(tokenIds: readonly number[], options: RunOptions): Promise<Float32Array> {
    this.#checkDisposed()
    if (!Array.isArray(tokenIds) || tokenIds.length === 0)
      throw new InvalidArgumentError('tokenIds', 'append() needs at least one token id.')
    for (const id of tokenIds) {
      if (!Number.isInteger(id) || id < 0 || id >= this.info.vocabularySize) {
        throw new InvalidArgumentError(
          'tokenIds',
          `Token id ${id} is outside the vocabulary (0..${this.info.vocabularySize - 1}).`,
        )
      }
    }
    const past = this.#tokens.length
    const total = past + tokenIds.length
    if (total > this.info.contextLength) {
      throw new ContextLengthError(
        `The cache would hold ${total} tokens but the context is ${this.info.contextLength}: shorten the prompt or the conversation, or lower max tokens.`,
      )
    }
    if (options.signal?.aborted) throw new AbortedError()
    const { Tensor } = this.#ort
    const { plan } = this.#parts
    const ids = new Tensor(
      'int64',
      BigInt64Array.from(tokenIds, (id) => BigInt(id)),
      [1, tokenIds.length],
    )
    const feeds: Record<string, Ort.Tensor> = {}
    try {
      if (plan.tokenInput === 'inputs_embeds') {
        const embed = this.#parts.embed as Ort.InferenceSession
        const embedded = await this.#model.exclusive(() => embed.run({ input_ids: ids }))
        feeds.inputs_embeds = embedded.inputs_embeds ?? (Object.values(embedded)[0] as Ort.Tensor)
        if (options.signal?.aborted) throw new AbortedError()
      } else {
        feeds.input_ids = ids
      }
      if (plan.others.has('attention_mask'))
        feeds.attention_mask = new Tensor('int64', new BigInt64Array(total).fill(1n), [1, total])
      if (plan.others.has('position_ids')) {
        const positions = BigInt64Array.from(tokenIds, (_, index) => BigInt(past + index))
        feeds.position_ids =
          plan.positionRank === 3
            ? new Tensor(
                'int64',
                BigInt64Array.from(
                  { length: 3 * tokenIds.length },
                  (_, index) => positions[index % tokenIds.length] as bigint,
                ),
                [3, 1, tokenIds.length],
              )
            : new Tensor('int64', positions, [1, tokenIds.length])
      }
      for (const name of ['num_logits_to_keep', 'logits_to_keep']) {
        if (plan.others.has(name))
          feeds[name] = new Tensor('int64', BigInt64Array.of(1n), plan.logitsToKeepDims)
      }
      if (plan.others.has('use_cache_branch'))
        feeds.use_cache_branch = new Tensor('bool', Uint8Array.of(past > 0 ? 1 : 0), [1])
      for (const state of plan.states) feeds[state.input] = this.#state.get(state.input) as Ort.Tensor

      const outputs = await this.#model.exclusive(() => this.#parts.decoder.run(feeds))
      const logitsTensor = outputs[plan.logitsOutput] as Ort.Tensor
      const logits = await lastRow(logitsTensor, this.info.vocabularySize)
      const next = new Map<string, Ort.Tensor>()
      for (const state of plan.states) next.set(state.input, outputs[state.output] as Ort.Tensor)
      this.#disposeState(this.#state)
      this.#state = next
      const kept = new Set(next.values())
      for (const tensor of Object.values(outputs))
        if (!kept.has(tensor) && tensor.location !== 'cpu') tensor.dispose()
      if (feeds.inputs_embeds && feeds.inputs_embeds.location !== 'cpu') feeds.inputs_embeds.dispose()
      // One by one: a prompt chunk can be longer than a call's argument limit.
      for (const id of tokenIds) this.#tokens.push(id)
      // A prompt chunk or a turn: remember the recurrent state there so a later conversation
      // that diverges after this point can rewind instead of re-feeding.
      if (this.#hasRecurrent && (options.checkpoint ?? tokenIds.length > 1)) await this.#checkpoint()
      return logits
    } catch (error) {
      if (error instanceof AbortedError || error instanceof InvalidArgumentError) throw error
      if (error instanceof Error && 'code' in error) throw error
      throw new BackendError(
        'backend_failed',
        `ONNX Runtime (${this.info.backend}) failed while running the model: ${(error as Error).message}`,
        { cause: error, isRetryable: false },
      )
    }
  }

  async #checkpoint(): Promise<void> {
    const states = new Map<
      string,
      { type: Ort.Tensor.Type; dims: readonly number[]; data: Ort.Tensor.DataType }
    >()
    for (const state of this.#parts.plan.states) {
      if (state.kind === 'key_value') continue
      const tensor = this.#state.get(state.input) as Ort.Tensor
      states.set(state.input, {
        type: tensor.type,
        dims: tensor.dims,
        data: copyData(await tensor.getData()),
      })
    }
    this.#checkpoints = [
      ...this.#checkpoints.filter((checkpoint) => checkpoint.length !== this.#tokens.length),
      { length: this.#tokens.length, states },
    ].slice(-this.#parts.maxCheckpoints)
  }

  async #rewind(length: number): Promise<boolean> {
    this.#checkDisposed()
    if (!Number.isInteger(length) || length < 0 || length > this.#tokens.length) {
      throw new InvalidArgumentError(
        'length',
        `rewind() needs an integer from 0 to ${this.#tokens.length} (the tokens in the cache), got ${length}.`,
      )
    }
    if (length === this.#tokens.length) return true
    if (length === 0) {
      this.#resetState()
      this.#checkpoints = []
      return true
    }
    let checkpoint: Checkpoint | undefined
    if (this.#hasRecurrent) {
      checkpoint = this.#checkpoints.find((candidate) => candidate.length === length)
      if (!checkpoint) return false
    }
    const { Tensor } = this.#ort
    const next = new Map<string, Ort.Tensor>()
    for (const state of this.#parts.plan.states) {
      const tensor = this.#state.get(state.input) as Ort.Tensor
      if (state.kind === 'key_value') {
        next.set(
          state.input,
          new Tensor(
            tensor.type as 'float32',
            sliceSequence(await tensor.getData(), tensor.dims, length) as Float32Array,
            [tensor.dims[0] as number, tensor.dims[1] as number, length, tensor.dims[3] as number],
          ),
        )
      } else {
        const saved = checkpoint?.states.get(state.input)
        if (!saved) return false
        next.set(
          state.input,
          new Tensor(saved.type as 'float32', copyData(saved.data) as Float32Array, saved.dims),
        )
      }
    }
    this.#disposeState(this.#state)
    this.#state = next
    this.#tokens = this.#tokens.slice(0, length)
    this.#checkpoints = this.#checkpoints.filter((candidate) => candidate.length <= length)
    return true
  }
}

function product(dims: readonly number[]): number {
  return dims.reduce((total, dimension) => total * dimension, 1)
}

function zeros(type: Ort.Tensor.Type, length: number): Ort.Tensor.DataType {
  switch (type) {
    case 'float32':
      return new Float32Array(length)
    case 'float16':
      // Float16 zeros are all-zero bits; ORT takes them as Uint16Array.
      return new Uint16Array(length)
    default:
      throw new ModelError(
        'model_invalid',
        `Cache tensors of type ${type} are not supported (float32 or float16).`,
      )
  }
}

function copyData(data: Ort.Tensor.DataType): Ort.Tensor.DataType {
  return (data as Float32Array).slice() as Ort.Tensor.DataType
}

/** [B, H, P, D] → [B, H, length, D]. */
function sliceSequence(
  data: Ort.Tensor.DataType,
  dims: readonly number[],
  length: number,
): Ort.Tensor.DataType {
  const [batch, heads, sequence, width] = dims as [number, number, number, number]
  const source = data as Float32Array
  const out = new (source.constructor as Float32ArrayConstructor)(batch * heads * length * width)
  for (let row = 0; row < batch * heads; row++) {
    out.set(
      source.subarray(row * sequence * width, row * sequence * width + length * width),
      row * length * width,
    )
  }
  return out as Ort.Tensor.DataType
}

/** The logits of the last position, as a fresh Float32Array the caller may modify. */
async function lastRow(logits: Ort.Tensor, vocabulary: number): Promise<Float32Array> {
  const data = logits.location === 'cpu' ? logits.data : await logits.getData()
  const start = data.length - vocabulary
  if (logits.type === 'float32') {
    // Every ORT build hands out each run's outputs in a new buffer (node copies out of native
    // memory, web out of the WASM heap or the GPU) that nothing else keeps, so one row long
    // (num_logits_to_keep = 1, every decode step) it is already ours: no second copy per token.
    // Longer (all positions), copy the row so the rest can be freed.
    return start === 0 ? (data as Float32Array) : (data as Float32Array).slice(start)
  }
  if (logits.type === 'float16') {
    const half = data as Uint16Array
    const out = new Float32Array(vocabulary)
    for (let index = 0; index < vocabulary; index++) out[index] = halfToFloat(half[start + index] as number)
    return out
  }
  throw new ModelError('model_invalid', `Logits of type ${logits.type} are not supported.`)
}

function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exponent = (bits >> 10) & 0x1f
  const fraction = bits & 0x3ff
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024)
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024)
}

export { layoutFiles }
