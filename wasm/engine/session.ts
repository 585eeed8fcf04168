// core's ModelSession over the engine: validates every append (ids in the vocabulary, the
// context not exceeded, not disposed), keeps the token list, and hands the math to the
// architecture's EngineModel. `generate()` in core runs on it unchanged.

import { sessionContextLength } from '../../core/context-length.ts'
import {
  AbortedError,
  BackendError,
  ContextLengthError,
  InvalidArgumentError,
  ModelError,
  type OndeviceError,
} from '../../core/errors.ts'
import { yieldToEventLoop } from '../../core/event-loop.ts'
import {
  type ModelConfig,
  type ModelDtype,
  onnxFileNames,
  parseModelConfig,
} from '../../core/model-package.ts'
import type { ModelSession, ModelSessionInfo, RunOptions } from '../../core/model-session.ts'
import {
  chooseDotForms,
  type DotFormRequest,
  type DotForms,
  dotFormRequest,
  dotFormsToWarm,
} from './dot-form.ts'
import { Kernels } from './kernels.ts'
import { modelLoaders } from './models/index.ts'
import { EngineUnsupportedError, LoadContext } from './models/load-context.ts'
import type { EngineModel } from './models/types.ts'
import { OnnxWeights, type WeightFileReader } from './onnx-weights.ts'
import { warmUpKernels, warmUpShape } from './warm-up.ts'

export interface EngineSessionOptions {
  /** The compiled engine.wasm (see node.ts / browser hosts for how to get it). */
  readonly module: WebAssembly.Module
  /** The package's files. */
  readonly files: WeightFileReader
  /** Weight format to load: 'fp32' | 'fp16' | 'q8' | 'q4'. */
  readonly dtype: string
  /** Model id for usage reports (default: config.json's _name_or_path or 'model'). */
  readonly modelId?: string
  /** Caps the context below the model's. */
  readonly contextLength?: number
  /** The config.json text or object, when the caller already has it (otherwise read from files). */
  readonly config?: ModelConfig
  /** Helper threads splitting rows (Node: nodeEngineThreads(n) from ./node.ts); default one thread. */
  readonly threads?: EngineThreads
  /**
   * Run every kernel the model calls on a tiny problem first (./warm-up.ts, a few milliseconds), so
   * the host has optimized them before the first prompt. Default true; false skips it (tests show
   * the results are the same bits either way; benchmarks measure what it saves).
   */
  readonly warmUp?: boolean
  /**
   * The relaxed-SIMD builds' form of the 4-bit products (dot-form.ts): 'auto' (the default)
   * measures both when the session is created and runs the faster for prefill and for decode;
   * 'pairs' or 'dot-add' forces one (tests, diagnosis). Left out: the ONDEVICE_ENGINE_DOT
   * environment variable where the host has one, else 'auto'. The logits are the same bits
   * whichever runs. Ignored by the plain builds, which have one form.
   */
  readonly dot?: DotFormRequest
  /**
   * Sessions the instance is sized for (default 1): each holds a KV cache of the context, so with
   * more, a long context's caches share wasm32's 4 GiB (every cache's capacity is what fits this
   * many). Further sessions come from `session.createSession()` over the same weights.
   */
  readonly sessions?: number
}

/** What the engine runs, for load reports: the build and the relaxed builds' dot forms. */
export interface EngineBuild {
  /** 'relaxed' (engine-relaxed.wasm, engine-threads-relaxed.wasm) or 'plain'. */
  readonly simd: 'relaxed' | 'plain'
  /** The relaxed builds' 4-bit product forms and how they were chosen (absent: plain). */
  readonly dot?: DotForms
  /** 1 when the host asked for more threads but its helpers never started (absent: as asked). */
  readonly threads?: 1
  /** Why, when `threads` is 1 (the load's warning says it too). */
  readonly threadsReason?: string
}

/** How a host runs the engine on several threads over shared memory. */
export interface EngineThreads {
  /** Threads in all, the calling one included. */
  readonly count: number
  /** engine-threads.wasm (the same kernels over shared memory). */
  readonly module: WebAssembly.Module
  /**
   * Starts count - 1 helpers over the kernels' memory and attaches them (kernels.pool). A host
   * whose helpers may fail to start in time (browsers) gives up on them and resolves with the
   * reason the engine runs on one thread instead (no pool attached).
   */
  start(kernels: Kernels): Promise<string | undefined>
  /**
   * Gives back what the host made ahead of the first start when no start will take it (a load
   * that failed before its helpers started): a browser keeps those helpers for its next load, a
   * host may stop them. A no-op once started.
   */
  release?(): void
}

const engineDtypes: readonly string[] = ['fp32', 'fp16', 'q8', 'q4']

/** Whether the engine has a decoder for this model_type (config.json's). */
export function engineCoversModelType(modelType: string): boolean {
  return Object.hasOwn(modelLoaders, modelType)
}

/** Whether the engine has an architecture for this model_type and a kernel for this dtype. */
export function engineCovers(modelType: string, dtype: string): boolean {
  return engineCoversModelType(modelType) && engineDtypes.includes(dtype)
}

export async function createEngineSession(options: EngineSessionOptions): Promise<EngineSession> {
  try {
    return await openEngineSession(options)
  } catch (error) {
    // A load that failed before its helpers started (an option refused, a model or dtype the
    // engine does not cover, a bad graph) leaves none of them waiting: the host takes them back.
    // A no-op once they started (a failure after that closed the pool).
    options?.threads?.release?.()
    throw error
  }
}

async function openEngineSession(options: EngineSessionOptions): Promise<EngineSession> {
  if (!(options?.module instanceof WebAssembly.Module))
    throw new InvalidArgumentError(
      'module',
      'createEngineSession needs the compiled engine.wasm as a WebAssembly.Module.',
    )
  if (
    options.contextLength !== undefined &&
    (!Number.isInteger(options.contextLength) || options.contextLength < 1)
  )
    throw new InvalidArgumentError('contextLength', 'contextLength must be a positive integer.')
  if (options.warmUp !== undefined && typeof options.warmUp !== 'boolean')
    throw new InvalidArgumentError(
      'warmUp',
      `warmUp must be true or false (or left out for true), got ${JSON.stringify(options.warmUp)}.`,
    )
  if (
    options.sessions !== undefined &&
    (!Number.isInteger(options.sessions) || options.sessions < 1 || options.sessions > 256)
  )
    throw new InvalidArgumentError(
      'sessions',
      `sessions must be an integer from 1 to 256 (or left out for 1), got ${JSON.stringify(options.sessions)}.`,
    )
  // Validated before anything loads (a bad value, or ONDEVICE_ENGINE_DOT's, is the caller's error).
  const dot = dotFormRequest(options.dot)
  if (typeof options.dtype !== 'string')
    throw new InvalidArgumentError(
      'dtype',
      `dtype must be one of ${engineDtypes.join(', ')}, got ${JSON.stringify(options.dtype)}.`,
    )
  const config =
    options.config ?? parseModelConfig(new TextDecoder().decode(await options.files.readAll('config.json')))
  const loader = modelLoaders[config.modelType]
  if (!loader)
    throw new EngineUnsupportedError(
      `the WebAssembly engine has no ${config.modelType} decoder yet (it runs ${Object.keys(modelLoaders).join(', ')}).`,
    )
  if (!engineDtypes.includes(options.dtype))
    throw new EngineUnsupportedError(
      `the WebAssembly engine has no kernels for ${options.dtype} (it runs ${engineDtypes.join(', ')}).`,
    )
  let model: EngineModel
  // Set when the host gave up on its helper threads and the engine runs on this one alone.
  let oneThreadReason: string | undefined
  try {
    const names = onnxFileNames(config.modelType, options.dtype as ModelDtype)
    const graph = await OnnxWeights.open(options.files, names.model)
    const files: Record<string, OnnxWeights> = { model: graph }
    if (names.embedTokens) files.embedTokens = await OnnxWeights.open(options.files, names.embedTokens)
    const threads = options.threads && options.threads.count > 1 ? options.threads : undefined
    const kernels = threads
      ? await Kernels.create(threads.module, { shared: true })
      : await Kernels.create(options.module)
    // Before the weights load: the optimizing compiles it starts run in the background meanwhile.
    if (options.warmUp !== false)
      warmUpKernels(kernels, warmUpShape(config, options.dtype), kernels.relaxed ? dotFormsToWarm(dot) : [])
    if (threads) oneThreadReason = await threads.start(kernels)
    const contextLength = sessionContextLength(options.contextLength, config.maxPositionEmbeddings)
    try {
      model = await loader(
        new LoadContext({
          kernels,
          config,
          dtype: options.dtype,
          graph,
          files,
          contextLength,
          ...(options.sessions === undefined ? {} : { sessions: options.sessions }),
        }),
      )
      // After the weights: by then the optimizing compiles the warm-up started have landed, so
      // the probe times the code every later call runs (dot-form.ts). Only 4-bit models run them.
      if (kernels.relaxed && options.dtype === 'q4') chooseDotForms(kernels, dot)
    } catch (error) {
      // No helper thread outlives a load that failed (a bad tensor, a helper that died).
      await kernels.pool?.close()
      throw error
    }
  } finally {
    await options.files.close?.()
  }
  const modelId =
    options.modelId ?? (typeof config.raw._name_or_path === 'string' ? config.raw._name_or_path : 'model')
  return new EngineSession(model, modelId, {
    sessions: 0,
    broken: undefined,
    ...(oneThreadReason === undefined ? {} : { oneThreadReason }),
  })
}

/**
 * Further sessions after `first`: inside the instance of a session still open (one copy of the
 * weights); a new instance from `open` when every session was disposed, or when the instance has
 * no room left for another cache (a model loaded for fewer sessions than are asked of it).
 */
export function furtherEngineSessions(
  first: EngineSession,
  open: () => Promise<EngineSession>,
): () => Promise<EngineSession> {
  const live = new Set<EngineSession>([first])
  return async () => {
    for (const session of live) if (session.disposed) live.delete(session)
    const from = live.values().next().value
    let created: EngineSession
    try {
      created = from ? await from.createSession() : await open()
    } catch (error) {
      if (!(from && error instanceof ModelError && error.code === 'backend_unavailable')) throw error
      created = await open()
    }
    live.add(created)
    return created
  }
}

/**
 * What the sessions of one instance share: how many are open (the helper threads stop with the
 * last) and whether the helper threads failed, which breaks every session of the instance (the
 * memory may be half-written, the weights and working buffers included).
 */
interface EngineInstance {
  sessions: number
  broken: OndeviceError | undefined
  /** Why the instance runs on one thread although the host asked for more (its helpers never started). */
  readonly oneThreadReason?: string
}

export class EngineSession implements ModelSession {
  readonly info: ModelSessionInfo
  #model: EngineModel | undefined
  #tokens: number[] = []
  readonly #instance: EngineInstance
  /**
   * The call running on this session and those waiting for it: a long append gives the event loop
   * its turn between passes, so a second append, a rewind or a reset that comes meanwhile waits
   * instead of changing the cache under it.
   */
  #queue: Promise<unknown> = Promise.resolve()

  constructor(model: EngineModel, modelId: string, instance: EngineInstance) {
    this.#model = model
    this.#instance = instance
    instance.sessions++
    this.info = {
      modelId,
      vocabularySize: model.vocabularySize,
      contextLength: model.contextLength,
      backend: 'wasm',
      dtype: model.dtype,
      // One reduction order per output whatever the split (docs/wasm-engine.md, Kernels and
      // determinism): a next turn may resume at the end of the previous answer, not only at a turn
      // boundary, and still give a cold run's bits.
      splitInvariant: true,
    }
  }

  /** The build this session runs and, in the relaxed builds with 4-bit weights, the dot forms. */
  get build(): EngineBuild {
    const kernels = this.#live().kernels
    const reason = this.#instance.oneThreadReason
    const threads = reason === undefined ? {} : { threads: 1 as const, threadsReason: reason }
    return kernels.relaxed
      ? { simd: 'relaxed', ...(kernels.dot ? { dot: kernels.dot } : {}), ...threads }
      : { simd: 'plain', ...threads }
  }

  /** Whether dispose() was called (its cache went back to the instance). */
  get disposed(): boolean {
    return this.#model === undefined
  }

  get tokens(): readonly number[] {
    return this.#tokens
  }

  /** The architecture's model (tests and benchmarks reach the kernels through it). */
  get model(): EngineModel {
    return this.#live()
  }

  /**
   * A further session over this one's instance: the weights are shared, the cache is its own
   * (room for it was made at load by `sessions`; past that, it must still fit the 4 GiB).
   * Its passes and this one's run one at a time, as every append is synchronous.
   */
  async createSession(): Promise<EngineSession> {
    const model = this.#live()
    return new EngineSession(model.createSession(), this.info.modelId, this.#instance)
  }

  #live(): EngineModel {
    if (!this.#model)
      throw new ModelError('backend_unavailable', 'This session was disposed; load the model again.')
    if (this.#instance.broken) throw this.#instance.broken
    return this.#model
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work)
    // Settled without the result: a session kept after its last call (a disposed one a model still
    // lists) must not hold its last logits (~600 KiB at a 152k vocabulary).
    this.#queue = next.then(
      () => undefined,
      () => undefined,
    )
    return next
  }

  append(tokenIds: readonly number[], options: RunOptions = {}): Promise<Float32Array> {
    // Read now: the call may wait for another and runs over several turns of the event loop, while
    // the caller may reuse its array (what it passed is what runs and what tokens lists).
    const ids = Array.isArray(tokenIds) ? [...tokenIds] : tokenIds
    return this.#serial(() => this.#append(ids, options))
  }

  async #append(tokenIds: readonly number[], options: RunOptions): Promise<Float32Array> {
    const model = this.#live()
    if (!Array.isArray(tokenIds) || tokenIds.length === 0)
      throw new InvalidArgumentError('tokenIds', 'append() needs at least one token id.')
    for (const id of tokenIds)
      if (!Number.isInteger(id) || id < 0 || id >= this.info.vocabularySize)
        throw new InvalidArgumentError(
          'tokenIds',
          `Token id ${id} is outside the vocabulary (0..${this.info.vocabularySize - 1}).`,
        )
    const total = this.#tokens.length + tokenIds.length
    if (total > this.info.contextLength)
      throw new ContextLengthError(
        `The cache would hold ${total} tokens but the context is ${this.info.contextLength}: shorten the prompt or the conversation, or lower max tokens.`,
      )
    if (options.signal?.aborted) throw new AbortedError()
    let logits: Float32Array
    try {
      logits = await model.append(tokenIds, {
        checkpoint: options.checkpoint ?? tokenIds.length > 1,
        ...(options.signal ? { signal: options.signal } : {}),
        // A prompt is many passes of the calling thread: between them a server answers its other
        // requests and health checks, and a caller's abort lands (it stops the append there).
        between: async () => {
          options.onProgress?.()
          await yieldToEventLoop()
          this.#live()
        },
      })
    } catch (error) {
      const failure = model.kernels.pool?.failure
      if (failure) {
        // A helper died or stalled mid-pass: the cache and the outputs of that pass are not to be
        // trusted, so no rewind; the live helpers are stopped now, not when the caller disposes.
        this.#instance.broken = failure
        await model.kernels.pool?.close()
        throw failure
      }
      if (options.signal?.aborted) {
        // The cache may hold part of the append: cut it back to what the token list says.
        this.#restore(model)
        throw new AbortedError()
      }
      this.#restore(model)
      if (error instanceof Error && 'code' in error) throw error
      throw new BackendError(
        'backend_failed',
        `The WebAssembly engine failed while running the model: ${(error as Error).message}`,
        {
          cause: error,
        },
      )
    }
    // One by one: a prompt chunk can be longer than a call's argument limit.
    for (const id of tokenIds) this.#tokens.push(id)
    return logits
  }

  #restore(model: EngineModel): void {
    if (model.length !== this.#tokens.length && !model.rewind(this.#tokens.length)) {
      model.reset()
      this.#tokens = []
    }
  }

  rewind(length: number): Promise<boolean> {
    return this.#serial(async () => this.#rewind(length))
  }

  #rewind(length: number): boolean {
    const model = this.#live()
    if (!Number.isInteger(length) || length < 0 || length > this.#tokens.length)
      throw new InvalidArgumentError(
        'length',
        `rewind length must be an integer from 0 to ${this.#tokens.length}, got ${length}.`,
      )
    if (length === this.#tokens.length) return true
    if (!model.rewind(length)) return false
    this.#tokens.length = length
    return true
  }

  /**
   * The longest length up to `limit` that rewind() returns to. A read of the model's checkpoints
   * now, outside the queue: after an operation still queued, rewind() may say false (the caller
   * then resumes further back), never rewind somewhere else.
   */
  rewindableLength(limit: number): number {
    return this.#live().rewindableLength(Math.min(limit, this.#tokens.length))
  }

  reset(): Promise<void> {
    return this.#serial(async () => {
      this.#live().reset()
      this.#tokens = []
    })
  }

  async dispose(): Promise<void> {
    const model = this.#model
    this.#model = undefined
    if (!model) return
    // An append running now stops at its next pass (it finds the session disposed); its cache is
    // given away only once it has.
    await this.#queue
    this.#tokens = []
    // This session's cache goes back to the instance for a later session; no other is touched.
    model.release()
    // The last session drops the instance and its memory (the GC frees them); helper threads stop.
    if (--this.#instance.sessions === 0) await model.kernels.pool?.close()
  }
}
