// The model behind the API, loaded lazily once per isolate (or process). The first request
// starts the load; requests that arrive while it runs wait on the same promise, so a burst of
// cold requests costs one load. A failed load is remembered for a short while (503 with
// Retry-After) and then tried again, so a transient failure (R2 hiccup) heals by itself.
import { InvalidArgumentError, OndeviceError } from '../core/errors.ts'
import type { ModelSession } from '../core/model-session.ts'
import { prepareConstrainedOutput } from '../core/structured/index.ts'
import type { Tokenizer } from '../core/tokenizer.ts'

export interface HostedModelInfo {
  /** The id clients put in `model` and that `/v1/models` lists. */
  readonly modelId: string
  readonly backend: string
  readonly dtype: string
  readonly contextLength: number
  /**
   * core's packageFingerprint of the weights it runs (`x-ondevice-package`): a device hands an
   * answer over only to an edge that runs the same bytes. Unset: a package without a manifest.
   */
  readonly packageFingerprint?: string
}

/** What a loaded model gives the app. */
export interface HostedModel {
  readonly info: HostedModelInfo
  readonly tokenizer: Tokenizer
  /**
   * Makes one more session over the loaded weights. The app keeps at most `maxConcurrent` of them
   * (one per concurrent generation) and reuses idle ones, so their caches serve multi-turn prompts.
   */
  createSession(): Promise<ModelSession>
  dispose?(): Promise<void>
}

export type ModelHostStatus =
  | { readonly state: 'idle' }
  | {
      readonly state: 'loading'
      /**
       * The server's own start-up load (`preload`): requests are refused meanwhile (503 with
       * Retry-After) rather than held for the whole load. Absent: a load a request started, which
       * requests wait for (a Worker isolate's first request).
       */
      readonly startup?: true
    }
  | { readonly state: 'ready'; readonly info: HostedModelInfo; readonly loadMs: number }
  | { readonly state: 'failed'; readonly error: OndeviceError }

/**
 * A weight format and the backend that runs it, as a host is configured to serve it. An undefined
 * field is decided when the format loads (the backend's fastest dtype the package has; the host's
 * default backend).
 */
export interface ModelFormat {
  readonly dtype?: string | undefined
  readonly backend?: string | undefined
}

/** What a request asks for (core/protocol's `ondevice_format`). */
export interface WantedFormat extends ModelFormat {
  /** Answer in the default format rather than refuse when the wanted one cannot be served. */
  readonly fallback?: boolean | undefined
}

/** The model a request is answered with, and why it is not the wanted format when it is not. */
export interface ModelSelection {
  readonly model: HostedModel
  /** Set when the wanted format could not be served and the request allowed a fallback. */
  readonly fallback?: string
}

/** One configured format and where its load stands. */
export interface FormatStatus {
  readonly format: ModelFormat
  readonly status: ModelHostStatus
}

export interface ModelHost {
  /** The model id, known before loading (from configuration), so unknown ids are refused cheaply. */
  readonly modelId: string
  /** The default format (the first configured). */
  load(): Promise<HostedModel>
  /**
   * Loads the default format as the server starts, having bound its port first: until it is
   * loaded, `load` and `select` refuse with a retryable `edge_starting` (503 + Retry-After) and
   * `status` says `startup`, so clients and health checks get an answer, never a held request.
   */
  preload?(): Promise<HostedModel>
  /** The default format's state. */
  status(): ModelHostStatus
  /**
   * The model in the format a request names (loading it on first use), or, when it cannot be
   * served and `wanted.fallback` is set, the default with the reason. Throws `unsupported`
   * (param `ondevice_format`) otherwise. Hosts without it serve one format (see selectModel).
   */
  select?(wanted: WantedFormat): Promise<ModelSelection>
  /** Every configured format, the default first. */
  formats?(): readonly FormatStatus[]
  /**
   * Frees every loaded format (its sessions and weights), once loads in flight have finished;
   * a later request loads again. For a server that stops serving.
   */
  dispose?(): Promise<void>
}

export interface ModelHostOptions {
  readonly modelId: string
  /** Loads one configured format (the argument is one entry of `formats`; `{}` without them). */
  readonly load: (format: ModelFormat) => Promise<HostedModel>
  /**
   * The formats this host serves, the default first; each other one loads on the first request
   * that names it and stays loaded (size the host's memory for all of them). Default: one,
   * decided by `load`.
   */
  readonly formats?: readonly ModelFormat[]
  /**
   * Whether one more format may load next to those already loaded (the default always loads):
   * undefined to go ahead, else why not, e.g. the host's memory budget. The request that named the
   * format is then refused or answered in a loaded one (`fallback`), never the process killed.
   */
  readonly admit?: (format: ModelFormat, loaded: readonly ModelFormat[]) => Promise<string | undefined>
  /** How long a failed load is remembered before the next request tries again. Default 30 s. */
  readonly retryAfterMs?: number
  readonly now?: () => number
}

/**
 * This server answers chat completions only: a model whose tokenizer cannot build a chat prompt
 * (no chat template, or one that does not render) would report healthy and fail every request.
 * Such a load fails instead, so /healthz says so (503) and every request says why.
 */
function checkChatPrompt(model: HostedModel): void {
  try {
    model.tokenizer.applyChatTemplate([{ role: 'user', content: 'Hi' }])
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new Error(
      `The package's tokenizer cannot build a chat prompt (${reason}) and this server answers chat completions only. Use a package whose tokenizer_config.json has a chat_template (or that has chat_template.jinja), and check that every file manifest.json lists was uploaded.`,
      { cause: error },
    )
  }
}

/** Retry-After while the server's start-up load runs: short, a load takes seconds to minutes. */
export const startupRetryAfterSeconds = 5

/** `q4 on native`, with what is decided at load said so. */
export function describeFormat(format: ModelFormat): string {
  return `${format.dtype ?? 'its default dtype'} on ${format.backend ?? 'its default backend'}`
}

/** Whether a loaded (or configured) format is the wanted one; unknown fields may still be. */
function fits(have: ModelFormat, wanted: ModelFormat): boolean {
  const same = (mine: string | undefined, theirs: string | undefined) =>
    theirs === undefined || mine === undefined || mine === theirs
  return same(have.dtype, wanted.dtype) && same(have.backend, wanted.backend)
}

function isExactly(info: HostedModelInfo, wanted: ModelFormat): boolean {
  return (
    (wanted.dtype === undefined || info.dtype === wanted.dtype) &&
    (wanted.backend === undefined || info.backend === wanted.backend)
  )
}

/**
 * A host with one model (no `select`): it serves the wanted format when its model is in it. The
 * app calls this for every request that names a format, whatever the host.
 */
export async function selectModel(
  host: ModelHost,
  wanted: WantedFormat | undefined,
): Promise<ModelSelection> {
  if (wanted === undefined) return { model: await host.load() }
  if (host.select) return host.select(wanted)
  const model = await host.load()
  if (isExactly(model.info, wanted)) return { model }
  return refuseOrFallBack(wanted, [model.info], [], model)
}

function refuseOrFallBack(
  wanted: WantedFormat,
  served: readonly ModelFormat[],
  problems: readonly string[],
  fallback: HostedModel | (() => Promise<HostedModel>),
): Promise<ModelSelection> | ModelSelection {
  const asked = describeFormat(wanted)
    .replace('its default dtype', 'any dtype')
    .replace('its default backend', 'any backend')
  const reason = `this server does not serve ${asked} (it serves ${served.map(describeFormat).join(', ')}${problems.length > 0 ? `; ${problems.join('; ')}` : ''})`
  if (wanted.fallback !== true) {
    throw new OndeviceError(
      'unsupported',
      `ondevice_format: ${reason}. Ask for one of those, leave ondevice_format out, or send "fallback": true to be answered in ${describeFormat(served[0] ?? {})} (another quantized model: a handoff then does not continue bit-exactly).`,
      { param: 'ondevice_format' },
    )
  }
  const answer = (model: HostedModel): ModelSelection => ({
    model,
    fallback: `Asked for ${asked}; answered in ${model.info.dtype} on ${model.info.backend}: ${reason}.`,
  })
  return typeof fallback === 'function' ? fallback().then(answer) : answer(fallback)
}

/**
 * The formats to serve from the configured dtypes and backends (MODEL_DTYPE, MODEL_BACKEND,
 * `serve --dtype --backend`): every backend with every dtype, the first of each the default.
 * An empty list leaves that field to the loader (the backend's fastest dtype, the default backend).
 */
export function formatsFrom(dtypes: readonly string[], backends: readonly string[]): ModelFormat[] {
  const dtypeList = dtypes.length > 0 ? dtypes : [undefined]
  const backendList = backends.length > 0 ? backends : [undefined]
  return backendList.flatMap((backend) => dtypeList.map((dtype) => ({ dtype, backend })))
}

/** Wraps a loader so that each format loads at most once at a time and its result is kept. */
/** A platform error's message (Node's fs: "EACCES: permission denied, open '...'") ends bare. */
function sentence(text: string): string {
  const trimmed = text.trim()
  return /[.!?)]$/.test(trimmed) ? trimmed : `${trimmed}.`
}

/**
 * A package file this process may not read is the most common mistake with a mounted folder (the
 * container runs as user `node`, uid 1000, and a copy made by root is often 0600): say so.
 */
function permissionHint(cause: unknown): string {
  const code = (cause as { code?: unknown } | null)?.code
  if (code !== 'EACCES' && code !== 'EPERM') return ''
  const uid = (globalThis as { process?: { getuid?: () => number } }).process?.getuid?.()
  const who = uid === undefined ? 'this server' : `this server (user id ${uid})`
  return ` Make every file of the package readable by ${who}, e.g. \`chmod -R a+rX\` on the package folder.`
}

export function createModelHost(
  options: ModelHostOptions,
): ModelHost & Required<Pick<ModelHost, 'preload' | 'select' | 'formats' | 'dispose'>> {
  if (typeof options.modelId !== 'string' || options.modelId.length === 0) {
    throw new TypeError(
      'createModelHost: `modelId` must be a non-empty string (the id clients send as `model`).',
    )
  }
  const configured = options.formats ?? [{}]
  if (configured.length === 0) {
    throw new TypeError('createModelHost: `formats` must list at least one format (the default first).')
  }
  const retryAfterMs = options.retryAfterMs ?? 30_000
  const now = options.now ?? (() => Date.now())

  interface Entry {
    readonly format: ModelFormat
    loading: Promise<HostedModel> | undefined
    status: ModelHostStatus
    failedAt: number
  }
  const entries: Entry[] = configured.map((format) => ({
    format,
    loading: undefined,
    status: { state: 'idle' },
    failedAt: 0,
  }))
  const defaultEntry = entries[0] as Entry

  const start = (entry: Entry): Promise<HostedModel> => {
    const startedAt = now()
    entry.status = { state: 'loading' }
    return options
      .load(entry.format)
      .then(async (model) => {
        try {
          checkChatPrompt(model)
          // Here, once, not inside the first JSON or tool-call request: on a 151k vocabulary that
          // is a quarter second of synchronous work, holding every other request and health check.
          prepareConstrainedOutput(model.tokenizer)
        } catch (error) {
          await model.dispose?.().catch(() => {})
          throw error
        }
        return model
      })
      .then(
        (model) => {
          entry.status = { state: 'ready', info: model.info, loadMs: now() - startedAt }
          return model
        },
        (cause: unknown) => {
          entry.failedAt = now()
          const reason = sentence(cause instanceof Error ? cause.message : String(cause))
          const which = entries.length > 1 ? ` in ${describeFormat(entry.format)}` : ''
          const error = new OndeviceError(
            'edge_unavailable',
            `The model could not be loaded${which} on this server: ${reason}${permissionHint(cause)} ${operatorFix(cause)}`,
            { isRetryable: true, retryAfterSeconds: Math.ceil(retryAfterMs / 1000), cause },
          )
          entry.status = { state: 'failed', error }
          throw error
        },
      )
  }
  const loadEntry = (entry: Entry): Promise<HostedModel> => {
    if (entry.status.state === 'failed' && now() - entry.failedAt >= retryAfterMs) entry.loading = undefined
    entry.loading ??= start(entry)
    return entry.loading
  }
  // What an entry is known to be: its loaded model's info, else its configuration.
  const known = (entry: Entry): ModelFormat =>
    entry.status.state === 'ready'
      ? { dtype: entry.status.info.dtype, backend: entry.status.info.backend }
      : entry.format

  // Admissions run one at a time and a load starts inside its turn, so two requests naming two
  // new formats at once cannot both fit the same room.
  let admissions: Promise<unknown> = Promise.resolve()
  const admitted = (entry: Entry): Promise<string | undefined> => {
    const admit = options.admit
    if (admit === undefined || entry === defaultEntry || entry.loading !== undefined)
      return Promise.resolve(undefined)
    const turn = admissions.then(async () => {
      if (entry.loading !== undefined) return undefined
      const held = entries.filter((other) => other.loading !== undefined && other.status.state !== 'failed')
      const refusal = await admit(entry.format, held.map(known))
      if (refusal === undefined) loadEntry(entry).catch(() => {})
      return refusal
    })
    admissions = turn.catch(() => {})
    return turn
  }

  // While the start-up load runs (preload), requests are refused with 503 + Retry-After rather
  // than held: a client, a proxy or a load balancer gets an answer it can act on at once.
  let startupSince: number | undefined
  const stillStarting = (): OndeviceError | undefined => {
    if (startupSince === undefined) return undefined
    const seconds = Math.round((now() - startupSince) / 1000)
    return new OndeviceError(
      'edge_starting',
      `The model is still loading on this server (started ${seconds} s ago): it answers once loaded. Retry in ${startupRetryAfterSeconds} s; GET /healthz says "ready" when it can answer.`,
      { isRetryable: true, retryAfterSeconds: startupRetryAfterSeconds },
    )
  }
  const status = (): ModelHostStatus =>
    startupSince !== undefined && defaultEntry.status.state === 'loading'
      ? { state: 'loading', startup: true }
      : defaultEntry.status

  return {
    modelId: options.modelId,
    status,
    load: () => {
      const starting = stillStarting()
      return starting ? Promise.reject(starting) : loadEntry(defaultEntry)
    },
    preload: () => {
      if (defaultEntry.status.state === 'ready' || startupSince !== undefined) return loadEntry(defaultEntry)
      startupSince = now()
      const loading = loadEntry(defaultEntry)
      const done = () => {
        startupSince = undefined
      }
      loading.then(done, done)
      return loading
    },
    async dispose() {
      await Promise.all(
        entries.map(async (entry) => {
          const loading = entry.loading
          if (loading === undefined) return
          const model = await loading.catch(() => undefined)
          if (entry.loading === loading) {
            entry.loading = undefined
            entry.status = { state: 'idle' }
          }
          await model?.dispose?.()
        }),
      )
    },
    formats: () =>
      entries.map((entry) => ({
        format: known(entry),
        status: entry === defaultEntry ? status() : entry.status,
      })),
    async select(wanted) {
      const starting = stillStarting()
      if (starting) throw starting
      const problems: string[] = []
      // Loaded formats first: a configured one whose fields are decided at load may turn out to be
      // another (backend 'wasm' runs onnxruntime-web where the engine does not cover the package).
      const candidates = entries
        .filter((entry) => fits(known(entry), wanted))
        .sort((a, b) => Number(b.status.state === 'ready') - Number(a.status.state === 'ready'))
      for (const entry of candidates) {
        let model: HostedModel
        try {
          const refusal = await admitted(entry)
          if (refusal !== undefined) {
            problems.push(`${describeFormat(entry.format)} is not loaded: ${refusal}`)
            continue
          }
          model = await loadEntry(entry)
        } catch (error) {
          if (wanted.fallback !== true && candidates.length === 1) throw error
          problems.push(`${describeFormat(entry.format)} failed to load: ${(error as Error).message}`)
          continue
        }
        if (isExactly(model.info, wanted)) return { model }
        if (entry.format.backend === 'wasm' && model.info.backend === 'ort-wasm') {
          problems.push(
            "backend 'wasm' runs onnxruntime-web here ('ort-wasm'): ondevice's engine does not cover this package",
          )
        }
      }
      return refuseOrFallBack(
        wanted,
        entries.map((entry) => known(entry)),
        problems,
        () => loadEntry(defaultEntry),
      )
    },
  }
}

/**
 * Who fixes a failed load: a setting the server was given that the package cannot meet (a
 * --context / MODEL_CONTEXT_LENGTH above the model's context) is the server's settings, not the
 * package, which the message used to blame for it too.
 */
function operatorFix(cause: unknown): string {
  if (cause instanceof InvalidArgumentError && cause.param !== undefined && serverSettings.has(cause.param))
    return `The operator must fix the server's settings (${cause.param}); retry later.`
  // A backend this server cannot run (`ondevice serve --backend native` without onnxruntime-node):
  // its setup, not the package.
  if (cause instanceof OndeviceError && cause.code === 'backend_unavailable')
    return "The operator must fix the server's backend (install what it needs, or pick another with --backend / MODEL_BACKEND); retry later."
  return 'The operator must fix the model package; retry later.'
}

/** The load options a server's settings give (MODEL_CONTEXT_LENGTH, MODEL_BACKEND, ...). */
const serverSettings: ReadonlySet<string> = new Set([
  'contextLength',
  'backend',
  'dtype',
  'numThreads',
  'sessions',
])
