// One error path for the whole app: every failure becomes an OpenAI-shaped JSON body with a
// status a client can act on (the mapping is the wire format's: core/protocol/errors.ts). This
// file adds what belongs to the server: the request id in place of an internal error's detail,
// and Retry-After. Nothing here ever puts a stack trace on the wire.
import { type ErrorCode, OndeviceError } from '../core/errors.ts'
import { errorStatus, type OpenAIErrorBody, toErrorBody } from '../core/protocol/index.ts'

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
  const status = errorStatus(code)
  // Foreign errors (a bug, a library throwing) keep their detail out of the response: the
  // request id ties the client's report to the server log line that has it.
  const message =
    known && code !== 'internal'
      ? known.message
      : `The server failed to answer this request (request id ${requestId}). Retry; if it persists, report the request id to the operator.`
  const headers: Record<string, string> = {}
  const retryAfter = known?.retryAfterSeconds ?? (status === 429 || status === 503 ? 1 : undefined)
  if (retryAfter !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfter)))
  return {
    status,
    code,
    headers,
    body: toErrorBody(code, message, known?.param ?? null),
  }
}
