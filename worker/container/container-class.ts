// The Container Durable Object (wrangler.toml [[containers]] class_name = "OndeviceContainer"):
// one instance runs one `ondevice serve` container from the repository's Dockerfile. What it is
// given:
//   - its only API key is the Worker's CONTAINER_SECRET, so it answers nobody but this Worker;
//   - the same limits as the Worker (MAX_TOKENS, MAX_CONCURRENT = slots per instance, ...);
//   - no internet: with MODEL_SOURCE = "r2" the package is read from the Worker's R2 binding
//     through an outbound handler (the container fetches http://model.ondevice.internal/...,
//     which never leaves Cloudflare); with "url", only MODEL_URL's host is reachable.
import { Container } from '@cloudflare/containers'

/** The slice of an R2 bucket binding the package handler needs. */
export interface R2ObjectsLike {
  get(key: string): Promise<{ readonly body: ReadableStream<Uint8Array>; readonly size: number } | null>
}

/** The Worker env the container class reads (wrangler.toml documents each). */
export interface ContainerEnv {
  readonly CONTAINER_SECRET?: string
  readonly MODEL_BUCKET?: R2ObjectsLike
  readonly MODEL_SOURCE?: string
  readonly MODEL_PREFIX?: string
  readonly MODEL_URL?: string
  readonly MODEL_ID?: string
  readonly MODEL_DTYPE?: string
  readonly MODEL_BACKEND?: string
  readonly CONTAINER_SLEEP_AFTER?: string
  readonly [name: string]: unknown
}

/** The host the container reaches the R2 package at; only the outbound handler answers it. */
export const packageHost = 'model.ondevice.internal'

/** Worker vars passed on to `ondevice serve` unchanged (same names, same meaning). */
const passedVariables = [
  'MODEL_ID',
  'MODEL_ALIASES',
  'MODEL_DTYPE',
  'MODEL_BACKEND',
  'MODEL_CONTEXT_LENGTH',
  'MODEL_THREADS',
  'MAX_BODY_BYTES',
  'MAX_MESSAGES',
  'MAX_PROMPT_TOKENS',
  'MAX_TOKENS',
  'QUEUE_TIMEOUT_MS',
  'STALL_TIMEOUT_MS',
] as const

/** The container's environment: the secret as its only key, the Worker's limits, slots per instance. */
export function containerEnvironment(env: ContainerEnv): Record<string, string> {
  // BEHIND_CLOUDFLARE: only the Worker reaches the container, and it passes each client's address
  // as cf-connecting-ip (forward.ts), which the container's share per client counts by.
  const variables: Record<string, string> = { ORT_DISABLE_TELEMETRY: '1', BEHIND_CLOUDFLARE: 'true' }
  if (typeof env.CONTAINER_SECRET === 'string' && env.CONTAINER_SECRET !== '') {
    variables['API_KEYS'] = env.CONTAINER_SECRET
  }
  for (const name of passedVariables) {
    const value = env[name]
    if (typeof value === 'string' && value !== '') variables[name] = value
  }
  // Slots and queue per instance have their own names: the isolate's MAX_CONCURRENT is 1.
  for (const [from, to] of [
    ['CONTAINER_MAX_CONCURRENT', 'MAX_CONCURRENT'],
    ['CONTAINER_MAX_QUEUE', 'MAX_QUEUE'],
  ] as const) {
    const value = env[from]
    if (typeof value === 'string' && value !== '') variables[to] = value
  }
  return variables
}

/** Where `ondevice serve` in the container loads the package from. */
export function containerModelArgument(env: ContainerEnv): string {
  const prefix = typeof env.MODEL_PREFIX === 'string' ? env.MODEL_PREFIX : 'model/'
  if (env.MODEL_SOURCE === 'url' && typeof env.MODEL_URL === 'string') return env.MODEL_URL
  if (env.MODEL_SOURCE === 'r2' || (env.MODEL_SOURCE === undefined && env.MODEL_BUCKET)) {
    return `http://${packageHost}/${prefix.replace(/^\/+/, '')}`
  }
  // The image's default: a package built into it or mounted at /model.
  return '/model'
}

/** Serves GET/HEAD of the package's files from R2 to the container (read-only, nothing else). */
export async function servePackageFromR2(request: Request, env: ContainerEnv): Promise<Response> {
  if (request.method !== 'GET' && request.method !== 'HEAD') return new Response(null, { status: 405 })
  if (!env.MODEL_BUCKET) return new Response('No MODEL_BUCKET binding.', { status: 503 })
  const key = decodeURIComponent(new URL(request.url).pathname.replace(/^\/+/, ''))
  const prefix = typeof env.MODEL_PREFIX === 'string' ? env.MODEL_PREFIX.replace(/^\/+/, '') : 'model/'
  if (!key.startsWith(prefix) || key.split('/').includes('..')) return new Response(null, { status: 404 })
  const object = await env.MODEL_BUCKET.get(key)
  if (object === null) return new Response(null, { status: 404 })
  return new Response(request.method === 'HEAD' ? null : object.body, {
    headers: { 'content-length': String(object.size) },
  })
}

export class OndeviceContainer extends Container<ContainerEnv> {
  override defaultPort = 8787
  override sleepAfter: string | number = '10m'
  override enableInternet = false

  static {
    OndeviceContainer.outboundByHost = { [packageHost]: servePackageFromR2 }
  }

  constructor(context: ConstructorParameters<typeof Container<ContainerEnv>>[0], env: ContainerEnv) {
    super(context, env)
    this.envVars = containerEnvironment(env)
    const model = containerModelArgument(env)
    // --bind-after-load: the library's readiness check (startAndWaitForPorts, and the 'healthy'
    // state /healthz reads) is any answer on the port, so the port opens once the model is loaded
    // and a cold start's requests wait for it (CONTAINER_START_TIMEOUT_MS) instead of a 503.
    this.entrypoint = [
      'node',
      'cli/bin.js',
      'serve',
      '--host',
      '0.0.0.0',
      '--port',
      '8787',
      '--model',
      model,
      '--bind-after-load',
    ]
    if (env.MODEL_SOURCE === 'url' && typeof env.MODEL_URL === 'string') {
      this.allowedHosts = [new URL(env.MODEL_URL).hostname]
    }
    if (typeof env.CONTAINER_SLEEP_AFTER === 'string' && env.CONTAINER_SLEEP_AFTER !== '') {
      this.sleepAfter = env.CONTAINER_SLEEP_AFTER
    }
  }

  override onError(error: unknown): never {
    // Never the env or the secret: only what failed.
    console.error(
      JSON.stringify({
        level: 'error',
        message: 'container error',
        error: error instanceof Error ? error.message : String(error),
      }),
    )
    throw error
  }
}
