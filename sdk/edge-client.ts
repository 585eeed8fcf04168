// The SDK's HTTP client for the edge worker (or any OpenAI-compatible server): one chat
// completion as a stream of core's generation parts. It speaks the OpenAI wire format plus our
// extensions (top_k, min_p, repetition_penalty, ondevice_continuation for handoff) and turns
// OpenAI-shaped errors back into the library's error classes with isRetryable and Retry-After.
import type { ChatMessage } from '../core/chat-template.ts'
import {
  AbortedError,
  ContextLengthError,
  EdgeError,
  type ErrorCode,
  InvalidArgumentError,
  OndeviceError,
} from '../core/errors.ts'
import { type ChatCompletionRequest, fromFinishReason } from '../core/protocol.ts'
import type { FinishReason, GenerationPart, Usage } from '../core/stream-parts.ts'
import { parseServerSentEvents } from './sse.ts'

export interface EdgeOptions {
  /** Base URL of the worker, e.g. "https://ai.example.com" (the client appends /v1/...). */
  readonly url: string
  /** Sent as `Authorization: Bearer <apiKey>`. */
  readonly apiKey?: string
  /** Model id to ask for; default: the first id the edge lists at GET /v1/models. */
  readonly model?: string
  /** Extra headers on every request. */
  readonly headers?: Readonly<Record<string, string>>
  /** Give up on an edge that has not answered (sent its response headers) within this time. Default 15 s. */
  readonly connectTimeoutMs?: number
  /** A fetch to use instead of the global one (a Worker's service binding, a proxy). */
  readonly fetch?: typeof fetch
}

export interface EdgeSampling {
  readonly temperature?: number
  readonly topK?: number
  readonly topP?: number
  readonly minP?: number
  readonly repetitionPenalty?: number
  readonly presencePenalty?: number
  readonly frequencyPenalty?: number
  readonly logitBias?: Readonly<Record<number, number>>
  readonly seed?: number
}

export interface EdgeChatRequest {
  readonly messages: readonly ChatMessage[]
  readonly sampling?: EdgeSampling
  readonly maxTokens?: number
  readonly stop?: readonly string[]
  /** Continue an answer another side started: its token ids so far and the sampler step to resume at. */
  readonly continuation?: { readonly tokenIds: readonly number[]; readonly step: number }
  readonly signal?: AbortSignal
}

/** What the edge returned besides the text, for usage and fingerprints. */
export interface EdgeResponseInfo {
  readonly id?: string
  readonly model?: string
  readonly systemFingerprint?: string
}

const retryableCodes: ReadonlySet<ErrorCode> = new Set([
  'rate_limited',
  'overloaded',
  'edge_unavailable',
  'backend_unavailable',
  'backend_failed',
  'edge_failed',
  'internal',
  'model_invalid',
  'download_failed',
])

const knownCodes: ReadonlySet<string> = new Set<ErrorCode>([
  'invalid_argument',
  'tokenizer_invalid',
  'template_failed',
  'model_invalid',
  'model_not_found',
  'integrity_failed',
  'download_failed',
  'storage_quota_exceeded',
  'context_length_exceeded',
  'backend_unavailable',
  'backend_failed',
  'aborted',
  'edge_unavailable',
  'edge_failed',
  'unauthorized',
  'rate_limited',
  'overloaded',
  'not_found',
  'payload_too_large',
  'unsupported',
  'internal',
])

function codeForStatus(status: number): ErrorCode {
  if (status === 400) return 'invalid_argument'
  if (status === 401 || status === 403) return 'unauthorized'
  if (status === 404) return 'not_found'
  if (status === 413) return 'payload_too_large'
  if (status === 422) return 'context_length_exceeded'
  if (status === 429) return 'rate_limited'
  if (status === 503) return 'edge_unavailable'
  return 'edge_failed'
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, seconds)
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000))
}

interface OpenAIErrorLike {
  readonly message?: unknown
  readonly param?: unknown
  readonly code?: unknown
  readonly type?: unknown
}

/** An OpenAI error body (or whatever came instead) as the library's error class. */
export function edgeErrorFrom(
  status: number | undefined,
  body: unknown,
  retryAfterSeconds?: number,
): OndeviceError {
  const detail: OpenAIErrorLike =
    typeof body === 'object' &&
    body !== null &&
    'error' in body &&
    typeof body.error === 'object' &&
    body.error
      ? (body.error as OpenAIErrorLike)
      : {}
  const bodyCode =
    typeof detail.code === 'string' && knownCodes.has(detail.code) ? (detail.code as ErrorCode) : undefined
  const code = bodyCode ?? (status === undefined ? 'edge_failed' : codeForStatus(status))
  const serverMessage = typeof detail.message === 'string' ? detail.message : undefined
  const where = status === undefined ? 'The edge' : `The edge answered HTTP ${status}`
  const message = serverMessage ? `${where}: ${serverMessage}` : `${where} without an error message.`
  const isRetryable = retryableCodes.has(code) || (status !== undefined && status >= 500)
  const options = { isRetryable, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) }
  if (code === 'invalid_argument') {
    return new InvalidArgumentError(typeof detail.param === 'string' ? detail.param : '', message, options)
  }
  if (code === 'context_length_exceeded') return new ContextLengthError(message, options)
  return new EdgeError(code, message, options)
}

interface ChunkUsage {
  readonly prompt_tokens?: number
  readonly completion_tokens?: number
  readonly time_to_first_token_ms?: number
  readonly prefill_tokens_per_second?: number
  readonly decode_tokens_per_second?: number
  readonly backend?: string
  readonly dtype?: string
}

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined
}

export class EdgeClient {
  readonly url: string
  private readonly options: EdgeOptions
  private modelId: Promise<string> | undefined

  constructor(options: EdgeOptions) {
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
    if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey === '')) {
      throw new InvalidArgumentError('edge.apiKey', 'edge.apiKey must be a non-empty string when given.')
    }
    if (options.model !== undefined && (typeof options.model !== 'string' || options.model === '')) {
      throw new InvalidArgumentError('edge.model', 'edge.model must be a non-empty string when given.')
    }
    if (
      options.connectTimeoutMs !== undefined &&
      !(typeof options.connectTimeoutMs === 'number' && options.connectTimeoutMs > 0)
    ) {
      throw new InvalidArgumentError(
        'edge.connectTimeoutMs',
        'edge.connectTimeoutMs must be a positive number of milliseconds.',
      )
    }
    this.options = options
    // Keep any path prefix (a Worker mounted under /ai) and drop a trailing slash.
    this.url = parsed.href.replace(/\/+$/, '')
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
    const timeoutMs = this.options.connectTimeoutMs ?? 15_000
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
      throw new EdgeError(
        'edge_unavailable',
        `Could not reach the edge at ${this.url} (${why}). Check edge.url and that the worker is running.`,
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
      const text = await response.text().catch(() => '')
      let body: unknown
      try {
        body = JSON.parse(text)
      } catch {
        body = { error: { message: text.slice(0, 300) || response.statusText } }
      }
      throw edgeErrorFrom(response.status, body, parseRetryAfter(response.headers.get('retry-after')))
    }
    return { response, done: () => signal?.removeEventListener('abort', onAbort) }
  }

  /** The model id to send: the configured one, else the first the edge lists. */
  async model(signal?: AbortSignal): Promise<string> {
    if (this.options.model) return this.options.model
    this.modelId ??= (async () => {
      const { response, done } = await this.request(
        '/v1/models',
        { method: 'GET', headers: this.headers(false) },
        signal,
      )
      const body = (await response.json().finally(done)) as { data?: { id?: unknown }[] }
      const id = body.data?.[0]?.id
      if (typeof id !== 'string') {
        throw new EdgeError('edge_failed', `GET ${this.url}/v1/models listed no model: set edge.model.`)
      }
      return id
    })()
    try {
      return await this.modelId
    } catch (error) {
      this.modelId = undefined
      throw error
    }
  }

  /** GET /healthz; resolves to its JSON, rejects when the edge is unreachable or unhealthy. */
  async health(signal?: AbortSignal): Promise<unknown> {
    const { response, done } = await this.request(
      '/healthz',
      { method: 'GET', headers: this.headers(false) },
      signal,
    )
    return response.json().finally(done)
  }

  /** The request body this client sends for `request` (exported for tests and logs). */
  async body(request: EdgeChatRequest): Promise<ChatCompletionRequest> {
    const sampling = request.sampling ?? {}
    const optional = <K extends string, V>(key: K, value: V | undefined) =>
      (value === undefined ? {} : { [key]: value }) as Partial<Record<K, V>>
    return {
      model: await this.model(request.signal),
      // Every field the chat template reads, so the edge renders the very prompt the device did.
      messages: request.messages.map((message) => ({
        role: message.role,
        content: message.content,
        ...optional('reasoning_content', message.reasoningContent),
        ...optional('tool_calls', message.toolCalls),
        ...optional('tool_call_id', message.toolCallId),
        ...optional('name', message.name),
      })),
      stream: true,
      stream_options: { include_usage: true },
      ...optional('max_tokens', request.maxTokens),
      ...optional('temperature', sampling.temperature),
      ...optional('top_p', sampling.topP),
      ...optional('top_k', sampling.topK),
      ...optional('min_p', sampling.minP),
      ...optional('repetition_penalty', sampling.repetitionPenalty),
      ...optional('presence_penalty', sampling.presencePenalty),
      ...optional('frequency_penalty', sampling.frequencyPenalty),
      ...optional('logit_bias', sampling.logitBias as Readonly<Record<string, number>> | undefined),
      ...optional('seed', sampling.seed),
      ...(request.stop && request.stop.length > 0 ? { stop: [...request.stop] } : {}),
      ...(request.continuation
        ? {
            ondevice_continuation: {
              token_ids: [...request.continuation.tokenIds],
              step: request.continuation.step,
            },
          }
        : {}),
    }
  }

  /**
   * Streams one chat completion as text-delta parts and a finish part. With a continuation the
   * edge resumes that answer: the parts hold only what comes after the given tokens.
   */
  async *stream(
    request: EdgeChatRequest,
    info?: (info: EdgeResponseInfo) => void,
  ): AsyncGenerator<GenerationPart> {
    const started = performance.now()
    const body = await this.body(request)
    const { response, done } = await this.request(
      '/v1/chat/completions',
      { method: 'POST', headers: this.headers(true), body: JSON.stringify(body) },
      request.signal,
    )
    if (!response.body) {
      done()
      throw new EdgeError('edge_failed', 'The edge answered with an empty body.', { isRetryable: true })
    }
    let text = ''
    const tokenIds: number[] = []
    let finishReason: FinishReason | undefined
    let usage: ChunkUsage | undefined
    let firstTokenAt: number | undefined
    let completionTokens = 0
    let sawDone = false
    let finalTokenIds: number[] | undefined
    let nextStep: number | undefined
    let reportedInfo = false
    try {
      for await (const event of parseServerSentEvents(response.body, request.signal)) {
        if (event.data === '[DONE]') {
          sawDone = true
          break
        }
        let chunk: Record<string, unknown>
        try {
          chunk = JSON.parse(event.data) as Record<string, unknown>
        } catch {
          throw new EdgeError(
            'edge_failed',
            `The edge sent a stream event that is not JSON: ${event.data.slice(0, 100)}`,
            {
              isRetryable: true,
            },
          )
        }
        if ('error' in chunk) throw edgeErrorFrom(undefined, chunk)
        if (!reportedInfo && info) {
          reportedInfo = true
          info({
            ...(typeof chunk['id'] === 'string' ? { id: chunk['id'] } : {}),
            ...(typeof chunk['model'] === 'string' ? { model: chunk['model'] } : {}),
            ...(typeof chunk['system_fingerprint'] === 'string'
              ? { systemFingerprint: chunk['system_fingerprint'] }
              : {}),
          })
        }
        const choices = Array.isArray(chunk['choices']) ? (chunk['choices'] as Record<string, unknown>[]) : []
        const choice = choices[0]
        if (choice) {
          const delta = (choice['delta'] ?? {}) as Record<string, unknown>
          const content = typeof delta['content'] === 'string' ? delta['content'] : ''
          const ids = readTokenIds(delta['token_ids'] ?? choice['token_ids'])
          if (content !== '' || ids.length > 0) {
            firstTokenAt ??= performance.now()
            text += content
            tokenIds.push(...ids)
            completionTokens += ids.length
            yield { type: 'text-delta', text: content, tokenIds: ids }
          }
          if (choice['finish_reason'] != null)
            finishReason = fromFinishReason(String(choice['finish_reason']))
        }
        // Our extension on the final chunk: every token the edge generated and the next sampler step.
        const extension = chunk['ondevice']
        if (extension && typeof extension === 'object') {
          const ids = readTokenIds((extension as Record<string, unknown>)['token_ids'])
          const next = (extension as Record<string, unknown>)['next_step']
          finalTokenIds = ids
          if (typeof next === 'number' && Number.isSafeInteger(next)) nextStep = next
        }
        if (chunk['usage'] && typeof chunk['usage'] === 'object') usage = chunk['usage'] as ChunkUsage
      }
    } catch (error) {
      if (request.signal?.aborted) throw new AbortedError()
      if (error instanceof OndeviceError) throw error
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
    const now = performance.now()
    const generated = finalTokenIds ?? tokenIds
    const completion = finite(usage?.completion_tokens) ?? Math.max(completionTokens, generated.length)
    const finalUsage: Usage = {
      promptTokens: finite(usage?.prompt_tokens) ?? 0,
      completionTokens: completion,
      timeToFirstTokenMs: finite(usage?.time_to_first_token_ms) ?? (firstTokenAt ?? now) - started,
      prefillTokensPerSecond: finite(usage?.prefill_tokens_per_second) ?? 0,
      decodeTokensPerSecond:
        finite(usage?.decode_tokens_per_second) ??
        (firstTokenAt !== undefined && completion > 1 ? ((completion - 1) * 1000) / (now - firstTokenAt) : 0),
      ...(typeof usage?.backend === 'string' ? { backend: usage.backend } : {}),
      ...(typeof usage?.dtype === 'string' ? { dtype: usage.dtype } : {}),
    }
    yield {
      type: 'finish',
      finishReason: finishReason ?? 'stop',
      tokenIds: generated,
      text,
      nextStep: nextStep ?? (request.continuation?.step ?? 0) + completion,
      usage: finalUsage,
    }
  }
}

function readTokenIds(value: unknown): number[] {
  return Array.isArray(value) && value.every((v) => Number.isInteger(v)) ? (value as number[]) : []
}
