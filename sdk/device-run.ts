// The device part of an answer: streams the device model's text, watches its speed (a stall
// hands the answer off), and stops the moment the caller aborts. It returns how the device part
// ended; when it failed, everything a handoff needs to continue on the edge (tokens, text, step).
import { OndeviceError, toOndeviceError } from '../core/errors.ts'
import type { StreamPart, Usage } from '../core/stream-parts.ts'
import { abortFinish, samplingOf } from './answer-parts.ts'
import type { DeviceModel } from './device.ts'
import { type CheckedChatRequest, constraintOf } from './options.ts'

/** How the device part of an answer ended. */
export type DeviceOutcome =
  | { readonly kind: 'finished' }
  /** The device slowed and the edge took the answer over (its parts were yielded). */
  | { readonly kind: 'handed-off' }
  | {
      readonly kind: 'failed'
      readonly error: OndeviceError
      /** Why to hand off, in words (slow decode, backend error). */
      readonly reason: string
      readonly tokenIds: readonly number[]
      readonly text: string
      /** The reasoning shown so far (a thinking model's), apart from the text. */
      readonly reasoning: string
      /** The tokens the reasoning deltas so far carried (usage.reasoningTokens' share of the device). */
      readonly reasoningTokens: number
      readonly step: number
      readonly firstTokenAt: number | undefined
      readonly backend: string
      readonly dtype: string
      readonly promptTokens: number
      /**
       * The id a handoff asks the edge for when it cannot read the model list: the device model's
       * sourceModelId (where its package was loaded from, as an edge names it by default), else its modelId.
       */
      readonly modelId: string
      /** The device model's packageFingerprint: the edge must run the same weights to continue. */
      readonly packageFingerprint?: string
    }

export type DeviceFailure = Extract<DeviceOutcome, { kind: 'failed' }>

/** A stream slower than `minTokensPerSecond` over the last `windowTokens` tokens stalls. */
export interface StallWatch {
  readonly windowTokens: number
  readonly minTokensPerSecond: number
  /**
   * Tries to hand a slowed answer over, yielding the handoff's parts; returns undefined when the
   * edge took it (its finish or error was yielded), else why it could not (nothing was yielded:
   * the edge failed before its first part). The device keeps generating meanwhile, so a slow
   * answer whose edge is unreachable still ends, on the device, with every token it showed.
   * `onTakenOver` is called once the edge answered, before the handoff part: the device stops then.
   * `deviceFinished` aborts when the device, generating meanwhile, finished the answer: then the
   * answer is the device's (the reader does not wait out a silent edge's connect timeout for it).
   */
  readonly takeOver: (
    failure: DeviceFailure,
    onTakenOver: () => void,
    deviceFinished: AbortSignal,
  ) => AsyncGenerator<StreamPart, string | undefined>
}

/**
 * Reads `parts` ahead of the reader, as fast as the source gives them, and hands them over in
 * order until `signal` aborts (then at once). The device runs ahead of its reader, as it already
 * does behind a page's model worker: in process, the device model's generator ran only while the
 * reader pulled, so a stream kept but no longer read (an iterator put aside, two streams read in
 * turns) held the device, and every later answer on the client, for ever. An abandoned stream now
 * runs to its end and frees the device. Whoever aborts `signal` stops the source (it is the
 * source's signal too); the read loop does not wait for the source's current step.
 */
async function* runAhead<T>(parts: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const queue: T[] = []
  let head = 0
  let ended = false
  let failure: { readonly error: unknown } | undefined
  let wake: (() => void) | undefined
  const notify = () => {
    const resolve = wake
    wake = undefined
    resolve?.()
  }
  signal.addEventListener('abort', notify, { once: true })
  void (async () => {
    try {
      for await (const part of parts) {
        queue.push(part)
        notify()
        if (signal.aborted) break
      }
    } catch (error) {
      failure = { error }
    } finally {
      ended = true
      notify()
    }
  })()
  try {
    while (!signal.aborted) {
      if (head < queue.length) {
        const part = queue[head] as T
        queue[head++] = undefined as T
        yield part
        continue
      }
      if (failure) throw failure.error
      if (ended) return
      await new Promise<void>((resolve) => {
        wake = resolve
      })
    }
  } finally {
    signal.removeEventListener('abort', notify)
  }
}

/**
 * Runs the answer on the device, yielding its text deltas as they come. Returns 'finished' once
 * it yielded the finish part, or 'failed' with everything a handoff needs (tokens, text, step).
 * With a `stallWatch`, decode slower than its threshold over its window aborts the device run
 * and fails it. The watch times the device's side of each token (the wait for it, not the reader's
 * time between tokens): the same measure as the probe (the generation loop's decode rate), see
 * RouteThresholds.minDeviceTokensPerSecond.
 */
export async function* runDevice(
  model: DeviceModel,
  request: CheckedChatRequest,
  reason: string,
  startedAt: number,
  stallWatch: StallWatch | undefined,
): AsyncGenerator<StreamPart, DeviceOutcome> {
  const stop = new AbortController()
  const onUserAbort = () => stop.abort()
  request.signal?.addEventListener('abort', onUserAbort, { once: true })
  if (request.signal?.aborted) stop.abort()
  const tokenIds: number[] = []
  // Per token: the device time spent up to it (the waits for the device's parts, summed).
  const deviceTimes: number[] = []
  let deviceTime = 0
  let text = ''
  let reasoning = ''
  let reasoningTokens = 0
  let firstTokenAt: number | undefined
  let watch = stallWatch
  let handedOff = false
  /** The finish's routeReason (says so when the edge could not take a slowed answer over). */
  let finishReason = reason
  /** Undefined until the device's prompt part says the count. */
  let promptTokens: number | undefined
  const failed = (error: OndeviceError, why: string): DeviceOutcome => ({
    kind: 'failed',
    error,
    reason: why,
    tokenIds: [...tokenIds],
    text,
    reasoning,
    reasoningTokens,
    step: tokenIds.length,
    firstTokenAt,
    backend: model.backend,
    dtype: model.dtype,
    promptTokens: promptTokens ?? 0,
    modelId: model.sourceModelId ?? model.modelId,
    ...(model.packageFingerprint === undefined ? {} : { packageFingerprint: model.packageFingerprint }),
  })
  /** The finish of an answer the user stopped: every token shown, counted on the device. */
  const aborted = () =>
    abortFinish(text, tokenIds, promptTokens, 'device', finishReason, startedAt, reasoning, reasoningTokens)
  const constraint = constraintOf(request)
  try {
    const parts = model.generate({
      messages: request.messages,
      sampling: samplingOf(request),
      ...(request.maxTokens === undefined ? {} : { maxTokens: request.maxTokens }),
      ...(request.stop === undefined ? {} : { stop: request.stop }),
      ...(constraint === undefined ? {} : { constraint }),
      ...(request.enableThinking === undefined ? {} : { enableThinking: request.enableThinking }),
      signal: stop.signal,
    })
    // The watch times the device, not the reader: only the waits for the device's next part count
    // (from asking to receiving). The reader's own time between parts (a UI update, a write to a
    // slow socket it awaits) used to count too, so a slow reader on a fast device was handed off
    // to the edge as a slow device.
    let askedAt = performance.now()
    // While the edge is asked to take a slowed answer over, the device goes on (runAhead): once
    // its finish has come, the answer is whole on the device and the edge's try is called off.
    const deviceFinished = new AbortController()
    const noticingFinish = async function* () {
      for await (const part of parts) {
        if (part.type === 'finish') deviceFinished.abort()
        yield part
      }
    }
    // Stop reading the moment the caller aborts or the device stalls, whatever the device
    // does with its own abort (a worker busy in a long step answers it late).
    for await (const part of runAhead(noticingFinish(), stop.signal)) {
      const receivedAt = performance.now()
      deviceTime += receivedAt - askedAt
      if (part.type === 'prompt') {
        promptTokens = part.promptTokens
      } else if (part.type === 'text-delta' || part.type === 'reasoning-delta') {
        firstTokenAt ??= receivedAt
        for (const id of part.tokenIds) {
          tokenIds.push(id)
          deviceTimes.push(deviceTime)
        }
        if (part.type === 'text-delta') text += part.text
        else {
          reasoning += part.text
          reasoningTokens += part.tokenIds.length
        }
        yield part
        if (watch && deviceTimes.length > watch.windowTokens) {
          const window = watch.windowTokens
          const minRate = watch.minTokensPerSecond
          const span = deviceTimes[deviceTimes.length - 1]! - deviceTimes[deviceTimes.length - 1 - window]!
          const rate = span > 0 ? (window * 1000) / span : Infinity
          if (rate < minRate) {
            const why = `decode ran at ${rate.toFixed(1)} tok/s < ${minRate} tok/s over the last ${window} tokens`
            // The device goes on in the background (runAhead) while the edge is asked: an edge
            // that cannot take over (unreachable, refusing) must not cost the answer.
            // Every token yielded so far was shown with exactly the text it released, and draw k
            // used step k: the edge resumes at step = tokens shown (held-back text stays held).
            const declined = yield* watch.takeOver(
              failed(
                new OndeviceError('backend_failed', `The device was too slow: ${why}.`),
                why,
              ) as DeviceFailure,
              // The edge answered: the device's answer is over. It stops now, not once the edge's
              // whole answer has streamed (a slow device kept generating, unseen, all that time:
              // its battery, and its session held from the next request).
              () => {
                handedOff = true
                stop.abort()
              },
              deviceFinished.signal,
            )
            if (declined === undefined) {
              handedOff = true
              stop.abort()
              return { kind: 'handed-off' }
            }
            // Slow it is, but it is the only route left: no more handoffs for this answer.
            watch = undefined
            finishReason = request.signal?.aborted
              ? `${reason}; the device slowed (${why}) and the answer was aborted before the edge took over`
              : `${reason}; the device slowed (${why}) but the edge could not take over (${declined}): the device finished the answer`
          }
        }
      } else if (part.type === 'finish') {
        if (part.finishReason === 'abort') break
        const usage: Usage = {
          ...part.usage,
          backend: part.usage.backend ?? model.backend,
          dtype: part.usage.dtype ?? model.dtype,
          route: 'device',
          routeReason: finishReason,
        }
        yield { ...part, usage }
        return { kind: 'finished' }
      }
      askedAt = performance.now()
    }
    if (request.signal?.aborted) {
      yield aborted()
      return { kind: 'finished' }
    }
    throw new OndeviceError('backend_failed', 'The device generation ended without a finish part.')
  } catch (error) {
    if (handedOff) throw error
    if (request.signal?.aborted) {
      yield aborted()
      return { kind: 'finished' }
    }
    const deviceError = toOndeviceError(error, 'backend_failed')
    return failed(deviceError, `the device failed: ${deviceError.message}`)
  } finally {
    request.signal?.removeEventListener('abort', onUserAbort)
    // The reader left (a break, a return, a throw) or the device part ended: the device stops
    // generating for this answer (nothing when it has finished already).
    stop.abort()
  }
}
