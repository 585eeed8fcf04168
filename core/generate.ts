// The generation loop both the device and the edge run: prefill the prompt (reusing whatever
// prefix the session's cache already holds), then sample, stream and feed one token at a time
// until EOS, a stop string, the token limit or the AbortSignal.
//
// Handoff contract: every sampled token is yielded (in a text-delta's tokenIds) *before* the
// session runs it, and draw k uses step k. When a session fails mid-answer, the tokens yielded so
// far plus `step = continuation.step + their count` let another machine continue with
// `continuation`, and the joined answer equals an uninterrupted one.
import {
  AbortedError,
  BackendError,
  ContextLengthError,
  InvalidArgumentError,
  OndeviceError,
} from './errors.ts'
import type { ModelSession } from './model-session.ts'
import { Sampler, type SamplingOptions } from './sampler.ts'
import { StopStringMatcher, validateStopStrings } from './stop-strings.ts'
import type { FinishPart, FinishReason, GenerationPart, TextDeltaPart, Usage } from './stream-parts.ts'
import { type DecodingTokenizer, TextStream } from './text-stream.ts'

/** What generate() needs from a tokenizer (core's Tokenizer has it). */
export interface GenerationTokenizer extends DecodingTokenizer {
  readonly eosTokenIds: readonly number[]
  /**
   * Ids the tokenizer can decode (0..vocabularySize-1). Models pad their logits past it (Qwen:
   * 151,936 logits, 151,669 tokens); those ids are never drawn, since no text could show them.
   */
  readonly vocabularySize?: number
}

export interface Continuation {
  /** Assistant tokens already produced elsewhere (appended to the prompt, not re-emitted). */
  readonly tokenIds: readonly number[]
  /** The sampler step to resume at (the FinishPart's `nextStep`, or the start step + tokens produced). */
  readonly step: number
}

export interface GenerateRequest {
  readonly promptTokenIds: readonly number[]
  readonly sampling?: SamplingOptions
  /**
   * Most tokens this call generates (continuation tokens not counted: a handoff sends what is left
   * of the caller's limit). Default: until the context is full.
   */
  readonly maxTokens?: number
  readonly stop?: readonly string[]
  readonly signal?: AbortSignal
  readonly continuation?: Continuation
  /** Token ids that end generation besides the tokenizer's EOS ids. */
  readonly stopTokenIds?: readonly number[]
}

function checkTokenIds(
  value: unknown,
  param: string,
  vocabularySize: number,
  allowEmpty: boolean,
): readonly number[] {
  if (!Array.isArray(value)) throw new InvalidArgumentError(param, `${param} must be an array of token ids.`)
  if (!allowEmpty && value.length === 0) {
    throw new InvalidArgumentError(
      param,
      `${param} is empty: the prompt needs at least one token (e.g. BOS).`,
    )
  }
  for (let index = 0; index < value.length; index++) {
    const id: unknown = value[index]
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= vocabularySize) {
      throw new InvalidArgumentError(
        `${param}.${index}`,
        `${param}.${index} is ${String(id)}; token ids are whole numbers in 0..${vocabularySize - 1} for this model.`,
      )
    }
  }
  return value as readonly number[]
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const limit = Math.min(a.length, b.length)
  let length = 0
  while (length < limit && a[length] === b[length]) length++
  return length
}

/** Generates from `request.promptTokenIds` on `session`, yielding text deltas and one finish part. */
export async function* generate(
  session: ModelSession,
  tokenizer: GenerationTokenizer,
  request: GenerateRequest,
): AsyncGenerator<GenerationPart, void, undefined> {
  if (typeof request !== 'object' || request === null) {
    throw new InvalidArgumentError('request', 'generate() needs a request like { promptTokenIds: [...] }.')
  }
  const started = performance.now()
  const { contextLength, vocabularySize } = session.info
  const prompt = checkTokenIds(request.promptTokenIds, 'promptTokenIds', vocabularySize, false)
  const continuation = request.continuation
  let continuationIds: readonly number[] = []
  let step = 0
  if (continuation !== undefined) {
    if (typeof continuation !== 'object' || continuation === null) {
      throw new InvalidArgumentError('continuation', 'continuation must be { tokenIds, step }.')
    }
    continuationIds = checkTokenIds(continuation.tokenIds, 'continuation.tokenIds', vocabularySize, true)
    if (!Number.isSafeInteger(continuation.step) || continuation.step < 0) {
      throw new InvalidArgumentError(
        'continuation.step',
        `continuation.step must be a whole number ≥ 0 (the sampler step to resume at); got ${String(continuation.step)}.`,
      )
    }
    step = continuation.step
  }
  const maxTokens = request.maxTokens
  if (maxTokens !== undefined && (!Number.isInteger(maxTokens) || maxTokens < 1)) {
    throw new InvalidArgumentError(
      'maxTokens',
      `maxTokens must be a whole number ≥ 1; got ${String(maxTokens)}.`,
    )
  }
  const stops = validateStopStrings(request.stop)
  const stopTokenIds = new Set<number>(tokenizer.eosTokenIds)
  for (const id of checkTokenIds(request.stopTokenIds ?? [], 'stopTokenIds', vocabularySize, true))
    stopTokenIds.add(id)
  const sampler = new Sampler(request.sampling ?? {})
  const decodable = tokenizer.vocabularySize
  const paddingFrom =
    typeof decodable === 'number' &&
    Number.isInteger(decodable) &&
    decodable > 0 &&
    decodable < vocabularySize
      ? decodable
      : vocabularySize
  const signal = request.signal

  const input = [...prompt, ...continuationIds]
  if (input.length >= contextLength) {
    throw new ContextLengthError(
      `The prompt has ${input.length} tokens but the model's context holds ${contextLength}, with room needed for the answer. Shorten the conversation.`,
    )
  }
  // New tokens may come until prompt + answer fill the context.
  const answerLimit = Math.min(maxTokens ?? Number.POSITIVE_INFINITY, contextLength - input.length)

  const stream = new TextStream(tokenizer)
  const matcher = new StopStringMatcher(stops)
  const newTokens: number[] = []
  let text = ''
  let firstTokenAt = 0
  let lastTokenAt = 0
  let prefillSeconds = 0
  let prefilledTokens = 0

  const usage = (): Usage => ({
    promptTokens: prompt.length,
    completionTokens: newTokens.length,
    timeToFirstTokenMs: firstTokenAt === 0 ? 0 : firstTokenAt - started,
    prefillTokensPerSecond: prefillSeconds > 0 ? prefilledTokens / prefillSeconds : 0,
    decodeTokensPerSecond:
      newTokens.length > 1 && lastTokenAt > firstTokenAt
        ? ((newTokens.length - 1) * 1000) / (lastTokenAt - firstTokenAt)
        : 0,
    backend: session.info.backend,
    dtype: session.info.dtype,
  })
  const finish = (finishReason: FinishReason): FinishPart => ({
    type: 'finish',
    finishReason,
    tokenIds: newTokens,
    text,
    nextStep: step,
    seed: sampler.seed,
    usage: usage(),
  })
  const delta = (piece: string, tokenIds: readonly number[]): TextDeltaPart => {
    text += piece
    return { type: 'text-delta', text: piece, tokenIds }
  }
  // Held-back text (a possible stop-string start, incomplete bytes) belongs to the answer when it ends otherwise.
  const release = (): string => matcher.push(stream.flush()).text + matcher.flush()

  // Replay the continuation through the same text and stop machinery, without emitting it: the
  // device already showed exactly the text these tokens released.
  for (const id of continuationIds) {
    if (stopTokenIds.has(id) || matcher.stopped) {
      yield finish('stop')
      return
    }
    matcher.push(stream.push(id))
  }
  if (matcher.stopped) {
    yield finish('stop')
    return
  }

  const run = async (tokenIds: readonly number[]): Promise<Float32Array | undefined> => {
    try {
      const logits = await session.append(tokenIds, signal === undefined ? {} : { signal })
      if (!(logits instanceof Float32Array) || logits.length !== vocabularySize) {
        throw new BackendError(
          'backend_failed',
          `The session returned logits of length ${(logits as { length?: number } | undefined)?.length}, expected ${vocabularySize}.`,
        )
      }
      return logits
    } catch (error) {
      if (signal?.aborted) return undefined
      if (error instanceof OndeviceError) throw error
      throw new BackendError(
        'backend_failed',
        `The model failed while running: ${error instanceof Error ? error.message : String(error)}`,
        {
          isRetryable: true,
          cause: error,
        },
      )
    }
  }

  if (signal?.aborted) {
    yield finish('abort')
    return
  }
  // Prefill: reuse the longest prefix the cache already holds (multi-turn chat), always re-feeding
  // at least one token because the logits for the next position are needed.
  let reuse = Math.min(commonPrefixLength(session.tokens, input), input.length - 1)
  if (reuse < session.tokens.length) {
    if (reuse === 0 || !(await session.rewind(reuse))) {
      await session.reset()
      reuse = 0
    }
  }
  const prefillStarted = performance.now()
  prefilledTokens = input.length - reuse
  // The prompt goes in as one chunk; continuation tokens one at a time, as they were produced.
  // With dynamic int8 (q8: activations quantized per tensor) logits depend on how tokens were
  // chunked, so this is what makes a continued answer equal the uninterrupted one.
  const promptEnd = Math.max(reuse, prompt.length)
  let logits = promptEnd > reuse ? await run(input.slice(reuse, promptEnd)) : undefined
  for (let index = promptEnd; index < input.length; index++) {
    if (index > reuse && logits === undefined) break
    logits = await run([input[index] as number])
  }
  prefillSeconds = (performance.now() - prefillStarted) / 1000
  if (logits === undefined) {
    yield finish('abort')
    return
  }

  const history = input
  for (;;) {
    if (signal?.aborted) {
      const rest = release()
      if (rest.length > 0) yield delta(rest, [])
      yield finish('abort')
      return
    }
    if (paddingFrom < vocabularySize) logits.fill(Number.NEGATIVE_INFINITY, paddingFrom)
    const id = sampler.sample(logits, history, step, prompt.length)
    step++
    lastTokenAt = performance.now()
    if (firstTokenAt === 0) firstTokenAt = lastTokenAt
    newTokens.push(id)
    history.push(id)
    if (stopTokenIds.has(id)) {
      yield delta(release(), [id])
      yield finish('stop')
      return
    }
    const shown = matcher.push(stream.push(id))
    if (shown.stopped) {
      yield delta(shown.text, [id])
      yield finish('stop')
      return
    }
    if (newTokens.length >= answerLimit) {
      yield delta(shown.text + release(), [id])
      yield finish('length')
      return
    }
    yield delta(shown.text, [id])
    logits = await run([id])
    if (logits === undefined) {
      const rest = release()
      if (rest.length > 0) yield delta(rest, [])
      yield finish('abort')
      return
    }
  }
}

/** Drains generate() into its finish part (text, tokens, usage): for callers that don't stream. */
export async function generateText(
  session: ModelSession,
  tokenizer: GenerationTokenizer,
  request: GenerateRequest,
): Promise<FinishPart> {
  for await (const part of generate(session, tokenizer, request)) {
    if (part.type === 'finish') return part
  }
  throw new AbortedError('Generation ended without a finish part.')
}
