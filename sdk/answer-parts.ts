// What every route's run builds the same way: the sampling fields both sides draw with, the
// finish of an aborted answer, and the one error that lists every attempt.
import { deserializeError, OndeviceError, type PartialAnswer } from '../core/errors.ts'
import { type SamplingOptions, samplingOptionNames } from '../core/sampling/options.ts'
import type { ErrorPart, FinishPart, ReasoningDeltaPart, Route, TextDeltaPart } from '../core/stream-parts.ts'
import type { SamplingRequest } from './options.ts'

/** The request's sampling fields, as the device and the edge both take them. */
export function samplingOf(request: SamplingRequest): SamplingOptions {
  const sampling: Record<string, unknown> = {}
  for (const key of samplingOptionNames) {
    if (request[key] !== undefined) sampling[key] = request[key]
  }
  return sampling as SamplingOptions
}

/** One error that lists every attempt, keeping the class and code of the last failure. */
export function chainError(attempts: readonly OndeviceError[]): OndeviceError {
  const last = attempts[attempts.length - 1]!
  if (attempts.length === 1) return last
  const summary = attempts.map((error, index) => `${index + 1}) ${error.message}`).join(' ')
  return deserializeError({
    ...last.toJSON(),
    message: `Every route failed: ${summary}`,
    attempts: attempts.map((error) => error.toJSON()),
  })
}

export function isAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (error instanceof OndeviceError && error.code === 'aborted')
}

/**
 * The finish of an answer the caller aborted: exactly the text, reasoning and tokens shown so far;
 * `reasoningTokens` are those of the reasoning deltas shown (what usage.reasoningTokens counts).
 * `promptTokens` undefined: stopped before the prompt was counted (the model still loading), which
 * usage says (`promptTokensCounted: false`) rather than passing 0 off as the prompt's size.
 */
export function abortFinish(
  text: string,
  tokenIds: readonly number[],
  promptTokens: number | undefined,
  route: Route,
  reason: string,
  startedAt: number,
  reasoning = '',
  reasoningTokens = 0,
): FinishPart {
  return {
    type: 'finish',
    finishReason: 'abort',
    text,
    ...(reasoning === '' ? {} : { reasoning }),
    tokenIds,
    nextStep: tokenIds.length,
    usage: {
      promptTokens: promptTokens ?? 0,
      ...(promptTokens === undefined ? { promptTokensCounted: false } : {}),
      completionTokens: tokenIds.length,
      reasoningTokens: Math.min(reasoningTokens, tokenIds.length),
      timeToFirstTokenMs: performance.now() - startedAt,
      prefillTokensPerSecond: 0,
      decodeTokensPerSecond: 0,
      route,
      routeReason: reason,
    },
  }
}

/**
 * The answer's start for an error (chat()'s and the AI SDK provider's error.partialAnswer), or
 * undefined when nothing of it was produced.
 */
export function partialAnswerOf(
  text: string,
  reasoning: string,
  tokenIds: readonly number[],
): PartialAnswer | undefined {
  if (text === '' && reasoning === '' && tokenIds.length === 0) return undefined
  return { text, ...(reasoning === '' ? {} : { reasoning }), tokenIds: [...tokenIds] }
}

/**
 * The answer as far as a stream has shown it, for the error that ends it after part of it
 * (chat()'s and the AI SDK provider's error.partialAnswer), which a chat app keeps instead of
 * losing it with the error.
 */
export class AnswerSoFar {
  #text = ''
  #reasoning = ''
  readonly #tokenIds: number[] = []

  add(part: TextDeltaPart | ReasoningDeltaPart): void {
    if (part.type === 'text-delta') this.#text += part.text
    else this.#reasoning += part.text
    for (const id of part.tokenIds) this.#tokenIds.push(id)
  }

  /** The stream's error part as the error to throw, carrying the answer so far (if any). */
  errorOf(part: ErrorPart): OndeviceError {
    const partialAnswer = partialAnswerOf(this.#text, this.#reasoning, this.#tokenIds)
    return deserializeError(partialAnswer ? { ...part.error, partialAnswer } : part.error)
  }
}
