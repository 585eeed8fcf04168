// The OpenAI-compatible Hono app. The same app runs in a Cloudflare Worker (worker/index.ts) and
// on Node (worker/node.ts, `ondevice serve`); everything host-specific (where the weights come
// from, which ONNX Runtime) lives behind the `modelHost` it is given.

import type { Context } from 'hono'
import { Hono } from 'hono'
import { cors } from 'hono/cors'
import { HTTPException } from 'hono/http-exception'
import { type ErrorCode, InvalidArgumentError, OndeviceError, refuseUnknownNames } from '../core/errors.ts'
import { clip, toModelEntry, toModelList } from '../core/protocol/index.ts'
import type { AppEnv, RequestState } from './app-env.ts'
import { createKeyChecker } from './auth.ts'
import { type ChatRuntime, formatHeaderNames, handleChatCompletion } from './chat-completions.ts'
import { createGenerationSlots } from './generation-slots.ts'
import { toHttpError } from './http-errors.ts'
import { type HostedModel, startupRetryAfterSeconds } from './model-host.ts'
import {
  type AppOptions,
  appOptionNames,
  checkAllowedOrigins,
  type ResolvedLimits,
  resolveLimits,
} from './options.ts'
import { createBodyBudget } from './read-body.ts'
import { defaultLog, modelForLog } from './request-log.ts'
import { createSessionPool, type SessionPool } from './session-pool.ts'

export const serverVersion = '0.1.0'

export type OndeviceApp = Hono<AppEnv>

/** Each app's resolved limits, for the server that serves it (serveApp sets Node's bounds by them). */
const appLimits = new WeakMap<OndeviceApp, ResolvedLimits>()
/** The same, by each of the app's route handlers: they are what a Hono app that mounts it holds. */
const handlerLimits = new WeakMap<object, ResolvedLimits>()

/**
 * The limits `app` was made with (createApp); for an app of its own that mounts such apps
 * (`app.route('/ai', createApp(...))`), those of the mounted app with the longest body bound,
 * which Node's request bound must outlast; undefined when it mounts none.
 */
export function limitsOfApp(app: OndeviceApp): ResolvedLimits | undefined {
  const own = appLimits.get(app)
  if (own) return own
  let longest: ResolvedLimits | undefined
  for (const route of app.routes) {
    // Hono's route() wraps a handler of an app with its own onError, keeping the original here.
    const handler = route.handler as { __COMPOSED_HANDLER?: object }
    const limits = handlerLimits.get(handler) ?? handlerLimits.get(handler.__COMPOSED_HANDLER ?? handler)
    if (limits && (!longest || limits.bodyTimeoutMs > longest.bodyTimeoutMs)) longest = limits
  }
  return longest
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12))
  let hex = ''
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0')
  return hex
}

/** An unread body is read and dropped up to this many times the body cap; beyond, it is cancelled. */
const unreadBodyDrainFactor = 4
/** A client still sending an unread body after this long gets its body cancelled. */
const unreadBodyDrainMs = 2000

/**
 * Reads a body nobody wants to its end and drops it, so the connection it came on stays usable.
 * Past `maxBytes`, or when the client stalls for `maxMs`, it cancels the body instead: the
 * connection is then lost (under wrangler dev even the refusal may be), but a huge or stalled
 * upload cannot hold the response or the isolate. Leaving the body alone is no better: on Node
 * (@hono/node-server) the connection then hangs until the server drops it.
 */
async function discardBody(body: ReadableStream<Uint8Array>, maxBytes: number, maxMs: number): Promise<void> {
  const reader = body.getReader()
  let timer: ReturnType<typeof setTimeout> | undefined
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), maxMs)
  })
  let total = 0
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), timedOut])
      if (next === 'timeout') {
        await reader.cancel()
        return
      }
      if (next.done) return
      total += next.value.byteLength
      if (total > maxBytes) {
        await reader.cancel()
        return
      }
    }
  } catch {
    // The client went away mid-body: nothing left to drop.
  } finally {
    clearTimeout(timer)
  }
}

/** Longest request path a log line carries (the rest is cut: a client chooses its length). */
const maximumLoggedPath = 256

/** Longest client address kept (a header's value is the client's to choose). */
const maximumClientAddress = 100

/** A header name as HTTP spells one (RFC 9110 token), for `clientAddressHeader`. */
const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * Where the app reads a client's address: `cf-connecting-ip` behind Cloudflare (Cloudflare sets
 * it itself), the header a deployment names (its proxy sets it), or else the socket.
 */
function clientAddressSource(options: AppOptions): string | undefined {
  const { clientAddressHeader: header, behindCloudflare } = options
  if (header === undefined) return behindCloudflare === true ? 'cf-connecting-ip' : undefined
  if (typeof header !== 'string' || !headerName.test(header))
    throw new InvalidArgumentError(
      'clientAddressHeader',
      `clientAddressHeader (CLIENT_ADDRESS_HEADER) must be a header name such as 'x-forwarded-for', got ${typeof header === 'string' ? `'${header.slice(0, 100)}'` : String(header)}.`,
    )
  const name = header.toLowerCase()
  if (behindCloudflare === true && name !== 'cf-connecting-ip')
    throw new InvalidArgumentError(
      'clientAddressHeader',
      `clientAddressHeader (CLIENT_ADDRESS_HEADER, '${name}') and behindCloudflare (BEHIND_CLOUDFLARE) both say where the client's address comes from: behind Cloudflare it is cf-connecting-ip. Set one of them.`,
    )
  return name
}

/**
 * The address a keyless client is rate limited by, and each client's share of the bodies read at
 * once counted by (undefined: not known). Behind Cloudflare, `cf-connecting-ip`, which Cloudflare
 * sets itself; with a header the deployment names (its proxy sets it), that header's last entry
 * (`X-Forwarded-For: client, proxy`: the one the proxy next to the app added), or the socket's when
 * the request has none; anywhere else a client can send any header, so the socket's address
 * (@hono/node-server passes the Node request as `env.incoming`).
 */
function clientAddress(
  c: Context<AppEnv>,
  source: string | undefined,
  behindCloudflare: boolean,
): string | undefined {
  if (source !== undefined) {
    const value = c.req.header(source)?.split(',').at(-1)?.trim()
    if (value !== undefined && value !== '') return value.slice(0, maximumClientAddress)
    // Behind Cloudflare the socket is Cloudflare's (one address for every client).
    if (behindCloudflare) return undefined
  }
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: unknown } } } | undefined)?.incoming
  const address = incoming?.socket?.remoteAddress
  return typeof address === 'string' && address.length > 0 ? address : undefined
}

/** Builds the app. Throws InvalidArgumentError (naming the field) on bad options. */
export function createApp(options: AppOptions): OndeviceApp {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('createApp(options): pass an options object with at least `modelHost`.')
  }
  // A misspelt name (apikeys, allowedOrigin) is refused with the likely fix rather than dropped:
  // dropped, `apikeys` left the API open and `allowedOrigin` refused every page.
  refuseUnknownNames(options, appOptionNames, 'createApp option')
  const { modelHost } = options
  if (typeof modelHost?.load !== 'function' || typeof modelHost.status !== 'function') {
    throw new TypeError(
      'createApp: `modelHost` must be a ModelHost (see createModelHost in worker/model-host.ts).',
    )
  }
  const limits = resolveLimits(options.limits)
  const addressSource = clientAddressSource(options)
  const keys = createKeyChecker(options.apiKeys ?? [])
  const version = options.version ?? serverVersion
  const log = options.log ?? defaultLog
  const modelIds = new Set([modelHost.modelId, ...(options.modelAliases ?? [])])
  const slots = createGenerationSlots(limits)
  const pools = new WeakMap<HostedModel, SessionPool>()
  const runtime: ChatRuntime = {
    modelHost,
    modelIds,
    limits,
    bodyBudget: createBodyBudget(limits.maxBodyBytesInFlight, limits.maxBodyBytesInFlightPerClient),
    slots,
    version,
    poolFor(model) {
      let pool = pools.get(model)
      if (!pool) {
        pool = createSessionPool(model, limits.maxConcurrent)
        pools.set(model, pool)
      }
      return pool
    },
    writeLog(c, status) {
      const state = c.get('request')
      const model = modelForLog(state.fields.model, modelIds)
      log({
        time: new Date(state.startedAt).toISOString(),
        requestId: state.requestId,
        method: c.req.method.slice(0, 16),
        // The client chose it: a bounded prefix is enough to see what was asked.
        path:
          c.req.path.length > maximumLoggedPath ? `${c.req.path.slice(0, maximumLoggedPath)}…` : c.req.path,
        status,
        durationMs: Date.now() - state.startedAt,
        ...state.fields,
        // Never the client's string as such (log injection, unbounded size): see modelForLog.
        ...(model === undefined ? {} : { model }),
      })
    },
  }

  const app = new Hono<AppEnv>()
  appLimits.set(app, limits)

  app.use('*', async (c, next) => {
    const startedAt = Date.now()
    const state: RequestState = {
      requestId: randomId(),
      startedAt,
      waitFrom: startedAt,
      fields: {},
      client: clientAddress(c, addressSource, options.behindCloudflare === true),
      deferred: false,
    }
    c.set('request', state)
    await next()
    // A request refused before its body was read (404, 401, 429, 413 by Content-Length) leaves
    // the body unread. workerd may then close the connection while the client (under `wrangler
    // dev`, wrangler's own proxy) is still sending or about to reuse it: the refusal or the next
    // request is lost. Cancelling the body made that more frequent, so the rest is read and
    // dropped, bounded in bytes and time, as HTTP servers do (docs/reliability.md, API fuzzing).
    // Two bodies are left unread (on Node the connection is then closed after the answer): one
    // whose client sent `Expect: 100-continue`, which sends it only once told to, as reading it
    // would do (worker/node.ts); and one refused because the bodies being read fill their budget,
    // since reading it to drop it is the load the budget turns away (400 such 1 MiB refusals:
    // RSS 249 -> 491 MiB drained, 213 -> 371 MiB left unread).
    const awaitsContinue = /100-continue/i.test(c.req.header('expect') ?? '')
    const leaveUnread = awaitsContinue || state.fields.errorCode === 'overloaded'
    const body = leaveUnread && !c.req.raw.bodyUsed ? null : c.req.raw.body
    if (body && !c.req.raw.bodyUsed && !body.locked) {
      const drainBytes = limits.maxBodyBytes * unreadBodyDrainFactor
      if (Number(c.req.header('content-length') ?? 0) > drainBytes) await body.cancel().catch(() => undefined)
      else await discardBody(body, drainBytes, unreadBodyDrainMs)
    }
    c.header('x-request-id', state.requestId)
    if (!state.deferred) runtime.writeLog(c, c.res.status)
  })

  const allowedOrigins = options.allowedOrigins ?? []
  checkAllowedOrigins(allowedOrigins, 'allowedOrigins')
  if (allowedOrigins.length > 0) {
    const any = allowedOrigins.includes('*')
    app.use(
      '*',
      cors({
        origin: (origin) => (any ? '*' : allowedOrigins.includes(origin) ? origin : null),
        allowMethods: ['GET', 'POST', 'OPTIONS'],
        // No list: the preflight allows the headers the page asks for (only an allowed origin
        // gets an answer it can use). A fixed list refused OpenAI's own client in a page (it sends
        // x-stainless-* headers) and an app's edge.headers (a CSRF token).
        exposeHeaders: [
          'Retry-After',
          'X-Request-Id',
          ...Object.values(formatHeaderNames),
          'X-Ondevice-Instance',
        ],
        maxAge: 600,
      }),
    )
  }

  // /healthz stays open (load balancers and uptime checks carry no key); /v1 needs one.
  app.use('/v1/*', async (c, next) => {
    const keyId = await keys.check(c.req.header('authorization'))
    c.set('keyId', keyId)
    c.get('request').fields.keyId = keyId
    if (options.rateLimiter && c.req.method !== 'OPTIONS') {
      // With keys, per key. Without, per client address: the one Cloudflare vouches for when the
      // app runs behind it, else the socket's (a header any client can set is no identity).
      const subject = keys.enabled ? keyId : (c.get('request').client ?? 'anonymous')
      const outcome = await options.rateLimiter.limit(subject)
      if (!outcome.allowed) {
        throw new OndeviceError(
          'rate_limited',
          `Rate limit reached for this API key. Retry after ${outcome.retryAfterSeconds} s.`,
          { isRetryable: true, retryAfterSeconds: outcome.retryAfterSeconds },
        )
      }
    }
    await next()
  })

  const canSeeDetails = async (authorization: string | undefined): Promise<boolean> =>
    !keys.enabled ||
    (await keys.check(authorization).then(
      () => true,
      () => false,
    ))

  app.get('/healthz', async (c) => {
    // Readable from any page (it needs no key and holds nothing private): the SDK in a page whose
    // origin is not in ALLOWED_ORIGINS reads it to say "origin not allowed" instead of "edge down".
    if (!c.res.headers.has('access-control-allow-origin')) c.header('Access-Control-Allow-Origin', '*')
    const forwarded = await options.forwardedHealth?.()
    if (forwarded) {
      return c.json({ ...forwarded.body, version, model: modelHost.modelId }, forwarded.status)
    }
    const status = modelHost.status()
    const formats = modelHost.formats?.() ?? []
    // The server's start-up load: chats are refused until it ends, so a readiness check must not pass.
    const starting = status.state === 'loading' && status.startup === true
    const body = {
      status: status.state === 'failed' ? 'error' : starting ? 'loading' : 'ok',
      version,
      model: modelHost.modelId,
      loaded: status.state === 'ready',
      state: status.state,
      ...(status.state === 'ready'
        ? {
            backend: status.info.backend,
            dtype: status.info.dtype,
            context_length: status.info.contextLength,
            load_ms: status.loadMs,
          }
        : {}),
      // The load error names the model's location (MODEL_URL, paths): only for a caller with a key.
      ...(status.state === 'failed'
        ? {
            error: (await canSeeDetails(c.req.header('authorization')))
              ? status.error.message
              : 'The model could not be loaded on this server. Ask with an API key for the reason, or read the server log.',
          }
        : {}),
      generations: { active: slots.active, queued: slots.queued, max_concurrent: limits.maxConcurrent },
      // A host serving more than one format lists each and its state (the others load on first use).
      ...(formats.length > 1
        ? {
            formats: formats.map(({ format, status: formatStatus }) => ({
              dtype: format.dtype ?? null,
              backend: format.backend ?? null,
              state: formatStatus.state,
            })),
          }
        : {}),
    }
    if (starting) return c.json(body, 503, { 'retry-after': String(startupRetryAfterSeconds) })
    return c.json(body, status.state === 'failed' ? 503 : 200)
  })

  // With each id, the most tokens an answer may have here: the SDK refuses a maxTokens over it
  // before an answer starts, instead of meeting this server's refusal at a handoff mid-answer.
  const modelLimits = { maxTokens: limits.maxTokens }
  app.get('/v1/models', (c) => c.json(toModelList(modelIds, modelLimits)))

  app.get('/v1/models/:id', (c) => {
    const id = c.req.param('id')
    if (!modelIds.has(id)) {
      throw new OndeviceError(
        'model_not_found',
        `The model '${clip(id)}' does not exist here. GET /v1/models lists the served models.`,
        {
          param: 'model',
        },
      )
    }
    return c.json(toModelEntry(id, modelLimits))
  })

  const forward = options.forwardChatCompletion
  app.post('/v1/chat/completions', async (c) => (await forward?.(c)) ?? handleChatCompletion(c, runtime))

  // Answered, not thrown: outside /v1 no middleware sits between the router and the logging one,
  // and a throw would unwind through it, skipping its log line and the unread-body drain.
  app.notFound((c) =>
    errorResponse(
      c,
      new OndeviceError(
        'not_found',
        `No route for ${c.req.method.slice(0, 16)} ${c.req.path.length > 200 ? `${c.req.path.slice(0, 200)}…` : c.req.path}. This server serves POST /v1/chat/completions, GET /v1/models and GET /healthz.${otherApiHint(c.req.path)}`,
      ),
    ),
  )

  app.onError((error, c) => errorResponse(c, error))

  for (const route of app.routes) handlerLimits.set(route.handler, limits)
  return app
}

/** The single place an error becomes a response. */
export function errorResponse(c: Context<AppEnv>, error: unknown): Response {
  const state = c.get('request')
  const requestId = state?.requestId ?? 'unknown'
  let mapped = toHttpError(error, requestId)
  if (error instanceof HTTPException && !(error instanceof OndeviceError)) {
    // Hono's own HTTP errors (e.g. a malformed header) keep their status.
    const code: ErrorCode =
      error.status === 413 ? 'payload_too_large' : error.status === 401 ? 'unauthorized' : 'invalid_argument'
    mapped = toHttpError(new OndeviceError(code, error.message || 'Bad request.'), requestId)
  }
  if (state) state.fields.errorCode = mapped.code
  if (mapped.code === 'internal') {
    // The detail goes to the server log only (the response carries just the request id).
    console.error(
      JSON.stringify({
        level: 'error',
        message: 'unhandled error',
        time: new Date().toISOString(),
        requestId,
        error: error instanceof Error ? error.message : String(error),
        // Where it was thrown: an internal error is a defect, and the message alone rarely says where.
        ...(error instanceof Error && error.stack ? { stack: error.stack } : {}),
      }),
    )
  }
  return c.json(mapped.body, mapped.status as 400, { ...mapped.headers, 'x-request-id': requestId })
}

/**
 * OpenAI's other APIs, which clients reach by default (the AI SDK's `openai(model)` posts to
 * /v1/responses): how to reach chat completions instead.
 */
function otherApiHint(path: string): string {
  if (/\/v1\/responses(\/|$)/.test(path))
    return " OpenAI's Responses API is not served: with @ai-sdk/openai use openai.chat(model) (or @ai-sdk/openai-compatible), with the openai client client.chat.completions.create()."
  if (/\/v1\/completions$/.test(path))
    return ' The legacy completions API is not served: send messages to /v1/chat/completions.'
  return ''
}
