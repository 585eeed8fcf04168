// The edge part of an answer: the whole answer, or the rest of one the device started (the
// handoff: the edge continues the device's tokens at their step, and one finish joins both
// sides' tokens, text and usage). It also remembers an edge that could not be reached, so the
// router sends nothing there for a while.
import { type ErrorCode, OndeviceError, serializeError, toOndeviceError } from '../core/errors.ts'
import type { Route, StreamPart, Usage } from '../core/stream-parts.ts'
import { isBackend, knownDtypes } from '../core/weight-format.ts'
import { abortFinish, chainError, isAbort, samplingOf } from './answer-parts.ts'
import type { DeviceFailure } from './device-run.ts'
import { EdgeClient, type EdgeOptions } from './edge-client.ts'
import { type CheckedChatRequest, constraintOf } from './options.ts'

/** How long an edge that did not say its MAX_TOKENS is not asked again. */
const edgeRetryDelayMs = 30_000
/**
 * After the edge could not answer (edge_unavailable, or a 429: busy or over its rate limit): the
 * wait before the router sends it requests again, doubled per failure in a row up to the cap.
 * Short at first: behind a load balancer the next request most likely reaches another instance
 * (one restarting, or still loading its model, is not the whole edge).
 */
const edgeBackoffFirstMs = 2_000
const edgeBackoffMaxMs = 30_000
/**
 * The longest the router leaves the edge out on its Retry-After: a misconfigured edge or proxy
 * (Retry-After: 3600 on every 503) left it out of a page for an hour. After this the next request
 * tries it again, and a failure there starts another wait; an edge-only client, or one whose
 * device cannot answer, asks the edge meanwhile anyway. The error keeps the edge's own value
 * (retryAfterSeconds, at most an hour) for an app that retries on its own.
 */
export const edgeRetryAfterMaxMs = 300_000

/** The codes that leave the edge out for a while: it could not take a request now. */
const edgeBusyOrDown: ReadonlySet<ErrorCode> = new Set([
  'edge_unavailable',
  'edge_starting',
  'overloaded',
  'rate_limited',
])

/**
 * How long to leave the edge out after its `failures`-th refusal in a row (edge_unavailable, or a
 * 429): the backoff (2 s doubled per failure, at most 30 s), or the edge's Retry-After when it
 * asks for longer, up to 5 minutes. A shorter Retry-After (`0`: come back now) does not cut the
 * backoff: an edge that keeps failing is not asked again at once by every request.
 */
export function edgeBackoffMs(failures: number, retryAfterSeconds: number | undefined): number {
  const backoff = Math.min(
    edgeBackoffMaxMs,
    edgeBackoffFirstMs * 2 ** Math.max(0, Math.min(failures - 1, 10)),
  )
  if (retryAfterSeconds === undefined) return backoff
  return Math.min(edgeRetryAfterMaxMs, Math.max(backoff, retryAfterSeconds * 1000))
}
/**
 * How long an answer waits for the edge's limits before it starts (the first time; they are
 * kept): an edge slower than this is asked again later, and the answer starts unchecked.
 */
const limitsLookupMs = 3000

/**
 * The device's weight format and backend as `ondevice_format` asks for them, with a fallback: an
 * edge without them answers in its own format rather than fail the answer (the joined usage then
 * names both, dtype 'q8+q4', backend 'wasm+native'). Names the wire does not know (an app's own
 * DeviceHost may report any) are left out rather than refused by the edge.
 */
function deviceFormat(device: DeviceFailure): {
  format?: { dtype?: string; backend?: string; fallback: true }
} {
  const dtype = knownDtypes.includes(device.dtype) ? device.dtype : undefined
  const backend = isBackend(device.backend) ? device.backend : undefined
  if (dtype === undefined && backend === undefined) return {}
  return {
    format: {
      ...(dtype === undefined ? {} : { dtype }),
      ...(backend === undefined ? {} : { backend }),
      fallback: true,
    },
  }
}

export class EdgeSide {
  readonly #client: EdgeClient
  /**
   * Until when (performance.now) the router leaves the edge out (after an edge_unavailable or a
   * 429; 0: not left out). Not the wall clock: one set back a day left the edge out for a day.
   */
  #unreachableUntil = 0
  /** Refusals (edge_unavailable, 429) since the edge last answered: how long the next wait is. */
  #failuresInARow = 0
  /** The last refusal's code: what the route's reason says while the edge is left out. */
  #refusedWith: ErrorCode = 'edge_unavailable'
  /** Until when an edge that did not say its MAX_TOKENS is not asked again. */
  #maxTokensUnknownUntil = 0

  constructor(options: EdgeOptions) {
    this.#client = new EdgeClient(options)
  }

  /**
   * The most tokens the edge's answers may have (MAX_TOKENS), asked once (GET /v1/models; the
   * client keeps the list); undefined when the edge is older than the field or did not answer
   * within a few seconds (then not asked again for a while, so answers do not wait on an edge
   * that is down).
   */
  async maxTokens(signal?: AbortSignal): Promise<number | undefined> {
    const known = this.#client.knownMaxTokens
    if (known !== undefined || performance.now() < this.#maxTokensUnknownUntil) return known
    const bounded = AbortSignal.any([
      AbortSignal.timeout(limitsLookupMs),
      ...(signal === undefined ? [] : [signal]),
    ])
    let maxTokens: number | undefined
    try {
      maxTokens = await this.#client.maxTokens(bounded)
    } catch {
      // Unknown: the answer starts unchecked, as with an older edge.
    }
    // An answer aborted while it asked learned nothing about the edge: asked again next time.
    if (maxTokens === undefined && signal?.aborted !== true)
      this.#maxTokensUnknownUntil = performance.now() + edgeRetryDelayMs
    return maxTokens
  }

  /**
   * The edge's MAX_TOKENS as far as it is known already (the model list maxTokens(), a handoff
   * or an edge answer read): nothing is sent, so a device answer never waits on the edge.
   */
  get knownMaxTokens(): number | undefined {
    return this.#client.knownMaxTokens
  }

  /**
   * False for a while after the edge could not answer (edge_unavailable, or a 429: busy or over
   * its rate limit): 2 s doubled per failure in a row up to 30 s, or its Retry-After when longer
   * (at most 5 minutes: edgeBackoffMs). Then true again: the next request tries it (and a failure
   * there leaves it out for the next, longer wait; an answer resets the count).
   */
  get reachable(): boolean {
    return performance.now() >= this.#unreachableUntil
  }

  /** Why the edge is left out while `reachable` is false, for the route's reason. */
  get leftOut(): string {
    if (this.#refusedWith === 'overloaded') return 'the edge is busy (it answered 429 overloaded)'
    if (this.#refusedWith === 'rate_limited')
      return 'the edge is rate-limiting this client (it answered 429 rate_limited)'
    if (this.#refusedWith === 'edge_starting')
      return 'the edge is starting (its model is loading: it answered 503 edge_starting)'
    return 'the edge is unreachable'
  }

  /**
   * Runs (or continues) the answer on the edge. With `fromDevice` it continues the device's
   * tokens and yields one finish for the joined answer. Returns 'fall-back' when the edge failed
   * before any text and `mayFallBack` lets the caller try the device instead.
   */
  async *run(
    request: CheckedChatRequest,
    reason: string,
    startedAt: number,
    attempts: OndeviceError[],
    fromDevice: DeviceFailure | undefined,
    mayFallBack = false,
  ): AsyncGenerator<StreamPart, 'done' | 'fall-back'> {
    const route: Route = fromDevice ? 'device+edge' : 'edge'
    // The edge is being asked anyway: learn its MAX_TOKENS (once per client), so a later device
    // answer over it is refused before it starts; a client with edge.model set reads the model
    // list nowhere else. A handoff waits for it (one round trip, the first time only); an edge
    // answer does not.
    if (fromDevice) await this.maxTokens(request.signal)
    else void this.maxTokens()
    let text = ''
    let reasoning = ''
    // The edge's reasoning deltas' tokens, for an aborted answer (which never reads the final usage).
    let edgeReasoningTokens = 0
    // The edge's tokens as its deltas carried them (delta.token_ids): an aborted answer never
    // reads the final chunk, so its finish counts these, as the device counts the tokens it showed.
    const edgeTokenIds: number[] = []
    // The prompt's size as the edge said it before the first token (x-ondevice-prompt-tokens);
    // unknown (0) from an edge that does not send it, until its final usage (which an abort never reads).
    let edgePromptTokens: number | undefined
    let firstTokenAt: number | undefined
    const constraint = constraintOf(request)
    // Why the edge answered in another format than the device's (its own reason, or that it is
    // older than ondevice_format): the joined answer's reason says so beside usage's dtype 'q8+q4'.
    let formatFallback: string | undefined
    try {
      const parts = this.#client.stream(
        {
          messages: request.messages,
          sampling: samplingOf(request),
          ...(request.maxTokens === undefined
            ? {}
            : {
                maxTokens: fromDevice
                  ? Math.max(1, request.maxTokens - fromDevice.tokenIds.length)
                  : request.maxTokens,
              }),
          ...(request.stop === undefined ? {} : { stop: request.stop }),
          ...(constraint === undefined ? {} : { constraint }),
          ...(request.enableThinking === undefined ? {} : { enableThinking: request.enableThinking }),
          ...(fromDevice
            ? {
                continuation: { tokenIds: fromDevice.tokenIds, step: fromDevice.step },
                // The same quantized model on the same engine is what makes the continuation exact.
                ...deviceFormat(fromDevice),
                // The same model, so its id is the one to ask for when the model list fails.
                knownModelId: fromDevice.modelId,
                ...(fromDevice.packageFingerprint === undefined
                  ? {}
                  : { packageFingerprint: fromDevice.packageFingerprint }),
              }
            : {}),
          ...(request.signal ? { signal: request.signal } : {}),
        },
        (info) => {
          formatFallback = info.formatFallback
          edgePromptTokens = info.promptTokens
        },
      )
      for await (const part of parts) {
        if (part.type === 'text-delta' || part.type === 'reasoning-delta') {
          firstTokenAt ??= performance.now()
          if (part.type === 'text-delta') text += part.text
          else {
            reasoning += part.text
            edgeReasoningTokens += part.tokenIds.length
          }
          for (const id of part.tokenIds) edgeTokenIds.push(id)
          yield part
          continue
        }
        this.#unreachableUntil = 0
        this.#failuresInARow = 0
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
          // Each side counted the reasoning tokens it generated (the edge those after the continuation).
          ...(part.usage.reasoningTokens === undefined
            ? {}
            : { reasoningTokens: fromDevice.reasoningTokens + part.usage.reasoningTokens }),
          timeToFirstTokenMs: first - startedAt,
          prefillTokensPerSecond: part.usage.prefillTokensPerSecond,
          decodeTokensPerSecond:
            completionTokens > 1 && now > first ? ((completionTokens - 1) * 1000) / (now - first) : 0,
          backend: `${fromDevice.backend}+${part.usage.backend ?? 'edge'}`,
          dtype:
            part.usage.dtype === undefined || part.usage.dtype === fromDevice.dtype
              ? fromDevice.dtype
              : `${fromDevice.dtype}+${part.usage.dtype}`,
          route,
          routeReason:
            formatFallback === undefined ? reason : `${reason}; ${formatFallback.replace(/\.$/, '')}`,
        }
        yield {
          type: 'finish',
          finishReason: part.finishReason,
          tokenIds: [...fromDevice.tokenIds, ...part.tokenIds],
          text: fromDevice.text + part.text,
          ...(fromDevice.reasoning + (part.reasoning ?? '') === ''
            ? {}
            : { reasoning: fromDevice.reasoning + (part.reasoning ?? '') }),
          nextStep: part.nextStep,
          ...(part.seed === undefined ? {} : { seed: part.seed }),
          usage,
          ...(part.toolCalls === undefined ? {} : { toolCalls: part.toolCalls }),
          ...(part.partial === undefined ? {} : { partial: part.partial }),
        }
        return 'done'
      }
      throw new OndeviceError('edge_failed', 'The edge stream ended without a finish.', { isRetryable: true })
    } catch (error) {
      if (isAbort(error, request.signal)) {
        // Exactly what was shown: the device's part (a handoff) and the edge's deltas, with the
        // prompt as the device counted it, else as the edge said it up front.
        yield abortFinish(
          (fromDevice?.text ?? '') + text,
          [...(fromDevice?.tokenIds ?? []), ...edgeTokenIds],
          fromDevice?.promptTokens ?? edgePromptTokens,
          route,
          reason,
          startedAt,
          (fromDevice?.reasoning ?? '') + reasoning,
          (fromDevice?.reasoningTokens ?? 0) + edgeReasoningTokens,
        )
        return 'done'
      }
      const edgeError = toOndeviceError(error, 'edge_failed', true)
      if (edgeBusyOrDown.has(edgeError.code)) {
        // Requests sent while the edge was up that fail inside a wait already begun are the same
        // outage, not further failures in a row: five answers cut by one restart would otherwise
        // double the wait four more times. They may lengthen it (a later Retry-After) only.
        const now = performance.now()
        if (now >= this.#unreachableUntil) this.#failuresInARow++
        this.#refusedWith = edgeError.code
        this.#unreachableUntil = Math.max(
          this.#unreachableUntil,
          now + edgeBackoffMs(this.#failuresInARow, edgeError.retryAfterSeconds),
        )
      }
      attempts.push(edgeError)
      if (mayFallBack && text === '' && !fromDevice) return 'fall-back'
      yield { type: 'error', error: serializeError(chainError(attempts)) }
      return 'done'
    }
  }
}
