// POST /v1/chat/completions answered by a container. The Worker keeps what faces the public (its
// API keys, CORS, rate limits, the body cap and cheap caps, checked before this runs or here),
// picks the instance (affinity.ts), waits a bounded time for a cold one, and streams the
// container's answer back as it comes. The container sees only the Worker's secret. Failures the
// client can retry are said so: 503 + Retry-After before the answer starts, an OpenAI error
// event with a retryable code once it has started.
//
// A cold start sends no response header until the container's model is loaded (seconds to a
// minute). How long a request waits for it is the client's to say: `Prefer: wait=N` (RFC 7240),
// which the SDK sends a little under its connectTimeoutMs, bounds the wait to N seconds, and a
// request still waiting then gets 503 `edge_starting` with Retry-After (the start goes on). A
// client that says nothing (an OpenAI client, curl) is held until the model is up, at most
// CONTAINER_START_TIMEOUT_MS: what such a client expects of a cold serverless start, and a 503
// would be an error for every client that does not retry. Early headers with SSE comments were
// the other way considered and left: a prompt too long or a full queue, which only the container
// can decide, would become mid-stream errors instead of a 400 or 429, the SDK could not fall back
// to the device before the answer "started", and JSON requests would still wait.
import type { Context } from 'hono'
import { AbortedError, InvalidArgumentError, OndeviceError } from '../../core/errors.ts'
import { clip } from '../../core/protocol/index.ts'
import type { AppEnv } from '../app-env.ts'
import { formatHeaderNames } from '../chat-completions.ts'
import { toHttpError } from '../http-errors.ts'
import type { ResolvedLimits } from '../options.ts'
import { preferredWaitMs, remainingWaitMs, withinWait } from '../prefer-wait.ts'
import { createBodyBudget, readJsonBody } from '../read-body.ts'
import { affinityKey, instanceIndex } from './affinity.ts'
import type { ContainerGateway } from './gateway.ts'

export interface ContainerForwarderOptions {
  readonly gateway: ContainerGateway
  /** Presented to the container as `Authorization: Bearer`; never logged. */
  readonly secret: string | undefined
  readonly instances: number
  readonly startTimeoutMs: number
  readonly limits: ResolvedLimits
  readonly modelIds: ReadonlySet<string>
}

export type ChatForwarder = (c: Context<AppEnv>) => Promise<Response>

/** Header naming the instance that answered (e.g. `instance-0`): lets a client see its affinity hold. */
export const instanceHeader = 'x-ondevice-instance'

/** Seconds a client should wait before retrying while a container starts. */
const coldStartRetryAfterSeconds = 5

/** A wait longer than this was a start (a warm instance's check takes milliseconds). */
const coldStartSeenMs = 1000

function checkCaps(body: unknown, options: ContainerForwarderOptions): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidArgumentError(
      'body',
      'The request body must be a JSON object (a chat completion request).',
    )
  }
  const {
    messages,
    model,
    max_tokens: maxTokens,
    max_completion_tokens: maxCompletionTokens,
  } = body as Record<string, unknown>
  if (Array.isArray(messages) && messages.length > options.limits.maxMessages) {
    throw new InvalidArgumentError(
      'messages',
      `messages has ${messages.length} entries; this server accepts at most ${options.limits.maxMessages}. Drop older turns or summarize them.`,
    )
  }
  if (typeof model === 'string' && !options.modelIds.has(model)) {
    throw new OndeviceError(
      'model_not_found',
      `The model '${clip(model)}' is not served here. GET /v1/models lists the served models (${[...options.modelIds].join(', ')}).`,
      { param: 'model' },
    )
  }
  for (const [param, value] of [
    ['max_tokens', maxTokens],
    ['max_completion_tokens', maxCompletionTokens],
  ] as const) {
    if (typeof value === 'number' && value > options.limits.maxTokens) {
      throw new InvalidArgumentError(
        param,
        `${param} is ${value}; this server answers with at most ${options.limits.maxTokens} tokens.`,
      )
    }
  }
}

function unavailable(message: string, cause?: unknown): OndeviceError {
  return new OndeviceError('edge_unavailable', message, {
    isRetryable: true,
    retryAfterSeconds: coldStartRetryAfterSeconds,
    ...(cause === undefined ? {} : { cause }),
  })
}

function errorEvent(error: OndeviceError, requestId: string): Uint8Array {
  return new TextEncoder().encode(`data: ${JSON.stringify(toHttpError(error, requestId).body)}\n\n`)
}

/**
 * Passes the container's event stream through unchanged. When the container's stream breaks or
 * ends without `[DONE]` or an error event (the instance died), the client gets a retryable error
 * event instead of a silent end. Cancelling it (the client went away) cancels the container's.
 */
function guardEventStream(
  upstream: ReadableStream<Uint8Array>,
  requestId: string,
  onBroken: (error: unknown) => void,
): ReadableStream<Uint8Array> {
  const reader = upstream.getReader()
  const decoder = new TextDecoder()
  let pending = ''
  let lastEvent = ''
  const died = (): OndeviceError =>
    new OndeviceError(
      'edge_unavailable',
      'The model container stopped in the middle of this answer. Retry (the SDK continues from the tokens it has).',
      { isRetryable: true, retryAfterSeconds: 1 },
    )
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let next: ReadableStreamReadResult<Uint8Array>
      try {
        next = await reader.read()
      } catch (error) {
        onBroken(error)
        controller.enqueue(errorEvent(died(), requestId))
        controller.close()
        return
      }
      if (next.done) {
        const finished = lastEvent === 'data: [DONE]' || lastEvent.startsWith('data: {"error"')
        if (!finished) {
          onBroken(new Error('the container closed the stream without [DONE]'))
          controller.enqueue(errorEvent(died(), requestId))
        }
        controller.close()
        return
      }
      pending += decoder.decode(next.value, { stream: true })
      const events = pending.split('\n\n')
      pending = events.pop() ?? ''
      const last = events.at(-1)
      if (last !== undefined) lastEvent = last.trim()
      controller.enqueue(next.value)
    },
    cancel(reason) {
      return reader.cancel(reason)
    },
  })
}

export function createContainerForwarder(options: ContainerForwarderOptions): ChatForwarder {
  const { gateway } = options
  /**
   * Per instance, when this isolate first saw it starting (a request that waited for it and
   * did not get it): how old a start is when the next request asks.
   */
  const startingSince = new Map<number, number>()
  /** The last start this isolate saw through, in ms: the estimate of the next one. */
  let lastStartMs: number | undefined

  /** The Retry-After of a request that stopped waiting `elapsedMs` into a start. */
  const retryAfterSeconds = (elapsedMs: number): number => {
    const left = options.startTimeoutMs - elapsedMs
    const expected = lastStartMs === undefined ? coldStartRetryAfterSeconds * 1000 : lastStartMs - elapsedMs
    return Math.max(1, Math.ceil(Math.min(expected, left) / 1000))
  }

  /**
   * Waits for instance `index` at most `waitMs`: true once it is up, false while it still starts
   * (the start goes on, bounded by CONTAINER_START_TIMEOUT_MS). Throws when the start failed.
   */
  const waitForInstance = async (
    c: Context<AppEnv>,
    index: number,
    waitMs: number,
    signal: AbortSignal,
  ): Promise<boolean> => {
    const askedAt = Date.now()
    const ready = gateway.ready(index, options.startTimeoutMs, signal).then(
      () => {
        const waited = Date.now() - askedAt
        const since = startingSince.get(index)
        startingSince.delete(index)
        if (since !== undefined || waited > coldStartSeenMs) lastStartMs = Date.now() - (since ?? askedAt)
        return true as const
      },
      (error: unknown) => {
        startingSince.delete(index)
        throw error
      },
    )
    // Raced with a timer, not left to the gateway's own bound: the Durable Object counts its
    // bound in polls, which a loaded host stretches past the wall-clock time documented.
    const up = (await withinWait(c, ready, waitMs)) === true
    if (!up && !startingSince.has(index)) startingSince.set(index, askedAt)
    return up
  }

  const bodyBudget = createBodyBudget(
    options.limits.maxBodyBytesInFlight,
    options.limits.maxBodyBytesInFlightPerClient,
  )
  return async (c) => {
    const state = c.get('request')
    const body = await readJsonBody(c.req.raw, options.limits.maxBodyBytes, {
      timeoutMs: options.limits.bodyTimeoutMs,
      stallTimeoutMs: options.limits.bodyStallTimeoutMs,
      budget: bodyBudget,
      client: state.client,
    })
    state.waitFrom = Date.now()
    checkCaps(body, options)
    const fields = state.fields
    const { model, stream } = body as { model?: unknown; stream?: unknown }
    if (typeof model === 'string') fields.model = model
    fields.stream = stream === true
    const index = instanceIndex(affinityKey(c.req.raw.headers, body), options.instances)
    const signal = c.req.raw.signal
    const preferred = preferredWaitMs(c.req.raw.headers)
    const preferredLeft = remainingWaitMs(c)
    const waitMs =
      preferredLeft === undefined ? options.startTimeoutMs : Math.min(options.startTimeoutMs, preferredLeft)
    try {
      const up = await waitForInstance(c, index, waitMs, signal)
      if (!up && waitMs >= options.startTimeoutMs) {
        throw new Error(`not up within CONTAINER_START_TIMEOUT_MS (${options.startTimeoutMs} ms)`)
      }
      if (!up) {
        const elapsedMs = Date.now() - (startingSince.get(index) ?? Date.now())
        const retryAfter = retryAfterSeconds(elapsedMs)
        throw new OndeviceError(
          'edge_starting',
          `The edge is starting: its model container (${gateway.name(index)}) is loading the model (${Math.round(elapsedMs / 1000)} s so far; a start takes at most ${Math.round(options.startTimeoutMs / 1000)} s) and answers once it is up. Retry in ${retryAfter} s (this request asked to wait at most ${Math.round((preferred ?? waitMs) / 1000)} s: Prefer: wait).`,
          { isRetryable: true, retryAfterSeconds: retryAfter },
        )
      }
    } catch (error) {
      if (error instanceof OndeviceError && error.code === 'edge_starting') throw error
      if (signal.aborted)
        throw new AbortedError('The client closed the connection while the model container started.')
      throw unavailable(
        `The model's container (${gateway.name(index)}) is starting and did not become ready within ${Math.round(options.startTimeoutMs / 1000)} s. Retry in a few seconds.`,
        error,
      )
    }
    const headers = new Headers({
      'content-type': 'application/json',
      accept: fields.stream ? 'text/event-stream' : 'application/json',
      'x-request-id': state.requestId,
    })
    if (options.secret !== undefined) headers.set('authorization', `Bearer ${options.secret}`)
    // The client's address, for the container's own count of each client's bodies in flight
    // (its BEHIND_CLOUDFLARE: container-class.ts): without it every request came from this Worker,
    // one client that a quarter of the container's budget would bound for all.
    if (state.client !== undefined) headers.set('cf-connecting-ip', state.client)
    // What is left of the client's wait, for the container's own: a format it loads on first use,
    // its generation-slot queue (whole seconds, rounded down: the container counts from its own
    // arrival).
    if (preferred !== undefined) {
      const left = (preferred - (Date.now() - state.waitFrom)) / 1000
      headers.set('prefer', `wait=${Math.max(0, Math.floor(left))}`)
    }
    let upstream: Response
    try {
      upstream = await gateway.fetch(
        index,
        new Request('http://container/v1/chat/completions', {
          method: 'POST',
          headers,
          body: JSON.stringify(body),
        }),
        signal,
      )
    } catch (error) {
      gateway.forget(index)
      if (signal.aborted) throw new AbortedError('The client closed the connection.')
      throw unavailable(
        `The model's container (${gateway.name(index)}) could not be reached. Retry in a few seconds.`,
        error,
      )
    }
    const responseHeaders = new Headers({
      'content-type': upstream.headers.get('content-type') ?? 'application/json',
      [instanceHeader]: gateway.name(index),
    })
    // What the container ran (x-ondevice-dtype, -backend, -format-fallback) and the prompt's
    // size (x-ondevice-prompt-tokens) go to the client too.
    for (const name of [
      'retry-after',
      'cache-control',
      'x-accel-buffering',
      ...Object.values(formatHeaderNames),
    ]) {
      const value = upstream.headers.get(name)
      if (value !== null) responseHeaders.set(name, value)
    }
    if (upstream.status === 401) {
      // The container refused the Worker's secret: an operator mistake, not the client's key.
      await upstream.body?.cancel()
      throw new OndeviceError(
        'edge_unavailable',
        'This Worker and its container disagree on CONTAINER_SECRET: set it with `npx wrangler secret put CONTAINER_SECRET` and redeploy.',
      )
    }
    if (upstream.status >= 500 && !upstream.headers.get('content-type')?.startsWith('application/json')) {
      // Not `ondevice serve`'s answer but the platform's (the Durable Object could not start the
      // container, a proxy failed): the client gets the retryable OpenAI error, not a bare 500.
      await upstream.body?.cancel()
      gateway.forget(index)
      throw unavailable(
        `The model's container (${gateway.name(index)}) could not be started or reached (${upstream.status}). Retry in a few seconds.`,
      )
    }
    if (!upstream.ok || upstream.body === null) {
      // The container's own OpenAI-shaped refusal (429/503 with Retry-After when its slots are full).
      fields.errorCode = `container_${upstream.status}`
      return new Response(upstream.body, { status: upstream.status, headers: responseHeaders })
    }
    if (responseHeaders.get('content-type')?.startsWith('text/event-stream')) {
      return new Response(
        guardEventStream(upstream.body, state.requestId, () => gateway.forget(index)),
        { status: 200, headers: responseHeaders },
      )
    }
    let text: string
    try {
      text = await upstream.text()
    } catch (error) {
      gateway.forget(index)
      if (signal.aborted) throw new AbortedError('The client closed the connection.')
      throw unavailable('The model container stopped before it finished this answer. Retry.', error)
    }
    return new Response(text, { status: 200, headers: responseHeaders })
  }
}
