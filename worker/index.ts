// The Cloudflare Workers entry (wrangler.toml `main`). It reads its settings from the Worker's
// env (vars, secrets, bindings), builds the app once per isolate, and loads the model on the first
// request that needs it, from R2, the static assets or a URL, verified against manifest.json.
// ONNX Runtime runs as WebAssembly on one thread (wasm/workerd.ts has the recipe).
//
// This module imports ORT's .wasm through wrangler's CompiledWasm rule, so it only loads in a
// Workers bundle; Node code uses worker/app.ts and worker/node.ts.
import type { ExecutionContext } from 'hono'
import { preferredDtypes } from '../client-runtime/dtype.ts'
import { OndeviceError } from '../core/errors.ts'
import { modelIdFromLocation } from '../core/model-id.ts'
import { engineModuleForWorkerd } from '../wasm/engine/workerd.ts'
import { loadOrtWebForWorkerd } from '../wasm/workerd.ts'
import { createApp, type OndeviceApp } from './app.ts'
import type { RuntimeManifest } from './container/choose-runtime.ts'
import { type ContainerNamespace, durableObjectGateway } from './container/durable-object-gateway.ts'
import { createContainerForwarder } from './container/forward.ts'
import { urlGateway } from './container/gateway.ts'
import { createRuntimeRouter, type RuntimeRouter } from './container/runtime-router.ts'
import { containerSettingsFromEnv } from './container/settings.ts'
import { loadEdgeModel } from './edge-model.ts'
import { type EnvSettings, type EnvValues, settingsFromEnv } from './env-config.ts'
import { toHttpError } from './http-errors.ts'
import { createModelHost, formatsFrom } from './model-host.ts'
import { defaultIsolateBodyBytesInFlight, defaultLimits, resolveLimits } from './options.ts'
import {
  assetsPackageReader,
  type FetcherLike,
  type PackageReader,
  type R2BucketLike,
  r2PackageReader,
  urlPackageReader,
  verifyPackage,
} from './package-sources.ts'
import {
  createMemoryRateLimiter,
  type RateLimiter,
  type WorkersRateLimitBinding,
  workersRateLimiter,
} from './rate-limit.ts'

// @cloudflare/containers routes a container's outbound requests (the R2 package handler, the
// allowed hosts) through this entrypoint (ctx.exports); without it every container start fails
// with "ctx.exports is undefined" (found by running the Durable Object under wrangler dev).
export { ContainerProxy } from '@cloudflare/containers'
export { createApp, type OndeviceApp } from './app.ts'
export { OndeviceContainer } from './container/container-class.ts'
export { createModelHost, type HostedModel, type ModelHost } from './model-host.ts'
export type { AppOptions, Limits } from './options.ts'

/** The bindings and vars this Worker reads by name (all optional; wrangler.toml documents each). */
export interface WorkerBindings {
  /** R2 bucket holding the package under MODEL_PREFIX. */
  readonly MODEL_BUCKET?: R2BucketLike
  /** Static assets (the `[assets]` binding) holding the package under MODEL_PREFIX. */
  readonly ASSETS?: FetcherLike
  /** Workers rate-limiting binding (`[[ratelimits]]`). */
  readonly RATE_LIMITER?: WorkersRateLimitBinding
  /** 'r2' | 'assets' | 'url'. Default: url when MODEL_URL is set, else r2 when bound, else assets. */
  readonly MODEL_SOURCE?: string
  readonly MODEL_PREFIX?: string
  readonly MODEL_URL?: string
  /** The Container Durable Object binding ([[containers]] + durable_objects in wrangler.toml). */
  readonly ONDEVICE_CONTAINER?: ContainerNamespace
}

/**
 * The env the entry takes: any object, its bindings above checked by type. No index signature,
 * since `wrangler types` writes `Env` as an interface, which has none, so an entry of the user's
 * own passing its `Env` on (`satisfies ExportedHandler<Env>`) was refused ("Index signature for
 * type 'string' is missing in type 'Env'"); `& object` so that an `Env` naming none of the
 * bindings (only the other vars) is no "weak type" mismatch. The other vars are read by name.
 */
export type WorkerEnv = WorkerBindings & object

type Source = {
  readonly kind: 'r2' | 'assets' | 'url'
  readonly reader: PackageReader
  readonly where: string
}

function resolveSource(env: WorkerEnv): Source {
  const prefix = typeof env.MODEL_PREFIX === 'string' ? env.MODEL_PREFIX : 'model/'
  const url = typeof env.MODEL_URL === 'string' && env.MODEL_URL !== '' ? env.MODEL_URL : undefined
  const kind = env.MODEL_SOURCE ?? (url ? 'url' : env.MODEL_BUCKET ? 'r2' : env.ASSETS ? 'assets' : undefined)
  if (kind === 'url') {
    if (!url)
      throw new OndeviceError('invalid_argument', 'MODEL_SOURCE is "url" but MODEL_URL is not set.', {
        param: 'MODEL_URL',
      })
    return { kind, reader: urlPackageReader(url), where: url }
  }
  if (kind === 'r2') {
    if (!env.MODEL_BUCKET)
      throw new OndeviceError(
        'invalid_argument',
        'MODEL_SOURCE is "r2" but no MODEL_BUCKET R2 binding is configured in wrangler.toml.',
        { param: 'MODEL_BUCKET' },
      )
    return { kind, reader: r2PackageReader(env.MODEL_BUCKET, prefix), where: `r2:${prefix}` }
  }
  if (kind === 'assets') {
    if (!env.ASSETS)
      throw new OndeviceError(
        'invalid_argument',
        'MODEL_SOURCE is "assets" but no ASSETS binding is configured in wrangler.toml.',
        { param: 'ASSETS' },
      )
    return { kind, reader: assetsPackageReader(env.ASSETS, prefix), where: `assets:/${prefix}` }
  }
  throw new OndeviceError(
    'invalid_argument',
    kind === undefined
      ? 'No model source: set MODEL_URL, or bind an R2 bucket as MODEL_BUCKET, or deploy the package as static assets (ASSETS).'
      : `MODEL_SOURCE must be 'r2', 'assets' or 'url', got '${String(kind)}'.`,
    { param: 'MODEL_SOURCE' },
  )
}

/** Builds the app from a Worker env; exported so tests and custom entries can reuse it. */
export function createWorkerApp(env: WorkerEnv): OndeviceApp {
  const settings = isolateSettings(settingsFromEnv(env as EnvValues))
  const containers = containerSettingsFromEnv(env as EnvValues)
  // A container-only Worker needs no package of its own: the container loads it.
  const source: Source =
    containers.runtime === 'container' && !hasSource(env)
      ? { kind: 'url', reader: noPackageReader, where: 'container' }
      : resolveSource(env)
  const modelId =
    settings.modelId ??
    (source.where === 'container' ? undefined : modelIdFromLocation(source.where)) ??
    'ondevice-model'
  // MODEL_BACKEND is the edge's, shared with its containers (which run `ondevice serve`): an
  // isolate serves the WebAssembly ones listed, ondevice's engine ('wasm') and onnxruntime-web
  // ('ort-wasm'), and leaves 'native' to the container; a request naming it here is refused with
  // the list of what this isolate serves.
  for (const backend of settings.modelBackends) {
    if (backend !== 'wasm' && backend !== 'ort-wasm' && backend !== 'native')
      throw new OndeviceError(
        'invalid_argument',
        `MODEL_BACKEND lists '${backend.slice(0, 40)}': use wasm (ondevice's engine), ort-wasm (onnxruntime-web) or native (onnxruntime-node, containers only), comma-separated, the default first.`,
        { param: 'MODEL_BACKEND' },
      )
  }
  const isolateBackends = settings.modelBackends.filter((backend) => backend !== 'native')
  // MODEL_THREADS is for the containers too: workerd runs the engine on one thread. Said once, at
  // the isolate's first load, so the setting is not silently without effect here.
  let threadsNoted = settings.modelThreads === undefined || settings.modelThreads === 1
  const modelHost = createModelHost({
    modelId,
    formats: formatsFrom(settings.modelDtypes, isolateBackends),
    load: async (format) => {
      if (!threadsNoted) {
        threadsNoted = true
        console.warn(
          JSON.stringify({
            level: 'warn',
            message: `MODEL_THREADS=${settings.modelThreads} applies where the model runs in Node (the containers); this isolate runs it on one thread.`,
          }),
        )
      }
      const verified = await verifyPackage(source.reader, {
        source: source.where,
        requireManifest: settings.requireManifest,
      })
      for (const warning of verified.warnings)
        console.warn(JSON.stringify({ level: 'warn', message: warning }))
      const { ort } = loadOrtWebForWorkerd()
      return loadEdgeModel({
        ort,
        reader: verified.reader,
        modelId,
        backend: format.backend === 'ort-wasm' ? 'ort-wasm' : 'wasm',
        ...(format.backend === 'ort-wasm' ? {} : { engine: engineModuleForWorkerd() }),
        dtype: format.dtype,
        availableDtypes: verified.manifest?.dtypes,
        manifestFiles: verified.manifest?.files,
        contextLength: settings.contextLength,
      })
    },
  })
  let rateLimiter: RateLimiter | undefined
  if (env.RATE_LIMITER) {
    // If the binding fails, an in-isolate bucket at the same rate answers (RATE_LIMIT_PER_MINUTE,
    // else the binding's period as if its limit were 60 a minute).
    const fallback = createMemoryRateLimiter({ limit: settings.rateLimitPerMinute ?? 60, periodSeconds: 60 })
    rateLimiter = workersRateLimiter(env.RATE_LIMITER, settings.rateLimitPeriodSeconds, fallback, (error) =>
      console.warn(
        JSON.stringify({
          level: 'warn',
          message: 'the RATE_LIMITER binding failed; the in-isolate limit answered',
          error: String(error),
        }),
      ),
    )
  } else if (settings.rateLimitPerMinute)
    rateLimiter = createMemoryRateLimiter({ limit: settings.rateLimitPerMinute, periodSeconds: 60 })
  return createApp({
    modelHost,
    apiKeys: settings.apiKeys,
    allowedOrigins: settings.allowedOrigins,
    limits: settings.limits,
    modelAliases: settings.modelAliases,
    // A Worker's requests all come through Cloudflare, which sets cf-connecting-ip itself.
    behindCloudflare: true,
    ...(rateLimiter ? { rateLimiter } : {}),
    ...(containers.runtime === 'isolate'
      ? {}
      : routed(containerRouter(env, settings, containers, source, modelId))),
  })
}

/**
 * The settings as an isolate takes them: unset, MAX_BODY_BYTES_IN_FLIGHT is 8 MiB here, not
 * Node's 64 MiB (defaultIsolateBodyBytesInFlight says why), or MAX_BODY_BYTES when that is larger.
 */
function isolateSettings(settings: EnvSettings): EnvSettings {
  if (settings.limits.maxBodyBytesInFlight !== undefined) return settings
  const maxBodyBytes = settings.limits.maxBodyBytes ?? defaultLimits.maxBodyBytes
  return {
    ...settings,
    limits: {
      ...settings.limits,
      maxBodyBytesInFlight: Math.max(defaultIsolateBodyBytesInFlight, maxBodyBytes),
    },
  }
}

function routed(router: RuntimeRouter) {
  return { forwardChatCompletion: router.forward, forwardedHealth: router.health }
}

function hasSource(env: WorkerEnv): boolean {
  return (
    (typeof env.MODEL_URL === 'string' && env.MODEL_URL !== '') ||
    env.MODEL_BUCKET !== undefined ||
    env.ASSETS !== undefined
  )
}

const noPackageReader: PackageReader = {
  readText: () =>
    Promise.reject(new Error('EDGE_RUNTIME is "container": the package is read by the container.')),
  readBytes: () =>
    Promise.reject(new Error('EDGE_RUNTIME is "container": the package is read by the container.')),
}

/** EDGE_RUNTIME "auto" / "container": the router that forwards chats to a container (worker/container/). */
function containerRouter(
  env: WorkerEnv,
  settings: ReturnType<typeof settingsFromEnv>,
  containers: ReturnType<typeof containerSettingsFromEnv>,
  source: Source,
  modelId: string,
) {
  const gateway =
    containers.urls.length > 0
      ? urlGateway(containers.urls)
      : env.ONDEVICE_CONTAINER
        ? durableObjectGateway(env.ONDEVICE_CONTAINER)
        : undefined
  // Without the secret the container would run without a key: refuse to forward (the isolate
  // still answers what fits it), saying how to set it.
  const missingSecret =
    gateway !== undefined && containers.secret === undefined && containers.urls.length === 0
  return createRuntimeRouter({
    runtime: containers.runtime,
    ...(gateway
      ? {
          instancesHealth: () =>
            Promise.all(Array.from({ length: containers.instances }, (_, index) => gateway.health(index))),
        }
      : {}),
    isolateMemoryBytes: containers.isolateMemoryBytes,
    contextLength: settings.contextLength,
    backends: settings.modelBackends.filter((backend) => backend !== 'native'),
    // R2 serves ranges; static assets may not (one chunk at a time then); a URL's server may
    // ignore Range, and the engine then reads its files whole.
    streaming: source.kind === 'r2' ? 'ranges' : source.kind === 'assets' ? 'chunks' : 'whole',
    readManifest: async () => {
      const exists = source.reader.exists ? await source.reader.exists('manifest.json') : true
      if (!exists) return undefined
      return JSON.parse(await source.reader.readText('manifest.json')) as RuntimeManifest
    },
    // Every format the isolate would hold (MODEL_DTYPE's list, each loaded on first use and kept).
    dtypesFor: (manifest) =>
      settings.modelDtypes.length > 0
        ? settings.modelDtypes
        : [preferredDtypes('wasm').find((dtype) => manifest?.dtypes?.includes(dtype)) ?? 'q8'],
    forward: missingSecret
      ? () =>
          Promise.reject(
            new OndeviceError(
              'edge_unavailable',
              'This Worker forwards to a container but has no CONTAINER_SECRET, the key only it presents to its containers: `openssl rand -hex 32 | npx wrangler secret put CONTAINER_SECRET`.',
            ),
          )
      : gateway
        ? createContainerForwarder({
            gateway,
            secret: containers.secret,
            instances: containers.instances,
            startTimeoutMs: containers.startTimeoutMs,
            limits: resolveLimits(settings.limits),
            modelIds: new Set([modelId, ...settings.modelAliases]),
          })
        : undefined,
  })
}

// One app (and so one model) per isolate. The env of an isolate does not change between
// requests, so the first one builds it.
let built: { app: OndeviceApp } | { error: unknown } | undefined

export default {
  fetch(request: Request, env: WorkerEnv, context: ExecutionContext): Response | Promise<Response> {
    if (!built) {
      try {
        built = { app: createWorkerApp(env) }
      } catch (error) {
        built = { error }
      }
    }
    if ('error' in built) {
      // A configuration mistake: say so in OpenAI's shape (503: the operator must fix it).
      const cause = built.error
      const reason = cause instanceof Error ? cause.message : String(cause)
      const mapped = toHttpError(
        new OndeviceError('edge_unavailable', `This Worker is misconfigured: ${reason}`),
        'config',
      )
      return Response.json(mapped.body, { status: 503, headers: mapped.headers })
    }
    return built.app.fetch(request, env, context)
  },
}
