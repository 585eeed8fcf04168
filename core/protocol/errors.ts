// Errors both ways. The worker writes every failure as OpenAI's `{ error: { message, type, param,
// code } }` with `code` one of our ErrorCodes and an HTTP status a client can act on; the SDK
// reads such a body (or whatever a proxy sent instead) back into the same error class, with
// isRetryable and Retry-After.
import {
  ContextLengthError,
  EdgeError,
  type ErrorCode,
  InvalidArgumentError,
  isErrorCode,
  type OndeviceError,
} from '../errors.ts'
import type { OpenAIErrorBody } from './types.ts'

interface WireError {
  readonly status: number
  readonly type: string
}

const invalidRequest = 'invalid_request_error'

// Failures that are the caller's to fix map to 4xx; failures on our side that retrying may
// cure (the model could not load, a backend fault) map to 503 so clients and the SDK retry or
// fall back instead of treating them as a bug.
const wireErrors: Readonly<Record<ErrorCode, WireError>> = {
  invalid_argument: { status: 400, type: invalidRequest },
  unsupported: { status: 400, type: invalidRequest },
  template_failed: { status: 400, type: invalidRequest },
  tokenizer_invalid: { status: 503, type: 'server_error' },
  unauthorized: { status: 401, type: 'authentication_error' },
  not_found: { status: 404, type: invalidRequest },
  model_not_found: { status: 404, type: invalidRequest },
  payload_too_large: { status: 413, type: invalidRequest },
  // The request's body did not arrive in full in time (a stalled or very slow upload): 408, as
  // HTTP servers answer it; retryable, since a slow link may be faster on the next try.
  request_timeout: { status: 408, type: invalidRequest },
  // 400, as OpenAI answers it (its clients raise BadRequestError; 422 was UnprocessableEntityError).
  context_length_exceeded: { status: 400, type: invalidRequest },
  rate_limited: { status: 429, type: 'rate_limit_error' },
  overloaded: { status: 429, type: 'rate_limit_error' },
  model_invalid: { status: 503, type: 'server_error' },
  integrity_failed: { status: 503, type: 'server_error' },
  download_failed: { status: 503, type: 'server_error' },
  storage_quota_exceeded: { status: 503, type: 'server_error' },
  backend_unavailable: { status: 503, type: 'server_error' },
  edge_unavailable: { status: 503, type: 'server_error' },
  // The edge is up and its model is loading (a cold container): 503 + Retry-After, retryable.
  edge_starting: { status: 503, type: 'server_error' },
  backend_failed: { status: 500, type: 'server_error' },
  edge_failed: { status: 500, type: 'server_error' },
  // The client went away: nobody reads this answer, but the log line records it as 499.
  aborted: { status: 499, type: invalidRequest },
  internal: { status: 500, type: 'server_error' },
}

/** The HTTP status an error code is answered with. */
export function errorStatus(code: ErrorCode): number {
  return (wireErrors[code] ?? wireErrors.internal).status
}

/** The OpenAI error body for one of our failures. */
export function toErrorBody(code: ErrorCode, message: string, param: string | null = null): OpenAIErrorBody {
  return { error: { message, type: (wireErrors[code] ?? wireErrors.internal).type, param, code } }
}

// Codes whose failure a retry (here or on the other side) may cure.
const retryableCodes: ReadonlySet<ErrorCode> = new Set([
  'rate_limited',
  'overloaded',
  'request_timeout',
  'edge_unavailable',
  'edge_starting',
  'backend_unavailable',
  'backend_failed',
  'edge_failed',
  'internal',
  'model_invalid',
  'download_failed',
])

/** The code a status means when the body names none of ours (a proxy, another server). */
function codeForStatus(status: number): ErrorCode {
  if (status === 400) return 'invalid_argument'
  if (status === 401 || status === 403) return 'unauthorized'
  if (status === 404) return 'not_found'
  if (status === 408) return 'request_timeout'
  if (status === 413) return 'payload_too_large'
  // Edges from before context_length_exceeded was a 400 (the body's code comes first anyway).
  if (status === 422) return 'context_length_exceeded'
  if (status === 429) return 'rate_limited'
  if (status === 503) return 'edge_unavailable'
  return 'edge_failed'
}

interface OpenAIErrorLike {
  readonly message?: unknown
  readonly param?: unknown
  readonly code?: unknown
}

/**
 * An error answer as the library's error class. `status` is undefined for an error event in the
 * middle of a stream (its code decides); `body` is untrusted: a non-JSON answer arrives here as
 * `{ error: { message: <its text> } }` or as anything else.
 */
export function fromErrorBody(
  status: number | undefined,
  body: unknown,
  retryAfterSeconds?: number,
): OndeviceError {
  const detail: OpenAIErrorLike =
    typeof body === 'object' &&
    body !== null &&
    'error' in body &&
    typeof body.error === 'object' &&
    body.error
      ? (body.error as OpenAIErrorLike)
      : {}
  const bodyCode = isErrorCode(detail.code) ? detail.code : undefined
  const code = bodyCode ?? (status === undefined ? 'edge_failed' : codeForStatus(status))
  const serverMessage = typeof detail.message === 'string' ? detail.message : undefined
  const where = status === undefined ? 'The edge' : `The edge answered HTTP ${status}`
  const message = serverMessage ? `${where}: ${serverMessage}` : `${where} without an error message.`
  const isRetryable = retryableCodes.has(code) || (status !== undefined && status >= 500)
  const options = { isRetryable, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) }
  const param = typeof detail.param === 'string' && detail.param !== '' ? detail.param : undefined
  if (code === 'invalid_argument') return new InvalidArgumentError(param ?? '', message, options)
  // The field at fault for the other codes too (an `unsupported` format or response_format), so a
  // client can tell which part of its request the edge could not serve.
  const withParam = { ...options, ...(param === undefined ? {} : { param }) }
  if (code === 'context_length_exceeded') return new ContextLengthError(message, withParam)
  return new EdgeError(code, message, withParam)
}
