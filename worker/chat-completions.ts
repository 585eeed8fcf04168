// POST /v1/chat/completions: validate and check the limits, wait for a generation slot, template
// and tokenize (inside the slot: it is the costly part of a refusal), run core's generation loop on a pooled session, and answer as JSON or as
// server-sent events. A client that goes away aborts the loop and frees the slot at once.
import type { Context } from 'hono'
import {
  AbortedError,
  ContextLengthError,
  InvalidArgumentError,
  OndeviceError,
  toOndeviceError,
} from '../core/errors.ts'
import { yieldToEventLoop } from '../core/event-loop.ts'
import { generate } from '../core/generate.ts'
import type { ModelSession } from '../core/model-session.ts'
import {
  type ChatCompletionRequest,
  type CompletionHeader,
  clip,
  createChunkWriter,
  encodeChatPrompt,
  formatHeaderNames,
  toChatCompletionResponse,
  toConstraintOptions,
  toGenerateRequest,
  validateChatCompletionRequest,
  validateConstraint,
  wireConstraintFieldNames,
} from '../core/protocol/index.ts'
import type { FinishPart, GenerationPart } from '../core/stream-parts.ts'
import { modelToolCallSyntaxOf } from '../core/structured/call-syntax.ts'
import { ConstraintState, validateConstraintForModel } from '../core/structured/constraint.ts'
import { type AppEnv, shutdownSignalOf } from './app-env.ts'
import type { GenerationSlots, SlotLease } from './generation-slots.ts'
import { toHttpError } from './http-errors.ts'
import { type HostedModel, type ModelHost, type ModelSelection, selectModel } from './model-host.ts'
import { charactersPerPromptToken, type Limits } from './options.ts'
import { preferredWaitMs, remainingWaitMs, withinWait } from './prefer-wait.ts'
import { type BodyBudget, readJsonBody } from './read-body.ts'
import type { RequestLogFields } from './request-log.ts'
import type { SessionPool } from './session-pool.ts'

export interface ChatRuntime {
  readonly modelHost: ModelHost
  readonly modelIds: ReadonlySet<string>
  readonly limits: Limits
  /** The bytes of request bodies being read at once (`limits.maxBodyBytesInFlight`, and per client). */
  readonly bodyBudget: BodyBudget
  readonly slots: GenerationSlots
  readonly version: string
  poolFor(model: HostedModel): SessionPool
  writeLog(c: Context<AppEnv>, status: number): void
}

function completionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12))
  let hex = ''
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0')
  return `chatcmpl-${hex}`
}

/** Names the model, its weight format and the backend, so a client can tell which one answered. */
export function systemFingerprint(model: HostedModel, version: string): string {
  const { modelId, dtype, backend } = model.info
  return `ondevice-${version}:${modelId}:${dtype}:${backend}`
}

/** Refuses an oversized message list before the (costlier) full validation walks it. */
function checkMessageCount(body: unknown, maxMessages: number): void {
  if (typeof body !== 'object' || body === null) return
  const messages = (body as { messages?: unknown }).messages
  if (Array.isArray(messages) && messages.length > maxMessages) {
    throw new InvalidArgumentError(
      'messages',
      `messages has ${messages.length} entries; this server accepts at most ${maxMessages}. Drop older turns or summarize them.`,
    )
  }
}

/**
 * Characters of text `value` hands the chat template: every string (but a message's role), and
 * with `countKeys` the keys too (a tool schema's property names are printed).
 */
function templateCharacters(value: unknown, countKeys: boolean): number {
  let total = 0
  // Iterative: a client chooses the nesting depth.
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const item = stack.pop()
    if (typeof item === 'string') total += item.length
    else if (Array.isArray(item)) for (const child of item) stack.push(child)
    else if (typeof item === 'object' && item !== null)
      for (const [key, child] of Object.entries(item)) {
        if (countKeys) total += key.length
        else if (key === 'role') continue
        stack.push(child)
      }
  }
  return total
}

/** What is known before the prompt is tokenized (cheap checks, no tokenizer work). */
interface Admission {
  readonly request: ChatCompletionRequest
  readonly model: HostedModel
  /** Why the request's ondevice_format was not honoured (it allowed a fallback). */
  readonly formatFallback: string | undefined
  readonly continuationTokenIds: readonly number[]
  /** The prompt-token cap (limits and context). */
  readonly maxPromptTokens: number
  /** max_tokens as asked, and the field it came from. */
  readonly requested: number | undefined
  readonly param: 'max_tokens' | 'max_completion_tokens'
}

/** Seconds a client told the model is still loading should wait before it asks again. */
const loadingRetryAfterSeconds = 5

/**
 * The model for this request, waited for at most as long as the request says it waits
 * (`Prefer: wait=N`, prefer-wait.ts): a Worker's first request loads the model (seconds), as does
 * the first one naming another format. A request without the header waits for the load.
 */
async function modelWithinPreferredWait(
  c: Context<AppEnv>,
  selection: Promise<ModelSelection>,
): Promise<ModelSelection> {
  const preferred = preferredWaitMs(c.req.raw.headers)
  const waitMs = remainingWaitMs(c)
  if (preferred === undefined || waitMs === undefined) return selection
  const selected = await withinWait(c, selection, waitMs)
  if (selected !== undefined) return selected
  throw new OndeviceError(
    'edge_starting',
    `The edge is starting: the model is still loading on this server and answers once it is loaded. Retry in ${loadingRetryAfterSeconds} s (this request asked to wait at most ${Math.round(preferred / 1000)} s: Prefer: wait).`,
    { isRetryable: true, retryAfterSeconds: loadingRetryAfterSeconds },
  )
}

/**
 * Everything that can be refused without tokenizing: the body, the fields, the model, the size of
 * the text in characters, the continuation. Tokenizing costs CPU on the request's thread (seconds
 * for megabytes of text), so it happens only once the request holds a generation slot.
 */
async function admit(c: Context<AppEnv>, runtime: ChatRuntime): Promise<Admission> {
  const { limits } = runtime
  const body = await readJsonBody(c.req.raw, limits.maxBodyBytes, {
    timeoutMs: limits.bodyTimeoutMs,
    stallTimeoutMs: limits.bodyStallTimeoutMs,
    budget: runtime.bodyBudget,
    client: c.get('request').client,
  })
  c.get('request').waitFrom = Date.now()
  checkMessageCount(body, limits.maxMessages)
  const request = validateChatCompletionRequest(body)
  const fields = c.get('request').fields
  fields.model = request.model
  fields.stream = request.stream === true
  if (!runtime.modelIds.has(request.model)) {
    throw new OndeviceError(
      'model_not_found',
      `The model '${clip(request.model)}' is not served here. GET /v1/models lists the served models (${[...runtime.modelIds].join(', ')}).`,
      { param: 'model' },
    )
  }
  // The weight format and backend the request names (a handoff names the device's), loaded on
  // first use; refused (400 unsupported) when this server cannot run it, unless it allows a fallback.
  const { model, fallback: formatFallback } = await modelWithinPreferredWait(
    c,
    selectModel(runtime.modelHost, request.ondevice_format),
  )
  checkConstraintForModel(request, model)
  const contextLength = model.info.contextLength
  const maxPromptTokens = Math.min(limits.maxPromptTokens ?? contextLength, contextLength - 1)
  const messageCharacters = templateCharacters(request.messages, false)
  const toolCharacters = templateCharacters(request.tools, true)
  const maxCharacters = limits.maxPromptCharacters ?? maxPromptTokens * charactersPerPromptToken
  if (messageCharacters + toolCharacters > maxCharacters) {
    const limit = `this server accepts at most ${maxCharacters} (about ${charactersPerPromptToken} per token of its ${maxPromptTokens}-token prompt limit)`
    // The tools are printed into the prompt too: when they hold most of it, shortening the
    // conversation would not help.
    throw toolCharacters > messageCharacters
      ? new ContextLengthError(
          `The prompt's text is over the cap: the tools hold ${toolCharacters} and the messages ${messageCharacters} characters; ${limit}. Send fewer or shorter tools (descriptions, schemas).`,
          { param: 'tools' },
        )
      : new ContextLengthError(
          `The messages hold ${messageCharacters} characters${toolCharacters > 0 ? ` (and the tools ${toolCharacters})` : ''}; ${limit}. Shorten the conversation.`,
          { param: 'messages' },
        )
  }
  const continuation = request.ondevice_continuation
  const continuationTokenIds = continuation?.token_ids ?? []
  for (let index = 0; index < continuationTokenIds.length; index++) {
    if ((continuationTokenIds[index] as number) >= model.tokenizer.vocabularySize) {
      throw new InvalidArgumentError(
        `ondevice_continuation.token_ids.${index}`,
        `Token id ${continuationTokenIds[index]} is outside this model's vocabulary (${model.tokenizer.vocabularySize}): the continuation must come from the same model.`,
      )
    }
  }
  // `max_completion_tokens: null` means "not set", like leaving it out.
  const requested = request.max_completion_tokens ?? request.max_tokens ?? undefined
  const param = request.max_completion_tokens == null ? 'max_tokens' : 'max_completion_tokens'
  if (requested !== undefined && requested > limits.maxTokens) {
    throw new InvalidArgumentError(
      param,
      `${param} is ${requested}; this server allows at most ${limits.maxTokens} (its MAX_TOKENS).`,
    )
  }
  // A continuation is the start of an answer: with what is generated here it stays within the
  // answer cap, so continuing an answer never costs more than generating it here would have.
  if (continuationTokenIds.length > 0 && continuationTokenIds.length + (requested ?? 1) > limits.maxTokens) {
    throw new InvalidArgumentError(
      requested === undefined ? 'ondevice_continuation.token_ids' : param,
      `The continuation has ${continuationTokenIds.length} tokens${requested === undefined ? '' : ` and ${param} is ${requested}`}; this server's answers have at most ${limits.maxTokens} tokens in all (MAX_TOKENS).`,
    )
  }
  if (
    continuation !== undefined &&
    continuation.step + (requested ?? limits.maxTokens) > Number.MAX_SAFE_INTEGER
  ) {
    throw new InvalidArgumentError(
      'ondevice_continuation.step',
      `ondevice_continuation.step is ${continuation.step}: too large to count the draws that follow. Send the next_step this server (or the device) reported.`,
    )
  }
  return { request, model, formatFallback, continuationTokenIds, maxPromptTokens, requested, param }
}

/**
 * What the request's tools and response_format ask of this model, checked before the status line
 * (core's validateConstraintForModel, the device's check too): tools on a model without the call
 * syntax are a 400 `unsupported` naming `tools`, and what the model's call syntax cannot write
 * (Qwen3.5's XML dialect: a parameter name with `>`, an enum value holding `\n</parameter>`,
 * alternatives that disagree on whether a parameter is a string) a 400 naming the path under
 * `tools.N.function.parameters`. Both used to surface only when the answer started: a 503 or, streamed,
 * a 200 and then an error event, after a generation slot and a session were taken.
 */
function checkConstraintForModel(request: ChatCompletionRequest, model: HostedModel): void {
  validateConstraint(request, modelToolCallSyntaxOf(model.tokenizer))
}

interface Plan {
  readonly promptTokenIds: readonly number[]
  readonly promptBoundaries: readonly number[]
  readonly maxTokens: number
}

/** Tokenizes the prompt (inside the slot) and checks it against the context. */
/**
 * A continuation is the start of an answer: under tools or a response_format, tokens the
 * constraint takes. Others failed when the sampler replayed them, after the prefill (for a stream,
 * after the status line) and named core's `continuation.tokenIds`; replayed here, in the slot (the
 * same work the answer does), they are a 400 naming the wire's field.
 */
function checkContinuation(
  request: ChatCompletionRequest,
  model: HostedModel,
  tokenIds: readonly number[],
): void {
  if (tokenIds.length === 0) return
  const constraint = validateConstraintForModel(
    toConstraintOptions(request),
    modelToolCallSyntaxOf(model.tokenizer),
    wireConstraintFieldNames,
  )
  if (constraint === undefined) return
  try {
    new ConstraintState(constraint, model.tokenizer, tokenIds)
  } catch (error) {
    const prefix = 'continuation.tokenIds.'
    if (!(error instanceof InvalidArgumentError) || !error.param?.startsWith(prefix)) throw error
    const index = Number(error.param.slice(prefix.length))
    throw new InvalidArgumentError(
      `ondevice_continuation.token_ids.${index}`,
      `ondevice_continuation.token_ids.${index} (token ${tokenIds[index]}) cannot come there under this request's tools, tool_choice and response_format: a continuation must be the start of an answer to the same request (the same constraint), as the device produced it.`,
    )
  }
}

function plan(c: Context<AppEnv>, runtime: ChatRuntime, admission: Admission): Plan {
  const { limits } = runtime
  const { request, model, continuationTokenIds, maxPromptTokens, requested, param } = admission
  checkContinuation(request, model, continuationTokenIds)
  const { tokenIds: promptTokenIds, turnBoundaries: promptBoundaries } = encodeChatPrompt(
    model.tokenizer,
    request,
  )
  const contextLength = model.info.contextLength
  const usedTokens = promptTokenIds.length + continuationTokenIds.length
  const fields = c.get('request').fields
  fields.promptTokens = promptTokenIds.length
  fields.continuationTokens = continuationTokenIds.length
  if (usedTokens > maxPromptTokens) {
    // The tools are printed into the prompt: when they hold most of it, they are named (as the
    // character cap above and the device name them), not the messages.
    const toolTokens =
      request.tools === undefined || request.tools.length === 0
        ? 0
        : promptTokenIds.length -
          encodeChatPrompt(model.tokenizer, { ...request, tools: undefined }).tokenIds.length
    if (toolTokens > usedTokens - toolTokens) {
      throw new ContextLengthError(
        `The prompt is ${usedTokens} tokens, ${toolTokens} of them the tools; this server accepts at most ${maxPromptTokens}. Send fewer or shorter tools (descriptions, schemas).`,
        { param: 'tools' },
      )
    }
    throw new ContextLengthError(
      `The prompt is ${usedTokens} tokens${continuationTokenIds.length > 0 ? ` (with ${continuationTokenIds.length} continuation tokens)` : ''}; this server accepts at most ${maxPromptTokens}. Shorten the conversation.`,
      { param: 'messages' },
    )
  }
  const room = contextLength - usedTokens
  if (requested !== undefined && requested > room) {
    throw new ContextLengthError(
      `The prompt (${usedTokens} tokens) plus ${param} (${requested}) exceeds the model's context of ${contextLength} tokens. Lower ${param} to at most ${room} or shorten the prompt.`,
      { param },
    )
  }
  // With a continuation, max_tokens counts only the tokens generated here (the SDK sends what is
  // left of the caller's limit after the device's share).
  const maxTokens = requested ?? Math.min(limits.maxTokens - continuationTokenIds.length, room)
  return { promptTokenIds, promptBoundaries, maxTokens }
}

let tokenizing: Promise<unknown> = Promise.resolve()

/**
 * Runs `work` (tokenizing: synchronous, up to several hundred ms at the character cap) alone and
 * in its own turn of the event loop, after the previous one ended. Requests that got slots at the
 * same moment would otherwise tokenize back to back in one turn, and /healthz, other requests and
 * aborts would wait for all of them.
 */
function inTurn<T>(work: () => T): Promise<T> {
  const turn = tokenizing.then(() => yieldToEventLoop()).then(work)
  tokenizing = turn.catch(() => undefined)
  return turn
}

export async function handleChatCompletion(c: Context<AppEnv>, runtime: ChatRuntime): Promise<Response> {
  const admission = await admit(c, runtime)
  const { request, model, continuationTokenIds, formatFallback } = admission
  const state = c.get('request')
  const abort = new AbortController()
  const clientSignal = c.req.raw.signal
  const onClientGone = () => abort.abort(clientSignal.reason)
  if (clientSignal.aborted) onClientGone()
  else clientSignal.addEventListener('abort', onClientGone, { once: true })
  // The server's shutdown grace ended (serveApp): stop as for a client abort, but tell the client
  // why, retryably (the stream's error event, or a 503), instead of ending without a word.
  const shutdownSignal = shutdownSignalOf(c.env)
  let shuttingDown = false
  const onShutdown = () => {
    shuttingDown = true
    if (!abort.signal.aborted) abort.abort(shutdownSignal?.reason)
  }
  if (shutdownSignal?.aborted) onShutdown()
  else shutdownSignal?.addEventListener('abort', onShutdown, { once: true })
  const detach = () => {
    clientSignal.removeEventListener('abort', onClientGone)
    shutdownSignal?.removeEventListener('abort', onShutdown)
  }

  const queuedAt = Date.now()
  let finished = false
  let session: ModelSession | undefined
  let lease: SlotLease
  try {
    // A client that said how long it waits (Prefer: wait, the SDK's a little under its connect
    // timeout) gets the queue's 429 within what is left of it: it sees no headers while queued,
    // and past its wait it has given up on the edge as unreachable. One that said nothing waits
    // up to QUEUE_TIMEOUT_MS.
    const slotWaitMs = remainingWaitMs(c)
    lease = await runtime.slots.acquire(
      abort.signal,
      () => {
        // This generation stalled (on Workers: its request was cancelled and none of its code runs
        // again). Its session may hold a half-run step, so it is dropped, not pooled.
        if (finished) return
        finished = true
        state.fields.errorCode = 'stalled'
        runtime.writeLog(c, 499)
        if (session) void runtime.poolFor(model).drop(session)
        try {
          // Stops it if it is merely slow (Node). On Workers the signal belongs to the dead
          // request, and touching it from another request throws.
          abort.abort()
        } catch {
          // nothing more to stop
        }
      },
      slotWaitMs,
    )
  } catch (error) {
    detach()
    throw shuttingDown ? serverShuttingDown() : error
  }
  state.fields.queuedMs = Date.now() - queuedAt

  let promptTokenIds: readonly number[]
  let promptBoundaries: readonly number[]
  let maxTokens: number
  try {
    ;({ promptTokenIds, promptBoundaries, maxTokens } = await inTurn(() => plan(c, runtime, admission)))
  } catch (error) {
    lease.release()
    detach()
    throw shuttingDown ? serverShuttingDown() : error
  }
  const answerHeaders = {
    ...formatHeadersFor(model, formatFallback),
    [formatHeaderNames.promptTokens]: String(promptTokenIds.length),
  }

  const pool = runtime.poolFor(model)
  try {
    // A handed-off answer starts from a clean cache: the prompt in the chunks the device cut it
    // into (the turn boundaries), then the continuation tokens one at a time, as the device fed
    // them, so the numbers match exactly.
    session = await pool.take(promptTokenIds, {
      fresh: continuationTokenIds.length > 0,
      boundaries: promptBoundaries,
    })
  } catch (error) {
    lease.release()
    detach()
    throw shuttingDown ? serverShuttingDown() : toOndeviceError(error, 'backend_unavailable', true)
  }
  const taken = session

  let healthy = true
  let markSettled: () => void = () => undefined
  const settled = new Promise<void>((resolve) => (markSettled = resolve))
  keepAliveUntil(c, settled)
  const finish = () => {
    if (finished) return
    finished = true
    detach()
    void pool
      .give(taken, healthy)
      .finally(() => lease.release())
      .finally(markSettled)
  }

  // logit_bias ids are checked against the logits once the session says how many there are, and
  // before the answer's first byte, so a stream is refused with a 400 like any bad field (the
  // sampler's own check would come after the 200, as an error event).
  const biasError = logitBiasError(request.logit_bias, taken.info.vocabularySize)
  if (biasError !== undefined) {
    finish()
    throw biasError
  }

  /** Set once the answer streams: reports a long prefill's progress to the client (below). */
  let reportPrefill: (() => void) | undefined
  const parts = touching(
    lease,
    generate(taken, model.tokenizer, {
      ...toGenerateRequest(request, { promptTokenIds, promptBoundaries, maxTokens }),
      signal: abort.signal,
      // A long prefill shows no part for a while: its passes keep the lease alive (a waiting
      // request would otherwise reclaim it as stalled and stop it), and a stream tells its client.
      onProgress: () => {
        lease.touch()
        reportPrefill?.()
      },
    }),
  )
  const header: CompletionHeader = {
    id: completionId(),
    created: Math.floor(Date.now() / 1000),
    model: request.model,
    systemFingerprint: systemFingerprint(model, runtime.version),
    ...(formatFallback === undefined ? {} : { formatFallback }),
  }

  if (request.stream !== true) {
    try {
      let last: FinishPart | undefined
      for await (const part of parts) if (part.type === 'finish') last = part
      if (!last) throw new OndeviceError('internal', 'The generation ended without a result.')
      if (last.finishReason === 'abort')
        throw shuttingDown
          ? serverShuttingDown()
          : new AbortedError('The client disconnected; generation stopped.')
      recordFinish(state.fields, last)
      return c.json(toChatCompletionResponse(header, last), 200, answerHeaders)
    } catch (error) {
      // Stopped for the shutdown: the loop ended between steps, the session is sound.
      healthy = shuttingDown || isCleanStop(error)
      throw shuttingDown ? serverShuttingDown() : error
    } finally {
      finish()
    }
  }

  state.deferred = true
  const includeUsage = request.stream_options?.include_usage === true
  const choice = request.tool_choice
  const answer =
    (request.tools?.length ?? 0) === 0 || choice === 'none'
      ? 'text'
      : choice === 'required' || (typeof choice === 'object' && choice !== null)
        ? 'call'
        : 'either'
  const chunks = createChunkWriter(header, includeUsage, answer)
  const encoder = new TextEncoder()
  const event = (data: unknown) => encoder.encode(`data: ${JSON.stringify(data)}\n\n`)

  const iterator: AsyncIterator<GenerationPart> = parts[Symbol.asyncIterator]()
  let started = false
  // A prefill of a long conversation (or of a handoff's continuation) on the engine shows no
  // event for as long as it runs, and a client's idle timeout would take the edge for stalled:
  // about once a second it gets a comment ': ondevice-prefill N', N the reports so far. Each
  // report stands for at least one input token fed, so N never passes the prompt and the
  // continuation: a client can count it as progress without a server keeping a stream alive on
  // comments alone. OpenAI's clients skip comments.
  let prefillReports = 0
  let lastPrefillReportAt = performance.now()
  reportPrefill = () => {
    prefillReports++
    const now = performance.now()
    if (closed || !started || now - lastPrefillReportAt < prefillReportIntervalMs) return
    lastPrefillReportAt = now
    try {
      controllerOf?.enqueue(encoder.encode(`: ondevice-prefill ${prefillReports}\n\n`))
    } catch {
      // The stream is already gone; the generation stops at its next step.
    }
  }
  // Set once the stream has ended or was abandoned: nothing is enqueued after it, and the slot
  // and log line are settled exactly once.
  let closed = false
  const settle = (status: number) => {
    finish()
    runtime.writeLog(c, status)
  }
  // Armed while a chunk waits for the reader (see Limits.readerStallTimeoutMs).
  let readerTimer: ReturnType<typeof setTimeout> | undefined
  // Where the shutdown writes its error event while no pull is running (a slow reader, or the
  // stream not read yet).
  let controllerOf: ReadableStreamDefaultController<Uint8Array> | undefined
  const endForShutdown = () => {
    clearTimeout(readerTimer)
    if (closed) return
    closed = true
    // As any failure after the status line: an OpenAI error event, then the end of the stream.
    const mapped = toHttpError(serverShuttingDown(), state.requestId)
    state.fields.errorCode = mapped.code
    try {
      controllerOf?.enqueue(event(mapped.body))
      controllerOf?.close()
    } catch {
      // The stream is already gone; the log line still records the failure.
    }
    // The generation stops at its next step; the session goes back once it has (see abandon).
    void Promise.resolve(iterator.return?.(undefined))
      .catch(() => undefined)
      .then(() => settle(mapped.status))
  }
  const abandon = () => {
    if (shuttingDown) {
      endForShutdown()
      return
    }
    clearTimeout(readerTimer)
    if (closed) return
    closed = true
    state.fields.errorCode = 'aborted'
    if (!abort.signal.aborted) abort.abort()
    // A model step may be running: the session goes back to the pool only once the generator has
    // really stopped (return() waits for a pending next() to settle first).
    void Promise.resolve(iterator.return?.(undefined))
      .catch(() => undefined)
      .then(() => settle(499))
  }
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controllerOf = controller
    },
    async pull(controller) {
      clearTimeout(readerTimer)
      if (closed) return
      const awaitReader = () => {
        readerTimer = setTimeout(abandon, runtime.limits.readerStallTimeoutMs)
      }
      if (!started) {
        started = true
        controller.enqueue(event(chunks.start()))
        awaitReader()
        return
      }
      try {
        const next = await iterator.next()
        if (closed) return
        if (next.done) throw new OndeviceError('internal', 'The generation ended without a result.')
        const part = next.value
        if (part.type === 'text-delta' || part.type === 'reasoning-delta') {
          // token_ids (our extension) travel with the text so a client can hand the answer off again.
          const delta = part.type === 'text-delta' ? chunks.delta(part) : chunks.reasoning(part)
          if (delta !== undefined) controller.enqueue(event(delta))
          awaitReader()
          return
        }
        closed = true
        recordFinish(state.fields, part)
        const toolCalls = chunks.toolCalls(part)
        if (toolCalls !== undefined) controller.enqueue(event(toolCalls))
        controller.enqueue(event(chunks.finish(part)))
        if (includeUsage) controller.enqueue(event(chunks.usage(part)))
        controller.enqueue(encoder.encode('data: [DONE]\n\n'))
        controller.close()
        settle(200)
      } catch (error) {
        if (closed) return
        closed = true
        // The status line is gone already: report the failure as an OpenAI error event (what
        // OpenAI's own clients understand mid-stream), then end the stream.
        healthy = isCleanStop(error)
        const mapped = toHttpError(error, state.requestId)
        state.fields.errorCode = mapped.code
        try {
          controller.enqueue(event(mapped.body))
          controller.close()
        } catch {
          // The stream is already gone; the log line still records the failure.
        }
        settle(mapped.status)
      }
    },
    cancel() {
      abandon()
    },
  })
  // The client went away (request signal on Node and on workerd with enable_request_signal, or
  // the response stream cancelled), or the server's shutdown grace ended: stop generating now and
  // free the slot. Either may have happened already (during the model load or the queue wait).
  if (abort.signal.aborted) abandon()
  else abort.signal.addEventListener('abort', abandon, { once: true })
  return new Response(stream, {
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
      'x-request-id': state.requestId,
      ...answerHeaders,
    },
  })
}

// The header names are the wire format's (the SDK reads them); app.ts and the container's
// forwarder take them from here.
export { formatHeaderNames }

function logitBiasError(
  logitBias: Readonly<Record<string, number>> | null | undefined,
  vocabularySize: number,
): InvalidArgumentError | undefined {
  for (const key of Object.keys(logitBias ?? {})) {
    if (Number(key) >= vocabularySize) {
      return new InvalidArgumentError(
        `logit_bias.${key}`,
        `logit_bias names token ${key}, but this model's vocabulary has ${vocabularySize} tokens (ids 0 to ${vocabularySize - 1}).`,
      )
    }
  }
  return undefined
}

function formatHeadersFor(model: HostedModel, fallback: string | undefined): Record<string, string> {
  return {
    [formatHeaderNames.dtype]: model.info.dtype,
    [formatHeaderNames.backend]: model.info.backend,
    ...(model.info.packageFingerprint === undefined
      ? {}
      : { [formatHeaderNames.package]: model.info.packageFingerprint }),
    // A header value is one line of visible ASCII.
    ...(fallback === undefined
      ? {}
      : { [formatHeaderNames.fallback]: fallback.replace(/[^\x20-\x7e]/g, '?').slice(0, 1000) }),
  }
}

/** What an answer cut by the server's shutdown tells its client: retry, elsewhere or soon. */
function serverShuttingDown(): OndeviceError {
  return new OndeviceError(
    'edge_unavailable',
    'This server is shutting down and stopped this answer at the end of its shutdown grace period. Retry in a few seconds (another instance, or this one once restarted).',
    { isRetryable: true, retryAfterSeconds: 5 },
  )
}

function isCleanStop(error: unknown): boolean {
  return error instanceof OndeviceError && (error.code === 'aborted' || error.code === 'invalid_argument')
}

function recordFinish(fields: RequestLogFields, part: FinishPart): void {
  fields.completionTokens = part.usage.completionTokens
  if (part.usage.reasoningTokens !== undefined) fields.reasoningTokens = part.usage.reasoningTokens
  fields.promptTokens = part.usage.promptTokens
  fields.timeToFirstTokenMs = Math.round(part.usage.timeToFirstTokenMs)
  fields.decodeTokensPerSecond = Math.round(part.usage.decodeTokensPerSecond * 10) / 10
  fields.finishReason = part.finishReason
}

/**
 * How often a long prefill's progress goes to a streaming client (see reportPrefill): well inside
 * any idle timeout a client may set (the SDK's is 60 s by default), a few bytes each time.
 */
const prefillReportIntervalMs = 250

/**
 * Keeps the generation alive until it has released its slot and session. On Workers, a client
 * disconnect cancels every task of its request, which would drop a model step mid-flight and
 * leak the slot and session; `waitUntil` lets the loop see the abort and clean up. Node has no
 * execution context and cancels nothing.
 */
function keepAliveUntil(c: Context<AppEnv>, settled: Promise<void>): void {
  let context: { waitUntil(promise: Promise<unknown>): void } | undefined
  try {
    context = c.executionCtx
  } catch {
    return
  }
  context.waitUntil(settled)
}

/** Passes the parts through, marking the lease alive at every step. */
async function* touching(
  lease: SlotLease,
  parts: AsyncGenerator<GenerationPart>,
): AsyncGenerator<GenerationPart> {
  try {
    for await (const part of parts) {
      lease.touch()
      yield part
    }
  } finally {
    lease.touch()
  }
}
