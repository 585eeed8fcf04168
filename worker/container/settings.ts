// The Worker's container settings, from its env (wrangler.toml [vars] and secrets). Every bad
// value is an error naming the variable and the fix, raised before the first request runs.
import { InvalidArgumentError } from '../../core/errors.ts'
import { isolateMemoryBytes } from './choose-runtime.ts'

/** Where the Worker answers: in its isolate, in a container, or decided from the package's size. */
export type EdgeRuntime = 'auto' | 'isolate' | 'container'

export interface ContainerSettings {
  readonly runtime: EdgeRuntime
  /**
   * The isolate's memory (ISOLATE_MEMORY_BYTES, default Cloudflare's 128 MB) that EDGE_RUNTIME
   * "auto" compares a package's whole isolate estimate with (choose-runtime.ts).
   */
  readonly isolateMemoryBytes: number
  /**
   * The secret the Worker presents to its containers (`Authorization: Bearer`); the containers run
   * with it as their only API key, so nothing but this Worker can call them.
   */
  readonly secret: string | undefined
  /** Instances new conversations spread over (at most the [[containers]] max_instances). */
  readonly instances: number
  /**
   * How long a request waits for a starting container before 503 + Retry-After; a request with
   * `Prefer: wait=N` (the SDK sends one) waits at most N s, then gets 503 edge_starting.
   */
  readonly startTimeoutMs: number
  /**
   * Containers started by hand on this machine (`ondevice edge --runtime container`, tests), one
   * URL per instance; unset on Cloudflare, where the ONDEVICE_CONTAINER binding starts them.
   */
  readonly urls: readonly string[]
}

type EnvValues = Readonly<Record<string, unknown>>

function text(env: EnvValues, name: string): string | undefined {
  const value = env[name]
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value === 'number') return String(value)
  if (typeof value !== 'string')
    throw new InvalidArgumentError(name, `${name} must be a string (a wrangler var or secret).`)
  return value.trim()
}

function integer(env: EnvValues, name: string, minimum: number, fallback: number): number {
  const raw = text(env, name)
  if (raw === undefined) return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < minimum) {
    throw new InvalidArgumentError(name, `${name} must be an integer >= ${minimum}, got '${raw}'.`)
  }
  return value
}

export function containerSettingsFromEnv(env: EnvValues): ContainerSettings {
  const runtime = text(env, 'EDGE_RUNTIME') ?? 'auto'
  if (runtime !== 'auto' && runtime !== 'isolate' && runtime !== 'container') {
    throw new InvalidArgumentError(
      'EDGE_RUNTIME',
      `EDGE_RUNTIME must be 'auto', 'isolate' or 'container', got '${runtime}'.`,
    )
  }
  const secret = text(env, 'CONTAINER_SECRET')
  if (secret !== undefined && secret.length < 32) {
    throw new InvalidArgumentError(
      'CONTAINER_SECRET',
      'CONTAINER_SECRET must be at least 32 characters: `openssl rand -hex 32 | npx wrangler secret put CONTAINER_SECRET`.',
    )
  }
  const urls = (text(env, 'CONTAINER_URLS') ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
  for (const url of urls) {
    let parsed: URL | undefined
    try {
      parsed = new URL(url)
    } catch {
      parsed = undefined
    }
    if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      throw new InvalidArgumentError(
        'CONTAINER_URLS',
        `CONTAINER_URLS takes comma-separated http(s) URLs of running \`ondevice serve\` containers, got '${url}'.`,
      )
    }
  }
  if (text(env, 'ISOLATE_MODEL_BUDGET_BYTES') !== undefined) {
    // It bounded the model alone; the isolate's whole memory is compared now. Never ignored silently.
    throw new InvalidArgumentError(
      'ISOLATE_MODEL_BUDGET_BYTES',
      'ISOLATE_MODEL_BUDGET_BYTES is replaced by ISOLATE_MEMORY_BYTES: the isolate\'s whole memory (default 128000000), which EDGE_RUNTIME "auto" now compares with the tokenizer, the model and the Worker together. Remove it, or set ISOLATE_MEMORY_BYTES.',
    )
  }
  return {
    runtime,
    isolateMemoryBytes: integer(env, 'ISOLATE_MEMORY_BYTES', 1, isolateMemoryBytes),
    secret,
    instances: urls.length > 0 ? urls.length : integer(env, 'CONTAINER_INSTANCES', 1, 1),
    startTimeoutMs: integer(env, 'CONTAINER_START_TIMEOUT_MS', 1, 60_000),
    urls,
  }
}
