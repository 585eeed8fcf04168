// createClient: one object that answers chats on the device when it can and on the edge when
// it can't, and hands an answer over mid-stream when the device fails or stalls. The router
// (route.ts) decides; this file carries the decision out: loading and probing the device model,
// background downloads, the fallback chain, the handoff, and the usage that says what ran where.
import type { ChatMessage } from '../core/chat-template.ts'
import {
  AbortedError,
  deserializeError,
  InvalidArgumentError,
  OndeviceError,
  serializeError,
  toOndeviceError,
} from '../core/errors.ts'
import { type SamplingOptions, samplingOptionNames } from '../core/sampling/index.ts'
import type {
  FinishPart,
  FinishReason,
  HandoffPart,
  Route,
  RoutePart,
  StreamPart,
  TextDeltaPart,
  Usage,
} from '../core/stream-parts.ts'
import { type DeviceHost, type DeviceModel, type DownloadProgress, defaultDeviceHost } from './device.ts'
import { EdgeClient } from './edge-client.ts'
import { Emitter } from './events.ts'
import {
  type ChatRequest,
  type ClientOptions,
  type SamplingRequest,
  validateChatRequest,
  validateClientOptions,
} from './options.ts'
import {
  type DeviceCapabilities,
  decideRoute,
  defaultThresholds,
  type PackageInfo,
  type RouteDecision,
  type RouteThresholds,
} from './route.ts'

export interface ChatResult {
  readonly text: string
  readonly finishReason: FinishReason
  readonly tokenIds: readonly number[]
  /** Prompt/completion tokens, timings, and `route` / `routeReason`: where it ran and why. */
  readonly usage: Usage
  readonly route: Route
  readonly routeReason: string
  /** Set when the device started the answer and the edge finished it. */
  readonly handoff?: { readonly reason: string; readonly completedTokens: number }
}

export interface ClientStatus {
  /** Where the next request would run ('none': nowhere, `reason` says why). */
  readonly route: 'device' | 'edge' | 'none'
  readonly reason: string
  readonly backgroundDownload: boolean
  /** The package is stored and verified on this device. */
  readonly cached: boolean
  /** The model is loaded in memory and probed. */
  readonly loaded: boolean
  /** A download is running (background or prepare()). */
  readonly downloading: boolean
  /** Decode speed the probe measured, once it ran. */
  readonly probeTokensPerSecond?: number
  readonly edge: { readonly configured: boolean; readonly reachable: boolean }
  readonly capabilities?: DeviceCapabilities
  readonly packageInfo?: PackageInfo
}

export interface ClientEvents {
  /** A request's route was decided (or changed by a fallback). */
  readonly route: RoutePart
  /** Package download progress (prepare(), a background download, or a download before the first answer). */
  readonly progress: DownloadProgress
  /** The device failed or stalled mid-answer and the edge took over. */
  readonly handoff: HandoffPart
  /** The package finished downloading and loading: the device answers from now on. */
  readonly ready: { readonly backend: string; readonly dtype: string; readonly probeTokensPerSecond: number }
  /** The background download of the package failed: network, HTTP, sha256 or storage (requests keep going to the edge). */
  readonly 'download-error': { readonly error: OndeviceError }
  /**
   * The package was there but the device could not load it: the runtime (ORT's files under
   * runtimeUrl), the backend, or the package's contents (requests keep going to the edge).
   */
  readonly 'load-error': { readonly error: OndeviceError }
}

export interface PrepareOptions {
  readonly onProgress?: (progress: DownloadProgress) => void
  readonly signal?: AbortSignal
}

export interface OndeviceClient {
  /** Answers a chat; resolves with the whole text and where it ran. Rejects with OndeviceError (attempts listed). */
  chat(request: ChatRequest): Promise<ChatResult>
  /** Streams a chat: a `route` part, text deltas, maybe a `handoff`, then `finish` (or `error`). */
  stream(request: ChatRequest): AsyncIterable<StreamPart>
  /** Downloads, verifies, loads and probes the device model now, so the first answer need not wait. */
  prepare(options?: PrepareOptions): Promise<ClientStatus>
  /** Where the next request would run and why; downloads nothing. */
  status(): Promise<ClientStatus>
  on<K extends keyof ClientEvents>(name: K, listener: (event: ClientEvents[K]) => void): () => void
  /** Frees the device model and stops background work. The client is unusable afterwards. */
  dispose(): Promise<void>
}

/** Advanced: how the client reaches the device (tests, custom hosts). */
export interface ClientInternals {
  /** Replaces the default device host (the runtime in Node, its Web Worker proxy in a browser). */
  readonly deviceHost?: DeviceHost | Promise<DeviceHost>
}

interface Plan {
  readonly decision: RouteDecision
  readonly capabilities?: DeviceCapabilities
  readonly packageInfo?: PackageInfo
  /** Why the device could not even be inspected (a bad package path), for the attempts list. */
  readonly deviceError?: OndeviceError
}

/** How the device part of an answer ended. */
type DeviceOutcome =
  | { readonly kind: 'finished' }
  | {
      readonly kind: 'failed'
      readonly error: OndeviceError
      /** Why to hand off, in words (slow decode, backend error). */
      readonly reason: string
      readonly tokenIds: readonly number[]
      readonly text: string
      readonly step: number
      readonly firstTokenAt: number | undefined
      readonly backend: string
      readonly dtype: string
      readonly promptTokens: number
    }

/** Failures of getting the package's bytes (the rest of a background load's failures are load errors). */
const downloadCodes: ReadonlySet<string> = new Set([
  'download_failed',
  'integrity_failed',
  'storage_quota_exceeded',
  'model_not_found',
])

const edgeRetryDelayMs = 30_000
const backgroundRetryDelayMs = 60_000

function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31)
}

function samplingOf(request: SamplingRequest): SamplingOptions {
  const sampling: Record<string, unknown> = {}
  for (const key of samplingOptionNames) {
    if (request[key] !== undefined) sampling[key] = request[key]
  }
  return sampling as SamplingOptions
}

/** One error that lists every attempt, keeping the class and code of the last failure. */
function chainError(attempts: readonly OndeviceError[]): OndeviceError {
  const last = attempts[attempts.length - 1]!
  if (attempts.length === 1) return last
  const summary = attempts.map((error, index) => `${index + 1}) ${error.message}`).join(' ')
  return deserializeError({
    ...last.toJSON(),
    message: `Every route failed: ${summary}`,
    attempts: attempts.map((error) => error.toJSON()),
  })
}

function isAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (error instanceof OndeviceError && error.code === 'aborted')
}

/** Iterates `parts` until `signal` aborts, then stops at once (and tells the source to stop). */
async function* untilAborted<T>(parts: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const iterator = parts[Symbol.asyncIterator]()
  let onAbort: (() => void) | undefined
  const aborted = new Promise<'aborted'>((resolve) => {
    onAbort = () => resolve('aborted')
    if (signal.aborted) resolve('aborted')
    else signal.addEventListener('abort', onAbort, { once: true })
  })
  let finished = false
  try {
    while (true) {
      const next = await Promise.race([iterator.next(), aborted])
      if (next === 'aborted') return
      if (next.done) {
        finished = true
        return
      }
      yield next.value
    }
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort)
    // An async generator that is mid-step settles its return() after that step: don't wait for it.
    if (!finished) void Promise.resolve(iterator.return?.()).catch(() => {})
  }
}

class Client implements OndeviceClient {
  readonly #options: ReturnType<typeof validateClientOptions>
  readonly #thresholds: RouteThresholds
  readonly #edge: EdgeClient | undefined
  readonly #events = new Emitter<ClientEvents>()
  readonly #hostPromise: Promise<DeviceHost | undefined>
  #model: Promise<DeviceModel> | undefined
  #loadedModel: DeviceModel | undefined
  #probeRate: number | undefined
  #downloading: Promise<DeviceModel> | undefined
  #edgeUnreachableUntil = 0
  #cachedPackage: PackageInfo | undefined
  #backgroundRetryAt = 0
  #disposed = false
  readonly #lifetime = new AbortController()

  constructor(options: unknown, internals: ClientInternals = {}) {
    this.#options = validateClientOptions(options)
    this.#thresholds = { ...defaultThresholds, ...this.#options.thresholds }
    this.#edge = this.#options.edge ? new EdgeClient(this.#options.edge) : undefined
    // Edge-only never touches the device (a Worker has no runtime to load).
    this.#hostPromise =
      this.#options.policy === 'edge-only'
        ? Promise.resolve(undefined)
        : internals.deviceHost
          ? Promise.resolve(internals.deviceHost)
          : defaultDeviceHost(
              this.#options.runtimeUrl === undefined ? {} : { runtimeUrl: this.#options.runtimeUrl },
            )
    this.#hostPromise.catch(() => {})
  }

  on<K extends keyof ClientEvents>(name: K, listener: (event: ClientEvents[K]) => void): () => void {
    return this.#events.on(name, listener)
  }

  #checkOpen(): void {
    if (this.#disposed)
      throw new OndeviceError(
        'invalid_argument',
        'This client was disposed: create a new one with createClient().',
      )
  }

  #edgeReachable(): boolean {
    return Date.now() >= this.#edgeUnreachableUntil
  }

  /** Decides without side effects: capabilities, package state, policy. */
  async #plan(): Promise<Plan> {
    const policy = this.#options.policy
    const edge = { configured: this.#edge !== undefined, reachable: this.#edgeReachable() }
    let hostError: OndeviceError | undefined
    const host = await this.#hostPromise.catch((error: unknown) => {
      hostError = toOndeviceError(error, 'backend_unavailable')
      return undefined
    })
    if (!host) {
      if (hostError && (policy === 'device-only' || !edge.configured)) throw hostError
      const capabilities: DeviceCapabilities = { wasm: false, online: true }
      const packageInfo: PackageInfo = { name: 'the model', downloadBytes: 0, cached: false }
      const why = hostError
        ? `the on-device runtime failed to start (${hostError.message})`
        : 'no on-device runtime in this environment (a Worker or server)'
      const decision: RouteDecision =
        policy === 'edge-only'
          ? decideRoute(capabilities, packageInfo, policy, this.#thresholds, { configured: edge.configured })
          : edge.configured
            ? { route: 'edge', reason: `${why}: answering from the edge` }
            : { route: 'none', reason: `${why} and no edge is configured` }
      return { decision, ...(hostError ? { deviceError: hostError } : {}) }
    }
    let capabilities = await host.capabilities()
    if (this.#probeRate !== undefined)
      capabilities = { ...capabilities, probeTokensPerSecond: this.#probeRate }
    // device-only answers however slow the device is: the probe only informs, it never vetoes.
    if (policy === 'device-only' && capabilities.probeTokensPerSecond !== undefined) {
      const { probeTokensPerSecond: _ignored, ...rest } = capabilities
      capabilities = rest
    }
    let packageInfo: PackageInfo
    try {
      // Once cached, a package stays cached: no need to ask the store (for a URL, the network) again.
      packageInfo = this.#cachedPackage ?? (await host.inspect(this.#options.model, this.#deviceOptions()))
      if (packageInfo.cached) this.#cachedPackage = packageInfo
    } catch (error) {
      const deviceError = toOndeviceError(error, 'model_invalid')
      if (policy === 'device-only' || !edge.configured || !capabilities.online || !edge.reachable)
        throw deviceError
      return {
        decision: {
          route: 'edge',
          reason: `the device can't use the package (${deviceError.message}): answering from the edge`,
        },
        capabilities,
        deviceError,
      }
    }
    if (this.#loadedModel && !packageInfo.cached) {
      packageInfo = { ...packageInfo, cached: true, downloadBytes: 0 }
      this.#cachedPackage = packageInfo
    }
    let decision = decideRoute(capabilities, packageInfo, policy, this.#thresholds, edge)
    // An edge remembered as unreachable is still tried when nothing else could answer.
    if (decision.route === 'none' && edge.configured && !edge.reachable) {
      decision = decideRoute(capabilities, packageInfo, policy, this.#thresholds, { configured: true })
    }
    return { decision, capabilities, packageInfo }
  }

  #deviceOptions(): { backend?: 'webgpu' | 'wasm' | 'native'; dtype?: string } {
    return {
      ...(this.#options.backend ? { backend: this.#options.backend } : {}),
      ...(this.#options.dtype ? { dtype: this.#options.dtype } : {}),
    }
  }

  /** Loads (downloading first if needed) and probes the device model once; concurrent callers share it. */
  #loadModel(onProgress?: (progress: DownloadProgress) => void, signal?: AbortSignal): Promise<DeviceModel> {
    if (!this.#model) {
      const load = (async () => {
        const host = await this.#hostPromise
        if (!host) throw new OndeviceError('backend_unavailable', 'No on-device runtime in this environment.')
        const model = await host.load(this.#options.model, {
          ...this.#deviceOptions(),
          onProgress: (progress) => {
            this.#events.emit('progress', progress)
            onProgress?.(progress)
          },
          signal: this.#lifetime.signal,
        })
        if (this.#disposed) {
          await model.dispose()
          throw new OndeviceError('aborted', 'The client was disposed while the model loaded.')
        }
        // Capability flags don't predict speed: a short run on this device does.
        this.#probeRate = await model.probe(this.#lifetime.signal)
        this.#loadedModel = model
        this.#events.emit('ready', {
          backend: model.backend,
          dtype: model.dtype,
          probeTokensPerSecond: this.#probeRate,
        })
        return model
      })()
      this.#model = load
      this.#downloading = load
      load.then(
        () => {
          this.#downloading = undefined
        },
        () => {
          // A failed load must not stick: the next request (or prepare) tries again.
          if (this.#model === load) this.#model = undefined
          this.#downloading = undefined
        },
      )
    }
    const model = this.#model
    if (!signal) return model
    return Promise.race([
      model,
      new Promise<never>((_, reject) => {
        if (signal.aborted) reject(new AbortedError())
        signal.addEventListener('abort', () => reject(new AbortedError()), { once: true })
      }),
    ])
  }

  /** Drops a model that failed mid-answer (device lost, out of memory): the next request reloads it. */
  async #dropModel(): Promise<void> {
    const model = this.#loadedModel
    this.#loadedModel = undefined
    this.#model = undefined
    this.#probeRate = undefined
    await model?.dispose().catch(() => {})
  }

  #startBackgroundDownload(): void {
    // A failed background download waits a while before the next request tries again.
    if (this.#model || Date.now() < this.#backgroundRetryAt) return
    this.#loadModel().catch((error: unknown) => {
      this.#backgroundRetryAt = Date.now() + backgroundRetryDelayMs
      // Named by what failed: a runtime file or backend failure is no download error.
      const failure = toOndeviceError(error, 'download_failed')
      this.#events.emit(downloadCodes.has(failure.code) ? 'download-error' : 'load-error', { error: failure })
    })
  }

  async status(): Promise<ClientStatus> {
    this.#checkOpen()
    const plan = await this.#plan()
    return this.#statusOf(plan)
  }

  #statusOf(plan: Plan): ClientStatus {
    return {
      route: plan.decision.route,
      reason: plan.decision.reason,
      backgroundDownload: plan.decision.backgroundDownload === true,
      cached: plan.packageInfo?.cached ?? false,
      loaded: this.#loadedModel !== undefined,
      downloading: this.#downloading !== undefined && this.#loadedModel === undefined,
      ...(this.#probeRate === undefined ? {} : { probeTokensPerSecond: this.#probeRate }),
      edge: { configured: this.#edge !== undefined, reachable: this.#edgeReachable() },
      ...(plan.capabilities ? { capabilities: plan.capabilities } : {}),
      ...(plan.packageInfo ? { packageInfo: plan.packageInfo } : {}),
    }
  }

  async prepare(options: PrepareOptions = {}): Promise<ClientStatus> {
    this.#checkOpen()
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', 'prepare() takes { onProgress?, signal? }.')
    }
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new InvalidArgumentError('onProgress', 'onProgress must be a function.')
    }
    if (this.#options.policy !== 'edge-only') {
      const plan = await this.#plan()
      const deviceUsable =
        plan.decision.route === 'device' ||
        plan.decision.backgroundDownload ||
        plan.decision.fallback === 'device'
      if (deviceUsable) await this.#loadModel(options.onProgress, options.signal)
    }
    return this.status()
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return
    this.#disposed = true
    this.#lifetime.abort()
    this.#events.clear()
    const model = this.#model
    this.#model = undefined
    this.#loadedModel = undefined
    await model?.then((m) => m.dispose()).catch(() => {})
  }

  stream(request: ChatRequest): AsyncIterable<StreamPart> {
    this.#checkOpen()
    const validated = validateChatRequest(request, this.#options.defaults)
    // Both sides must draw the same numbers for a handoff to continue the same answer.
    const resolved: ChatRequest = { ...validated, seed: validated.seed ?? randomSeed() }
    return { [Symbol.asyncIterator]: () => this.#run(resolved) }
  }

  async chat(request: ChatRequest): Promise<ChatResult> {
    let route: RoutePart | undefined
    let handoff: HandoffPart | undefined
    for await (const part of this.stream(request)) {
      if (part.type === 'route') route = part
      else if (part.type === 'handoff') handoff = part
      else if (part.type === 'error') throw deserializeError(part.error)
      else if (part.type === 'finish') {
        if (part.finishReason === 'abort') throw new AbortedError()
        return {
          text: part.text,
          finishReason: part.finishReason,
          tokenIds: part.tokenIds,
          usage: part.usage,
          route: part.usage.route ?? route?.route ?? 'device',
          routeReason: part.usage.routeReason ?? route?.reason ?? '',
          ...(handoff
            ? { handoff: { reason: handoff.reason, completedTokens: handoff.completedTokens } }
            : {}),
        }
      }
    }
    throw new OndeviceError('internal', 'The stream ended without a finish part.')
  }

  async *#run(request: ChatRequest): AsyncGenerator<StreamPart> {
    const startedAt = performance.now()
    const attempts: OndeviceError[] = []
    const fail = (): StreamPart => ({ type: 'error', error: serializeError(chainError(attempts)) })
    let plan: Plan
    try {
      plan = await this.#plan()
    } catch (error) {
      attempts.push(toOndeviceError(error))
      yield fail()
      return
    }
    if (plan.deviceError) attempts.push(plan.deviceError)
    const planned = plan.decision
    if (planned.route === 'none') {
      const code = this.#edge ? 'edge_unavailable' : 'backend_unavailable'
      attempts.push(
        new OndeviceError(code, `Nowhere to run this request: ${planned.reason}.`, {
          isRetryable: code === 'edge_unavailable',
        }),
      )
      yield fail()
      return
    }
    let decision: RouteDecision & { readonly route: Route } = { ...planned, route: planned.route }
    // The device route loads (downloading first if it must) and probes before the route is
    // announced: a probe slower than the threshold, or a load failure, turns it into the edge.
    let model: DeviceModel | undefined
    if (decision.route === 'device') {
      const probedBefore = this.#probeRate !== undefined
      try {
        model = await this.#loadModel(undefined, request.signal)
        if (!probedBefore && decision.fallback === 'edge') {
          const again = await this.#plan()
          if (again.decision.route === 'edge') decision = { ...again.decision, route: 'edge' }
        }
      } catch (error) {
        if (isAbort(error, request.signal)) {
          yield { type: 'route', route: decision.route, reason: decision.reason }
          yield this.#abortFinish('', [], 0, decision.route, decision.reason, startedAt)
          return
        }
        const loadError = toOndeviceError(error, 'backend_unavailable')
        attempts.push(loadError)
        if (decision.fallback !== 'edge' || !this.#edge) {
          yield fail()
          return
        }
        decision = {
          route: 'edge',
          reason: `the device could not load the model (${loadError.message}): answering from the edge`,
        }
      }
    }
    const routePart: RoutePart = { type: 'route', route: decision.route, reason: decision.reason }
    this.#events.emit('route', routePart)
    yield routePart
    if (decision.backgroundDownload) this.#startBackgroundDownload()

    if (decision.route === 'device' && model) {
      const outcome = yield* this.#runDevice(model, request, decision, startedAt)
      if (outcome.kind === 'finished') return
      attempts.push(outcome.error)
      // The caller's own mistakes (a prompt too long, a bad argument) would fail on the edge too.
      const callersFault =
        outcome.error.code === 'invalid_argument' || outcome.error.code === 'context_length_exceeded'
      if (!callersFault) await this.#dropModel()
      if (decision.fallback !== 'edge' || !this.#edge || callersFault) {
        yield fail()
        return
      }
      if (outcome.tokenIds.length === 0) {
        const reason = `the device failed before the first token (${outcome.reason}): answering from the edge`
        const part: RoutePart = { type: 'route', route: 'edge', reason }
        this.#events.emit('route', part)
        yield part
        yield* this.#runEdge(request, reason, startedAt, attempts, undefined)
        return
      }
      const handoff: HandoffPart = {
        type: 'handoff',
        reason: outcome.reason,
        completedTokens: outcome.tokenIds.length,
      }
      this.#events.emit('handoff', handoff)
      yield handoff
      yield* this.#runEdge(
        request,
        `${decision.reason}; handed off to the edge after ${outcome.tokenIds.length} tokens: ${outcome.reason}`,
        startedAt,
        attempts,
        outcome,
      )
      return
    }

    // Edge first; under prefer-edge the device catches an edge that fails before the first token.
    const edgeOutcome = yield* this.#runEdge(
      request,
      decision.reason,
      startedAt,
      attempts,
      undefined,
      decision.fallback === 'device',
    )
    if (edgeOutcome !== 'fall-back') return
    const reason = `the edge failed (${attempts[attempts.length - 1]?.message}): falling back to the device`
    const part: RoutePart = { type: 'route', route: 'device', reason }
    this.#events.emit('route', part)
    yield part
    let fallbackModel: DeviceModel
    try {
      fallbackModel = await this.#loadModel(undefined, request.signal)
    } catch (error) {
      if (isAbort(error, request.signal)) {
        yield this.#abortFinish('', [], 0, 'device', reason, startedAt)
        return
      }
      attempts.push(toOndeviceError(error, 'backend_unavailable'))
      yield fail()
      return
    }
    const outcome = yield* this.#runDevice(fallbackModel, request, { reason }, startedAt)
    if (outcome.kind === 'failed') {
      attempts.push(outcome.error)
      yield fail()
    }
  }

  #abortFinish(
    text: string,
    tokenIds: readonly number[],
    promptTokens: number,
    route: Route,
    reason: string,
    startedAt: number,
  ): FinishPart {
    return {
      type: 'finish',
      finishReason: 'abort',
      text,
      tokenIds,
      nextStep: tokenIds.length,
      usage: {
        promptTokens,
        completionTokens: tokenIds.length,
        timeToFirstTokenMs: performance.now() - startedAt,
        prefillTokensPerSecond: 0,
        decodeTokensPerSecond: 0,
        route,
        routeReason: reason,
      },
    }
  }

  /**
   * Runs the answer on the device, yielding its text deltas as they come. Returns 'finished' once
   * it yielded the finish part, or 'failed' with everything a handoff needs (tokens, text, step).
   * A stall (decode slower than the threshold over the window) aborts the device run and fails it.
   */
  async *#runDevice(
    model: DeviceModel,
    request: ChatRequest,
    decision: Pick<RouteDecision, 'reason' | 'fallback'>,
    startedAt: number,
  ): AsyncGenerator<StreamPart, DeviceOutcome> {
    const stop = new AbortController()
    const onUserAbort = () => stop.abort()
    request.signal?.addEventListener('abort', onUserAbort, { once: true })
    if (request.signal?.aborted) stop.abort()
    const watchSpeed = decision.fallback === 'edge' && this.#options.policy !== 'device-only'
    const window = this.#thresholds.slowDecodeWindowTokens
    const minRate = this.#thresholds.minDeviceTokensPerSecond
    const tokenIds: number[] = []
    const tokenTimes: number[] = []
    let text = ''
    let firstTokenAt: number | undefined
    let stallReason: string | undefined
    let promptTokens = 0
    const failed = (error: OndeviceError, reason: string): DeviceOutcome => ({
      kind: 'failed',
      error,
      reason,
      tokenIds: [...tokenIds],
      text,
      step: tokenIds.length,
      firstTokenAt,
      backend: model.backend,
      dtype: model.dtype,
      promptTokens,
    })
    try {
      const parts = model.generate({
        messages: request.messages,
        sampling: samplingOf(request),
        ...(request.maxTokens === undefined ? {} : { maxTokens: request.maxTokens }),
        ...(request.stop === undefined ? {} : { stop: request.stop }),
        signal: stop.signal,
      })
      // Stop reading the moment the caller aborts or the device stalls, whatever the device
      // does with its own abort (a worker busy in a long step answers it late).
      for await (const part of untilAborted(parts, stop.signal)) {
        if (part.type === 'prompt') {
          promptTokens = part.promptTokens
        } else if (part.type === 'text-delta') {
          const now = performance.now()
          firstTokenAt ??= now
          for (const id of part.tokenIds) {
            tokenIds.push(id)
            tokenTimes.push(now)
          }
          text += part.text
          yield part
          // A device that decodes slower than the threshold over the last `window` tokens stalls the answer.
          if (watchSpeed && tokenTimes.length > window) {
            const span = tokenTimes[tokenTimes.length - 1]! - tokenTimes[tokenTimes.length - 1 - window]!
            const rate = span > 0 ? (window * 1000) / span : Infinity
            if (rate < minRate) {
              stallReason = `decode ran at ${rate.toFixed(1)} tok/s < ${minRate} tok/s over the last ${window} tokens`
              stop.abort()
            }
          }
        } else if (part.type === 'finish') {
          if (part.finishReason === 'abort') break
          const usage: Usage = {
            ...part.usage,
            backend: part.usage.backend ?? model.backend,
            dtype: part.usage.dtype ?? model.dtype,
            route: 'device',
            routeReason: decision.reason,
          }
          yield { ...part, usage }
          return { kind: 'finished' }
        }
      }
      if (request.signal?.aborted) {
        yield this.#abortFinish(text, tokenIds, promptTokens, 'device', decision.reason, startedAt)
        return { kind: 'finished' }
      }
      // Every token yielded so far was shown with exactly the text it released, and draw k used
      // step k: the edge resumes at step = tokens shown (held-back text stays held back there).
      if (stallReason !== undefined) {
        return failed(
          new OndeviceError('backend_failed', `The device was too slow: ${stallReason}.`),
          stallReason,
        )
      }
      throw new OndeviceError('backend_failed', 'The device generation ended without a finish part.')
    } catch (error) {
      if (request.signal?.aborted) {
        yield this.#abortFinish(text, tokenIds, promptTokens, 'device', decision.reason, startedAt)
        return { kind: 'finished' }
      }
      if (stallReason !== undefined && isAbort(error, undefined)) {
        return failed(
          new OndeviceError('backend_failed', `The device was too slow: ${stallReason}.`),
          stallReason,
        )
      }
      const deviceError = toOndeviceError(error, 'backend_failed')
      return failed(deviceError, `the device failed: ${deviceError.message}`)
    } finally {
      request.signal?.removeEventListener('abort', onUserAbort)
    }
  }

  /**
   * Runs (or continues) the answer on the edge. With `fromDevice` it continues the device's
   * tokens and yields one finish for the joined answer. Returns 'fall-back' when the edge failed
   * before any text and `mayFallBack` lets the caller try the device instead.
   */
  async *#runEdge(
    request: ChatRequest,
    reason: string,
    startedAt: number,
    attempts: OndeviceError[],
    fromDevice: Extract<DeviceOutcome, { kind: 'failed' }> | undefined,
    mayFallBack = false,
  ): AsyncGenerator<StreamPart, 'done' | 'fall-back'> {
    const edge = this.#edge!
    const route: Route = fromDevice ? 'device+edge' : 'edge'
    let text = ''
    let firstTokenAt: number | undefined
    try {
      const parts = edge.stream({
        messages: request.messages as ChatMessage[],
        sampling: samplingOf(request),
        ...(request.maxTokens === undefined
          ? {}
          : {
              maxTokens: fromDevice
                ? Math.max(1, request.maxTokens - fromDevice.tokenIds.length)
                : request.maxTokens,
            }),
        ...(request.stop === undefined ? {} : { stop: request.stop }),
        ...(fromDevice ? { continuation: { tokenIds: fromDevice.tokenIds, step: fromDevice.step } } : {}),
        ...(request.signal ? { signal: request.signal } : {}),
      })
      for await (const part of parts) {
        if (part.type === 'text-delta') {
          firstTokenAt ??= performance.now()
          text += part.text
          yield part as TextDeltaPart
          continue
        }
        this.#edgeUnreachableUntil = 0
        const now = performance.now()
        if (!fromDevice) {
          yield { ...part, usage: { ...part.usage, route, routeReason: reason } }
          return 'done'
        }
        // One finish for the joined answer: the device's tokens and text, then the edge's.
        const deviceTokens = fromDevice.tokenIds.length
        const completionTokens = deviceTokens + part.usage.completionTokens
        const first = fromDevice.firstTokenAt ?? firstTokenAt ?? now
        const usage: Usage = {
          promptTokens: fromDevice.promptTokens,
          completionTokens,
          timeToFirstTokenMs: first - startedAt,
          prefillTokensPerSecond: part.usage.prefillTokensPerSecond,
          decodeTokensPerSecond:
            completionTokens > 1 && now > first ? ((completionTokens - 1) * 1000) / (now - first) : 0,
          backend: `${fromDevice.backend}+${part.usage.backend ?? 'edge'}`,
          dtype: fromDevice.dtype,
          route,
          routeReason: reason,
        }
        yield {
          type: 'finish',
          finishReason: part.finishReason,
          tokenIds: [...fromDevice.tokenIds, ...part.tokenIds],
          text: fromDevice.text + part.text,
          nextStep: part.nextStep,
          usage,
        }
        return 'done'
      }
      throw new OndeviceError('edge_failed', 'The edge stream ended without a finish.', { isRetryable: true })
    } catch (error) {
      if (isAbort(error, request.signal)) {
        const tokenIds = fromDevice?.tokenIds ?? []
        yield this.#abortFinish((fromDevice?.text ?? '') + text, tokenIds, 0, route, reason, startedAt)
        return 'done'
      }
      const edgeError = toOndeviceError(error, 'edge_failed', true)
      if (edgeError.code === 'edge_unavailable') this.#edgeUnreachableUntil = Date.now() + edgeRetryDelayMs
      attempts.push(edgeError)
      if (mayFallBack && text === '' && !fromDevice) return 'fall-back'
      yield { type: 'error', error: serializeError(chainError(attempts)) }
      return 'done'
    }
  }
}

/**
 * Creates the client. Options are checked at once: an unknown policy, an empty model, a bad
 * threshold or sampling default throws InvalidArgumentError naming the field.
 */
export function createClient(options: ClientOptions = {}, internals: ClientInternals = {}): OndeviceClient {
  return new Client(options, internals)
}
