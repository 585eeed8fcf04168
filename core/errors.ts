// One error class for the whole library. Every failure carries a stable `code` a program can
// branch on, whether retrying can help (`isRetryable`), and a message that says what to do.
// Errors cross Web Worker and HTTP boundaries as plain JSON and come back as the same class.

/** Every error code, in one list: the HTTP mapping and the edge client's decoder are checked against it. */
export const errorCodes = [
  'invalid_argument',
  'tokenizer_invalid',
  'template_failed',
  'model_invalid',
  'model_not_found',
  'integrity_failed',
  'download_failed',
  'storage_quota_exceeded',
  'context_length_exceeded',
  'backend_unavailable',
  'backend_failed',
  'aborted',
  'edge_unavailable',
  'edge_starting',
  'edge_failed',
  'unauthorized',
  'rate_limited',
  'overloaded',
  'not_found',
  'payload_too_large',
  'request_timeout',
  'unsupported',
  'internal',
] as const

export type ErrorCode = (typeof errorCodes)[number]

const knownCodes: ReadonlySet<string> = new Set(errorCodes)

/** True for a string that is one of our codes (a server's `code` field may be anything). */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && knownCodes.has(value)
}

/**
 * The part of an answer produced before it failed or was aborted (set by the SDK's `chat()`): the
 * text and token ids its stream showed before the error, and the reasoning apart (a thinking
 * model's). What `stream()` gives as parts before its error part, for the caller who awaited one
 * result.
 */
export interface PartialAnswer {
  readonly text: string
  readonly reasoning?: string
  readonly tokenIds: readonly number[]
}

export interface SerializedError {
  readonly name: string
  readonly code: ErrorCode
  readonly message: string
  readonly isRetryable: boolean
  /** The request field at fault (for invalid_argument), as a dotted path like `messages.0.content`. */
  readonly param?: string
  /** Seconds to wait before retrying (rate_limited / overloaded). */
  readonly retryAfterSeconds?: number
  /** Earlier failures that led here (a fallback chain lists every attempt). */
  readonly attempts?: readonly SerializedError[]
  /** The answer produced before the failure (chat()). */
  readonly partialAnswer?: PartialAnswer
}

export interface OndeviceErrorOptions {
  readonly isRetryable?: boolean
  readonly param?: string
  readonly retryAfterSeconds?: number
  readonly attempts?: readonly OndeviceError[]
  readonly partialAnswer?: PartialAnswer
  readonly cause?: unknown
}

export class OndeviceError extends Error {
  override readonly name: string = 'OndeviceError'
  readonly code: ErrorCode
  readonly isRetryable: boolean
  readonly param: string | undefined
  readonly retryAfterSeconds: number | undefined
  readonly attempts: readonly OndeviceError[]
  /**
   * The answer's start, when `chat()` rejects after part of it was produced (a device failing
   * mid-answer with no edge to take over, the edge failing mid-stream, an abort): its text, token
   * ids and reasoning so far. Undefined when nothing was produced, and on errors from elsewhere.
   */
  readonly partialAnswer: PartialAnswer | undefined

  constructor(code: ErrorCode, message: string, options: OndeviceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.isRetryable = options.isRetryable ?? false
    this.param = options.param
    this.retryAfterSeconds = options.retryAfterSeconds
    this.attempts = options.attempts ?? []
    this.partialAnswer = options.partialAnswer
  }

  toJSON(): SerializedError {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      isRetryable: this.isRetryable,
      ...(this.param === undefined ? {} : { param: this.param }),
      ...(this.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: this.retryAfterSeconds }),
      ...(this.attempts.length === 0 ? {} : { attempts: this.attempts.map((a) => a.toJSON()) }),
      ...(this.partialAnswer === undefined ? {} : { partialAnswer: this.partialAnswer }),
    }
  }
}

/** A caller passed something wrong; `param` names it and the message says how to fix it. */
export class InvalidArgumentError extends OndeviceError {
  override readonly name: string = 'InvalidArgumentError'
  constructor(param: string, message: string, options: Omit<OndeviceErrorOptions, 'param'> = {}) {
    super('invalid_argument', message, { ...options, param })
  }
}

/**
 * Refuses a name `object` has that `known` lacks: a misspelt option (numthreads, apikey) would
 * otherwise be dropped without a word and its default taken. The message names the likely fix
 * (`max_tokens`: "maxTokens", `temprature`: "temperature"; `aliases` for names other APIs use,
 * `max_completion_tokens`: "maxTokens") and says what `what` takes; `param` is the error's param
 * (`edge.` + name for a nested object). A caller's name is quoted by its first 64 characters.
 */
export function refuseUnknownNames(
  object: object,
  known: readonly string[],
  what: string,
  param: (name: string) => string = (name) => name,
  aliases: Readonly<Record<string, string>> = {},
): void {
  for (const key of Object.keys(object)) {
    if (known.includes(key)) continue
    const name = key.slice(0, 64)
    const fix = likelyName(key, known, aliases)
    const snake = fix !== undefined && key.includes('_') && !fix.includes('_')
    const didYouMean =
      fix === undefined ? '' : ` did you mean "${fix}"?${snake ? ' The names here are camelCase.' : ''}`
    throw new InvalidArgumentError(
      param(name),
      `Unknown ${what} ${JSON.stringify(name)}:${didYouMean} It takes ${known.join(', ')}.`,
    )
  }
}

/**
 * The known name a caller most likely meant: an alias, the camelCase of a snake_case name, the
 * same name in other letter case, else the one closest by edit distance (at most 2, one only).
 */
function likelyName(
  key: string,
  known: readonly string[],
  aliases: Readonly<Record<string, string>>,
): string | undefined {
  // Own keys only: a name like `constructor` must not find Object.prototype's.
  if (Object.hasOwn(aliases, key)) return aliases[key]
  if (key.length > 64) return undefined
  const camel = key.toLowerCase().replace(/_+([a-z0-9])/g, (_, letter: string) => letter.toUpperCase())
  const plain = (name: string): string => name.toLowerCase().replaceAll('_', '')
  const same = known.find((name) => name === camel || plain(name) === plain(key))
  if (same !== undefined) return same
  let best: string | undefined
  let bestDistance = 3
  let tied = false
  for (const name of known) {
    const distance = editDistance(plain(key), plain(name))
    if (distance < bestDistance) {
      best = name
      bestDistance = distance
      tied = false
    } else if (distance === bestDistance) tied = true
  }
  // Short names are a letter or two from many others: no guess there.
  return best !== undefined && !tied && key.length >= 4 ? best : undefined
}

/** Levenshtein distance with adjacent transpositions (`modle` is one step from `model`). */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  )
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = rows[i] as number[]
      const above = rows[i - 1] as number[]
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let value = Math.min(
        (above[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (above[j - 1] as number) + cost,
      )
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        value = Math.min(value, ((rows[i - 2] as number[])[j - 2] as number) + 1)
      row[j] = value
    }
  }
  return (rows[a.length] as number[])[b.length] as number
}

/** The model package (or one of its files) is missing, malformed or fails its checks. */
export class ModelError extends OndeviceError {
  override readonly name: string = 'ModelError'
}

/** Downloading, storing or verifying package files failed. */
export class StoreError extends OndeviceError {
  override readonly name: string = 'StoreError'
}

/** The inference backend could not start or failed while running (the SDK hands off to the edge). */
export class BackendError extends OndeviceError {
  override readonly name: string = 'BackendError'
}

/** The prompt (plus the requested output) does not fit the model's context window. */
export class ContextLengthError extends OndeviceError {
  override readonly name: string = 'ContextLengthError'
  constructor(message: string, options: OndeviceErrorOptions = {}) {
    super('context_length_exceeded', message, options)
  }
}

/** The caller's AbortSignal fired. */
export class AbortedError extends OndeviceError {
  override readonly name: string = 'AbortedError'
  constructor(message = 'The request was aborted by its AbortSignal.', options: OndeviceErrorOptions = {}) {
    super('aborted', message, options)
  }
}

/** The edge worker refused or failed the request (carries the HTTP status where there was one). */
export class EdgeError extends OndeviceError {
  override readonly name: string = 'EdgeError'
}

/** A tokenizer file is missing, is not JSON, or describes a tokenizer we cannot build. */
export class TokenizerError extends OndeviceError {
  override readonly name: string = 'TokenizerError'
  constructor(message: string, options: OndeviceErrorOptions = {}) {
    super('tokenizer_invalid', message, options)
  }
}

/** The chat template failed to parse or render (the message names the template's own complaint). */
export class TemplateError extends OndeviceError {
  override readonly name: string = 'TemplateError'
  constructor(message: string, options: OndeviceErrorOptions = {}) {
    super('template_failed', message, options)
  }
}

const constructors: Record<string, (s: SerializedError) => OndeviceError> = {
  TokenizerError: (s) => new TokenizerError(s.message, options(s)),
  TemplateError: (s) => new TemplateError(s.message, options(s)),
  InvalidArgumentError: (s) => new InvalidArgumentError(s.param ?? '', s.message, options(s)),
  ModelError: (s) => new ModelError(s.code, s.message, options(s)),
  StoreError: (s) => new StoreError(s.code, s.message, options(s)),
  BackendError: (s) => new BackendError(s.code, s.message, options(s)),
  ContextLengthError: (s) => new ContextLengthError(s.message, options(s)),
  AbortedError: (s) => new AbortedError(s.message, options(s)),
  EdgeError: (s) => new EdgeError(s.code, s.message, options(s)),
}

function options(s: SerializedError): OndeviceErrorOptions {
  return {
    isRetryable: s.isRetryable,
    ...(s.param === undefined ? {} : { param: s.param }),
    ...(s.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: s.retryAfterSeconds }),
    attempts: (s.attempts ?? []).map(deserializeError),
    ...(s.partialAnswer === undefined ? {} : { partialAnswer: s.partialAnswer }),
  }
}

/** Rebuilds the error class from its JSON form (what `toJSON` or `serializeError` produced). */
export function deserializeError(serialized: SerializedError): OndeviceError {
  const make = constructors[serialized.name]
  return make ? make(serialized) : new OndeviceError(serialized.code, serialized.message, options(serialized))
}

/** Any thrown value as JSON; foreign errors become `internal` with their message kept. */
export function serializeError(error: unknown): SerializedError {
  if (error instanceof OndeviceError) return error.toJSON()
  const message = error instanceof Error ? error.message : String(error)
  return { name: 'OndeviceError', code: 'internal', message, isRetryable: false }
}

/** Wraps a foreign error so callers see one class; OndeviceErrors pass through unchanged. */
export function toOndeviceError(
  error: unknown,
  code: ErrorCode = 'internal',
  isRetryable = false,
): OndeviceError {
  if (error instanceof OndeviceError) return error
  const message = error instanceof Error ? error.message : String(error)
  return new OndeviceError(code, message, { isRetryable, cause: error })
}
