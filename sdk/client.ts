// createClient: one object that answers chats on the device when it can and on the edge when
// it can't, and hands an answer over mid-stream when the device fails or stalls. This file is
// the facade and the fallback chain; the rooms behind it: plan.ts (where the next request runs,
// over the router route.ts), device-slot.ts (loading, probing and background download of the
// device model), device-run.ts (the device part of an answer: stall watch, abort) and
// edge-run.ts (the edge part: the handoff join and its usage).
import {
  AbortedError,
  InvalidArgumentError,
  OndeviceError,
  serializeError,
  toOndeviceError,
} from '../core/errors.ts'
import type {
  FinishReason,
  HandoffPart,
  Route,
  RoutePart,
  StreamPart,
  ToolCall,
  ToolCallProgress,
  Usage,
} from '../core/stream-parts.ts'
import { AnswerSoFar, abortFinish, chainError, isAbort, partialAnswerOf } from './answer-parts.ts'
import { type DeviceHost, type DeviceModel, type DownloadProgress, defaultDeviceHost } from './device.ts'
import { type DeviceFailure, runDevice, type StallWatch } from './device-run.ts'
import { DeviceSlot } from './device-slot.ts'
import { EdgeSide } from './edge-run.ts'
import { Emitter } from './events.ts'
import {
  type ChatRequest,
  type CheckedChatRequest,
  type ClientOptions,
  checkConstraint,
  validateChatRequest,
  validateClientOptions,
} from './options.ts'
import { type Plan, Planner } from './plan.ts'
import {
  type DeviceCapabilities,
  defaultThresholds,
  type PackageInfo,
  type RouteDecision,
  type RouteThresholds,
} from './route.ts'

export interface ChatResult {
  readonly text: string
  /** A thinking model's reasoning (Qwen3's `<think>` block, without the tags), apart from `text`; absent when none. */
  readonly reasoning?: string
  readonly finishReason: FinishReason
  readonly tokenIds: readonly number[]
  /** Prompt/completion tokens, timings, and `route` / `routeReason`: where it ran and why. */
  readonly usage: Usage
  readonly route: Route
  readonly routeReason: string
  /** Set when the device started the answer and the edge finished it. */
  readonly handoff?: { readonly reason: string; readonly completedTokens: number }
  /** With `tools`: the calls the model made (finishReason 'tool-calls'); `text` holds what came before them. */
  readonly toolCalls?: readonly ToolCall[]
  /**
   * With responseFormat / tools: the answer stopped (maxTokens, a stop string) before its JSON
   * document or tool call was complete. A cut call is not in `toolCalls`, and its markup is never
   * in `text` (which then holds what came before it, often '').
   */
  readonly partial?: boolean
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
  /**
   * Once the model is loaded: what did not stop the load but a person should know (the `ready`
   * event's `warnings`): numThreads the page cannot give, a package without manifest.json, a
   * backend fallback. Empty when there was nothing to say.
   */
  readonly loadWarnings?: readonly string[]
  /** `leftOut`: why, while the edge is not reachable (unreachable; busy: it answered 429; starting: 503 edge_starting). */
  readonly edge: { readonly configured: boolean; readonly reachable: boolean; readonly leftOut?: string }
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
  /**
   * The package finished downloading and loading: the device answers from now on. `warnings`:
   * what did not stop the load but a person should know (numThreads this page cannot give, a
   * package without manifest.json, a backend fallback); also in status().loadWarnings.
   */
  readonly ready: {
    readonly backend: string
    readonly dtype: string
    readonly probeTokensPerSecond: number
    readonly warnings: readonly string[]
  }
  /** The background download of the package failed: network, HTTP, sha256 or storage (requests keep going to the edge). */
  readonly 'download-error': { readonly error: OndeviceError }
  /**
   * The package was there but the device could not load it: the runtime (ORT's files under
   * runtimeUrl), the backend, or the package's contents (requests keep going to the edge).
   */
  readonly 'load-error': { readonly error: OndeviceError }
}

// A record, so the type checker asks for every event ClientEvents gains.
const clientEvents: Record<keyof ClientEvents, true> = {
  route: true,
  progress: true,
  handoff: true,
  ready: true,
  'download-error': true,
  'load-error': true,
}
const clientEventNames = Object.keys(clientEvents) as (keyof ClientEvents)[]

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

/** Failures of getting the package's bytes (the rest of a background load's failures are load errors). */
const downloadCodes: ReadonlySet<string> = new Set([
  'download_failed',
  'integrity_failed',
  'storage_quota_exceeded',
  'model_not_found',
])

// A call on a disposed client is the caller's mistake: the class that goes with invalid_argument,
// so `instanceof InvalidArgumentError` catches it as it catches every other misuse (it was a plain
// OndeviceError with that code). `param` names the object at fault, as a stream read twice names
// 'stream'.
function disposedError(): InvalidArgumentError {
  return new InvalidArgumentError('client', 'This client was disposed: create a new one with createClient().')
}

function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31)
}

class Client implements OndeviceClient {
  readonly #options: ReturnType<typeof validateClientOptions>
  readonly #thresholds: RouteThresholds
  readonly #edge: EdgeSide | undefined
  readonly #events = new Emitter<ClientEvents>()
  readonly #planner: Planner
  readonly #device: DeviceSlot
  #disposed = false
  /** Aborted by dispose(): every answer still running stops with it. */
  readonly #lifetime = new AbortController()

  constructor(options: unknown, internals: ClientInternals = {}) {
    this.#options = validateClientOptions(options)
    this.#thresholds = { ...defaultThresholds, ...this.#options.thresholds }
    this.#edge = this.#options.edge ? new EdgeSide(this.#options.edge) : undefined
    // Edge-only never touches the device (a Worker has no runtime to load).
    const host: Promise<DeviceHost | undefined> =
      this.#options.policy === 'edge-only'
        ? Promise.resolve(undefined)
        : internals.deviceHost
          ? Promise.resolve(internals.deviceHost)
          : defaultDeviceHost({
              ...(this.#options.runtimeUrl === undefined ? {} : { runtimeUrl: this.#options.runtimeUrl }),
              ...(this.#options.cacheDir === undefined ? {} : { cacheDir: this.#options.cacheDir }),
              ...(this.#options.cacheQuotaBytes === undefined
                ? {}
                : { cacheQuotaBytes: this.#options.cacheQuotaBytes }),
            })
    host.catch(() => {})
    const deviceOptions = {
      ...(this.#options.backend ? { backend: this.#options.backend } : {}),
      ...(this.#options.dtype ? { dtype: this.#options.dtype } : {}),
      ...(this.#options.numThreads === undefined ? {} : { numThreads: this.#options.numThreads }),
    }
    this.#planner = new Planner(host, {
      policy: this.#options.policy,
      model: this.#options.model,
      deviceOptions,
      thresholds: this.#thresholds,
    })
    this.#device = new DeviceSlot(host, this.#options.model, deviceOptions, {
      onProgress: (progress) => this.#events.emit('progress', progress),
      onReady: (ready) => this.#events.emit('ready', ready),
      // Named by what failed: a runtime file or backend failure is no download error.
      onBackgroundError: (error) =>
        this.#events.emit(downloadCodes.has(error.code) ? 'download-error' : 'load-error', { error }),
    })
  }

  on<K extends keyof ClientEvents>(name: K, listener: (event: ClientEvents[K]) => void): () => void {
    // A listener added after dispose() would never hear anything.
    this.#checkOpen()
    // A misspelt name would subscribe to nothing, silently.
    if (!clientEventNames.includes(name))
      throw new InvalidArgumentError(
        'name',
        `Unknown event ${JSON.stringify(name)}: use one of ${clientEventNames.map((event) => `'${event}'`).join(', ')}.`,
      )
    if (typeof listener !== 'function')
      throw new InvalidArgumentError('listener', `on('${name}', listener): the listener must be a function.`)
    return this.#events.on(name, listener)
  }

  #checkOpen(): void {
    if (this.#disposed) throw disposedError()
  }

  #edgeAvailability(): {
    readonly configured: boolean
    readonly reachable: boolean
    readonly leftOut?: string
  } {
    const reachable = this.#edge?.reachable ?? true
    return {
      configured: this.#edge !== undefined,
      reachable,
      ...(reachable || this.#edge === undefined ? {} : { leftOut: this.#edge.leftOut }),
    }
  }

  /**
   * `loading`: prepare()'s plan, which goes on to load the package (DeviceState.loading).
   * `signal`: the request's or prepare()'s, which stops the look at the package (AbortedError).
   */
  async #plan(loading = false, signal?: AbortSignal): Promise<Plan> {
    const recentLoadFailure = this.#device.recentFailure
    const plan = await this.#planner.plan(this.#edgeAvailability(), {
      probeRate: this.#device.probeRate,
      loaded: this.#device.loaded !== undefined,
      ...(recentLoadFailure ? { recentLoadFailure } : {}),
      ...(loading ? { loading } : {}),
      ...(signal === undefined ? {} : { signal }),
    })
    // The device loads the backend the router judged it on (not the host's own first pick).
    if (plan.decision.backend !== undefined) this.#device.follow(plan.decision.backend)
    return plan
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
      loaded: this.#device.loaded !== undefined,
      downloading: this.#device.downloading,
      ...(this.#device.probeRate === undefined ? {} : { probeTokensPerSecond: this.#device.probeRate }),
      ...(this.#device.loaded === undefined ? {} : { loadWarnings: this.#device.loaded.warnings ?? [] }),
      edge: this.#edgeAvailability(),
      ...(plan.capabilities ? { capabilities: plan.capabilities } : {}),
      ...(plan.packageInfo ? { packageInfo: plan.packageInfo } : {}),
    }
  }

  async prepare(options: PrepareOptions = {}): Promise<ClientStatus> {
    this.#checkOpen()
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', 'prepare() takes { onProgress?, signal? }.')
    }
    for (const key of Object.keys(options))
      if (key !== 'onProgress' && key !== 'signal')
        throw new InvalidArgumentError(
          key,
          `Unknown prepare() option "${key}": it takes { onProgress?, signal? }.`,
        )
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal))
      throw new InvalidArgumentError('signal', 'signal must be an AbortSignal (from an AbortController).')
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new InvalidArgumentError('onProgress', 'onProgress must be a function.')
    }
    if (this.#options.policy !== 'edge-only') {
      // dispose() stops it too, as it stops the answers.
      const signal = options.signal
        ? AbortSignal.any([options.signal, this.#lifetime.signal])
        : this.#lifetime.signal
      const plan = await this.#plan(true, signal)
      const deviceUsable =
        plan.decision.route === 'device' ||
        plan.decision.backgroundDownload ||
        plan.decision.fallback === 'device'
      if (deviceUsable) await this.#device.load(options.onProgress, options.signal)
    }
    return this.status()
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return
    this.#disposed = true
    this.#events.clear()
    // Answers still running end now (finish 'abort'): the device model is theirs until they stop,
    // so dispose() used to wait for each to run to its end (for ever for a stream nobody reads).
    this.#lifetime.abort()
    await this.#device.dispose()
  }

  stream(request: ChatRequest): AsyncIterable<StreamPart> {
    this.#checkOpen()
    const validated = validateChatRequest(request, this.#options.defaults)
    // Both sides must draw the same numbers for a handoff to continue the same answer. The answer
    // stops when the caller aborts or the client is disposed, whichever comes first.
    const signal = validated.signal
      ? AbortSignal.any([validated.signal, this.#lifetime.signal])
      : this.#lifetime.signal
    const resolved: CheckedChatRequest = { ...validated, seed: validated.seed ?? randomSeed(), signal }
    let read = false
    return {
      [Symbol.asyncIterator]: () => {
        // A second read ran the whole request again (another edge request, another generation).
        if (read)
          throw new InvalidArgumentError(
            'stream',
            'This stream was read already: each stream() is one answer, read once. Call stream() again for another.',
          )
        read = true
        return forTheReader(this.#run(resolved), whatAnAbortCuts(resolved))
      },
    }
  }

  async chat(request: ChatRequest): Promise<ChatResult> {
    let route: RoutePart | undefined
    let handoff: HandoffPart | undefined
    const soFar = new AnswerSoFar()
    for await (const part of this.stream(request)) {
      if (part.type === 'route') route = part
      else if (part.type === 'handoff') handoff = part
      else if (part.type === 'text-delta' || part.type === 'reasoning-delta') soFar.add(part)
      else if (part.type === 'error') throw soFar.errorOf(part)
      else if (part.type === 'finish') {
        if (part.finishReason === 'abort') {
          // The aborted finish counts exactly what was shown (a token that showed no text too).
          const partialAnswer = partialAnswerOf(part.text, part.reasoning ?? '', part.tokenIds)
          const options = partialAnswer ? { partialAnswer } : {}
          throw request.signal?.aborted !== true && this.#disposed
            ? new AbortedError('The client was disposed during this answer.', options)
            : new AbortedError(undefined, options)
        }
        return {
          text: part.text,
          ...(part.reasoning === undefined ? {} : { reasoning: part.reasoning }),
          ...(part.toolCalls === undefined ? {} : { toolCalls: part.toolCalls }),
          ...(part.partial === undefined ? {} : { partial: part.partial }),
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

  async *#run(request: CheckedChatRequest): AsyncGenerator<StreamPart> {
    const startedAt = performance.now()
    // The request's schemas and tools compile first, before anything runs (stream() checked the
    // rest): their mistakes reject this first read, as chat() rejects, and are never error parts.
    // The compiler loads with the first request that has any (checkConstraint).
    // Once the device's package is loaded, its call syntax is known too: what the model cannot
    // write (the edge serves the same model) is such a mistake.
    await unlessAborted(checkConstraint(request, this.#device.loaded?.toolCallSyntax), request.signal)
    const attempts: OndeviceError[] = []
    const fail = (): StreamPart => ({ type: 'error', error: serializeError(chainError(attempts)) })
    // A stream made before dispose() and read after it: nothing runs (it loaded the model again).
    if (this.#disposed) {
      attempts.push(disposedError())
      yield fail()
      return
    }
    let plan: Plan
    try {
      plan = await this.#plan(false, request.signal)
    } catch (error) {
      if (isAbort(error, request.signal)) {
        // Stopped while the device's package was looked at (a first load's manifest.json retried
        // through pauses of seconds): nothing ran, nothing was counted.
        const reason = "stopped while the device's package was looked at, before a route was chosen"
        yield { type: 'route', route: 'device', reason }
        yield abortFinish('', [], undefined, 'device', reason, startedAt)
        return
      }
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
    const tooLong = await this.#overEdgeLimit(request, planned)
    if (tooLong) {
      attempts.push(tooLong)
      yield fail()
      return
    }
    let decision: RouteDecision & { readonly route: Route } = { ...planned, route: planned.route }
    // The device route loads (downloading first if it must) and probes before the route is
    // announced: a probe slower than the threshold, or a load failure, turns it into the edge.
    let model: DeviceModel | undefined
    if (decision.route === 'device') {
      const probedBefore = this.#device.probeRate !== undefined
      try {
        model = await this.#device.load(undefined, request.signal)
        if (!probedBefore && decision.fallback === 'edge') {
          const again = await this.#plan(false, request.signal)
          if (again.decision.route === 'edge') decision = { ...again.decision, route: 'edge' }
        }
      } catch (error) {
        if (isAbort(error, request.signal)) {
          yield { type: 'route', route: decision.route, reason: decision.reason }
          // Stopped while the model loads: its tokenizer is not there to count the prompt.
          yield abortFinish('', [], undefined, decision.route, decision.reason, startedAt)
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
    // The package's call syntax is known once it loaded: checked before the route is announced and
    // before the device takes the answer, rejecting this first read as the check above does.
    if (model !== undefined) await checkConstraint(request, model.toolCallSyntax)
    const routePart: RoutePart = { type: 'route', route: decision.route, reason: decision.reason }
    this.#events.emit('route', routePart)
    yield routePart
    if (decision.backgroundDownload) this.#device.startBackgroundDownload()

    if (decision.route === 'device' && model) {
      const outcome = yield* runDevice(
        model,
        request,
        decision.reason,
        startedAt,
        this.#stallWatch(decision, request, startedAt, attempts),
      )
      if (outcome.kind === 'finished') return
      if (outcome.kind === 'handed-off') {
        // Slow: the next request loads and probes again.
        await this.#device.drop()
        return
      }
      attempts.push(outcome.error)
      // The caller's own mistakes (a prompt too long, a bad argument) would fail on the edge too.
      const callersFault =
        outcome.error.code === 'invalid_argument' || outcome.error.code === 'context_length_exceeded'
      if (!callersFault) await this.#device.drop()
      // An edge left out for a while (its Retry-After, or the backoff after it failed) is still
      // asked once the device has failed: nothing else can answer now, its wait may be over by
      // the time the device fails, and one 503 from an instance still loading would otherwise
      // cost every answer that fails on the device meanwhile. Online, with an edge and not
      // device-only, that wait is the one reason the route has no edge fallback.
      const leftOut =
        decision.fallback !== 'edge' &&
        this.#edge !== undefined &&
        this.#options.policy !== 'device-only' &&
        plan.capabilities?.online !== false
      if ((decision.fallback !== 'edge' && !leftOut) || !this.#edge || callersFault) {
        yield fail()
        return
      }
      const askedAnyway = leftOut
        ? ' (the edge, left out since it last failed, was asked anyway: nothing else could answer)'
        : ''
      if (outcome.tokenIds.length === 0) {
        const reason = `the device failed before the first token (${outcome.reason}): answering from the edge${askedAnyway}`
        const part: RoutePart = { type: 'route', route: 'edge', reason }
        this.#events.emit('route', part)
        yield part
        yield* this.#edge.run(request, reason, startedAt, attempts, undefined)
        return
      }
      const handoff: HandoffPart = {
        type: 'handoff',
        reason: outcome.reason,
        completedTokens: outcome.tokenIds.length,
      }
      this.#events.emit('handoff', handoff)
      yield handoff
      yield* this.#edge.run(
        request,
        `${decision.reason}; handed off to the edge after ${outcome.tokenIds.length} tokens: ${outcome.reason}${askedAnyway}`,
        startedAt,
        attempts,
        outcome,
      )
      return
    }

    // Edge first; under prefer-edge the device catches an edge that fails before the first token.
    const edgeOutcome = yield* this.#edge!.run(
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
      fallbackModel = await this.#device.load(undefined, request.signal)
    } catch (error) {
      if (isAbort(error, request.signal)) {
        yield abortFinish('', [], undefined, 'device', reason, startedAt)
        return
      }
      attempts.push(toOndeviceError(error, 'backend_unavailable'))
      yield fail()
      return
    }
    const outcome = yield* runDevice(fallbackModel, request, reason, startedAt, undefined)
    if (outcome.kind === 'failed') {
      attempts.push(outcome.error)
      yield fail()
    }
  }

  /**
   * A maxTokens over the edge's MAX_TOKENS, where the edge may answer or take the answer over: the
   * edge would refuse it, at the start or (a handoff) mid-answer with the device's text lost. Said
   * before anything runs. Not under prefer-edge, whose device answers what the edge refuses. An
   * answer routed to the edge asks for the limit (once, bounded); one routed to the device uses
   * it only when already known (an earlier handoff or edge answer read it): a device answer sends
   * nothing to the edge and never waits on it, which matters offline and on a bad connection.
   */
  async #overEdgeLimit(
    request: CheckedChatRequest,
    planned: RouteDecision,
  ): Promise<InvalidArgumentError | undefined> {
    const edgeMayAnswer =
      planned.route === 'edge' ? planned.fallback !== 'device' : planned.fallback === 'edge'
    if (!this.#edge || request.maxTokens === undefined || !edgeMayAnswer) return undefined
    const edgeMaxTokens =
      planned.route === 'edge' ? await this.#edge.maxTokens(request.signal) : this.#edge.knownMaxTokens
    if (edgeMaxTokens === undefined || request.maxTokens <= edgeMaxTokens) return undefined
    const role =
      planned.route === 'edge' ? 'answer it' : 'take this answer over should the device fail mid-answer'
    return new InvalidArgumentError(
      'maxTokens',
      `maxTokens is ${request.maxTokens}, but the edge's answers have at most ${edgeMaxTokens} tokens (its MAX_TOKENS, a handoff's tokens included), so it could not ${role}. Ask for at most ${edgeMaxTokens}, raise MAX_TOKENS on the edge, or use policy 'device-only' for longer answers (no edge to fall back on).`,
    )
  }

  /**
   * Watches the device's speed when the edge can take over (device-only answers however slow).
   * A slowed answer is handed over once the edge answers: the `handoff` part comes just before
   * the edge's first part, and an edge that fails before it (unreachable, refusing, an error
   * status) leaves the answer to the device, which kept generating meanwhile.
   */
  #stallWatch(
    decision: Pick<RouteDecision, 'fallback' | 'reason'>,
    request: CheckedChatRequest,
    startedAt: number,
    attempts: OndeviceError[],
  ): StallWatch | undefined {
    const edge = this.#edge
    if (decision.fallback !== 'edge' || this.#options.policy === 'device-only' || !edge) return undefined
    const events = this.#events
    return {
      windowTokens: this.#thresholds.slowDecodeWindowTokens,
      minTokensPerSecond: this.#thresholds.minDeviceTokensPerSecond,
      async *takeOver(
        failure: DeviceFailure,
        onTakenOver: () => void,
        deviceFinished: AbortSignal,
      ): AsyncGenerator<StreamPart, string | undefined> {
        const tried: OndeviceError[] = [...attempts, failure.error]
        // The device finishing first calls the edge's try off (its request too).
        const callOff = new AbortController()
        const onDeviceFinished = () => callOff.abort()
        if (deviceFinished.aborted) callOff.abort()
        else deviceFinished.addEventListener('abort', onDeviceFinished, { once: true })
        const edgeRequest: CheckedChatRequest = {
          ...request,
          signal: request.signal ? AbortSignal.any([request.signal, callOff.signal]) : callOff.signal,
        }
        const run = edge.run(
          edgeRequest,
          `${decision.reason}; handed off to the edge after ${failure.tokenIds.length} tokens: ${failure.reason}`,
          startedAt,
          tried,
          failure,
        )
        let announced = false
        try {
          for (;;) {
            const next = await run.next()
            if (next.done) return undefined
            const part = next.value
            if (!announced) {
              // Aborted before the edge answered: the edge took nothing over (its part would be
              // an abort finish), so there is no handoff; the device ends the answer as aborted.
              if (request.signal?.aborted) return 'the answer was aborted before the edge answered'
              if (callOff.signal.aborted) return 'the device finished the answer before the edge answered'
              if (part.type === 'error') return tried.at(-1)?.message ?? part.error.message
              deviceFinished.removeEventListener('abort', onDeviceFinished)
              announced = true
              onTakenOver()
              const handoff: HandoffPart = {
                type: 'handoff',
                reason: failure.reason,
                completedTokens: failure.tokenIds.length,
              }
              events.emit('handoff', handoff)
              yield handoff
            }
            yield part
          }
        } finally {
          deviceFinished.removeEventListener('abort', onDeviceFinished)
          await run.return('done')
        }
      },
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

/**
 * Waits for `check` unless `signal` aborts first: an answer aborted while the structured-output
 * code loads ends as any aborted answer does (the device's load and the edge's request refuse an
 * aborted signal at once, so nothing runs unchecked), not once a slow chunk has come.
 */
async function unlessAborted(check: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return check
  // Once the answer is aborted, the check's outcome no longer matters (nor is it unhandled).
  check.catch(() => undefined)
  if (signal.aborted) return
  let onAbort: (() => void) | undefined
  const aborted = new Promise<void>((resolve) => {
    onAbort = resolve
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    await Promise.race([check, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort!)
  }
}

/**
 * What an abort may cut short: the one JSON document (a JSON responseFormat, no tools), a forced
 * call (toolChoice 'required' or a named tool: the answer is its calls), or nothing to cut (text).
 */
function whatAnAbortCuts(request: CheckedChatRequest): 'document' | 'call' | undefined {
  const format = request.responseFormat?.type
  const tools = request.tools?.length ?? 0
  if (tools === 0) return format === 'json_object' || format === 'json_schema' ? 'document' : undefined
  const choice = request.toolChoice
  return choice === 'required' || (typeof choice === 'object' && choice !== null) ? 'call' : undefined
}

/**
 * Whether an answer's text stops short of its JSON document. The mask lets a document end only
 * where it is valid, and a value closed by its last character cannot grow, so a text that parses
 * and ends with one is complete; a number at the end may still grow (12 of an integer, 123).
 */
function isCutDocument(text: string): boolean {
  if (!/[}\]"el]$/.test(text)) return true
  try {
    JSON.parse(text)
    return false
  } catch {
    return true
  }
}

/**
 * What the reader of stream() gets from the route's parts: text and reasoning deltas only when they have text
 * (generate() yields one per token, and a token may show none: held-back bytes, EOS, a tool
 * call's markup, which core never shows), or, inside a tool call, when the call grew (its name
 * came, or arguments did: `toolCall`, text ''); the ids of other tokens ride with the next delta
 * yielded, and the finish lists them all. The answer's tool calls come as 'tool-call' parts
 * just before the finish that lists them too.
 */
async function* forTheReader(
  parts: AsyncGenerator<StreamPart>,
  abortCuts: 'document' | 'call' | undefined,
): AsyncGenerator<StreamPart> {
  let unshownIds: number[] = []
  /** A token of a tool call came (under 'auto' too: the model opened it), before or after a handoff. */
  let callBegun = false
  /** The call progress last yielded: one token may add nothing to the call (its arguments held back). */
  let shownCall: ToolCallProgress | undefined
  for await (const shown of parts) {
    let part = shown
    if (part.type === 'text-delta' && (part.inToolCall === true || part.toolCall !== undefined))
      callBegun = true
    // An aborted finish is built from what was shown, on every route: it says whether the abort
    // cut the answer's JSON document, as a token limit's finish does (FinishPart.partial). It
    // lists no calls (a call's markup shows nothing), so a forced call was always cut, and so was
    // one the model opened under 'auto' (it finished as if the text were the whole answer).
    if (
      part.type === 'finish' &&
      part.finishReason === 'abort' &&
      (abortCuts === 'call' || callBegun || (abortCuts === 'document' && isCutDocument(part.text)))
    )
      part = { ...part, partial: true }
    if (part.type === 'text-delta' || part.type === 'reasoning-delta') {
      const call = part.type === 'text-delta' ? part.toolCall : undefined
      // The same call as far as it was yielded already (a handoff's edge restates it whole).
      const callGrew =
        call !== undefined &&
        (shownCall === undefined ||
          call.index !== shownCall.index ||
          call.arguments.length > shownCall.arguments.length)
      if (callGrew) shownCall = call
      if (part.text === '' && !callGrew) {
        for (const id of part.tokenIds) unshownIds.push(id)
        continue
      }
      if (unshownIds.length > 0) {
        yield { ...part, tokenIds: [...unshownIds, ...part.tokenIds] }
        unshownIds = []
        continue
      }
    } else if (part.type === 'finish' && part.toolCalls !== undefined) {
      for (const toolCall of part.toolCalls) yield { type: 'tool-call', toolCall }
    }
    yield part
  }
}
