// `ondevice serve`: the edge worker's OpenAI-compatible app on Node (@hono/node-server), for a
// container or a self-hosted box, and for packages too large for a Worker isolate. Settings other
// than the flags come from the same environment variables as the Worker (API_KEYS,
// ALLOWED_ORIGINS, MAX_* limits, RATE_LIMIT_PER_MINUTE): docs/worker.md lists them.
import { parseArgs } from 'node:util'
import type { Backend } from '../../client-runtime/dtype.ts'
import { usableCacheDir } from '../../client-runtime/store/node-store.ts'
import { InvalidArgumentError, OndeviceError } from '../../core/errors.ts'
import { createApp } from '../../worker/app.ts'
import { createKeyChecker } from '../../worker/auth.ts'
import { settingsFromEnv } from '../../worker/env-config.ts'
import { describeFormat, formatsFrom, type HostedModel, type ModelHost } from '../../worker/model-host.ts'
import { createNodeModelHost, type RunningServer, serveApp } from '../../worker/node.ts'
import { createMemoryRateLimiter } from '../../worker/rate-limit.ts'

export const help = `Usage: ondevice serve [--model DIR|URL] [--port P] [--host ADDRESS] [options]

Serves a model behind an OpenAI-compatible API (POST /v1/chat/completions, GET /v1/models,
GET /healthz): the same app as the Cloudflare Worker, on Node.

Options:
  --model DIR|URL   A model package folder or URL prefix. Without it, the embedded default
                    (a tiny random-weight package: its text is not meaningful).
  --model-id ID     The id clients send as "model" (default: the folder's or URL's last
                    segment, a Hugging Face URL's repository: what a device's handoff asks for)
  --port P          Port (default 8787; 0 picks a free one)
  --host ADDRESS    Address to listen on (default 127.0.0.1; 0.0.0.0 in a container)
  --backend B[,B]   native (onnxruntime-node; the default when installed), wasm (ondevice's WebAssembly
                    engine; onnxruntime-web where it does not cover the model) or ort-wasm
                    (onnxruntime-web's WASM). Several: the first is the default, the others
                    load on the first request that names them (ondevice_format)
  --dtype D[,D]     Weight format (default: the fastest this backend has); several as --backend
  --context N       Cap the context length (bounds cache memory; MODEL_CONTEXT_LENGTH)
  --threads N       Threads per session, for every backend (default: the engine one,
                    onnxruntime-node its own pool; MODEL_THREADS)
  --memory-budget MB  With several formats: the memory they may take together (default: this
                    process's memory, a container's limit where it has one; 0: no check). A
                    format that would go past it is not loaded: its requests are refused, or
                    answered in a loaded format when they allow a fallback
  --no-preload      Load the model on the first request instead of at start
  --log-format F    text (the default: plain sentences) or json (each start-up, shutdown and
                    failure line one JSON object, as the request log; LOG_FORMAT)
  --bind-after-load Open the port only once the model is loaded, for a platform whose readiness
                    check is an open port (Cloudflare Containers). By default the port opens at
                    once: GET /healthz answers 503 "loading" and chats 503 with Retry-After until
                    the model is loaded
  --help, -h        Show this help

The line "Listening on URL (model ID)" on stdout says it answers chats (with --log-format json,
the JSON line whose message it is, event "listening"). A model that fails to load ends the
command with exit code 1 and the reason. Requests are logged on stdout, one JSON object a line.

Environment (a flag wins over its variable): MODEL_BACKEND and MODEL_DTYPE (the same lists),
MODEL_CONTEXT_LENGTH, MODEL_THREADS, MODEL_ID, MODEL_ALIASES, MEMORY_BUDGET_MB, API_KEYS
(comma-separated bearer keys; none = open, local use only), ALLOWED_ORIGINS,
RATE_LIMIT_PER_MINUTE, MAX_BODY_BYTES, MAX_MESSAGES, MAX_PROMPT_TOKENS, MAX_TOKENS,
MAX_CONCURRENT, MAX_QUEUE, QUEUE_TIMEOUT_MS, STALL_TIMEOUT_MS, READER_STALL_TIMEOUT_MS,
MAX_PROMPT_CHARACTERS, BEHIND_CLOUDFLARE (true: per-address rate limits by cf-connecting-ip),
LOG_FORMAT (as --log-format), SHUTDOWN_TIMEOUT_MS (how long running answers may finish after
SIGTERM; default 8000; one still running then ends with a retryable edge_unavailable error),
HEADERS_TIMEOUT_MS (a request's headers must arrive within it, else 408 and the connection is
closed; default 20000), BODY_STALL_TIMEOUT_MS (the longest its body may send nothing once
reading starts, else 408; default 30000), BODY_TIMEOUT_MS (its whole body within this, else 408;
default 300000; set alone, either moves the other's default out of its way),
MAX_BODY_BYTES_IN_FLIGHT (bytes of request bodies read at once, all clients together; past it
429 overloaded; default 64 MiB or MAX_BODY_BYTES if larger), MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT
(the most of those one client address may hold; past it 429 overloaded; default a quarter of
MAX_BODY_BYTES_IN_FLIGHT, at least MAX_BODY_BYTES), CLIENT_ADDRESS_HEADER (a header your proxy sets
to the client's address, e.g. x-forwarded-for, its last entry counted: for rate limits and the
share per client; default the socket's address).
docs/worker.md describes each.`

function integerFlag(
  value: string | undefined,
  name: string,
  minimum: number,
  maximum: number,
  /** What the user set, for the message: the flag, or the environment variable it came from. */
  label = `--${name}`,
): number | undefined {
  if (value === undefined) return undefined
  const number = Number(value)
  if (!Number.isInteger(number) || number < minimum || number > maximum) {
    throw new InvalidArgumentError(
      name,
      `${label} must be an integer from ${minimum} to ${maximum}, got '${value}'.`,
    )
  }
  return number
}

type LogFormat = 'text' | 'json'

function logFormatFrom(value: string | undefined, label: string): LogFormat {
  const format = value?.trim() || 'text'
  if (format !== 'text' && format !== 'json')
    throw new InvalidArgumentError(
      'log-format',
      `${label} must be text (the default) or json, got '${format.slice(0, 40)}'.`,
    )
  return format
}

/**
 * Writes one start-up, shutdown or failure line. Text: the sentence. JSON: one object a line as
 * the request log writes them (`level`, `message`, `time`; worker/request-log.ts), the same
 * sentence as `message` (so a search for "Listening on" finds it either way), a short `event`
 * name and the sentence's values as fields. Each line stays on the stream it has in text.
 */
type ServeLog = (
  stream: 'stdout' | 'stderr',
  level: 'info' | 'warn' | 'error',
  event: string,
  message: string,
  fields?: Readonly<Record<string, unknown>>,
) => void

function createServeLog(format: LogFormat): ServeLog {
  return (stream, level, event, message, fields = {}) => {
    const line =
      format === 'json'
        ? JSON.stringify({ level, message, time: new Date().toISOString(), event, ...fields })
        : message
    process[stream].write(`${line}\n`)
  }
}

function reportLoaded(log: ServeLog, modelHost: ModelHost, loaded: HostedModel): void {
  const { modelId, dtype, backend, contextLength } = loaded.info
  log('stderr', 'info', 'loaded', `Loaded ${modelId} (${dtype} on ${backend}, context ${contextLength}).`, {
    model: modelId,
    dtype,
    backend,
    contextLength,
  })
  const others = (modelHost.formats?.() ?? []).slice(1)
  if (others.length > 0)
    log(
      'stderr',
      'info',
      'also-serves',
      `Also serves ${others.map(({ format }) => describeFormat(format)).join(', ')}, each loaded on the first request that names it.`,
      {
        formats: others.map(({ format }) => ({
          dtype: format.dtype ?? null,
          backend: format.backend ?? null,
        })),
      },
    )
}

/** The flags this command's parser accepts: every one is in `help` (cli/help.test.ts). */
export const options = {
  model: { type: 'string' },
  'model-id': { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  backend: { type: 'string' },
  dtype: { type: 'string' },
  context: { type: 'string' },
  threads: { type: 'string' },
  'memory-budget': { type: 'string' },
  'no-preload': { type: 'boolean' },
  'bind-after-load': { type: 'boolean' },
  'log-format': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

function parseServeArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    options,
    strict: true,
  })
}

/** The log format asked for when the flags themselves could not be parsed: --log-format, else LOG_FORMAT. */
function logFormatBeforeParsing(argv: readonly string[]): string | undefined {
  let format: string | undefined
  argv.forEach((arg, index) => {
    if (arg === '--log-format') format = argv[index + 1]
    else if (arg.startsWith('--log-format=')) format = arg.slice('--log-format='.length)
  })
  return (format ?? process.env['LOG_FORMAT'])?.trim()
}

export async function run(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseServeArgs>
  try {
    parsed = parseServeArgs(argv)
  } catch (error) {
    // An unknown or malformed flag: with LOG_FORMAT=json (or --log-format json) its refusal is a
    // JSON line too (it was the only plain-text line left), with the same exit code 2.
    const format = logFormatBeforeParsing(argv)
    const isParseError =
      error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')
    if (format !== 'json' || !isParseError) throw error
    createServeLog('json')(
      'stderr',
      'error',
      'failed',
      `ondevice serve: ${error.message} Run 'ondevice serve --help' for its options.`,
      { code: 'invalid_argument' },
    )
    return 2
  }
  const { values } = parsed
  if (values.help) {
    process.stdout.write(`${help}\n`)
    return 0
  }
  // Read first, so that every line after it (a bad setting's refusal included) has its format.
  const format = logFormatFrom(
    values['log-format'] ?? process.env['LOG_FORMAT'],
    values['log-format'] === undefined ? 'LOG_FORMAT' : '--log-format',
  )
  const log = createServeLog(format)
  try {
    return await serve(values, log)
  } catch (error) {
    if (format === 'text') throw error
    // What cli/main.ts prints for the text format, as one JSON line, with the same exit codes.
    const known = error instanceof OndeviceError
    const message = error instanceof Error ? error.message : String(error)
    log(
      'stderr',
      'error',
      'failed',
      known ? `ondevice serve: ${message}` : `ondevice serve failed: ${message}`,
      {
        ...(known ? { code: error.code } : {}),
        ...(!known && error instanceof Error && error.stack !== undefined ? { stack: error.stack } : {}),
      },
    )
    return known && error.code === 'invalid_argument' ? 2 : 1
  }
}

async function serve(
  values: {
    readonly model?: string | undefined
    readonly 'model-id'?: string | undefined
    readonly port?: string | undefined
    readonly host?: string | undefined
    readonly backend?: string | undefined
    readonly dtype?: string | undefined
    readonly context?: string | undefined
    readonly threads?: string | undefined
    readonly 'memory-budget'?: string | undefined
    readonly 'no-preload'?: boolean | undefined
    readonly 'bind-after-load'?: boolean | undefined
  },
  log: ServeLog,
): Promise<number> {
  if (values['no-preload'] === true && values['bind-after-load'] === true)
    throw new InvalidArgumentError(
      '--bind-after-load',
      '--bind-after-load waits for the load at start, which --no-preload skips: pass one of them.',
    )
  const port = integerFlag(values.port, 'port', 0, 65535) ?? 8787
  const memoryBudgetMib = integerFlag(
    values['memory-budget'] ?? process.env['MEMORY_BUDGET_MB'],
    'memory-budget',
    0,
    16 * 2 ** 20,
    values['memory-budget'] === undefined ? 'MEMORY_BUDGET_MB' : '--memory-budget',
  )
  // The flags win over MODEL_BACKEND / MODEL_DTYPE (the container's settings) when both are set.
  const settings = settingsFromEnv({
    ...process.env,
    ...(values.backend === undefined ? {} : { MODEL_BACKEND: values.backend }),
    ...(values.dtype === undefined ? {} : { MODEL_DTYPE: values.dtype }),
  })
  // A Worker passes its MODEL_CONTEXT_LENGTH and MODEL_THREADS to its container: the flags win.
  const contextLength = integerFlag(values.context, 'context', 1, 10_000_000) ?? settings.contextLength
  const numThreads = integerFlag(values.threads, 'threads', 1, 64) ?? settings.modelThreads
  // Checked before anything is built or loaded (createApp checks them again).
  createKeyChecker(settings.apiKeys)
  // Without --backend: native when onnxruntime-node is installed, else WASM (logged at load).
  for (const backend of settings.modelBackends) {
    if (backend !== 'native' && backend !== 'wasm' && backend !== 'ort-wasm') {
      throw new InvalidArgumentError(
        'backend',
        `--backend (or MODEL_BACKEND) takes native, wasm or ort-wasm, comma-separated, got '${backend.slice(0, 40)}'.`,
      )
    }
  }

  let model = values.model
  // MODEL_URL / MODEL_SOURCE are the Worker's settings; an operator passing them to the
  // container (`docker run -e MODEL_URL=...`) would otherwise see only "No model package at
  // /model", with nothing saying that the variable was not read.
  for (const name of ['MODEL_URL', 'MODEL_SOURCE'] as const) {
    const value = process.env[name]
    if (value !== undefined && value !== '' && value !== model)
      log(
        'stderr',
        'warn',
        'setting-not-read',
        `${name} is set, but ondevice serve does not read it (a Worker setting): it loads --model (${model ?? 'the default package'}). Pass the package's URL as --model (in the image: docker run IMAGE node cli/bin.js serve --host 0.0.0.0 --port 8787 --model URL), or mount the package at /model.`,
        { setting: name },
      )
  }
  if (model === undefined) {
    // Imported only here: building the default package needs the builder and its tokenizer
    // files, which a production image (npm ci --omit=dev) serving its own package does not ship.
    const defaults = await import('../../builder/default-package.ts')
    log('stderr', 'info', 'default-model', `No --model: serving ${defaults.defaultPackageDescription}.`)
    model = await defaults.ensureDefaultPackage({ cacheDir: await usableCacheDir() })
  }
  const modelHost = createNodeModelHost({
    model,
    formats: formatsFrom(settings.modelDtypes, settings.modelBackends) as {
      dtype?: string
      backend?: Backend
    }[],
    ...(values['model-id'] === undefined
      ? settings.modelId
        ? { modelId: settings.modelId }
        : {}
      : { modelId: values['model-id'] }),
    ...(contextLength === undefined ? {} : { contextLength }),
    ...(numThreads === undefined ? {} : { numThreads }),
    // Every slot's session at load time: building one blocks the event loop (see sessions).
    sessions: settings.limits.maxConcurrent ?? 1,
    ...(memoryBudgetMib === undefined ? {} : { memoryBudgetBytes: memoryBudgetMib * 2 ** 20 }),
  })
  // SIGTERM/SIGINT are handled from here on: in a container this process is PID 1, which the
  // kernel sends no signal it has no handler for, so without one `docker stop` during the load
  // would wait its whole timeout and then SIGKILL. Before the server answers chats, nothing is
  // in flight: the load is abandoned and the process ends with exit code 0.
  let server: RunningServer | undefined
  let stopRequested: (() => void) | undefined
  const stopping = new Promise<void>((resolve) => {
    stopRequested = resolve
  })
  const onSignal = () => {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    stopRequested?.()
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  let loading = true
  const abandonLoadOnStop = async <T>(load: Promise<T>): Promise<T> => {
    void stopping.then(async () => {
      if (!loading) return
      log('stderr', 'info', 'stopped-while-loading', 'Stopped while the model was loading: exiting.')
      await server?.close()
      process.exit(0)
    })
    try {
      return await load
    } finally {
      loading = false
    }
  }
  const preload = values['no-preload'] !== true
  if (preload && values['bind-after-load'] === true)
    reportLoaded(log, modelHost, await abandonLoadOnStop(modelHost.load()))
  if (settings.apiKeys.length === 0) {
    log(
      'stderr',
      'warn',
      'open-api',
      'No API_KEYS set: the API is open to anyone who can reach this address.',
    )
  }
  const app = createApp({
    modelHost,
    apiKeys: settings.apiKeys,
    allowedOrigins: settings.allowedOrigins,
    limits: settings.limits,
    modelAliases: settings.modelAliases,
    behindCloudflare: settings.behindCloudflare,
    ...(settings.clientAddressHeader === undefined
      ? {}
      : { clientAddressHeader: settings.clientAddressHeader }),
    ...(settings.rateLimitPerMinute
      ? { rateLimiter: createMemoryRateLimiter({ limit: settings.rateLimitPerMinute, periodSeconds: 60 }) }
      : {}),
  })
  // Node's own bound on a whole request follows the app's body bounds (serveApp reads them), so a
  // body the app reads gets the API's 408 first; it still bounds what the app never reads.
  server = await serveApp({
    app,
    port,
    host: values.host ?? '127.0.0.1',
    ...(settings.headersTimeoutMs === undefined ? {} : { headersTimeoutMs: settings.headersTimeoutMs }),
  })
  if (preload && values['bind-after-load'] !== true) {
    // Bound first: health checks and clients get an answer (503 "loading", Retry-After) during
    // the load instead of "connection refused". Ctrl-C meanwhile ends the process as before.
    log(
      'stderr',
      'info',
      'bound',
      `Bound to ${server.url}: loading the model; until it is loaded, GET /healthz answers 503 "loading" and chats 503 with Retry-After.`,
      { url: server.url },
    )
    try {
      reportLoaded(log, modelHost, await abandonLoadOnStop(modelHost.preload()))
    } catch (error) {
      // A server that can never answer must not look alive: stop, and say why (exit code 1).
      await server.close()
      throw error
    }
  }
  // One line on stdout that scripts (and tests) can wait for: from here on it answers chats.
  log('stdout', 'info', 'listening', `Listening on ${server.url} (model ${modelHost.modelId})`, {
    url: server.url,
    model: modelHost.modelId,
  })
  await stopping
  // Running answers finish (up to SHUTDOWN_TIMEOUT_MS) while new requests get 503 + Retry-After;
  // one still running then ends with a retryable error its client can act on (serveApp's
  // shutdownSignal); then the model's sessions and weights (native memory the process would
  // otherwise hold).
  const graceMs = settings.shutdownTimeoutMs ?? 8000
  log(
    'stderr',
    'info',
    'stopping',
    `Stopping: running requests have up to ${graceMs} ms to finish (SHUTDOWN_TIMEOUT_MS); any still running then ends with a retryable error (edge_unavailable: a stream's error event, or a 503).`,
    { graceMs },
  )
  await server.close({ graceMs })
  // dispose() waits for a load still running (--no-preload, or a further format a request asked
  // for) and the download keeps the process alive after it: without a bound, the stop waited out
  // the whole download and `docker stop` ended in SIGKILL. Such a load is given up, as during
  // the start-up load; a loaded model's release takes far less than this (and the default grace
  // plus the error events' flush plus this stays under docker stop's 10 s).
  const released = await Promise.race([
    modelHost.dispose().then(
      () => true,
      () => true,
    ),
    new Promise<false>((resolve) => setTimeout(resolve, 500, false).unref()),
  ])
  if (!released) {
    log('stderr', 'info', 'stopped-while-loading', 'Stopped while a model was still loading: exiting.')
    process.exit(0)
  }
  return 0
}
