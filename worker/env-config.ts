// Reads the app's settings from environment variables (wrangler.toml `[vars]` and secrets on
// Workers, process.env for the Node entry), so both entries are configured the same way. Every
// bad value is an error naming the variable and the fix, raised before the first request runs.
import { normalizeDtype } from '../client-runtime/dtype.ts'
import { InvalidArgumentError } from '../core/errors.ts'
import { parseApiKeys } from './auth.ts'
import { checkAllowedOrigins, type Limits, maximumBodyBytes, maximumConcurrent } from './options.ts'

/**
 * The longest delay a timer takes (2^31 - 1 ms, about 24.8 days): a longer one fires at once
 * (Node, workerd and browsers alike), so QUEUE_TIMEOUT_MS=99999999999 refused every queued
 * request at once instead of letting it wait.
 */
export const maxTimerMs = 2_147_483_647

export type EnvValues = Readonly<Record<string, unknown>>

export interface EnvSettings {
  readonly apiKeys: readonly string[]
  readonly allowedOrigins: readonly string[]
  readonly limits: Partial<Limits>
  /** In-isolate limiter: requests per key per minute (0 / absent: none unless a binding is set). */
  readonly rateLimitPerMinute: number | undefined
  /** The rate-limiting binding's period (seconds), used for Retry-After. */
  readonly rateLimitPeriodSeconds: number
  readonly modelId: string | undefined
  readonly modelAliases: readonly string[]
  /**
   * MODEL_DTYPE: the weight formats to serve, the default first (comma-separated; each other one
   * loads on the first request that names it in `ondevice_format`). Empty: the backend's fastest.
   */
  readonly modelDtypes: readonly string[]
  /** MODEL_BACKEND: the backends to serve, the default first (the entry checks which it can run). */
  readonly modelBackends: readonly string[]
  /** Caps the model's context (bounds the cache's memory). */
  readonly contextLength: number | undefined
  /**
   * MODEL_THREADS: threads per session where the model runs in Node (`ondevice serve`, a
   * Worker's containers); a Worker's isolate runs one.
   */
  readonly modelThreads: number | undefined
  readonly requireManifest: boolean
  /** BEHIND_CLOUDFLARE=true: trust `cf-connecting-ip` for per-address rate limits (Node entry). */
  readonly behindCloudflare: boolean
  /**
   * CLIENT_ADDRESS_HEADER: the header a proxy in front of `ondevice serve` names each client's
   * address in (AppOptions.clientAddressHeader; Node entry; a Worker has cf-connecting-ip).
   */
  readonly clientAddressHeader: string | undefined
  /**
   * SHUTDOWN_TIMEOUT_MS: how long `ondevice serve` lets running requests finish after SIGTERM
   * (Node entry). Under Docker's 10 s stop timeout by default, so the process exits on its own.
   */
  readonly shutdownTimeoutMs: number | undefined
  /**
   * HEADERS_TIMEOUT_MS: how long `ondevice serve` waits for a request's headers to arrive in full
   * (Node entry); the connection then gets 408 and is closed.
   */
  readonly headersTimeoutMs: number | undefined
}

function text(env: EnvValues, name: string): string | undefined {
  const value = env[name]
  if (value === undefined || value === null) return undefined
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (typeof value !== 'string')
    throw new InvalidArgumentError(
      name,
      `${name} must be a string (a wrangler var or an environment variable).`,
    )
  // Blank is unset, spaces included: `SHUTDOWN_TIMEOUT_MS= ` in an env file read as Number('') = 0
  // (streams cut at once on stop), MAX_QUEUE=' ' as no queue at all, MODEL_ID=' ' as the id ''.
  const trimmed = value.trim()
  return trimmed === '' ? undefined : trimmed
}

function integer(env: EnvValues, name: string, minimum: number, maximum?: number): number | undefined {
  const raw = text(env, name)
  if (raw === undefined) return undefined
  const value = Number(raw)
  if (!Number.isInteger(value) || value < minimum || (maximum !== undefined && value > maximum)) {
    const range = maximum === undefined ? `>= ${minimum}` : `from ${minimum} to ${maximum}`
    throw new InvalidArgumentError(name, `${name} must be an integer ${range}, got '${raw}'.`)
  }
  return value
}

function list(env: EnvValues, name: string): string[] {
  return (text(env, name) ?? '')
    .split(/[\s,]+/)
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0)
}

/** A list setting naming one entry twice is a typo worth saying (it would load one format twice). */
function distinct(name: string, values: readonly string[]): readonly string[] {
  const repeated = values.find((value, index) => values.indexOf(value) !== index)
  if (repeated !== undefined)
    throw new InvalidArgumentError(
      name,
      `${name} names ${repeated} twice; list each once, the default first.`,
    )
  return values
}

function origins(values: string[]): string[] {
  checkAllowedOrigins(values, 'ALLOWED_ORIGINS')
  return values
}

/**
 * Names a deployment may well write for a setting that has another: set, they would do nothing
 * without a word (the environment holds many other variables, so unknown names in general are
 * not refused).
 */
const misnamed: Readonly<Record<string, string>> = {
  BODY_IDLE_TIMEOUT_MS: 'BODY_STALL_TIMEOUT_MS',
  BODY_READ_TIMEOUT_MS: 'BODY_STALL_TIMEOUT_MS',
  MAX_BODY_IN_FLIGHT: 'MAX_BODY_BYTES_IN_FLIGHT',
  MAX_BODY_BYTES_INFLIGHT: 'MAX_BODY_BYTES_IN_FLIGHT',
  MAX_BODY_BYTES_PER_CLIENT: 'MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT',
  MAX_BODY_BYTES_IN_FLIGHT_PER_IP: 'MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT',
  CLIENT_IP_HEADER: 'CLIENT_ADDRESS_HEADER',
  HEADER_TIMEOUT_MS: 'HEADERS_TIMEOUT_MS',
}

export function settingsFromEnv(env: EnvValues): EnvSettings {
  for (const [name, meant] of Object.entries(misnamed))
    if (text(env, name) !== undefined)
      throw new InvalidArgumentError(
        name,
        `${name} is not a setting of this server: did you mean ${meant}? Rename it (docs/worker.md lists the settings).`,
      )
  const requireManifest = text(env, 'MODEL_REQUIRE_MANIFEST')
  if (requireManifest !== undefined && requireManifest !== 'true' && requireManifest !== 'false') {
    throw new InvalidArgumentError(
      'MODEL_REQUIRE_MANIFEST',
      `MODEL_REQUIRE_MANIFEST must be 'true' or 'false', got '${requireManifest}'.`,
    )
  }
  const behindCloudflare = text(env, 'BEHIND_CLOUDFLARE')
  if (behindCloudflare !== undefined && behindCloudflare !== 'true' && behindCloudflare !== 'false') {
    throw new InvalidArgumentError(
      'BEHIND_CLOUDFLARE',
      `BEHIND_CLOUDFLARE must be 'true' or 'false', got '${behindCloudflare.slice(0, 40)}'.`,
    )
  }
  const limits: Partial<Limits> = {
    maxBodyBytes: integer(env, 'MAX_BODY_BYTES', 1, maximumBodyBytes),
    bodyTimeoutMs: integer(env, 'BODY_TIMEOUT_MS', 1, maxTimerMs),
    bodyStallTimeoutMs: integer(env, 'BODY_STALL_TIMEOUT_MS', 1, maxTimerMs),
    maxBodyBytesInFlight: integer(env, 'MAX_BODY_BYTES_IN_FLIGHT', 1),
    maxBodyBytesInFlightPerClient: integer(env, 'MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT', 1),
    maxMessages: integer(env, 'MAX_MESSAGES', 1),
    maxPromptTokens: integer(env, 'MAX_PROMPT_TOKENS', 1),
    maxPromptCharacters: integer(env, 'MAX_PROMPT_CHARACTERS', 1),
    maxTokens: integer(env, 'MAX_TOKENS', 1),
    maxConcurrent: integer(env, 'MAX_CONCURRENT', 1, maximumConcurrent),
    maxQueue: integer(env, 'MAX_QUEUE', 0),
    queueTimeoutMs: integer(env, 'QUEUE_TIMEOUT_MS', 1, maxTimerMs),
    stallTimeoutMs: integer(env, 'STALL_TIMEOUT_MS', 1, maxTimerMs),
    readerStallTimeoutMs: integer(env, 'READER_STALL_TIMEOUT_MS', 1, maxTimerMs),
  }
  return {
    apiKeys: parseApiKeys(text(env, 'API_KEYS')),
    allowedOrigins: origins(list(env, 'ALLOWED_ORIGINS')),
    limits,
    rateLimitPerMinute: integer(env, 'RATE_LIMIT_PER_MINUTE', 0) || undefined,
    rateLimitPeriodSeconds: integer(env, 'RATE_LIMIT_PERIOD_SECONDS', 1) ?? 60,
    modelId: text(env, 'MODEL_ID'),
    modelAliases: list(env, 'MODEL_ALIASES'),
    modelDtypes: distinct(
      'MODEL_DTYPE',
      list(env, 'MODEL_DTYPE').map((dtype) => normalizeDtype(dtype, 'MODEL_DTYPE')),
    ),
    modelBackends: distinct('MODEL_BACKEND', list(env, 'MODEL_BACKEND')),
    contextLength: integer(env, 'MODEL_CONTEXT_LENGTH', 1),
    modelThreads: integer(env, 'MODEL_THREADS', 1, 64),
    requireManifest: requireManifest !== 'false',
    behindCloudflare: behindCloudflare === 'true',
    clientAddressHeader: text(env, 'CLIENT_ADDRESS_HEADER'),
    // At most 10 minutes: a longer grace outlives every orchestrator's stop timeout.
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 0, 600_000),
    headersTimeoutMs: integer(env, 'HEADERS_TIMEOUT_MS', 1, maxTimerMs),
  }
}
