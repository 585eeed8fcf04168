// The SDK's HTTP client for the edge worker (or any OpenAI-compatible server): one chat
// completion as a stream of core's generation parts. This file is the transport only (the URL,
// headers, the connect timeout, aborts, Retry-After, server-sent events); what the bodies say is
// core/protocol's: it encodes the request and reads every chunk and error body.

import type { ChatMessage } from '../core/chat-template.ts'
import {
  AbortedError,
  deserializeError,
  EdgeError,
  InvalidArgumentError,
  OndeviceError,
  refuseUnknownNames,
  toOndeviceError,
} from '../core/errors.ts'
import type { Continuation } from '../core/generate.ts'
// core/protocol/'s files, not its index: the index also holds the server's request validation,
// which imports the structured-output compiler, and a static import on a page's path puts it up
// front with esbuild --splitting (docs/architecture.md, "A page loads up front only what chatting needs").
import { readChunk } from '../core/protocol/chunk.ts'
import { fromErrorBody } from '../core/protocol/errors.ts'
import { formatHeaderNames, validateFormat } from '../core/protocol/format.ts'
import { firstModelId, listedMaxTokens } from '../core/protocol/models.ts'
import { toChatCompletionRequest } from '../core/protocol/request.ts'
import type { ChatCompletionRequest } from '../core/protocol/types.ts'
import type { UsageReading } from '../core/protocol/usage.ts'
import { parseRetryAfter } from '../core/retry-after.ts'
import type { SamplingOptions } from '../core/sampling/index.ts'
import type { FinishReason, GenerationPart, ToolCallProgress, Usage } from '../core/stream-parts.ts'
import type { ConstraintOptions } from '../core/structured/constraint.ts'
import { toolChoiceNotEnforced } from './edge-tool-choice.ts'
import { parseServerSentEvents, ServerSentEventError } from './sse.ts'

export interface EdgeOptions {
  /** Base URL of the worker, e.g. "https://ai.example.com" (the client appends /v1/...). */
  readonly url: string
  /** Sent as `Authorization: Bearer <apiKey>`. */
  readonly apiKey?: string
  /** Model id to ask for; default: the first id the edge lists at GET /v1/models. */
  readonly model?: string
  /** Extra headers on every request. */
  readonly headers?: Readonly<Record<string, string>>
  /**
   * Give up on an edge that has not answered (sent its response headers) within this time, as
   * unreachable. Default 15 s. A chat request tells the edge how long it waits (`Prefer: wait=N`,
   * N = 80% of this in whole seconds), and an ondevice edge answers by then: a request still queued
   * for a generation slot (no headers are sent before one) with 429 `overloaded` and a Retry-After,
   * whatever its QUEUE_TIMEOUT_MS (30 s by default, for clients that say nothing); one whose model
   * or container is still starting with 503 `edge_starting` and a Retry-After. A fetch cannot say
   * how much of a request body is sent, so a request with a body is given one more second for
   * each 4 KiB of it (a link of 32 kbit/s: a 200 KB conversation over a bad phone connection is
   * still sending after 15 s, and the edge would read it), at most 60 s more: a hung edge, and a
   * handoff to one, is given up on within 75 s at the defaults however large the request.
   */
  readonly connectTimeoutMs?: number
  /**
   * Once the edge has answered, give up when its stream brings no event for this long. Default
   * 60 s (the worker's own stall timeout: a long prompt's prefill sends nothing until the first
   * token). Keep-alive comments do not count as progress: a stream of only `: keepalive` lines
   * never ends an answer, so it is treated as stalled too.
   */
  readonly idleTimeoutMs?: number
  /** A fetch to use instead of the global one (a Worker's service binding, a proxy). */
  readonly fetch?: typeof fetch
}

/** Every field of EdgeOptions: any other name is a mistake, refused rather than ignored. */
const edgeOptionNames: readonly (keyof EdgeOptions)[] = [
  'url',
  'apiKey',
  'model',
  'headers',
  'connectTimeoutMs',
  'idleTimeoutMs',
  'fetch',
]

export interface EdgeChatRequest {
  readonly messages: readonly ChatMessage[]
  readonly sampling?: SamplingOptions
  readonly maxTokens?: number
  readonly stop?: readonly string[]
  /** Continue an answer another side started: its token ids so far and the sampler step to resume at. */
  readonly continuation?: Continuation
  /**
   * The weight format and backend to answer in (`ondevice_format`; a handoff names the device's).
   * With `fallback: true` an edge that does not serve it answers in its own format, and so does
   * an edge older than the field (asked again without it); without, both are an `unsupported` error.
   */
  readonly format?: { readonly dtype?: string; readonly backend?: string; readonly fallback?: boolean }
  readonly signal?: AbortSignal
  /** responseFormat / tools, sent as response_format / tools / tool_choice / parallel_tool_calls. */
  readonly constraint?: ConstraintOptions
  /** The template's thinking switch, sent as chat_template_kwargs.enable_thinking. */
  readonly enableThinking?: boolean
  /**
   * The model id the caller already knows (a handoff: the device's package id, the model an exact
   * continuation needs anyway): asked for when `edge.model` is not set and the model list cannot
   * be read (a failed or stalled GET /v1/models), instead of failing before the chat is sent.
   */
  readonly knownModelId?: string
  /**
   * With a continuation: the device's packageFingerprint. An edge that says another one for the
   * same dtype (`x-ondevice-package`) runs other weights, and its answer is refused before any
   * of its tokens is read: it would continue the answer with another model's tokens.
   */
  readonly packageFingerprint?: string
}

/** What the edge returned besides the text, for usage and fingerprints. */
export interface EdgeResponseInfo {
  readonly id?: string
  readonly model?: string
  readonly systemFingerprint?: string
  /**
   * Why the answer is not in the requested `format` (it allowed a fallback): the edge's own
   * reason (`x-ondevice-format-fallback`), or that the edge is older than the field.
   */
  readonly formatFallback?: string
  /**
   * The prompt's token count as the edge said it before the first token (`x-ondevice-prompt-tokens`,
   * ondevice edges since that header); absent from other servers. An aborted stream never reads
   * the final usage, so this is what its finish can count.
   */
  readonly promptTokens?: number
}

// One reading of Retry-After for the edge's answers and the store's downloads (core/retry-after.ts).
export { maximumRetryAfterSeconds, parseRetryAfter } from '../core/retry-after.ts'

/**
 * Default `connectTimeoutMs`. Its `Prefer: wait` (12 s) bounds an ondevice edge's queue and loads,
 * leaving 3 s for the prompt's tokenizing and the rest before the headers.
 */
export const defaultEdgeConnectTimeoutMs = 15_000

/**
 * The `Prefer: wait=N` a chat request sends (RFC 7240): the seconds the edge may hold it before it
 * must answer, a fifth of connectTimeoutMs under it so its answer arrives before the SDK gives up.
 */
export function preferredWaitSeconds(connectTimeoutMs: number): number {
  return Math.floor((connectTimeoutMs * 0.8) / 1000)
}

/**
 * The slowest upload `connectTimeoutMs` makes room for: a request's body adds a second per this
 * many bytes to its wait for the headers (no platform's fetch reports upload progress).
 */
export const uploadAllowanceBytesPerSecond = 4096
/** The most time a body adds: 240 KiB at that rate, more than a small model's context holds. */
export const maximumUploadAllowanceMs = 60_000

/** How long a request whose body has `bodyBytes` waits for the edge's response headers. */
export function headersTimeoutMs(connectTimeoutMs: number, bodyBytes: number): number {
  const uploadMs = Math.ceil((bodyBytes / uploadAllowanceBytesPerSecond) * 1000)
  return connectTimeoutMs + Math.min(maximumUploadAllowanceMs, uploadMs)
}

/** Default `idleTimeoutMs`. */
export const defaultEdgeIdleTimeoutMs = 60_000

/**
 * Most tokens one stream may carry when the request sets no maxTokens (a context larger than any
 * model's): an endless stream is an error, not an answer.
 */
export const maximumStreamTokens = 1 << 18

export class EdgeClient {
  readonly url: string
  private readonly options: EdgeOptions
  /** The model id being learned, and the signal of the caller that asked (see shared()). */
  private modelId: Shared<string> | undefined
  /**
   * The id an edge accepted or listed: once known, no chat waits on the model list again (a
   * later handoff on a flaky network sends its chat request alone).
   */
  private learnedModelId: string | undefined
  /** Until when a request with a knownModelId does not ask again for a list that just failed. */
  private listFailedUntil = 0
  private modelList: Shared<unknown> | undefined
  /** The model list once it arrived (what knownMaxTokens reads without asking). */
  private listed: unknown
  /**
   * Whether chat requests carry `Prefer: wait`. A page's request with it needs the server's CORS
   * preflight to allow the header (ondevice edges allow what a page asks for); a server with a
   * fixed list refuses it, and then it is dropped for good once a request without it got through.
   */
  private sendPrefer = true

  constructor(options: EdgeOptions) {
    // A misspelt name (apikey, timeoutMs, baseURL) was dropped without a word: the edge then
    // answered 401, or the default timeout applied. createClient and chat() refuse theirs too.
    if (typeof options === 'object' && options !== null)
      refuseUnknownNames(options, edgeOptionNames, 'edge option', (name) => `edge.${name}`)
    if (typeof options?.url !== 'string' || options.url.trim() === '') {
      throw new InvalidArgumentError(
        'edge.url',
        'edge.url must be the base URL of your edge worker, e.g. "https://ai.example.com".',
      )
    }
    let parsed: URL
    try {
      parsed = new URL(options.url)
    } catch {
      throw new InvalidArgumentError(
        'edge.url',
        `edge.url ${JSON.stringify(options.url)} is not a URL: give e.g. "https://ai.example.com".`,
      )
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new InvalidArgumentError('edge.url', `edge.url must be http(s), not ${parsed.protocol}`)
    }
    // An OpenAI client's baseURL ends in /v1; the SDK adds /v1/... itself, so that URL would ask
    // for /v1/v1/models and read as a 404 from the edge.
    if (/\/v1\/*$/.test(parsed.pathname)) {
      throw new InvalidArgumentError(
        'edge.url',
        `edge.url ${JSON.stringify(options.url)} ends in /v1: give the worker's base URL (${JSON.stringify(options.url.replace(/\/v1\/*$/, ''))}); the SDK adds /v1/chat/completions itself.`,
      )
    }
    if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey === '')) {
      throw new InvalidArgumentError('edge.apiKey', 'edge.apiKey must be a non-empty string when given.')
    }
    if (options.model !== undefined && (typeof options.model !== 'string' || options.model === '')) {
      throw new InvalidArgumentError('edge.model', 'edge.model must be a non-empty string when given.')
    }
    for (const field of ['connectTimeoutMs', 'idleTimeoutMs'] as const) {
      const value = options[field]
      if (value !== undefined && !(typeof value === 'number' && value > 0 && value <= 2_147_483_647)) {
        throw new InvalidArgumentError(
          `edge.${field}`,
          `edge.${field} must be a positive number of milliseconds (at most 2147483647).`,
        )
      }
    }
    // Checked here, not at the first request, where a bad one read as an unreachable edge
    // (retryable edge_unavailable) or was silently ignored.
    if (options.headers !== undefined) {
      if (typeof options.headers !== 'object' || options.headers === null || Array.isArray(options.headers)) {
        throw new InvalidArgumentError(
          'edge.headers',
          'edge.headers must be an object of header names to values.',
        )
      }
      for (const [name, value] of Object.entries(options.headers)) {
        try {
          if (typeof value !== 'string') throw new TypeError('not a string')
          new Headers([[name, value]])
        } catch (error) {
          throw new InvalidArgumentError(
            `edge.headers.${name}`,
            `edge.headers.${name} is not a valid HTTP header (${error instanceof Error ? error.message : String(error)}): names are tokens, values strings without line breaks.`,
          )
        }
      }
    }
    if (options.fetch !== undefined && typeof options.fetch !== 'function') {
      throw new InvalidArgumentError(
        'edge.fetch',
        "edge.fetch must be a fetch function (e.g. a service binding's fetch) when given.",
      )
    }
    this.options = options
    // Keep any path prefix (a Worker mounted under /ai) and drop a trailing slash.
    this.url = parsed.href.replace(/\/+$/, '')
  }

  private idleTimeoutMs(): number {
    return this.options.idleTimeoutMs ?? defaultEdgeIdleTimeoutMs
  }

  private headers(json: boolean): Record<string, string> {
    return {
      ...(json ? { 'content-type': 'application/json' } : {}),
      accept: json ? 'text/event-stream, application/json' : 'application/json',
      ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
      ...this.options.headers,
    }
  }

  /**
   * One HTTP request with the connect timeout and abort handling; non-2xx becomes an error. The
   * caller's signal stays wired to the body download until `done()` (so a long-lived signal does
   * not collect one listener per request).
   */
  private async request(
    path: string,
    init: RequestInit,
    signal?: AbortSignal,
  ): Promise<{ response: Response; done: () => void }> {
    if (signal?.aborted) throw new AbortedError()
    const controller = new AbortController()
    const onAbort = () => controller.abort()
    signal?.addEventListener('abort', onAbort, { once: true })
    const bodyBytes = init.body instanceof Uint8Array ? init.body.byteLength : 0
    const timeoutMs = headersTimeoutMs(
      this.options.connectTimeoutMs ?? defaultEdgeConnectTimeoutMs,
      bodyBytes,
    )
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      controller.abort()
    }, timeoutMs)
    const doFetch = this.options.fetch ?? fetch
    let response: Response
    try {
      response = await doFetch(`${this.url}${path}`, { ...init, signal: controller.signal })
    } catch (error) {
      signal?.removeEventListener('abort', onAbort)
      if (signal?.aborted) throw new AbortedError()
      const why = timedOut
        ? `no answer within ${timeoutMs} ms`
        : error instanceof Error
          ? error.message
          : String(error)
      // In a page, a CORS refusal and a dead server both reject with the same TypeError. The
      // edge's /healthz is readable from any origin: if it answers, the edge is up and refused
      // this page's origin.
      const origin = pageOrigin()
      if (!timedOut && origin !== undefined && (await healthzAnswers(doFetch, this.url))) {
        throw new EdgeError(
          'edge_unavailable',
          `The edge at ${this.url} answered, but not to this page's origin (${origin}): its responses carry no CORS header for it. Add ${origin} to the worker's ALLOWED_ORIGINS (wrangler.toml [vars], or --allowed-origins for ondevice edge).`,
          { isRetryable: false, cause: error },
        )
      }
      throw new EdgeError(
        'edge_unavailable',
        timedOut
          ? `The edge at ${this.url} sent no answer within ${timeoutMs} ms (edge.connectTimeoutMs${bodyBytes > 0 ? `, and a second per 4 KiB of the ${bodyBytes}-byte request, at most 60 s, for sending it` : ''}): it is down or unreachable, or slower than that to take the request. Check edge.url and that the worker is running; an edge that needs longer (a server that loads its model on the first request without saying so) needs a larger connectTimeoutMs.`
          : `Could not reach the edge at ${this.url} (${why}). Check edge.url and that the worker is running.`,
        {
          isRetryable: true,
          cause: error,
        },
      )
    } finally {
      clearTimeout(timer)
    }
    if (!response.ok) {
      signal?.removeEventListener('abort', onAbort)
      // An error body is a short JSON object: the first 64 KiB say what it is.
      const text = await readBounded(response, errorBodyBytes, this.idleTimeoutMs(), 'truncate').catch(
        () => '',
      )
      let body: unknown
      try {
        body = JSON.parse(text)
      } catch {
        body = { error: { message: text.slice(0, 300) || response.statusText } }
      }
      // A field of the request by the SDK's name (edge-option-names.ts), as the device names it.
      const refusal = fromErrorBody(
        response.status,
        body,
        parseRetryAfter(response.headers.get('retry-after')),
      )
      throw (await refusalRules())?.withRequestOptionNames(refusal) ?? refusal
    }
    return { response, done: () => signal?.removeEventListener('abort', onAbort) }
  }

  /** GET /v1/models, once while it succeeds (its ids and limits do not change under a client). */
  private async models(signal?: AbortSignal): Promise<unknown> {
    for (;;) {
      this.modelList ??= {
        signal,
        promise: (async () => {
          const { response, done } = await this.request(
            '/v1/models',
            { method: 'GET', headers: this.headers(false) },
            signal,
          )
          this.listed = await readBounded(response, jsonBodyBytes, this.idleTimeoutMs(), 'refuse')
            .then(parseJson)
            .finally(done)
          return this.listed
        })(),
      }
      const list = this.modelList
      try {
        return await list.promise
      } catch (error) {
        if (this.modelList === list) this.modelList = undefined
        // A stop of the caller that sent the request says nothing about the list: taken for a
        // failure, it sent every handoff of the next 30 s to the device's package name, which an
        // edge serving the model under another id refuses (404). A time bound of that caller's is
        // a slow list, though.
        if (!abortedByCaller(list.signal)) this.listFailedUntil = performance.now() + listRetryDelayMs
        // Another caller's stop is not this one's: it asks again for itself.
        else if (stoppedByOther(list.signal, signal)) continue
        throw error
      }
    }
  }

  /**
   * The most tokens the edge's answers may have (its MAX_TOKENS, a handoff's continuation
   * included), from GET /v1/models; undefined from an edge older than the field.
   */
  async maxTokens(signal?: AbortSignal): Promise<number | undefined> {
    return listedMaxTokens(await this.models(signal))
  }

  /** maxTokens() as far as the edge has already said it (nothing is sent). */
  get knownMaxTokens(): number | undefined {
    return this.listed === undefined ? undefined : listedMaxTokens(this.listed)
  }

  /**
   * The model id to send: the configured one, else the one this edge listed or accepted, else the
   * first the edge lists. When the list cannot be read, `knownModelId` (a handoff's: the device's)
   * is sent instead of failing: the chat request may well succeed where the list did not (a
   * flaky network, a slow list, a proxy that blocks it), and a list that failed moments ago is not
   * waited on again.
   */
  async model(signal?: AbortSignal, knownModelId?: string): Promise<string> {
    if (this.options.model) return this.options.model
    if (this.learnedModelId !== undefined) return this.learnedModelId
    if (knownModelId !== undefined && performance.now() < this.listFailedUntil) return knownModelId
    this.modelId ??= {
      signal,
      promise: (async () => {
        let listed: unknown
        try {
          listed = await this.models(signal)
        } catch (error) {
          throw signal?.aborted ? error : modelListFailed(this.url, error)
        }
        const id = firstModelId(listed)
        if (id === undefined) {
          throw new EdgeError('edge_failed', `GET ${this.url}/v1/models listed no model: set edge.model.`)
        }
        this.learnedModelId = id
        return id
      })(),
    }
    const pending = this.modelId
    try {
      return await pending.promise
    } catch (error) {
      if (this.modelId === pending) this.modelId = undefined
      // The caller's abort ends the request; another caller's does not: it asks again (an id
      // learned meanwhile first).
      if (signal?.aborted) throw error
      if (stoppedByOther(pending.signal, signal)) return this.model(signal, knownModelId)
      // Anything else about the list does not need to end the request.
      if (knownModelId === undefined) throw error
      return knownModelId
    }
  }

  /** GET /healthz; resolves to its JSON, rejects when the edge is unreachable or unhealthy. */
  async health(signal?: AbortSignal): Promise<unknown> {
    const { response, done } = await this.request(
      '/healthz',
      { method: 'GET', headers: this.headers(false) },
      signal,
    )
    return readBounded(response, jsonBodyBytes, this.idleTimeoutMs(), 'refuse').then(parseJson).finally(done)
  }

  /** The request body this client sends for `request` (exported for tests and logs). */
  async body(request: EdgeChatRequest): Promise<ChatCompletionRequest> {
    // The edge checks it too, but a refusal of ondevice_format must mean "an older edge" (see
    // edge-versions.ts), never a malformed object.
    if (request.format !== undefined) validateFormat(request.format, 'format')
    return toChatCompletionRequest({
      model: await this.model(request.signal, request.knownModelId),
      messages: request.messages,
      ...(request.sampling === undefined ? {} : { sampling: request.sampling }),
      ...(request.maxTokens === undefined ? {} : { maxTokens: request.maxTokens }),
      ...(request.stop === undefined ? {} : { stop: request.stop }),
      ...(request.continuation === undefined ? {} : { continuation: request.continuation }),
      ...(request.constraint === undefined ? {} : { constraint: request.constraint }),
      ...(request.format === undefined ? {} : { format: request.format }),
      ...(request.enableThinking === undefined ? {} : { enableThinking: request.enableThinking }),
    })
  }

  /**
   * POSTs a chat completion. An edge older than `ondevice_format` (or than a name in it) refuses
   * the whole request; when the request allows a fallback it is asked once more without the field
   * and answers in its own format, which the returned note says. A request for an exact format
   * fails instead (never a constraint silently dropped), and so does one whose responseFormat an
   * edge from before structured output refuses, with what to do in both messages.
   */
  private async postChat(
    body: ChatCompletionRequest,
    request: EdgeChatRequest,
  ): Promise<{ response: Response; done: () => void; formatFallback?: string }> {
    const send = (sent: ChatCompletionRequest, prefer: boolean) =>
      this.request(
        '/v1/chat/completions',
        {
          method: 'POST',
          headers: {
            ...(prefer
              ? {
                  prefer: `wait=${preferredWaitSeconds(this.options.connectTimeoutMs ?? defaultEdgeConnectTimeoutMs)}`,
                }
              : {}),
            ...this.headers(true),
          },
          // Bytes, not a string: their count sets the time the upload is given.
          body: new TextEncoder().encode(JSON.stringify(sent)),
        },
        request.signal,
      )
    const post = async (sent: ChatCompletionRequest) => {
      if (!this.sendPrefer) return send(sent, false)
      try {
        return await send(sent, true)
      } catch (error) {
        // In a page, a fetch that failed outright (not the timeout) may be a CORS preflight that
        // refused the Prefer header: asked once without it.
        const cause = (error as { cause?: unknown }).cause
        if (pageOrigin() === undefined || !(error instanceof EdgeError) || !(cause instanceof TypeError))
          throw error
        const answered = await send(sent, false).catch(() => {
          throw error
        })
        this.sendPrefer = false
        return answered
      }
    }
    const answered = (sent: { response: Response; done: () => void }, note?: string) => {
      // The edge took this id (a listed one, or a handoff's knownModelId while the list failed):
      // later requests send it without reading the list.
      if (this.options.model === undefined) this.learnedModelId ??= body.model
      const header = sent.response.headers.get(formatHeaderNames.fallback)
      const formatFallback = note ?? (header === null || header === '' ? undefined : header)
      return { ...sent, ...(formatFallback === undefined ? {} : { formatFallback }) }
    }
    try {
      return answered(await post(body))
    } catch (error) {
      const format = request.format
      // An error thrown before the edge answered (unreachable, aborted) is none of these rules'.
      const rules = error instanceof OndeviceError ? await refusalRules() : undefined
      if (rules === undefined) throw error
      if (format === undefined || !rules.isFormatFieldRefusal(error)) {
        throw (request.constraint?.responseFormat && rules.structuredOutputRefused(this.url, error)) || error
      }
      if (format.fallback !== true) throw rules.formatFieldRefused(this.url, format, error)
      const { ondevice_format: _, ...withoutFormat } = body
      return answered(await post(withoutFormat), rules.formatFieldFallbackNote(this.url, format, error))
    }
  }

  /**
   * Streams one chat completion as text-delta parts and a finish part. With a continuation the
   * edge resumes that answer: the parts hold only what comes after the given tokens. An error the
   * edge raises about a field of the request names it as the SDK's request does (`responseFormat`,
   * not `response_format`: edge-option-names.ts), with the class the device raises it with.
   */
  async *stream(
    request: EdgeChatRequest,
    info?: (info: EdgeResponseInfo) => void,
  ): AsyncGenerator<GenerationPart> {
    const started = performance.now()
    const body = await this.body(request)
    const { response, done, formatFallback } = await this.postChat(body, request)
    if (!response.body) {
      done()
      throw new EdgeError('edge_failed', 'The edge answered with an empty body.', { isRetryable: true })
    }
    const mismatch = otherWeights(this.url, request, response.headers)
    if (mismatch !== undefined) {
      done()
      await response.body.cancel().catch(() => undefined)
      throw mismatch
    }
    const promptHeader = response.headers.get(formatHeaderNames.promptTokens)
    // Whole decimal digits only: anything else (another server's header, garbage) is not a count.
    const promptTokens =
      promptHeader === null || !/^\d{1,15}$/.test(promptHeader) ? undefined : Number(promptHeader)
    let text = ''
    let reasoning = ''
    const tokenIds: number[] = []
    let finishReason: FinishReason | undefined
    let usage: UsageReading | undefined
    let firstTokenAt: number | undefined
    let completionTokens = 0
    let sawDone = false
    let finalTokenIds: readonly number[] | undefined
    let partial = false
    let fromOndeviceEdge = false
    const toolCalls: { id: string; name: string; arguments: string }[] = []
    let reportedInfo = false
    const budget = request.maxTokens ?? maximumStreamTokens
    let textOnlyDeltas = 0
    // The reasoning deltas' tokens (a reasoning chunk without ids, another server's, as one): the
    // count when the edge's usage does not say it.
    let reasoningTokens = 0
    try {
      // An ondevice edge's prefill progress (': ondevice-prefill N') counts as an event while N
      // rises and stays within the tokens it was sent (each report stands for one fed at least),
      // so a long prompt's prefill is not a stalled edge, and no server keeps a stream alive on
      // comments alone for longer than its input takes.
      const inputTokens =
        promptTokens === undefined ? undefined : promptTokens + (request.continuation?.tokenIds.length ?? 0)
      let prefillReports = 0
      const events = parseServerSentEvents(response.body, {
        ...(request.signal === undefined ? {} : { signal: request.signal }),
        idleTimeoutMs: this.options.idleTimeoutMs ?? defaultEdgeIdleTimeoutMs,
        // The body ends right after [DONE]: the loop stops there and the parser reads that end
        // (bounded) rather than cancelling it, which closed the connection (sse.ts, isFinal).
        isFinal: (event) => event.data === '[DONE]',
        isProgress: (comment) => {
          const match = /^ondevice-prefill (\d{1,15})$/.exec(comment)
          const reports = match === null ? 0 : Number(match[1])
          if (inputTokens === undefined || reports <= prefillReports || reports > inputTokens) return false
          prefillReports = reports
          return true
        },
      })
      for await (const event of events) {
        if (event.data === '[DONE]') {
          sawDone = true
          break
        }
        const chunk = readChunk(event.data)
        const thought = chunk.reasoning ?? ''
        // Ours send a reasoning token that shows no text as `reasoning_content: ""` with its ids.
        const reasoningOnly = chunk.reasoning !== undefined && chunk.text === ''
        if (!reportedInfo && info) {
          reportedInfo = true
          info({
            ...(chunk.id === undefined ? {} : { id: chunk.id }),
            ...(chunk.model === undefined ? {} : { model: chunk.model }),
            ...(chunk.systemFingerprint === undefined ? {} : { systemFingerprint: chunk.systemFingerprint }),
            ...(formatFallback === undefined ? {} : { formatFallback }),
            ...(promptTokens === undefined ? {} : { promptTokens }),
          })
        }
        // OpenAI streams a call as deltas keyed by index: the first names it, the rest add arguments.
        // Merged before the chunk's deltas are yielded, so each carries its call as far as written.
        const touched: number[] = []
        for (const delta of chunk.toolCallDeltas ?? []) {
          const call = toolCalls[delta.index] ?? { id: '', name: '', arguments: '' }
          toolCalls[delta.index] = call
          if (delta.id !== undefined) call.id = delta.id
          if (delta.name !== undefined) call.name += delta.name
          if (delta.arguments !== undefined) call.arguments += delta.arguments
          if (!touched.includes(delta.index)) touched.push(delta.index)
        }
        // The calls this chunk wrote to, once named (TextDeltaPart.toolCall), as the device streams them.
        const progress = touched.flatMap((index): ToolCallProgress[] => {
          const call = toolCalls[index]
          return call === undefined || call.name === '' ? [] : [{ index, ...call }]
        })
        if (chunk.text !== '' || thought !== '' || chunk.tokenIds.length > 0) {
          firstTokenAt ??= performance.now()
          text += chunk.text
          reasoning += thought
          // One by one: spreading a long array into push() overflows the call stack.
          for (const id of chunk.tokenIds) tokenIds.push(id)
          // A delta without ids (another server) is at least one token; ours sends one such delta
          // at most (held-back text released at the end), hence the one of slack.
          if (chunk.tokenIds.length === 0) textOnlyDeltas++
          completionTokens = tokenIds.length + textOnlyDeltas
          if (tokenIds.length > budget || completionTokens > budget + 1) {
            throw new EdgeError(
              'edge_failed',
              `The edge sent more than ${budget} tokens${request.maxTokens === undefined ? '' : " (the request's maxTokens)"}: it is not honouring the request. Stopped reading.`,
              { isRetryable: false },
            )
          }
          // Reasoning (`reasoning_content`) apart from text, as the device yields it; ours sends one
          // or the other per chunk, and the ids ride with the text when another server sends both.
          if (thought !== '' || reasoningOnly) {
            const ids = reasoningOnly ? chunk.tokenIds : []
            if (reasoningOnly) reasoningTokens += Math.max(1, ids.length)
            yield { type: 'reasoning-delta', text: thought, tokenIds: ids }
          }
          if (!reasoningOnly) {
            const first = progress.shift()
            yield {
              type: 'text-delta',
              text: chunk.text,
              tokenIds: chunk.tokenIds,
              ...(chunk.inToolCall ? { inToolCall: true as const } : {}),
              ...(first === undefined ? {} : { toolCall: first }),
            }
          }
        }
        // Calls a chunk without tokens wrote to (another server's, or several at once: the calls
        // our edge's finish sends what is left of), one delta each, with no text and no tokens.
        for (const toolCall of progress) yield { type: 'text-delta', text: '', tokenIds: [], toolCall }
        if (chunk.finishReason !== undefined) finishReason = chunk.finishReason
        // Our extension on the final chunk: every token the edge generated and the next sampler step.
        if (chunk.ondevice !== undefined) {
          fromOndeviceEdge = true
          finalTokenIds = chunk.ondevice.tokenIds
          if (chunk.ondevice.partial === true) partial = true
        }
        if (chunk.usage !== undefined) usage = chunk.usage
      }
    } catch (error) {
      if (request.signal?.aborted) throw new AbortedError()
      // An error event (readChunk), with the SDK's names as the error bodies above.
      if (error instanceof OndeviceError) throw (await refusalRules())?.withRequestOptionNames(error) ?? error
      if (error instanceof ServerSentEventError) {
        throw new EdgeError(
          'edge_failed',
          error.reason === 'idle'
            ? `The edge stopped sending: ${error.message} after it answered. Raise edge.idleTimeoutMs for a very slow edge.`
            : `The edge sent ${error.message}: not an answer stream.`,
          { isRetryable: error.reason === 'idle', cause: error },
        )
      }
      throw new EdgeError(
        'edge_failed',
        `The edge stream broke: ${error instanceof Error ? error.message : String(error)}`,
        {
          isRetryable: true,
          cause: error,
        },
      )
    } finally {
      done()
    }
    if (request.signal?.aborted) throw new AbortedError()
    if (!sawDone && finishReason === undefined) {
      throw new EdgeError('edge_failed', 'The edge stream ended before the answer finished.', {
        isRetryable: true,
      })
    }
    // Calls stream as they are written: one the answer's end cut (the token limit, a stop string)
    // sent a start and part of its arguments, and is no call (its arguments do not parse).
    const calls = toolCalls.filter((call) => call !== undefined && isJsonText(call.arguments))
    const unenforced = toolChoiceNotEnforced(this.url, {
      toolChoice: request.constraint?.toolChoice,
      toolCalls: calls.length,
      finishReason: finishReason ?? 'stop',
      partial,
      fromOndeviceEdge,
    })
    if (unenforced) throw unenforced
    const now = performance.now()
    // The final list the edge vouches for, unless it claims more than the budget or fewer than it streamed.
    const generated =
      finalTokenIds !== undefined && finalTokenIds.length <= budget && finalTokenIds.length >= tokenIds.length
        ? finalTokenIds
        : tokenIds
    // Counts as the edge reports them, within what this stream could hold.
    const reported = usage?.completionTokens
    const completion =
      reported !== undefined && reported >= generated.length && reported <= budget
        ? reported
        : Math.max(Math.min(completionTokens, budget), generated.length)
    const startStep = request.continuation?.step ?? 0
    const expectedStep = startStep + generated.length
    // What the edge did not report is measured here (other servers send only the counts).
    const finalUsage: Usage = {
      promptTokens: usage?.promptTokens ?? promptTokens ?? 0,
      // A server that sent no count (one that ignores stream_options.include_usage): 0 is not
      // the prompt's size, and usage says so as it does for an answer stopped before the count.
      ...(usage?.promptTokens === undefined && promptTokens === undefined
        ? { promptTokensCounted: false }
        : {}),
      completionTokens: completion,
      reasoningTokens: Math.min(usage?.reasoningTokens ?? reasoningTokens, completion),
      ...(usage?.cachedTokens === undefined ? {} : { cachedTokens: usage.cachedTokens }),
      timeToFirstTokenMs: usage?.timeToFirstTokenMs ?? (firstTokenAt ?? now) - started,
      prefillTokensPerSecond: usage?.prefillTokensPerSecond ?? 0,
      decodeTokensPerSecond:
        usage?.decodeTokensPerSecond ??
        (firstTokenAt !== undefined && completion > 1 ? ((completion - 1) * 1000) / (now - firstTokenAt) : 0),
      ...(usage?.backend === undefined ? {} : { backend: usage.backend }),
      ...(usage?.dtype === undefined ? {} : { dtype: usage.dtype }),
    }
    yield {
      type: 'finish',
      finishReason: finishReason ?? 'stop',
      tokenIds: generated,
      text,
      ...(reasoning === '' ? {} : { reasoning }),
      // Each generated token is one draw, so the next step follows from the ids (the edge's
      // next_step says the same, or is not this answer's: 1e308, negative); without ids (another
      // server, which sends no next_step either), from the count.
      nextStep: generated.length > 0 ? expectedStep : startStep + completion,
      // The seed it drew with: the one sent (the SDK always sends one), as a device finish says it.
      ...(request.sampling?.seed === undefined ? {} : { seed: request.sampling.seed }),
      usage: finalUsage,
      ...(calls.length > 0 ? { toolCalls: calls } : {}),
      ...(partial ? { partial } : {}),
    }
  }
}

/** Most bytes of an error body read (the rest is dropped). */
const errorBodyBytes = 64 * 1024
/**
 * The list's error (its class, code, retryability and Retry-After kept), saying what the list was
 * for and how to do without it: a chat request alone cannot name the model otherwise.
 */
function modelListFailed(url: string, error: unknown): OndeviceError {
  const cause = error instanceof OndeviceError ? error : toOndeviceError(error, 'edge_failed', true)
  return deserializeError({
    ...cause.toJSON(),
    message: `Could not read the edge's model list (GET ${url}/v1/models), which names the model to ask for: ${cause.message} Set edge.model to the edge's model id to send chat requests without the list.`,
  })
}

/**
 * What an edge's refusal becomes: a field named as the SDK's request names it
 * (edge-option-names.ts), an older edge's refusal of a field it does not know (edge-versions.ts).
 * Only a refusal needs them, so they are loaded with import() the first time an edge refuses: a
 * page bundled by esbuild with --splitting loads every file a static import reaches up front
 * (test/browser/page-bundle-size.test.ts). Undefined when the app's chunk did not come (the
 * edge's error is then thrown as it is); the next refusal tries again.
 */
function refusalRules(): Promise<RefusalRules | undefined> {
  refusalRulesLoading ??= Promise.all([import('./edge-option-names.ts'), import('./edge-versions.ts')]).then(
    ([names, versions]) => ({ ...names, ...versions }),
    () => {
      refusalRulesLoading = undefined
      return undefined
    },
  )
  return refusalRulesLoading
}
type RefusalRules = typeof import('./edge-option-names.ts') & typeof import('./edge-versions.ts')
let refusalRulesLoading: Promise<RefusalRules | undefined> | undefined

/** How long a failed model list is not asked again by a request that knows a model id. */
const listRetryDelayMs = 30_000

/**
 * The error for a continuation the edge would run on other weights than the device's (another
 * package, or another build of it, under the same or another model id): a fingerprint for the
 * same dtype that differs. Undefined when they match or cannot be compared (an edge older than
 * the header, a package without a manifest, an answer in another dtype: the format fallback,
 * which the answer's reason already says is not exact).
 */
function otherWeights(url: string, request: EdgeChatRequest, headers: Headers): EdgeError | undefined {
  const device = request.packageFingerprint
  const edge = headers.get(formatHeaderNames.package)
  if (request.continuation === undefined || device === undefined || edge === null || edge === '')
    return undefined
  const edgeDtype = headers.get(formatHeaderNames.dtype)
  if (edgeDtype !== null && request.format?.dtype !== undefined && edgeDtype !== request.format.dtype)
    return undefined
  if (edge === device) return undefined
  return new EdgeError(
    'unsupported',
    `The edge at ${url} runs other weights than the device (package fingerprint ${edge.slice(0, 64)}, the device's ${device}): it cannot continue this answer token for token, so its answer was not used. Serve the package the device loads on the edge (the same manifest.json), or load the edge's package on the device.`,
    { isRetryable: false },
  )
}

/**
 * A request several callers wait on (the model list, the model id), and the signal of the caller
 * that sent it: that caller's stop ends it for all of them.
 */
interface Shared<T> {
  readonly signal: AbortSignal | undefined
  readonly promise: Promise<T>
}

/**
 * Whether a shared request failed because the caller that sent it stopped (`sentWith` aborted),
 * not this one (`mine`): two answers of one client waiting on the same list, the first stopped,
 * must not fail the second with the first's abort.
 */
function stoppedByOther(sentWith: AbortSignal | undefined, mine: AbortSignal | undefined): boolean {
  return sentWith !== mine && sentWith?.aborted === true && mine?.aborted !== true
}

/** Whether `signal` ended by an abort of the caller's (a stop button), not by a time bound (TimeoutError). */
function abortedByCaller(signal: AbortSignal | undefined): boolean {
  if (signal?.aborted !== true) return false
  const reason: unknown = signal.reason
  return !(
    typeof reason === 'object' &&
    reason !== null &&
    (reason as { name?: unknown }).name === 'TimeoutError'
  )
}
/** Most bytes of a JSON answer (/v1/models, /healthz) read; more is an error. */
const jsonBodyBytes = 1024 * 1024

/**
 * A response body as text, at most `maxBytes` of it ('truncate': what fits; 'refuse': an
 * edge_failed error) and failing when no byte comes for `idleTimeoutMs`: a body the edge sends
 * without end, or not at all, must not hold the caller or its memory.
 */
async function readBounded(
  response: Response,
  maxBytes: number,
  idleTimeoutMs: number,
  over: 'truncate' | 'refuse',
): Promise<string> {
  if (!response.body) return ''
  const reader = response.body.getReader()
  const decoder = new TextDecoder()
  let text = ''
  let received = 0
  try {
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined
      const idle = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new EdgeError('edge_failed', `The edge sent no byte of its answer for ${idleTimeoutMs} ms.`, {
                isRetryable: true,
              }),
            ),
          idleTimeoutMs,
        )
      })
      const { value, done } = await Promise.race([reader.read(), idle]).finally(() => clearTimeout(timer))
      if (done) return text + decoder.decode()
      received += value.byteLength
      if (received > maxBytes) {
        if (over === 'truncate')
          return text + decoder.decode(value.subarray(0, value.byteLength - (received - maxBytes)))
        throw new EdgeError(
          'edge_failed',
          `The edge's answer is larger than ${maxBytes} bytes: not what this endpoint sends.`,
          {
            isRetryable: false,
          },
        )
      }
      text += decoder.decode(value, { stream: true })
    }
  } finally {
    await reader.cancel().catch(() => undefined)
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    throw new EdgeError(
      'edge_failed',
      `The edge answered with something that is not JSON: ${text.slice(0, 100)}`,
      {
        isRetryable: true,
      },
    )
  }
}

/** The page's origin in a browser (a page or its workers); undefined elsewhere. */
function pageOrigin(): string | undefined {
  const globals = globalThis as { location?: { origin?: string }; process?: unknown }
  if (globals.process !== undefined) return undefined
  const origin = globals.location?.origin
  return origin && origin !== 'null' ? origin : undefined
}

/** Whether the edge's /healthz (CORS-readable from any origin) answers at all: the server is up. */
async function healthzAnswers(doFetch: typeof fetch, url: string): Promise<boolean> {
  try {
    const response = await doFetch(`${url}/healthz`, { signal: AbortSignal.timeout(3000) })
    await response.body?.cancel()
    return true
  } catch {
    return false
  }
}

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}
