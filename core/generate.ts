// The generation loop both the device and the edge run: prefill the prompt (reusing whatever
// prefix the session's cache already holds), then sample, stream and feed one token at a time
// until EOS, a stop string, the token limit or the AbortSignal.
//
// Handoff contract: every sampled token is yielded (in a text or reasoning delta's tokenIds) *before* the
// session runs it, and draw k uses step k. When a session fails mid-answer, the tokens yielded so
// far plus `step = continuation.step + their count` let another machine continue with
// `continuation`, and the joined answer equals an uninterrupted one.
import {
  AbortedError,
  BackendError,
  ContextLengthError,
  InvalidArgumentError,
  OndeviceError,
  refuseUnknownNames,
} from './errors.ts'
import { createTimeSlice } from './event-loop.ts'
import type { ModelSession } from './model-session.ts'
import { ReasoningSplitter, reasoningCloseTag, reasoningStartOf } from './reasoning.ts'
import { Sampler, type SamplingOptions } from './sampling/index.ts'
import { samplingOptionNames } from './sampling/options.ts'
import { refuseStopWithDocument, StopStringMatcher, validateStopStrings } from './stop-strings.ts'
import type { FinishPart, FinishReason, GenerationPart, TextDeltaPart, Usage } from './stream-parts.ts'
import type {
  ConstraintFieldNames,
  ConstraintOptions,
  ConstraintState,
  ConstraintTokenizer,
} from './structured/constraint.ts'
// The compiler and the call readers load with the first constrained request (load.ts says why).
import { loadStructuredOutput, type StructuredOutput } from './structured/load.ts'
import { type DecodingTokenizer, TextStream } from './text-stream.ts'

/** What generate() needs from a tokenizer (core's Tokenizer has it). */
export interface GenerationTokenizer extends DecodingTokenizer {
  readonly eosTokenIds: readonly number[]
  /**
   * Ids the tokenizer can decode (0..vocabularySize-1). Models pad their logits past it (Qwen:
   * 151,936 logits, 151,669 tokens); those ids are never drawn, since no text could show them.
   */
  readonly vocabularySize?: number
  /** Token bytes and control-token lookup, for a `constraint` (core's Tokenizer has them). */
  tokenBytes?(): readonly (Uint8Array | undefined)[]
  tokenToId?(token: string): number | undefined
  /** The model's chat template: it decides the tool-call syntax (toolCallSyntaxOf). */
  readonly chatTemplate?: string | undefined
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
  /**
   * Called while the model works without a part to show (a long prompt's prefill on the engine:
   * between its passes, after each prompt chunk and each continuation token), so a caller that
   * watches for stalled generations sees this one is alive.
   */
  readonly onProgress?: () => void
  readonly continuation?: Continuation
  /**
   * Positions inside the prompt where a chat turn starts (`encodeChatTurns(...).turnBoundaries`).
   * The prompt is prefilled in chunks cut there and the session keeps its state at each cut, so a
   * later turn of the same conversation resumes from the last cut it shares instead of re-running
   * the conversation. Device and edge must pass the same boundaries for a handoff to continue
   * exactly (q8 logits depend on the chunking). Without them the prompt is one chunk.
   */
  readonly promptBoundaries?: readonly number[]
  /** Token ids that end generation besides the tokenizer's EOS ids. */
  readonly stopTokenIds?: readonly number[]
  /**
   * What the answer must be: a JSON Schema document, any JSON object, or tool calls. Enforced
   * token by token (a mask before the rest of the sampler), so device and edge mask alike and a
   * continuation replays the state from its tokens. Invalid options throw InvalidArgumentError.
   */
  readonly constraint?: ConstraintOptions
  /**
   * The request fields the constraint's errors name, those raised while the answer runs included
   * (default: core's option names). The server passes the wire's (`response_format`, `tools`), and
   * the same names its validation compiled with, so the compiled constraint is reused.
   */
  readonly constraintFieldNames?: ConstraintFieldNames
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

/** The boundaries strictly inside the prompt, increasing and without repeats. */
function checkBoundaries(value: unknown, promptLength: number): readonly number[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) {
    throw new InvalidArgumentError(
      'promptBoundaries',
      'promptBoundaries must be an array of prompt positions (encodeChatTurns gives them).',
    )
  }
  for (const [index, position] of value.entries()) {
    if (!Number.isSafeInteger(position) || (position as number) < 0 || (position as number) > promptLength) {
      throw new InvalidArgumentError(
        `promptBoundaries.${index}`,
        `promptBoundaries.${index} is ${String(position)}; boundaries are whole numbers in 0..${promptLength} (positions in the prompt).`,
      )
    }
  }
  const inside = (value as number[]).filter((position) => position > 0 && position < promptLength)
  return [...new Set(inside)].sort((a, b) => a - b)
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const limit = Math.min(a.length, b.length)
  let length = 0
  while (length < limit && a[length] === b[length]) length++
  return length
}

/**
 * Where prefill starts: the longest prefix of `input` the session holds or can rewind to, at a
 * point where a cold run would also cut the input (a turn boundary, the prompt's end, or any point
 * among the continuation tokens, which go in one at a time), so that a resumed run feeds the same
 * chunks as a cold one. Without boundaries any shared prefix counts, and so it does on a session
 * whose logits do not depend on the chunks (`info.splitInvariant`, the engine), at the longest
 * length it can rewind to: there a chat's next turn starts after the previous answer's tokens (as
 * far as the template renders that answer as it was generated), not at the answer's turn boundary.
 * A session with recurrent state rewinds only to its checkpoints (or stays where it is), so the
 * candidates are tried longest first.
 */
async function resumePoint(
  session: ModelSession,
  input: readonly number[],
  promptLength: number,
  boundaries: readonly number[],
): Promise<number> {
  const shared = Math.min(commonPrefixLength(session.tokens, input), input.length - 1)
  const candidates = new Set<number>()
  if (session.info.splitInvariant === true) {
    const longest = session.rewindableLength?.(shared) ?? shared
    if (longest > 0) candidates.add(longest)
  }
  if (boundaries.length === 0 || shared >= promptLength) candidates.add(shared)
  if (promptLength <= shared) candidates.add(promptLength)
  for (let index = boundaries.length - 1; index >= 0; index--) {
    const boundary = boundaries[index] as number
    if (boundary <= shared) candidates.add(boundary)
  }
  for (const candidate of candidates) {
    if (candidate === 0) break
    if (candidate === session.tokens.length || (await session.rewind(candidate))) return candidate
  }
  if (session.tokens.length > 0) await session.reset()
  return 0
}

/** Generates from `request.promptTokenIds` on `session`, yielding text deltas and one finish part. */
/** Every field of GenerateRequest: any other name is a mistake, refused rather than ignored. */
const generateRequestFields: readonly (keyof GenerateRequest)[] = [
  'promptTokenIds',
  'sampling',
  'maxTokens',
  'stop',
  'signal',
  'onProgress',
  'continuation',
  'promptBoundaries',
  'stopTokenIds',
  'constraint',
  'constraintFieldNames',
]

/**
 * A misspelt field was ignored, and a sampling option at the top level (`temperature`, as the
 * SDK's chat() takes it) too: the answer sampled with the defaults, without a word.
 */
function refuseUnknownFields(request: object): void {
  for (const key of Object.keys(request)) {
    if (
      (samplingOptionNames as readonly string[]).includes(key) &&
      !generateRequestFields.includes(key as keyof GenerateRequest)
    )
      throw new InvalidArgumentError(
        key,
        `${key} is a sampling option: pass it as sampling: { ${key} } (generate() has no top-level ${key}).`,
      )
  }
  refuseUnknownNames(request, generateRequestFields, 'generate() field')
}

export async function* generate(
  session: ModelSession,
  tokenizer: GenerationTokenizer,
  request: GenerateRequest,
): AsyncGenerator<GenerationPart, void, undefined> {
  if (typeof request !== 'object' || request === null) {
    throw new InvalidArgumentError('request', 'generate() needs a request like { promptTokenIds: [...] }.')
  }
  refuseUnknownFields(request)
  const started = performance.now()
  const { contextLength, vocabularySize } = session.info
  const prompt = checkTokenIds(request.promptTokenIds, 'promptTokenIds', vocabularySize, false)
  const boundaries = checkBoundaries(request.promptBoundaries, prompt.length)
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
  if (step + (maxTokens ?? contextLength) > Number.MAX_SAFE_INTEGER) {
    throw new InvalidArgumentError(
      'continuation.step',
      `continuation.step is ${step}: with up to ${maxTokens ?? contextLength} more draws the step counter would pass ${Number.MAX_SAFE_INTEGER}. Send the FinishPart's nextStep (a count of draws, far smaller).`,
    )
  }
  const stops = validateStopStrings(request.stop)
  refuseStopWithDocument(stops, request.constraint?.responseFormat?.type, 'responseFormat')
  const stopTokenIds = new Set<number>(tokenizer.eosTokenIds)
  for (const id of checkTokenIds(request.stopTokenIds ?? [], 'stopTokenIds', vocabularySize, true))
    stopTokenIds.add(id)
  let constraintState: ConstraintState | undefined
  let structured: StructuredOutput | undefined
  if (request.constraint !== undefined) {
    structured = await loadStructuredOutput()
    const compiled = structured.compileConstraint(
      request.constraint,
      request.constraintFieldNames,
      structured.toolCallSyntaxOf(tokenizer.chatTemplate),
    )
    if (compiled !== undefined) {
      if (typeof tokenizer.tokenBytes !== 'function' || typeof tokenizer.tokenToId !== 'function') {
        throw new InvalidArgumentError(
          'constraint',
          'A constraint needs a tokenizer with tokenBytes() and tokenToId() (core Tokenizer has them).',
        )
      }
      constraintState = new structured.ConstraintState(compiled, tokenizer as ConstraintTokenizer)
    }
  }
  const sampler = new Sampler(
    request.sampling ?? {},
    constraintState === undefined ? {} : { constraints: [constraintState] },
  )
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

  // Special tokens a model writes mid-answer (<|im_start|>, <|vision_start|>, ...) are control ids,
  // not text: they stay in tokenIds but out of the text, as transformers.js, vLLM and llama.cpp
  // decode an answer. Call markup and <think> are not special in these tokenizers and stay visible.
  const stream = new TextStream(tokenizer, { skipSpecialTokens: true })
  const newTokens: number[] = []
  let text = ''
  let reasoningText = ''
  // The generated tokens the reasoning deltas carried (the think block, its tags included).
  let reasoningTokens = 0
  let firstTokenAt = 0
  let lastTokenAt = 0
  let prefillSeconds = 0
  let prefilledTokens = 0
  let cachedTokens = 0

  const usage = (): Usage => ({
    promptTokens: prompt.length,
    completionTokens: newTokens.length,
    reasoningTokens,
    ...(continuationIds.length > 0 ? { continuationTokens: continuationIds.length } : {}),
    cachedTokens,
    timeToFirstTokenMs: firstTokenAt === 0 ? 0 : firstTokenAt - started,
    prefillTokensPerSecond: prefillSeconds > 0 ? prefilledTokens / prefillSeconds : 0,
    decodeTokensPerSecond:
      newTokens.length > 1 && lastTokenAt > firstTokenAt
        ? ((newTokens.length - 1) * 1000) / (lastTokenAt - firstTokenAt)
        : 0,
    backend: session.info.backend,
    dtype: session.info.dtype,
  })
  const finish = (reason: FinishReason): FinishPart => {
    // The state has seen every token but the last (it catches up before each draw).
    const answer = [...continuationIds, ...newTokens]
    // A token limit reached right where a constrained answer was complete and only its end could
    // follow (a forced call's `</tool_call>`, a document's last `}`) cut nothing: the answer
    // finished, as it would have with the one more draw (EOS) the limit left out.
    const finishReason =
      reason === 'length' &&
      constraintState?.isFinishedAfter(answer.slice(constraintState.tokenCount)) === true
        ? 'stop'
        : reason
    const part: FinishPart = {
      type: 'finish',
      finishReason,
      tokenIds: newTokens,
      text,
      ...(reasoningText === '' ? {} : { reasoning: reasoningText }),
      nextStep: step,
      seed: sampler.seed,
      usage: usage(),
    }
    if (constraintState === undefined || structured === undefined) return part
    const complete = constraintState.isCompleteAfter(answer.slice(constraintState.tokenCount))
    // Cut before the document or call was complete: the token limit, an abort, or a stop string.
    const partial = !complete
    if (constraintState.constraint.toolMode === 'none') return partial ? { ...part, partial } : part
    const idOf = (index: number) => callIdAt(answer, index)
    const shapes = constraintState.constraint.xmlToolShapes
    const { toolCalls } =
      shapes === undefined
        ? structured.readToolCalls(tokenizer.decode(answer), answer, idOf)
        : structured.readXmlToolCalls(tokenizer.decode(answer), shapes, idOf)
    return {
      ...part,
      ...(toolCalls.length > 0 ? { toolCalls } : {}),
      ...(toolCalls.length > 0 && finishReason === 'stop' ? { finishReason: 'tool-calls' as const } : {}),
      ...(partial ? { partial } : {}),
    }
  }
  /**
   * The id of the answer's call number `index` (its `index`-th `<tool_call>`): a hash of the
   * prompt and the answer up to that token (core/structured/tool-calls.ts says why). Not of the
   * seed: a greedy answer continued elsewhere with another seed keeps its ids.
   */
  const callIdAt = (answer: readonly number[], index: number): string => {
    const openId = constraintState?.toolCallOpenId
    let seen = -1
    let end = answer.length
    for (let position = 0; position < answer.length; position++) {
      if (answer[position] === openId && ++seen === index) {
        end = position + 1
        break
      }
    }
    return structured!.toolCallId([...prompt, ...answer.slice(0, end)], index)
  }
  // The call being written, for a server that streams it (the id and name, then arguments).
  const shapes = constraintState?.constraint.xmlToolShapes
  const callReader =
    constraintState?.toolCallOpenId === undefined || structured === undefined
      ? undefined
      : shapes === undefined
        ? new structured.ToolCallReader()
        : new structured.XmlToolCallReader(shapes)
  let callCount = 0
  /**
   * Follows token `id` (its `shown` text) into the call reader; it is `input[end - 1]` (the prompt,
   * the continuation and the tokens drawn so far), sliced only at a call's opening.
   */
  const followCall = (id: number, shown: string, end: number): void => {
    if (callReader === undefined) return
    // A call reader exists only under a constraint, so the structured-output code is loaded.
    if (id === constraintState?.toolCallOpenId)
      callReader.open(structured!.toolCallId(input.slice(0, end), callCount++))
    else callReader.push(shown)
  }
  // A thinking model's `<think>` block is reasoning, not text (core/reasoning.ts): it splits the
  // visible text (tool calls taken out first). A structured answer starts with its document, or a
  // forced call with the call, so it has none, even after a prompt that opened `<think>` (its
  // tokens are not reasoning: they counted as such); a tokenizer without the tag cannot write one.
  // Tools under 'auto' or 'none' leave the answer free: a thinking model reasons first, its
  // reasoning apart (under 'none' it went to the text).
  const constraint = constraintState?.constraint
  const startsStructured =
    constraint !== undefined &&
    (constraint.responseGrammar !== undefined || constraint.toolMode === 'required')
  const splitter = new ReasoningSplitter(
    startsStructured
      ? 'off'
      : typeof tokenizer.tokenToId === 'function' && tokenizer.tokenToId(reasoningCloseTag) === undefined
        ? 'off'
        : reasoningStartOf(tokenizer.decode(prompt.slice(-8))),
  )

  // With tools, the text is what comes before the first call, and only that: from `<tool_call>`
  // on, the tokens are the call (FinishPart.toolCalls), shown to no one, on every path (device,
  // edge, streamed or not, a call cut by the token limit included). Whitespace right before a call
  // is not text either (the call's separator), so trailing whitespace waits until text follows it
  // or the answer ends; it is a function of the tokens alone, so a handoff resumes with the same
  // whitespace held.
  const callOpenId = constraintState?.toolCallOpenId
  let inCall = false
  let heldSpace = ''
  /** The part of `piece` the reader sees; `next` says what follows it. */
  const visible = (piece: string, next: 'text' | 'call' | 'end'): string => {
    if (inCall) return ''
    if (callOpenId === undefined) return piece
    const pending = heldSpace + piece
    if (next === 'end') {
      heldSpace = ''
      return pending
    }
    const kept = pending.trimEnd()
    heldSpace = next === 'call' ? '' : pending.slice(kept.length)
    if (next === 'call') inCall = true
    return kept
  }

  /** What a piece of the answer shows: reasoning, text, and whether a stop string ended the text. */
  interface Shown {
    readonly reasoning: string
    readonly text: string
    readonly stopped: boolean
    /** The splitter took in text of the think block (splitter.touchedReasoning), tags included. */
    readonly touched: boolean
  }
  /**
   * Stop strings end the answer's content, and only its content: a tool call's markup, a thinking
   * model's reasoning and a response_format document are not content, so a stop string never cuts
   * them (a call's JSON or XML and a schema's document are full of `\n`, `"` and `}`, which apps
   * send as stop strings; vLLM skips the reasoning too). Under a response_format the whole answer
   * is the document (or a call), so stop strings have nothing to match. Each piece goes: tool call
   * out (visible), reasoning out (splitter), then the stop strings over the text that is left.
   */
  const matcher = new StopStringMatcher(
    constraintState?.constraint.responseGrammar === undefined ? stops : [],
  )
  /** Follows `piece` (decoded text) through the pipeline; `next` says what follows it. */
  const show = (piece: string, next: 'text' | 'call' | 'end'): Shown => {
    const split = splitter.push(visible(piece, next))
    let touched = splitter.touchedReasoning
    const held = next === 'end' ? splitter.flush() : { reasoning: '', text: '' }
    if (next === 'end') touched ||= splitter.touchedReasoning
    const matched = matcher.push(split.text + held.text)
    // Held-back text (a possible stop-string start) is content once the content ends otherwise.
    const rest = next !== 'text' && !matched.stopped ? matcher.flush() : ''
    return {
      reasoning: split.reasoning + held.reasoning,
      text: matched.text + rest,
      stopped: matched.stopped,
      touched,
    }
  }
  const join = (first: Shown, second: Shown): Shown => ({
    reasoning: first.reasoning + second.reasoning,
    text: first.text + second.text,
    stopped: first.stopped || second.stopped,
    touched: first.touched || second.touched,
  })
  const nothing: Shown = { reasoning: '', text: '', stopped: false, touched: false }
  /** At `<tool_call>`: the text before it is complete (incomplete bytes held back are released). */
  const textBefore = (id: number): Shown =>
    id === callOpenId && !inCall ? show(stream.flush(), 'call') : nothing
  /** Token `id` (the answer's token `input[end - 1]`) through the text stream, the call reader and `show`. */
  const advance = (id: number, end: number): Shown => {
    const before = textBefore(id)
    if (before.stopped) return before
    const piece = stream.push(id)
    followCall(id, piece, end)
    return join(before, show(piece, 'text'))
  }
  /** The rest of the answer when it ends otherwise than by a stop string (EOS, the limit, an abort). */
  const release = (): Shown => show(stream.flush(), 'end')

  /**
   * The parts a token shows (`tokenIds`: it, or none for what an abort releases). One part carries
   * the token ids, so every token is in exactly one part: the text's, or the reasoning's when the
   * token showed no text.
   */
  const deltas = (shown: Shown, tokenIds: readonly number[]): GenerationPart[] => {
    const shownText = shown.text
    const shownReasoning = shown.reasoning
    text += shownText
    reasoningText += shownReasoning
    const toolCall = inCall ? callReader?.progress : undefined
    const textPart: TextDeltaPart = {
      type: 'text-delta',
      text: shownText,
      tokenIds,
      ...(toolCall === undefined ? {} : { toolCall }),
      ...(inCall && tokenIds.length > 0 ? { inToolCall: true as const } : {}),
    }
    // A token of the think block that shows no reply text (the tags included: `<think>` and
    // `</think>` show nothing) rides on a reasoning delta; usage.reasoningTokens counts exactly the
    // tokens reasoning deltas carry. A token that shows reply text too goes with the text.
    // A call's tokens are the call, never reasoning, even where it opened inside an open think
    // block (its markup shows nothing and would otherwise count as the reasoning it interrupts).
    const onlyReasoning = shownText === '' && toolCall === undefined && !inCall
    if (shownReasoning === '' && !(onlyReasoning && shown.touched)) return [textPart]
    if (onlyReasoning) {
      reasoningTokens += tokenIds.length
      return [{ type: 'reasoning-delta', text: shownReasoning, tokenIds }]
    }
    return [{ type: 'reasoning-delta', text: shownReasoning, tokenIds: [] }, textPart]
  }

  // Replay the continuation through the same text and stop machinery, without emitting it: the
  // device already showed exactly the text these tokens released. A continuation is as long as the
  // client makes it, so the loop gives the event loop its turn (other requests, /healthz) and
  // checks the signal every few milliseconds. Its own slice: a token here is microseconds of text,
  // the loops below a model step each (see createTimeSlice).
  const replaySlice = createTimeSlice()
  for (const [index, id] of continuationIds.entries()) {
    if (stopTokenIds.has(id) || matcher.stopped) {
      yield finish('stop')
      return
    }
    advance(id, prompt.length + index + 1)
    const pause = replaySlice.maybeYield()
    if (pause) {
      await pause
      if (signal?.aborted) {
        yield finish('abort')
        return
      }
    }
  }
  if (matcher.stopped) {
    yield finish('stop')
    return
  }

  const run = async (tokenIds: readonly number[], checkpoint: boolean): Promise<Float32Array | undefined> => {
    try {
      const logits = await session.append(tokenIds, {
        checkpoint,
        ...(signal === undefined ? {} : { signal }),
        ...(request.onProgress === undefined ? {} : { onProgress: request.onProgress }),
      })
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
  // Prefill: reuse what the cache already holds (multi-turn chat, a retried continuation), always
  // re-feeding at least one token because the logits for the next position are needed.
  const reuse = await resumePoint(session, input, prompt.length, boundaries)
  const prefillStarted = performance.now()
  prefilledTokens = input.length - reuse
  // Only the prompt's share: reused continuation tokens (a retried handoff) are not prompt tokens.
  cachedTokens = Math.min(reuse, prompt.length)
  // The prompt goes in as chunks cut at the turn boundaries; continuation tokens one at a time,
  // as they were produced. With dynamic int8 (q8: activations quantized per tensor) logits depend
  // on how tokens were chunked, so this is what makes a continued answer equal the uninterrupted
  // one, and a resumed turn equal a cold run of the whole conversation.
  const promptEnd = Math.max(reuse, prompt.length)
  const cuts = [...boundaries.filter((position) => position > reuse), promptEnd]
  let logits: Float32Array | undefined
  let chunkStart = reuse
  let aborted = false
  // The model's loops (prompt chunks, continuation steps, the answer's tokens): a step each.
  const slice = createTimeSlice()
  for (const cut of cuts) {
    if (cut <= chunkStart) continue
    if (signal?.aborted) {
      aborted = true
      break
    }
    logits = await run(input.slice(chunkStart, cut), true)
    if (logits === undefined) break
    chunkStart = cut
    // Progress between appends too, not only between the passes inside one: a conversation cut
    // at many turn boundaries is many short appends, each shorter than a pass.
    request.onProgress?.()
    // A backend that computes on this thread (WASM in a Worker isolate) would otherwise hold it
    // for the whole prompt.
    await slice.maybeYield()
  }
  for (let index = promptEnd; index < input.length && !aborted; index++) {
    if ((index > reuse && logits === undefined) || signal?.aborted) {
      aborted = true
      break
    }
    logits = await run([input[index] as number], false)
    // A handoff's continuation is one append per token (a decode step each, no pass inside):
    // a long one is a prefill of seconds that would show no progress at all otherwise.
    request.onProgress?.()
    await slice.maybeYield()
  }
  prefillSeconds = (performance.now() - prefillStarted) / 1000
  if (logits === undefined || aborted || signal?.aborted) {
    yield finish('abort')
    return
  }

  const history = input
  for (;;) {
    if (signal?.aborted) {
      for (const part of deltas(release(), [])) {
        if (part.text.length > 0) yield part
      }
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
      yield* deltas(release(), [id])
      yield finish('stop')
      return
    }
    const shown = advance(id, history.length)
    if (shown.stopped) {
      yield* deltas(shown, [id])
      yield finish('stop')
      return
    }
    if (newTokens.length >= answerLimit) {
      yield* deltas(join(shown, release()), [id])
      yield finish('length')
      return
    }
    yield* deltas(shown, [id])
    await slice.maybeYield()
    logits = await run([id], false)
    if (logits === undefined) {
      for (const part of deltas(release(), [])) {
        if (part.text.length > 0) yield part
      }
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
