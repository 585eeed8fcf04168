// The Node entry: the same app on @hono/node-server, for a container or a self-hosted box, and
// for packages larger than a Worker isolate's 128 MB. The model comes from a folder or URL prefix
// through the runtime's loadModel (model store: download, resume, sha256 against manifest.json),
// on onnxruntime-node ('native', the default) or onnxruntime-web ('wasm').
import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { serve } from '@hono/node-server'
import type { Backend } from '../client-runtime/dtype.ts'
import { inspectPackage, loadModel } from '../client-runtime/index.ts'
import type { LoadModelOptions } from '../client-runtime/load-model.ts'
import { processMemoryBytes } from '../client-runtime/node-capabilities.ts'
import { defaultNodeBackend } from '../client-runtime/node-host.ts'
import { createNodeStore, isUrlSource } from '../client-runtime/store/node-store.ts'
import type { ModelStore } from '../client-runtime/store/types.ts'
import { InvalidArgumentError, OndeviceError, refuseUnknownNames } from '../core/errors.ts'
import { modelIdFromLocation } from '../core/model-id.ts'
import { packageFingerprint } from '../core/model-package.ts'
import type { ModelSession } from '../core/model-session.ts'
import { limitsOfApp, type OndeviceApp } from './app.ts'
import { maxTimerMs } from './env-config.ts'
import { toHttpError } from './http-errors.ts'
import { createModelHost, type ModelFormat, type ModelHost } from './model-host.ts'
import { defaultLimits } from './options.ts'

export { createApp, type OndeviceApp } from './app.ts'
export { createModelHost, type HostedModel, type ModelHost } from './model-host.ts'

export interface NodeModelHostOptions {
  /** Package folder or URL prefix. */
  readonly model: string
  /** The id clients send as `model`; default: the folder's (or URL's) last segment. */
  readonly modelId?: string
  /** Default: 'native' (onnxruntime-node) when it is installed, else 'wasm'. */
  readonly backend?: Backend
  readonly dtype?: string
  /**
   * More than one format (weight format × backend), the default first: each other one loads on
   * the first request that names it (`ondevice_format`). Overrides `backend` and `dtype`; an
   * undefined field is decided at load as they would be.
   */
  readonly formats?: readonly {
    readonly dtype?: string | undefined
    readonly backend?: Backend | undefined
  }[]
  readonly contextLength?: number
  readonly numThreads?: number
  readonly onProgress?: LoadModelOptions['onProgress']
  /**
   * Sessions to create when the model loads (the app's maxConcurrent). Default 1; more are then
   * made on demand. onnxruntime-node builds a session synchronously on the event loop (seconds
   * for a large model), so making them all at load time keeps that pause out of request time.
   */
  readonly sessions?: number
  /**
   * With more than one format: the memory they may take together, in bytes. A format whose
   * estimate (the package's `estimatedMemory` for its dtype and backend) would take the loaded
   * ones past it is not loaded; its requests are refused or fall back (`ondevice_format`).
   * Default: the process's memory (a container's limit where there is one). 0: no check.
   */
  readonly memoryBudgetBytes?: number
}

/**
 * The default model id: `qwen3-0.6b` from `/models/qwen3-0.6b/`, `file:///models/qwen3-0.6b/` or
 * `https://host/models/qwen3-0.6b/?token=...`, the repository's name from a Hugging Face
 * `.../resolve/<revision>/` URL; the rule the device and the Worker use (core/model-id.ts).
 */
export function modelIdFromSource(source: string): string {
  // A folder is named as the device's Node store opens it, resolved: `.` is the working
  // directory's name, and `qwen3:0.6b` a folder, not a `qwen3:` scheme (the Worker's `r2:`).
  const folder = !isUrlSource(source) && !source.startsWith('file:')
  return modelIdFromLocation(folder ? resolve(source) : source) ?? 'model'
}

/** The names createNodeModelHost takes (a Record, so a field added without its name fails the type check). */
const nodeModelHostOptionNames: readonly string[] = Object.keys({
  model: true,
  modelId: true,
  backend: true,
  dtype: true,
  formats: true,
  contextLength: true,
  numThreads: true,
  onProgress: true,
  sessions: true,
  memoryBudgetBytes: true,
} satisfies Record<keyof NodeModelHostOptions, true>)

/** The names serveApp takes. */
const serveOptionNames: readonly string[] = Object.keys({
  app: true,
  port: true,
  host: true,
  headersTimeoutMs: true,
  requestTimeoutMs: true,
} satisfies Record<keyof ServeOptions, true>)

/**
 * A model host that loads the package once: on first use, or at start with `preload()` (the
 * server listening meanwhile refuses chats with 503 + Retry-After), or `load()` before serving.
 */
export function createNodeModelHost(
  options: NodeModelHostOptions,
): ModelHost & Required<Pick<ModelHost, 'preload' | 'select' | 'formats' | 'dispose'>> {
  // A misspelt name (modelID, contextLenght) is refused with the likely fix rather than dropped.
  if (typeof options === 'object' && options !== null)
    refuseUnknownNames(options, nodeModelHostOptionNames, 'createNodeModelHost option')
  if (typeof options?.model !== 'string' || options.model.trim() === '') {
    throw new InvalidArgumentError(
      'model',
      'model must be a package folder or a URL prefix (where config.json lives).',
    )
  }
  if (options.sessions !== undefined && (!Number.isInteger(options.sessions) || options.sessions < 1)) {
    throw new InvalidArgumentError(
      'sessions',
      `sessions must be a whole number ≥ 1, got ${String(options.sessions)}.`,
    )
  }
  const modelId = options.modelId ?? modelIdFromSource(options.model)
  // The store's warnings (a package without manifest.json) are the load's warnings too, which are
  // logged below as JSON lines: its default console.warn wrote each again as a plain-text line.
  const store = createNodeStore({ onWarning: () => undefined })
  // Unset backend: native when onnxruntime-node is installed, else WASM with a logged note.
  const baseOptions: LoadModelOptions = {
    model: options.model,
    store,
    ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
    ...(options.numThreads === undefined ? {} : { numThreads: options.numThreads }),
    // The engine sizes its caches for every slot's session at load (they share its 4 GiB).
    ...(options.sessions === undefined ? {} : { sessions: options.sessions }),
  }
  const budget = options.memoryBudgetBytes ?? processMemoryBytes()
  if (!Number.isFinite(budget) || budget < 0) {
    throw new InvalidArgumentError(
      'memoryBudgetBytes',
      `memoryBudgetBytes must be a number of bytes ≥ 0 (0: no check), got ${String(options.memoryBudgetBytes)}.`,
    )
  }
  const sessions = options.sessions ?? 1
  const estimate = formatEstimator(options, store)
  return createModelHost({
    modelId,
    ...(options.formats === undefined ? {} : { formats: options.formats }),
    ...(budget > 0 && (options.formats?.length ?? 1) > 1
      ? { admit: memoryAdmission({ estimate, budget, sessions }) }
      : {}),
    load: async (format) => {
      const backend = (format.backend as Backend | undefined) ?? options.backend
      const dtype = format.dtype ?? options.dtype
      const loaded = await loadModel({
        ...baseOptions,
        ...(backend === undefined ? {} : { backend }),
        ...(dtype === undefined ? {} : { dtype }),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      })
      try {
        const warnings = [...loaded.warnings]
        // The default format is always loaded, so its slots are not refused: the operator is told,
        // one session included (only several were: a default over the budget loaded unsaid).
        const figures =
          budget > 0 ? await estimate({ dtype: loaded.dtype, backend: loaded.backend }) : undefined
        const needed = figures === undefined ? undefined : withSessions(figures, sessions)
        if (figures !== undefined && needed !== undefined && needed > budget)
          warnings.push(
            sessions > 1
              ? `${sessions} sessions (MAX_CONCURRENT) need ~${mebibytes(needed)} (${describeSessions(figures, sessions)}), over this server's memory budget of ${mebibytes(budget)} (MEMORY_BUDGET_MB): lower MAX_CONCURRENT or give the process more memory.`
              : `The model (${loaded.dtype} on ${loaded.backend}) needs ~${mebibytes(needed)}, over this server's memory budget of ${mebibytes(budget)} (MEMORY_BUDGET_MB): give the process more memory, or serve a smaller format (--dtype) or context (--context).`,
          )
        for (const warning of warnings)
          console.warn(JSON.stringify({ level: 'warn', message: warning, time: new Date().toISOString() }))
        // Every slot's session now: building one on demand
        // would hold the event loop in request time (see `sessions`).
        const spares: ModelSession[] = [loaded.session]
        for (let index = 1; index < sessions; index++) spares.push(await loaded.createSession())
        const fingerprint = packageFingerprint(loaded.manifest?.files, loaded.dtype)
        return {
          info: {
            modelId,
            backend: loaded.backend,
            dtype: loaded.dtype,
            contextLength: loaded.session.info.contextLength,
            ...(fingerprint === undefined ? {} : { packageFingerprint: fingerprint }),
          },
          tokenizer: loaded.tokenizer,
          async createSession() {
            // More concurrent generations: one more session over the same loaded model.
            return spares.shift() ?? loaded.createSession()
          },
          dispose: () => loaded.dispose(),
        }
      } catch (error) {
        await loaded.dispose().catch(() => undefined)
        throw error
      }
    },
  })
}

/**
 * What a format needs, from its package: `bytes`, the package's estimate for one session (the
 * weights, one cache at the served context, one prompt's activations, the runtime), and
 * `sessionBytes`, what each further session adds. Every runtime's sessions share the weights
 * (ONNX Runtime: one InferenceSession under every slot; the engine: one instance, a cache per
 * session), so a further one adds its cache and activations.
 */
interface FormatMemory {
  readonly bytes: number
  readonly sessionBytes: number
}

const withSessions = (figures: FormatMemory, sessions: number): number =>
  figures.bytes + figures.sessionBytes * (sessions - 1)

function describeSessions(figures: FormatMemory, sessions: number): string {
  return figures.sessionBytes >= figures.bytes
    ? `${sessions} sessions of ~${mebibytes(figures.bytes)}, each with its own copy of the weights`
    : `~${mebibytes(figures.bytes)} for the weights and the first session, ~${mebibytes(figures.sessionBytes)} for each further one's cache`
}

/**
 * Admits a format while the estimates of the formats held and of the new one fit the budget. A
 * format whose estimate cannot be read (no figures, unreadable package) is admitted: refusing a
 * load on a guess would be worse than the crash this prevents, which the operator sizes for.
 * Every format loads `sessions` sessions (one per MAX_CONCURRENT slot): its weights once, and a
 * cache (and activations) per session.
 */
function memoryAdmission(options: {
  readonly estimate: (format: ModelFormat) => Promise<FormatMemory | undefined>
  readonly budget: number
  readonly sessions: number
}): (format: ModelFormat, held: readonly ModelFormat[]) => Promise<string | undefined> {
  const { estimate, sessions } = options
  return async (format, held) => {
    const figures = await estimate(format)
    if (figures === undefined) return undefined
    const wanted = withSessions(figures, sessions)
    let total = wanted
    for (const other of held) {
      const theirs = await estimate(other)
      total += theirs === undefined ? 0 : withSessions(theirs, sessions)
    }
    if (total <= options.budget) return undefined
    const each =
      sessions > 1 ? ` (${describeSessions(figures, sessions)}, for ${sessions} MAX_CONCURRENT slots)` : ''
    return `it needs ~${mebibytes(wanted)}${each} next to the ${held.length} loaded (${mebibytes(total)} together), over this server's memory budget of ${mebibytes(options.budget)} (MEMORY_BUDGET_MB)`
  }
}

const mebibytes = (bytes: number): string => `${Math.round(bytes / 2 ** 20)} MiB`

/** A format's memory figures from its package (undefined where they cannot be read). */
function formatEstimator(
  options: {
    readonly model: string
    readonly backend?: Backend | undefined
    readonly dtype?: string | undefined
    readonly contextLength?: number | undefined
  },
  store: ModelStore,
): (format: ModelFormat) => Promise<FormatMemory | undefined> {
  return async (format) => {
    const backend =
      (format.backend as Backend | undefined) ?? options.backend ?? (await defaultNodeBackend()).backend
    const dtype = format.dtype ?? options.dtype
    try {
      const info = await inspectPackage({
        model: options.model,
        backend,
        store,
        ...(dtype === undefined ? {} : { dtype }),
        ...(options.contextLength === undefined ? {} : { contextLength: options.contextLength }),
      })
      const bytes = info.estimatedMemoryBytes
      if (bytes === undefined) return undefined
      // No per-session figure: count each session as a whole load (on the safe side).
      return { bytes, sessionBytes: Math.min(bytes, info.sessionMemoryBytes ?? bytes) }
    } catch {
      return undefined
    }
  }
}

export interface ServeOptions {
  readonly app: OndeviceApp
  /** 0 picks a free port. */
  readonly port: number
  /** Default 127.0.0.1 (use 0.0.0.0 in a container). */
  readonly host?: string
  /**
   * How long a request's headers may take to arrive in full (Node's `headersTimeout`,
   * `HEADERS_TIMEOUT_MS` in `ondevice serve`); past it the connection gets 408 and is closed.
   * Default 20,000 ms (Node's own is 60 s, checked every 30 s).
   */
  readonly headersTimeoutMs?: number
  /**
   * How long a whole request, headers and body, may take to arrive (Node's `requestTimeout`); past
   * it the connection gets a bare 408 and is closed. A backstop behind the app's own bounds on a
   * body (`limits.bodyTimeoutMs` and `limits.bodyStallTimeoutMs`, which answer first with the
   * API's 408) for what the app does not read: a GET's body, a body refused unread. Default: the
   * headers' bound + the app's `limits.bodyTimeoutMs` + 10 s (330 s at the defaults), so raising
   * the app's body bound is enough; a Hono app of the operator's own counts the apps it mounts (the
   * longest body bound), or the default body bound when it mounts none.
   * Set, it must be at least `headersTimeoutMs` + the app's `limits.bodyTimeoutMs`: shorter, Node
   * would cut a slow body the app still reads.
   */
  readonly requestTimeoutMs?: number
}

/** serveApp's `headersTimeoutMs` when none is given. */
export const defaultHeadersTimeoutMs = 20_000
/**
 * What serveApp's `requestTimeoutMs` adds, left unset, to the headers' and the body's bounds: the
 * app's body clock starts once it reads the body (after the key, CORS and rate-limit checks).
 */
export const requestTimeoutSlackMs = 10_000

export interface RunningServer {
  readonly url: string
  readonly port: number
  /** Node's bound on a request's headers (`headersTimeoutMs`, or its default). */
  readonly headersTimeoutMs: number
  /** Node's bound on a whole request (`requestTimeoutMs`, or what it follows when unset). */
  readonly requestTimeoutMs: number
  /**
   * Stops listening. With `graceMs`, requests already running (streams included) get up to that
   * long to finish while any new request on an open connection is refused with 503 +
   * Retry-After. What still runs then is told the server is shutting down (the app's
   * `shutdownSignal`): a stream ends with a retryable `edge_unavailable` error event, a request
   * not answered yet gets a 503; after `shutdownFlushMs` more, every connection left is cut.
   * `graceMs` is a number of milliseconds from 0 (the default: cut at once) to 600,000, as
   * `SHUTDOWN_TIMEOUT_MS`; anything else rejects with an InvalidArgumentError and stops nothing.
   */
  close(options?: { readonly graceMs?: number }): Promise<void>
}

/**
 * After the grace ends: how long the answers still running get to write their error event (or
 * 503) and end before their connections are cut. Writing them takes a turn of the event loop;
 * the bound is for a client that does not read.
 */
export const shutdownFlushMs = 1000

function shuttingDownError(): OndeviceError {
  return new OndeviceError(
    'edge_unavailable',
    'This server is shutting down: retry in a few seconds (another instance, or this one once restarted).',
    { isRetryable: true, retryAfterSeconds: 5 },
  )
}

/** Serves the app over HTTP until `close()`. */
export function serveApp(options: ServeOptions): Promise<RunningServer> {
  // A misspelt name (hostname, requestTimeout) is refused rather than its default taken.
  if (typeof options === 'object' && options !== null)
    refuseUnknownNames(options, serveOptionNames, 'serveApp option')
  const { app, port } = options
  const host = options.host ?? '127.0.0.1'
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError('port', `port must be an integer from 0 to 65535, got ${String(port)}.`)
  }
  const headersTimeout = timeoutOption(options.headersTimeoutMs, 'headersTimeoutMs', defaultHeadersTimeoutMs)
  // Unset, the request bound follows the headers' and the app's body bounds: fixed at 60 s, a body
  // the app allowed longer (BODY_TIMEOUT_MS raised) was cut by Node with a bare 408 first.
  const bodyTimeout = limitsOfApp(app)?.bodyTimeoutMs ?? defaultLimits.bodyTimeoutMs
  const requestTimeout = timeoutOption(
    options.requestTimeoutMs,
    'requestTimeoutMs',
    Math.min(maxTimerMs, headersTimeout + bodyTimeout + requestTimeoutSlackMs),
  )
  if (requestTimeout < headersTimeout)
    throw new InvalidArgumentError(
      'requestTimeoutMs',
      `requestTimeoutMs (${requestTimeout}) must be at least headersTimeoutMs (${headersTimeout}): the whole request includes its headers.`,
    )
  if (options.requestTimeoutMs !== undefined && requestTimeout < headersTimeout + bodyTimeout)
    throw new InvalidArgumentError(
      'requestTimeoutMs',
      `requestTimeoutMs (${requestTimeout}) is shorter than headersTimeoutMs (${headersTimeout}) + the app's limits.bodyTimeoutMs (BODY_TIMEOUT_MS, ${bodyTimeout}): Node would cut a slow body the app still reads with a bare 408. Leave requestTimeoutMs unset (it then follows them: ${Math.min(maxTimerMs, headersTimeout + bodyTimeout + requestTimeoutSlackMs)}), set it to at least ${headersTimeout + bodyTimeout}, or lower limits.bodyTimeoutMs.`,
    )
  let draining = false
  let running = 0
  // Aborted when the grace ends: the app ends what still runs with a retryable error (its
  // `shutdownSignal` binding, worker/app-env.ts).
  const shutdown = new AbortController()
  const shutdownReached = new Promise<void>((resolve) =>
    shutdown.signal.addEventListener('abort', () => resolve(), { once: true }),
  )
  const fetch = (request: Request, env?: unknown): Response | Promise<Response> => {
    // A request on a kept-alive connection after the drain began: refused, never started, so a
    // load balancer retries it on another instance.
    if (draining) return shuttingDownResponse()
    const bindings = {
      ...(typeof env === 'object' && env !== null ? env : {}),
      shutdownSignal: shutdown.signal,
    }
    const answer = closeIfBodyUnread(app.fetch(request, bindings), env)
    if (answer instanceof Response) return answer
    // One not answered when the grace ends (its headers not sent: the model still loading, a
    // slot or a long prefill awaited) gets the 503 now; the app's own answer, when it comes, is
    // dropped (cancelling a stream's body frees its slot).
    return Promise.race([
      answer,
      shutdownReached.then(() => {
        void answer.then((late) => late.body?.cancel()).catch(() => undefined)
        return shuttingDownResponse()
      }),
    ])
  }
  return new Promise((resolve, reject) => {
    const server = serve(
      {
        fetch,
        port,
        hostname: host,
        serverOptions: {
          headersTimeout: headersTimeout,
          requestTimeout: requestTimeout,
          // Node checks both timeouts on this interval (30 s by default, which let a connection
          // whose headers never came stay 90 s): a tenth of a second to a second past the bound.
          connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(headersTimeout / 4))),
        },
      },
      (info: AddressInfo) => {
        const http = server as unknown as HttpServer
        const shownHost = host.includes(':') ? `[${host}]` : host
        resolve({
          url: `http://${shownHost}:${info.port}`,
          port: info.port,
          headersTimeoutMs: headersTimeout,
          requestTimeoutMs: requestTimeout,
          close: (options) => {
            // Checked before anything stops: setTimeout reads a negative, NaN, Infinity, too large
            // or non-number grace as ~1 ms, which would cut every running answer at once.
            let graceMs: number
            try {
              graceMs = closeGraceMs(options)
            } catch (error) {
              return Promise.reject(error)
            }
            return new Promise<void>((done) => {
              draining = true
              const cut = () => http.closeAllConnections()
              let timer: ReturnType<typeof setTimeout> | undefined
              if (running > 0) {
                // What still runs at the bound ends with its error, then whatever is left is cut.
                timer = setTimeout(() => {
                  shutdown.abort(shuttingDownError())
                  timer = setTimeout(cut, shutdownFlushMs)
                }, graceMs)
              }
              server.close(() => {
                if (timer !== undefined) clearTimeout(timer)
                done()
              })
              // Kept-alive connections with nothing running would hold close() forever.
              http.closeIdleConnections()
              if (timer === undefined) cut()
            })
          },
        })
      },
    )
    // Expect: 100-continue: Node answers 100 Continue at once by default, so a client uploaded a
    // body the server then refused unread (a 413 by its declared length: a 5 MiB one ended in a
    // reset before the client read the 413). The 100 now goes out when the app starts reading the
    // body (the request stream resumes); a request refused before that is answered without it and
    // its connection closed (closeIfBodyUnread), the body never sent.
    server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
      request.once('resume', () => {
        if (!response.headersSent && !response.writableEnded) response.writeContinue()
      })
      server.emit('request', request, response)
    })
    server.on(
      'request',
      (_request: unknown, response: { once(event: 'close', listener: () => void): void }) => {
        running += 1
        response.once('close', () => {
          running -= 1
          // Its connection is idle now: let it go so close() can finish before the grace ends.
          if (draining) setImmediate(() => (server as unknown as HttpServer).closeIdleConnections())
        })
      },
    )
    server.once('error', (error: unknown) => reject(listenError(error, host, port)))
  })
}

/** A timeout option: a whole number of milliseconds a timer can take, or the default. */
function timeoutOption(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > maxTimerMs)
    throw new InvalidArgumentError(
      name,
      `${name} must be a whole number of milliseconds from 1 to ${maxTimerMs}, got ${String(value)}.`,
    )
  return value
}

/**
 * A response sent before its request's body arrived in full (a 408 for a stalled body, a 413 or
 * 429 refused mid-body) closes the connection: what is left of the body cannot be told from the
 * next request, and the client must not wait to reuse a connection the server then drops.
 */
function closeIfBodyUnread(answer: Response | Promise<Response>, env: unknown): Response | Promise<Response> {
  const incoming = (env as { incoming?: IncomingMessage } | undefined)?.incoming
  if (incoming === undefined) return answer
  const length = incoming.headers['content-length']
  const hasBody =
    incoming.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
  if (!hasBody) return answer
  const mark = (response: Response): Response => {
    if (incoming.complete) return response
    try {
      response.headers.set('connection', 'close')
      return response
    } catch {
      // Immutable headers (a fetched response passed on): copy them.
      const headers = new Headers(response.headers)
      headers.set('connection', 'close')
      return new Response(response.body, {
        status: response.status,
        statusText: response.statusText,
        headers,
      })
    }
  }
  // Checked once the parser is done with what arrived with the headers: Node runs the request
  // handler from inside it, before it marks even a complete body complete.
  return Promise.resolve(answer).then(mark)
}

/** The longest grace `close()` takes: `SHUTDOWN_TIMEOUT_MS`'s bound (worker/env-config.ts). */
const maxGraceMs = 600_000

function closeGraceMs(options: unknown): number {
  if (options === undefined) return 0
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError(
      'options',
      `close() takes an options object, close({ graceMs }) (or nothing: no grace), got ${String(options)}.`,
    )
  }
  const graceMs = (options as { graceMs?: unknown }).graceMs
  if (graceMs === undefined) return 0
  if (typeof graceMs !== 'number' || !Number.isFinite(graceMs) || graceMs < 0 || graceMs > maxGraceMs) {
    const shown = typeof graceMs === 'string' ? `'${graceMs}'` : String(graceMs)
    throw new InvalidArgumentError(
      'graceMs',
      `graceMs must be a number of milliseconds from 0 to ${maxGraceMs} (how long running requests may finish; 0: cut them at once), got ${shown}${typeof graceMs === 'number' ? '' : ` (a ${typeof graceMs})`}.`,
    )
  }
  return graceMs
}

function shuttingDownResponse(): Response {
  const refusal = toHttpError(shuttingDownError(), 'shutdown')
  return new Response(JSON.stringify(refusal.body), {
    status: refusal.status,
    headers: { ...refusal.headers, 'content-type': 'application/json', connection: 'close' },
  })
}

/**
 * A socket that cannot listen is the caller's address to change: say which and how, as the
 * project's error (the CLI prints its message), not Node's stack.
 */
function listenError(error: unknown, host: string, port: number): unknown {
  const code = (error as { code?: unknown } | null)?.code
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`
  const reason = error instanceof Error ? error.message : String(error)
  if (code === 'EADDRINUSE') {
    return new InvalidArgumentError(
      'port',
      `Cannot listen on ${where}: something else listens there (${reason}). Stop it or pick another port (0 picks a free one).`,
      { cause: error },
    )
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new InvalidArgumentError(
      'port',
      `Cannot listen on ${where}: not permitted (${reason}). Ports below 1024 need privileges: use a port from 1024 up.`,
      { cause: error },
    )
  }
  if (code === 'ENOTFOUND' || code === 'EADDRNOTAVAIL' || code === 'EAI_AGAIN' || code === 'EAI_FAIL') {
    return new InvalidArgumentError(
      'host',
      `Cannot listen on ${where}: ${host} is not an address of this machine (${reason}). Use 127.0.0.1, or 0.0.0.0 for every interface.`,
      { cause: error },
    )
  }
  return error
}
