// Validation of everything a developer hands the SDK: createClient options and each chat
// request. Every mistake throws InvalidArgumentError naming the field (`thresholds.maxDownloadBytes`,
// `temperature`, `messages.1.role`) and saying how to fix it, before any download or request.
import { type ChatMessage, validateChatMessages } from '../core/chat-template.ts'
import { InvalidArgumentError } from '../core/errors.ts'
import { resolveSamplingOptions, samplingOptionNames } from '../core/sampler.ts'
import type { EdgeOptions, EdgeSampling } from './edge-client.ts'
import { defaultThresholds, type RoutePolicy, type RouteThresholds, routePolicies } from './route.ts'

export type DeviceBackendChoice = 'webgpu' | 'wasm' | 'native'

export interface ClientOptions {
  /**
   * The model package: a folder (Node) or URL prefix holding config.json, tokenizer.json and onnx/.
   * Omitted: the runtime's embedded default package (Node).
   */
  readonly model?: string
  /** The edge worker that answers when the device can't. Omitted: device only. */
  readonly edge?: EdgeOptions
  /** Where requests run. Default 'prefer-device'. */
  readonly policy?: RoutePolicy
  readonly thresholds?: Partial<RouteThresholds>
  /** Force a device backend instead of the best one the device has. */
  readonly backend?: DeviceBackendChoice
  /** Force a weight format (e.g. 'q4', 'q8', 'fp32') instead of the runtime's per-backend choice. */
  readonly dtype?: string
  /** Defaults applied to every request (each request may override them). */
  readonly defaults?: Partial<SamplingRequest>
}

/** Sampling and length settings, shared by chat() and stream() requests. */
export interface SamplingRequest extends EdgeSampling {
  /** Most tokens to generate. */
  readonly maxTokens?: number
  /** Stop strings (never part of the returned text). */
  readonly stop?: readonly string[]
}

export interface ChatRequest extends SamplingRequest {
  readonly messages: readonly ChatMessage[]
  readonly signal?: AbortSignal
}

const policies = routePolicies.map((policy) => `'${policy}'`).join(', ')
const backends: readonly DeviceBackendChoice[] = ['webgpu', 'wasm', 'native']

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

function checkNumber(param: string, value: unknown, rule: (n: number) => boolean, expectation: string): void {
  if (value === undefined) return
  if (!isFiniteNumber(value) || !rule(value)) {
    throw new InvalidArgumentError(param, `${param} must be ${expectation} (got ${describe(value)}).`)
  }
}

function describe(value: unknown): string {
  if (typeof value === 'number') return String(value)
  if (typeof value === 'string') return JSON.stringify(value)
  return value === null ? 'null' : typeof value
}

const sampleKeys: ReadonlySet<string> = new Set([...samplingOptionNames, 'maxTokens', 'stop'])

/** Checks sampling fields with core's own rules; `prefix` places them in the caller's object (`defaults.`). */
export function validateSampling(request: SamplingRequest, prefix = ''): void {
  const { maxTokens, stop } = request
  const sampling: Record<string, unknown> = {}
  for (const key of samplingOptionNames) if (request[key] !== undefined) sampling[key] = request[key]
  try {
    // The sampler's validator names each field and its range; one source of truth for both sides.
    resolveSamplingOptions({ seed: 0, ...sampling })
  } catch (error) {
    if (error instanceof InvalidArgumentError && prefix !== '') {
      throw new InvalidArgumentError(`${prefix}${error.param}`, `${prefix}${error.message}`)
    }
    throw error
  }
  checkNumber(`${prefix}maxTokens`, maxTokens, (n) => Number.isInteger(n) && n >= 1, 'a whole number ≥ 1')
  if (stop !== undefined) {
    if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string' || s === '')) {
      throw new InvalidArgumentError(`${prefix}stop`, `${prefix}stop must be an array of non-empty strings.`)
    }
  }
}

/** Checks createClient options and returns them with defaults filled in. */
export function validateClientOptions(options: unknown): ClientOptions & { readonly policy: RoutePolicy } {
  if (options === undefined) options = {}
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError(
      'options',
      'createClient takes an options object, e.g. { model, edge: { url } }.',
    )
  }
  const given = options as Record<string, unknown>
  const known = new Set(['model', 'edge', 'policy', 'thresholds', 'backend', 'dtype', 'defaults'])
  for (const key of Object.keys(given)) {
    if (!known.has(key)) {
      throw new InvalidArgumentError(
        key,
        `Unknown option ${JSON.stringify(key)}: createClient takes ${[...known].join(', ')}.`,
      )
    }
  }
  const { model, edge, policy = 'prefer-device', thresholds, backend, dtype, defaults } = given
  if (model !== undefined && (typeof model !== 'string' || model.trim() === '')) {
    throw new InvalidArgumentError(
      'model',
      `model must be a package folder or URL prefix (got ${describe(model)}); omit it to use the embedded default package.`,
    )
  }
  if (typeof policy !== 'string' || !routePolicies.includes(policy as RoutePolicy)) {
    throw new InvalidArgumentError('policy', `Unknown policy ${describe(policy)}: use one of ${policies}.`)
  }
  if (edge !== undefined && (typeof edge !== 'object' || edge === null)) {
    throw new InvalidArgumentError(
      'edge',
      'edge must be an object like { url: "https://ai.example.com", apiKey }.',
    )
  }
  if (policy === 'edge-only' && edge === undefined) {
    throw new InvalidArgumentError(
      'edge',
      "policy 'edge-only' needs edge: { url } (the edge worker's base URL).",
    )
  }
  if (backend !== undefined && !backends.includes(backend as DeviceBackendChoice)) {
    throw new InvalidArgumentError(
      'backend',
      `backend must be one of ${backends.join(', ')} (got ${describe(backend)}).`,
    )
  }
  if (dtype !== undefined && (typeof dtype !== 'string' || dtype === '')) {
    throw new InvalidArgumentError(
      'dtype',
      `dtype must be a weight format like 'q4', 'q8', 'fp16', 'fp32' (got ${describe(dtype)}).`,
    )
  }
  if (thresholds !== undefined) {
    if (typeof thresholds !== 'object' || thresholds === null) {
      throw new InvalidArgumentError('thresholds', 'thresholds must be an object.')
    }
    const t = thresholds as Record<string, unknown>
    for (const key of Object.keys(t)) {
      if (!(key in defaultThresholds)) {
        throw new InvalidArgumentError(
          `thresholds.${key}`,
          `Unknown threshold ${JSON.stringify(key)}: use ${Object.keys(defaultThresholds).join(', ')}.`,
        )
      }
    }
    checkNumber(
      'thresholds.minDeviceTokensPerSecond',
      t['minDeviceTokensPerSecond'],
      (n) => n >= 0,
      'a number ≥ 0',
    )
    if (t['maxDownloadBytes'] !== Infinity) {
      checkNumber(
        'thresholds.maxDownloadBytes',
        t['maxDownloadBytes'],
        (n) => n >= 0,
        'a number of bytes ≥ 0 (or Infinity)',
      )
    }
    checkNumber('thresholds.maxMemoryFraction', t['maxMemoryFraction'], (n) => n > 0 && n <= 1, 'in (0, 1]')
    checkNumber(
      'thresholds.slowDecodeWindowTokens',
      t['slowDecodeWindowTokens'],
      (n) => Number.isInteger(n) && n >= 1,
      'an integer ≥ 1',
    )
    if (t['allowMeteredDownload'] !== undefined && typeof t['allowMeteredDownload'] !== 'boolean') {
      throw new InvalidArgumentError(
        'thresholds.allowMeteredDownload',
        'thresholds.allowMeteredDownload must be true or false.',
      )
    }
  }
  if (defaults !== undefined) {
    if (typeof defaults !== 'object' || defaults === null) {
      throw new InvalidArgumentError('defaults', 'defaults must be an object of sampling settings.')
    }
    rejectUnknown(defaults as Record<string, unknown>, 'defaults.')
    validateSampling(defaults as SamplingRequest, 'defaults.')
  }
  return { ...(given as ClientOptions), policy: policy as RoutePolicy }
}

function rejectUnknown(
  request: Record<string, unknown>,
  prefix: string,
  extra: readonly string[] = [],
): void {
  for (const key of Object.keys(request)) {
    if (!sampleKeys.has(key) && !extra.includes(key)) {
      throw new InvalidArgumentError(
        `${prefix}${key}`,
        `Unknown field ${JSON.stringify(`${prefix}${key}`)}: use ${[...sampleKeys, ...extra].join(', ')}.`,
      )
    }
  }
}

/** Checks one chat request (messages, sampling, signal) and returns it merged over the defaults. */
export function validateChatRequest(request: unknown, defaults: Partial<SamplingRequest> = {}): ChatRequest {
  if (typeof request !== 'object' || request === null) {
    throw new InvalidArgumentError(
      'request',
      'chat()/stream() take an object like { messages: [{ role: "user", content: "Hi" }] }.',
    )
  }
  const given = request as Record<string, unknown>
  rejectUnknown(given, '', ['messages', 'signal'])
  const messages = validateChatMessages(given['messages'])
  if (given['signal'] !== undefined && !(given['signal'] instanceof AbortSignal)) {
    throw new InvalidArgumentError(
      'signal',
      'signal must be an AbortSignal (e.g. new AbortController().signal).',
    )
  }
  validateSampling(given as SamplingRequest)
  return { ...defaults, ...(given as Partial<ChatRequest>), messages } as ChatRequest
}
