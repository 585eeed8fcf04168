// One error path for the whole app: every failure becomes an OpenAI-shaped JSON body
// `{ error: { message, type, param, code } }` with a status a client can act on. `code` is our
// stable ErrorCode, so the SDK's edge client turns it back into the same OndeviceError class.
// Nothing here ever puts a stack trace on the wire.
import { type ErrorCode, OndeviceError } from '../core/errors.ts'

export interface OpenAIErrorBody {
  readonly error: {
    readonly message: string
    readonly type: string
    readonly param: string | null
    readonly code: string
  }
}

interface StatusRule {
  readonly status: number
  readonly type: string
}

const invalidRequest = 'invalid_request_error'

// Failures that are the caller's to fix map to 4xx; failures on our side that retrying may
// cure (the model could not load, a backend fault) map to 503 so clients and the SDK retry or
// fall back instead of treating them as a bug.
const rules: Record<ErrorCode, StatusRule> = {
  invalid_argument: { status: 400, type: invalidRequest },
  unsupported: { status: 400, type: invalidRequest },
  template_failed: { status: 400, type: invalidRequest },
  tokenizer_invalid: { status: 503, type: 'server_error' },
  unauthorized: { status: 401, type: 'authentication_error' },
  not_found: { status: 404, type: invalidRequest },
  model_not_found: { status: 404, type: invalidRequest },
  payload_too_large: { status: 413, type: invalidRequest },
  context_length_exceeded: { status: 422, type: invalidRequest },
  rate_limited: { status: 429, type: 'rate_limit_error' },
  overloaded: { status: 429, type: 'rate_limit_error' },
  model_invalid: { status: 503, type: 'server_error' },
  integrity_failed: { status: 503, type: 'server_error' },
  download_failed: { status: 503, type: 'server_error' },
  storage_quota_exceeded: { status: 503, type: 'server_error' },
  backend_unavailable: { status: 503, type: 'server_error' },
  edge_unavailable: { status: 503, type: 'server_error' },
  backend_failed: { status: 500, type: 'server_error' },
  edge_failed: { status: 500, type: 'server_error' },
  // The client went away: nobody reads this answer, but the log line records it as 499.
  aborted: { status: 499, type: invalidRequest },
  internal: { status: 500, type: 'server_error' },
}

export interface HttpError {
  readonly status: number
  readonly body: OpenAIErrorBody
  readonly headers: Record<string, string>
  readonly code: ErrorCode
}

/** Maps any thrown value to the status, headers and OpenAI body that go on the wire. */
export function toHttpError(error: unknown, requestId: string): HttpError {
  const known = error instanceof OndeviceError ? error : undefined
  const code: ErrorCode = known?.code ?? 'internal'
  const rule = rules[code] ?? rules.internal
  // Foreign errors (a bug, a library throwing) keep their detail out of the response: the
  // request id ties the client's report to the server log line that has it.
  const message =
    known && code !== 'internal'
      ? known.message
      : `The server failed to answer this request (request id ${requestId}). Retry; if it persists, report the request id to the operator.`
  const headers: Record<string, string> = {}
  const retryAfter = known?.retryAfterSeconds ?? (rule.status === 429 || rule.status === 503 ? 1 : undefined)
  if (retryAfter !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfter)))
  return {
    status: rule.status,
    code,
    headers,
    body: { error: { message, type: rule.type, param: known?.param ?? null, code } },
  }
}

/** The HTTP status an error code maps to. */
export function statusFor(code: ErrorCode): number {
  return (rules[code] ?? rules.internal).status
}
