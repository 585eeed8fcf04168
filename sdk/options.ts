// Validation of everything a developer hands the SDK: createClient options and each chat
// request. Every mistake throws InvalidArgumentError naming the field (`thresholds.maxDownloadBytes`,
// `temperature`, `messages.1.role`) and saying how to fix it, before any download or request.

import { detectPlatform } from '../client-runtime/platform.ts'
import {
  type ChatMessage,
  checkToolResults,
  refuseUnknownMessageKeys,
  validateChatMessages,
} from '../core/chat-messages.ts'
import { InvalidArgumentError, refuseUnknownNames } from '../core/errors.ts'
import { type MessageContent, messageContentText, validateMessageContent } from '../core/protocol/content.ts'
import {
  maxTemperature,
  resolveSamplingOptions,
  type SamplingOptions,
  samplingOptionNames,
} from '../core/sampling/options.ts'
import { refuseStopWithDocument, validateStopStrings } from '../core/stop-strings.ts'
import type { ModelToolCallSyntax } from '../core/structured/call-syntax.ts'
import type {
  ConstraintOptions,
  ResponseFormat,
  ToolChoice,
  ToolDefinition,
} from '../core/structured/constraint.ts'
import { loadStructuredOutput } from '../core/structured/load.ts'
import { knownDtypes } from '../core/weight-format.ts'
import type { EdgeOptions } from './edge-client.ts'
import { defaultThresholds, type RoutePolicy, type RouteThresholds, routePolicies } from './route.ts'

/**
 * 'wasm' is ondevice's WebAssembly engine (onnxruntime-web's WASM where the engine does not cover
 * the package); 'ort-wasm' forces onnxruntime-web's WASM; 'native' is onnxruntime-node (Node only).
 */
export type DeviceBackendChoice = 'webgpu' | 'wasm' | 'ort-wasm' | 'native'

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
  /** Force a device backend instead of the best one the device has ('native' is Node's only). */
  readonly backend?: DeviceBackendChoice
  /**
   * Browsers: the URL folder where the app serves ONNX Runtime Web's runtime files
   * (`ort-wasm-simd-threaded*.{mjs,wasm}`; the Vite plugin `ondevice/vite` serves exactly those).
   * Same origin as the page (never a CDN: the app must work offline). Default '/ort/'.
   */
  readonly runtimeUrl?: string
  /** Force a weight format (e.g. 'q4', 'q8', 'fp32') instead of the runtime's per-backend choice. */
  readonly dtype?: string
  /**
   * Threads on the device, 1 to 64. WebAssembly ('wasm', 'ort-wasm'): Node default 1; browsers
   * need a cross-origin isolated page (COOP/COEP headers; else one thread and a warning), where
   * ondevice's engine defaults to min(2, cores - 1). The engine's answer is the same for any
   * count. 'native': onnxruntime-node's intra-op threads.
   */
  readonly numThreads?: number
  /**
   * Node: the folder that keeps downloaded packages and the embedded default package. Default
   * `$ONDEVICE_CACHE_DIR`, else `$XDG_CACHE_HOME/ondevice`, else `~/.cache/ondevice`. Pages keep
   * packages in the browser's own storage (OPFS), so a page refuses it.
   */
  readonly cacheDir?: string
  /**
   * Node: the most bytes that folder's packages may take; a download that would pass it fails
   * with `storage_quota_exceeded` before it starts (requests go to the edge). Default: the disk.
   */
  readonly cacheQuotaBytes?: number
  /** Defaults applied to every request (each request may override them). */
  readonly defaults?: Partial<SamplingRequest>
}

/** Sampling and length settings, shared by chat() and stream() requests. */
export interface SamplingRequest extends SamplingOptions {
  /** Most tokens to generate. */
  readonly maxTokens?: number
  /**
   * Stop strings (never part of the returned text): one string or up to four, as OpenAI takes them.
   * They cut content only, so a request with a JSON `responseFormat` may not send them, and a
   * client's `defaults.stop` applies to the requests whose answer is text.
   */
  readonly stop?: string | readonly string[]
}

/**
 * A message as chat() and stream() take it: core's ChatMessage, or in the shapes OpenAI's API
 * (and the edge) take too, so code written for OpenAI passes its messages as they are.
 */
export interface ChatRequestMessage extends Omit<ChatMessage, 'role' | 'content'> {
  /** 'developer' is OpenAI's newer name for 'system'; it is rendered as system, as on the edge. */
  readonly role: ChatMessage['role'] | 'developer'
  /**
   * A string; OpenAI's text parts (`[{ type: 'text', text }]`), joined with nothing between them
   * as the edge joins them; or null on an assistant turn that only calls tools. Other part types
   * (`image_url`, `input_audio`, `file`) are refused: this is a text-only model.
   */
  readonly content: MessageContent
}

export interface ChatRequest extends SamplingRequest {
  readonly messages: readonly ChatRequestMessage[]
  readonly signal?: AbortSignal
  /**
   * The answer must be JSON: any object (`{ type: 'json_object' }`) or a document following a
   * JSON Schema (`{ type: 'json_schema', schema, name?, strict? }`). Enforced token by token on the
   * device and on the edge alike; an unsupported keyword is an InvalidArgumentError naming it.
   */
  readonly responseFormat?: ResponseFormat
  /** Functions the model may call: `{ name, description?, parameters }` (parameters: a JSON Schema object). */
  readonly tools?: readonly ToolDefinition[]
  /** 'auto' (default with tools), 'none', 'required', or `{ name }` for one tool. */
  readonly toolChoice?: ToolChoice
  /** Several calls in one answer (default true). */
  readonly parallelToolCalls?: boolean
  /**
   * A thinking model's switch (Qwen3, Qwen3.5: the template's `enable_thinking`): false answers
   * at once, true thinks first (its reasoning comes apart from the text). Omitted: the template's
   * default. The edge gets the same (`chat_template_kwargs`), so a handoff continues the same prompt.
   */
  readonly enableThinking?: boolean
}

/**
 * A request validateChatRequest checked: its messages as core's, the one form the device and the
 * edge render (text parts joined, 'developer' as 'system', an assistant's null content as '').
 */
export interface CheckedChatRequest extends Omit<ChatRequest, 'messages' | 'stop'> {
  readonly messages: readonly ChatMessage[]
  /** Always a list once checked (one string becomes a list of one). */
  readonly stop?: readonly string[]
}

/** The constraint fields of a request, as core's generate() takes them (undefined: none). */
export function constraintOf(request: ChatRequest): ConstraintOptions | undefined {
  const { responseFormat, tools, toolChoice, parallelToolCalls } = request
  if (
    responseFormat === undefined &&
    tools === undefined &&
    toolChoice === undefined &&
    parallelToolCalls === undefined
  )
    return undefined
  return {
    ...(responseFormat === undefined ? {} : { responseFormat }),
    ...(tools === undefined ? {} : { tools }),
    ...(toolChoice === undefined ? {} : { toolChoice }),
    ...(parallelToolCalls === undefined ? {} : { parallelToolCalls }),
  }
}

/** Where createClient runs: it decides which options make sense. */
export interface ClientEnvironment {
  /** Node; a browser page or an app's Web Worker; or a server runtime with no device (Cloudflare Workers). */
  readonly host: 'node' | 'browser' | 'server'
  /** The page's (or worker's) URL in a browser: relative URLs resolve against it, and its origin is the app's. */
  readonly pageUrl?: string
}

export function detectClientEnvironment(): ClientEnvironment {
  const platform = detectPlatform()
  if (platform === 'node') return { host: 'node' }
  if (platform === 'browser' || platform === 'worker') {
    const href = (globalThis as { location?: { href?: string } }).location?.href
    return { host: 'browser', ...(href ? { pageUrl: href } : {}) }
  }
  return { host: 'server' }
}

/** The default for runtimeUrl: the app serves ORT's files at /ort/ on its own origin. */
export const defaultRuntimeUrl = '/ort/'

const policies = routePolicies.map((policy) => `'${policy}'`).join(', ')
const backends: readonly DeviceBackendChoice[] = ['webgpu', 'wasm', 'ort-wasm', 'native']

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
  // The edge takes OpenAI's range (core's sampler takes any value ≥ 0): a request the device
  // would answer must not fail only on an edge route or at a handoff mid-answer.
  checkNumber(
    `${prefix}temperature`,
    request.temperature,
    (n) => n <= maxTemperature,
    `in [0, ${maxTemperature}] (0 = greedy), the range the edge accepts too`,
  )
  checkNumber(`${prefix}maxTokens`, maxTokens, (n) => Number.isInteger(n) && n >= 1, 'a whole number ≥ 1')
  // One string or a list, in the edge's words (core's check says 'an array', the SDK takes both).
  if (stop !== undefined && typeof stop !== 'string' && !Array.isArray(stop))
    throw new InvalidArgumentError(`${prefix}stop`, `${prefix}stop must be a string or an array of strings.`)
  // Core's rule (at most 4 non-empty strings of at most 256 characters), which the edge applies too.
  validateStopStrings(stopList(stop), `${prefix}stop`)
}

/** The names createClient takes (ClientOptions' fields). */
export const clientOptionNames: readonly string[] = [
  'model',
  'edge',
  'policy',
  'thresholds',
  'backend',
  'dtype',
  'runtimeUrl',
  'numThreads',
  'cacheDir',
  'cacheQuotaBytes',
  'defaults',
]

/**
 * Checks createClient options and returns them with defaults filled in (`runtimeUrl` resolved to
 * an absolute URL: the model's Web Worker resolves relative URLs against its own script, not the page).
 */
export function validateClientOptions(
  options: unknown,
  environment: ClientEnvironment = detectClientEnvironment(),
): ClientOptions & { readonly policy: RoutePolicy } {
  if (options === undefined) options = {}
  // An array has no option names to check: it made a client with every default, silently.
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(
      'options',
      'createClient takes an options object, e.g. { model, edge: { url } }.',
    )
  }
  const given = options as Record<string, unknown>
  refuseUnknownNames(given, clientOptionNames, 'createClient option')
  const host = environment.host
  const {
    model,
    edge,
    policy = 'prefer-device',
    thresholds,
    backend,
    dtype,
    runtimeUrl,
    numThreads,
    cacheDir,
    cacheQuotaBytes,
    defaults,
  } = given
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
  if (host === 'browser' && backend === 'native') {
    throw new InvalidArgumentError(
      'backend',
      "backend 'native' (ONNX Runtime for Node) does not exist in a browser: use 'webgpu' or 'wasm', or omit backend to let the device pick.",
    )
  }
  if (host === 'browser' && model === undefined && policy !== 'edge-only') {
    throw new InvalidArgumentError(
      'model',
      "model is required in a browser: pass the URL prefix where your app serves a model package (the folder holding config.json), e.g. '/models/default/' after `npx ondevice export-default public/models/default`. Or use policy 'edge-only'.",
    )
  }
  const resolvedRuntimeUrl = runtimeUrl === undefined ? undefined : checkRuntimeUrl(runtimeUrl, environment)
  if (dtype !== undefined && (typeof dtype !== 'string' || dtype === '')) {
    throw new InvalidArgumentError(
      'dtype',
      `dtype must be a weight format like 'q4', 'q8', 'fp16', 'fp32' (got ${describe(dtype)}).`,
    )
  }
  // A name no package can have is refused here, not at the first load (in the background, or as
  // a route to the edge that hides the typo).
  if (dtype !== undefined && dtype !== 'quantized' && !(knownDtypes as readonly string[]).includes(dtype)) {
    throw new InvalidArgumentError(
      'dtype',
      `Unknown dtype ${JSON.stringify(dtype)}; use one of ${knownDtypes.join(', ')} (or 'quantized' for q8), or omit it for the backend's fastest.`,
    )
  }
  if (
    numThreads !== undefined &&
    (typeof numThreads !== 'number' || !Number.isInteger(numThreads) || numThreads < 1 || numThreads > 64)
  ) {
    throw new InvalidArgumentError(
      'numThreads',
      `numThreads must be a whole number from 1 to 64 (got ${describe(numThreads)}); omit it for the device's default.`,
    )
  }
  checkCacheOptions(cacheDir, cacheQuotaBytes, host)
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
  return {
    ...(given as ClientOptions),
    policy: policy as RoutePolicy,
    ...(resolvedRuntimeUrl === undefined ? {} : { runtimeUrl: resolvedRuntimeUrl }),
  }
}

/** cacheDir / cacheQuotaBytes: Node's cache folder; elsewhere the platform's storage decides. */
function checkCacheOptions(
  cacheDir: unknown,
  cacheQuotaBytes: unknown,
  host: ClientEnvironment['host'],
): void {
  for (const [name, value] of [
    ['cacheDir', cacheDir],
    ['cacheQuotaBytes', cacheQuotaBytes],
  ] as const) {
    if (value !== undefined && host !== 'node') {
      throw new InvalidArgumentError(
        name,
        `${name} sets Node's cache folder; here packages are kept in the ${host === 'browser' ? "browser's own storage (OPFS, else the Cache API), within the quota the browser grants the origin" : "platform's storage"}. Omit ${name}.`,
      )
    }
  }
  if (cacheDir !== undefined && (typeof cacheDir !== 'string' || cacheDir.trim() === '')) {
    throw new InvalidArgumentError(
      'cacheDir',
      `cacheDir must be a folder path, e.g. './model-cache' (got ${describe(cacheDir)}); omit it for ~/.cache/ondevice (or $ONDEVICE_CACHE_DIR).`,
    )
  }
  if (
    cacheQuotaBytes !== undefined &&
    (typeof cacheQuotaBytes !== 'number' || !Number.isFinite(cacheQuotaBytes) || cacheQuotaBytes <= 0)
  ) {
    throw new InvalidArgumentError(
      'cacheQuotaBytes',
      `cacheQuotaBytes must be a positive number of bytes, e.g. 2 * 1024 ** 3 (got ${describe(cacheQuotaBytes)}); omit it to let packages use the disk.`,
    )
  }
}

/** runtimeUrl: a folder URL on the page's own origin, returned absolute and ending in '/'. */
function checkRuntimeUrl(runtimeUrl: unknown, { host, pageUrl }: ClientEnvironment): string {
  const example = "e.g. '/ort/' (where your app serves onnxruntime-web's ort-wasm-simd-threaded* files)"
  if (typeof runtimeUrl !== 'string' || runtimeUrl.trim() === '') {
    throw new InvalidArgumentError(
      'runtimeUrl',
      `runtimeUrl must be a URL folder on this app's origin, ${example} (got ${describe(runtimeUrl)}).`,
    )
  }
  if (host !== 'browser') {
    throw new InvalidArgumentError(
      'runtimeUrl',
      host === 'node'
        ? 'runtimeUrl applies in browsers only: Node reads ONNX Runtime from node_modules. Remove it here.'
        : 'runtimeUrl applies in browsers only: this runtime has no device side (use the edge). Remove it here.',
    )
  }
  const page = pageUrl === undefined ? undefined : new URL(pageUrl)
  let url: URL
  try {
    url = page ? new URL(runtimeUrl, page) : new URL(runtimeUrl)
  } catch {
    throw new InvalidArgumentError(
      'runtimeUrl',
      `runtimeUrl ${JSON.stringify(runtimeUrl)} is not a URL: ${example}.`,
    )
  }
  if (page && url.origin !== page.origin) {
    throw new InvalidArgumentError(
      'runtimeUrl',
      `runtimeUrl must be on this page's origin (${page.origin}), got ${url.origin}: serve onnxruntime-web's files from your app (the ondevice/vite plugin does), never from a CDN, so the app works offline and under a strict CSP.`,
    )
  }
  if (url.search !== '' || url.hash !== '') {
    throw new InvalidArgumentError(
      'runtimeUrl',
      `runtimeUrl is a folder, without ?query or #hash (got ${JSON.stringify(runtimeUrl)}): ${example}.`,
    )
  }
  return url.href.endsWith('/') ? url.href : `${url.href}/`
}

/** Names other APIs give a request's fields (OpenAI's wire, the AI SDK's), and the SDK's for them. */
const requestAliases: Readonly<Record<string, string>> = {
  max_completion_tokens: 'maxTokens',
  maxCompletionTokens: 'maxTokens',
  maxOutputTokens: 'maxTokens',
  max_new_tokens: 'maxTokens',
  stop_sequences: 'stop',
  stopSequences: 'stop',
}

function rejectUnknown(
  request: Record<string, unknown>,
  prefix: string,
  extra: readonly string[] = [],
): void {
  refuseUnknownNames(
    request,
    [...sampleKeys, ...extra],
    prefix === '' ? 'chat() / stream() field' : `${prefix.slice(0, -1)} field`,
    (name) => `${prefix}${name}`,
    requestAliases,
  )
}

/** Checks one chat request (messages, sampling, signal) and returns it merged over the defaults. */
export function validateChatRequest(
  request: unknown,
  defaults: Partial<SamplingRequest> = {},
): CheckedChatRequest {
  if (typeof request !== 'object' || request === null) {
    throw new InvalidArgumentError(
      'request',
      'chat()/stream() take an object like { messages: [{ role: "user", content: "Hi" }] }.',
    )
  }
  const given = request as Record<string, unknown>
  rejectUnknown(given, '', [
    'messages',
    'signal',
    'responseFormat',
    'tools',
    'toolChoice',
    'parallelToolCalls',
    'enableThinking',
  ])
  const messages = validateChatMessages(toCoreMessages(given['messages']))
  // The edge requires it (OpenAI's tool_call_id), so a conversation the device would take must
  // not fail only once it reaches the edge: on an edge route, or mid-answer at a handoff.
  for (const [index, message] of messages.entries()) {
    if (message.role === 'tool' && (typeof message.toolCallId !== 'string' || message.toolCallId === '')) {
      throw new InvalidArgumentError(
        `messages.${index}.toolCallId`,
        `messages.${index}.toolCallId is required on tool messages: the id of the call this result answers (result.toolCalls[i].id).`,
      )
    }
  }
  // The edge refuses a result that answers no call (OpenAI's rule), so the device does too.
  checkToolResults(
    messages.map((message) => ({
      role: message.role,
      callIds: message.toolCalls?.map((call) => call.id),
      resultId: message.toolCallId,
    })),
    { idField: 'toolCallId', callsField: 'toolCalls' },
  )
  if (given['signal'] !== undefined && !(given['signal'] instanceof AbortSignal)) {
    throw new InvalidArgumentError(
      'signal',
      'signal must be an AbortSignal (e.g. new AbortController().signal).',
    )
  }
  if (given['enableThinking'] !== undefined && typeof given['enableThinking'] !== 'boolean') {
    throw new InvalidArgumentError(
      'enableThinking',
      `enableThinking must be true or false (got ${describe(given['enableThinking'])}); omit it for the template's default.`,
    )
  }
  validateSampling(given as SamplingRequest)
  // The request as it is now: the answer runs later (a stream is read lazily, a device waits its
  // turn, a handoff sends the conversation to the edge mid-answer), and an app that appends the
  // streamed answer to its `messages` array, or edits a schema, meanwhile would change the prompt
  // under it (a handoff then continued a different conversation than the device answered).
  const snapshot: Record<string, unknown> = { ...given, messages: snapshotMessages(messages) }
  for (const field of ['responseFormat', 'tools', 'toolChoice', 'stop', 'logitBias'] as const) {
    if (given[field] !== undefined) snapshot[field] = jsonCopy(given[field], field)
  }
  const format = (given['responseFormat'] as { readonly type?: unknown } | undefined)?.type
  const stop = stopList(snapshot['stop'] as SamplingRequest['stop'])
  refuseStopWithDocument(stop ?? [], format, 'responseFormat.type')
  const merged: Record<string, unknown> = { ...defaults, ...snapshot }
  delete merged['stop']
  // A client's default stop list is for text answers; a JSON document has no content to cut.
  const isDocument = format === 'json_object' || format === 'json_schema'
  const chosen = stop ?? (isDocument ? undefined : stopList(defaults.stop))
  if (chosen !== undefined) merged['stop'] = chosen
  // The schemas and tools compile in checkConstraint (the compiler loads on demand).
  return merged as unknown as CheckedChatRequest
}

/** One stop string or a list, as a list (OpenAI takes both). */
function stopList(stop: SamplingRequest['stop']): readonly string[] | undefined {
  return typeof stop === 'string' ? [stop] : stop
}

/** OpenAI's snake_case message fields and the SDK's names for them. */
const wireMessageFields = [
  ['tool_calls', 'toolCalls'],
  ['tool_call_id', 'toolCallId'],
  ['reasoning_content', 'reasoningContent'],
] as const

/**
 * OpenAI's message shapes as core's, by the edge's rule (core/protocol's content check and join):
 * text parts joined, 'developer' as 'system', an assistant's null content as ''. A part the model
 * cannot read is refused at its path (`messages.0.content.1.type`) with the edge's words; what
 * OpenAI's response message adds (`refusal`, `annotations`, null `audio`) is taken and removed.
 * Anything else is left for validateChatMessages to name.
 */
function toCoreMessages(messages: unknown): unknown {
  if (!Array.isArray(messages)) return messages
  return messages.map((message: unknown, index) => {
    if (typeof message !== 'object' || message === null) return message
    const { role, content } = message as Record<string, unknown>
    const developer = role === 'developer'
    const valid =
      typeof role === 'string' && ['system', 'developer', 'user', 'assistant', 'tool'].includes(role)
    // Named here with the roles the SDK takes, 'developer' included, in the wire's words
    // (validateChatMessages' list is core's, without it).
    if (!valid)
      throw new InvalidArgumentError(
        `messages.${index}.role`,
        `messages.${index}.role is ${JSON.stringify(role)}; use 'system', 'developer', 'user', 'assistant' or 'tool'.`,
      )
    // A history kept in OpenAI's wire shape: the template reads the SDK's names only, so an
    // assistant's tool_calls would be left out of the prompt without a word.
    // A null carries nothing, as on the wire: OpenAI-compatible servers' response messages hold
    // `tool_calls: null` and `reasoning_content: null`, and the camelCase field takes no null to
    // rename it to.
    const fields = { ...(message as Record<string, unknown>) }
    for (const [wireName, sdkName] of wireMessageFields) {
      const value = fields[wireName]
      if (value !== undefined && value !== null)
        throw new InvalidArgumentError(
          `messages.${index}.${wireName}`,
          `messages.${index}.${wireName} is OpenAI's wire name: chat() and stream() take the message field as ${sdkName} (camelCase, as maxTokens); rename it, or it is not part of the prompt.`,
        )
      delete fields[wireName]
    }
    takeResponseFields(fields, `messages.${index}`)
    // Any other key is refused at its path (`messages.1.images`), with the edge's words: dropped,
    // it answered on the device while the edge refused it. Before the content check, so a
    // misspelt content (`contnet`) is named, not reported as content missing.
    refuseUnknownMessageKeys(fields, `messages.${index}`)
    validateMessageContent(content, `messages.${index}.content`, role)
    return {
      ...fields,
      role: developer ? 'system' : role,
      content: messageContentText(content as MessageContent),
    }
  })
}

/**
 * The fields OpenAI's response message carries besides the SDK's, taken as the edge takes them
 * (core/protocol/validate.ts) and removed, since no template reads them: `refusal` (a string or
 * null) and `annotations`, and `audio` and `function_call` when null. An app that appends a
 * response's message to its history sends them back as they came.
 */
function takeResponseFields(fields: Record<string, unknown>, at: string): void {
  const { refusal, audio, function_call: functionCall } = fields
  if (functionCall !== undefined && functionCall !== null)
    throw new InvalidArgumentError(
      `${at}.function_call`,
      `${at}.function_call is the deprecated form of a tool call: send toolCalls: [{ id, type: "function", function: { name, arguments } }], and the result as a role "tool" message with its toolCallId.`,
    )
  // The edge's words: they name no field the SDK spells otherwise.
  if (audio !== undefined && audio !== null)
    throw new InvalidArgumentError(
      `${at}.audio`,
      `${at}.audio: audio is not supported by this model (a text-only model); leave it out.`,
    )
  if (refusal !== undefined && refusal !== null && typeof refusal !== 'string')
    throw new InvalidArgumentError(`${at}.refusal`, `${at}.refusal must be a string.`)
  for (const key of ['refusal', 'annotations', 'audio', 'function_call']) delete fields[key]
}

/**
 * Compiles a validated request's schemas and tools: a keyword the grammar cannot enforce is an
 * InvalidArgumentError naming it (`responseFormat.schema.properties.x.not`), before any download
 * or request. The compiler is not in the page's up-front JavaScript: the first request with
 * `responseFormat` or `tools` waits for it (core/structured/load.ts; a chunk that does not load
 * is a retryable BackendError naming it). A request without either resolves at once.
 */
export async function checkConstraint(request: ChatRequest, syntax?: ModelToolCallSyntax): Promise<void> {
  const constraint = constraintOf(request)
  if (constraint === undefined) return
  const { compileConstraint, validateConstraintForModel } = await loadStructuredOutput()
  // With the device model's call syntax (once its package is loaded), what that model cannot call
  // is refused too: tools without the call syntax, or tools its XML dialect cannot write (core's
  // validateConstraintForModel, the server's check as well).
  if (syntax === undefined) compileConstraint(constraint)
  else validateConstraintForModel(constraint, syntax)
}

/** A copy of the fields a chat template reads, so later changes to the caller's objects do not reach it. */
function snapshotMessages(messages: readonly ChatMessage[]): ChatMessage[] {
  return messages.map((message, index) => {
    const { role, content, name, toolCallId, reasoningContent, toolCalls } = message
    return {
      role,
      content,
      ...(name === undefined ? {} : { name }),
      ...(toolCallId === undefined ? {} : { toolCallId }),
      ...(reasoningContent === undefined ? {} : { reasoningContent }),
      ...(toolCalls === undefined
        ? {}
        : { toolCalls: jsonCopy(toolCalls, `messages.${index}.toolCalls`) as ChatMessage['toolCalls'] }),
    }
  })
}

/** A deep copy of a JSON value (what the edge is sent anyway); anything else names the field. */
function jsonCopy(value: unknown, param: string): unknown {
  try {
    return JSON.parse(JSON.stringify(value))
  } catch (error) {
    throw new InvalidArgumentError(
      param,
      `${param} must be plain JSON data (${error instanceof Error ? error.message : String(error)}).`,
    )
  }
}
