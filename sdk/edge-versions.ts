// A newer SDK in front of an edge deployed from an older ondevice: a web app upgraded before its
// Worker was redeployed. Such an edge refuses, as a 400 naming it, a request field it does not
// know (its validator refuses every unknown field). This file recognises the refusals that mean
// "older edge" rather than "wrong request", from the error's code and param alone, and says what
// to do about them; the edge client decides whether a request can be asked again without the field.
import { EdgeError, OndeviceError } from '../core/errors.ts'

/** The weight format a request asks the edge for (`ondevice_format`). */
export interface RequestedFormat {
  readonly dtype?: string
  readonly backend?: string
  readonly fallback?: boolean
}

/** "q8 on wasm", "q8 on any backend", "any dtype on wasm". */
export function describeRequestedFormat(format: RequestedFormat): string {
  return `${format.dtype ?? 'any dtype'} on ${format.backend ?? 'any backend'}`
}

/**
 * The edge's refusal of `ondevice_format` as invalid: an edge older than the field answers 400
 * `invalid_argument` with param `ondevice_format` ('Unknown field "ondevice_format"'), and one
 * older than a dtype or backend name this SDK knows refuses `ondevice_format.dtype` /
 * `ondevice_format.backend`. The edge client checks the object against the same lists before it
 * sends it (core/protocol/format.ts), so an edge of this version never answers so: the refusal
 * says the edge is older, not that the request is wrong. (An edge that knows the field but does
 * not serve the format answers `unsupported` instead, which is not this.)
 */
export function isFormatFieldRefusal(error: unknown): error is OndeviceError {
  return (
    error instanceof OndeviceError &&
    error.code === 'invalid_argument' &&
    (error.param === 'ondevice_format' || error.param?.startsWith('ondevice_format.') === true)
  )
}

/**
 * What the answer says when the edge was asked again without `ondevice_format` (the request
 * allowed a fallback): it answered in its own format, which usage's dtype and backend name.
 */
export function formatFieldFallbackNote(
  url: string,
  format: RequestedFormat,
  refusal: OndeviceError,
): string {
  return `the edge at ${url} runs an ondevice older than this SDK: it refused ${refusal.param} as unknown, so it was asked again without ondevice_format and answered in its own format, not ${describeRequestedFormat(format)}; redeploy the edge for an exact continuation`
}

/** The error for a request that named an exact format (no fallback) to an edge older than the field. */
export function formatFieldRefused(url: string, format: RequestedFormat, refusal: OndeviceError): EdgeError {
  return new EdgeError(
    'unsupported',
    `The edge at ${url} runs an ondevice older than this SDK: it refused ${refusal.param} as unknown (${edgeSays(refusal)}), so it cannot be asked to answer in ${describeRequestedFormat(format)}. Redeploy the edge from this version of ondevice (wrangler deploy for a Worker, a new image or ondevice serve for a container), or set format.fallback: true to accept its own format.`,
    { param: 'format', isRetryable: false, cause: refusal },
  )
}

/**
 * An edge from before structured output refuses `response_format` json_object / json_schema at
 * `response_format.type` (`unsupported`; no edge of this version refuses those two types, the
 * only ones the SDK sends), which the edge client reads as `responseFormat.type`. The constraint
 * is never dropped: the answer fails with what to do.
 */
export function structuredOutputRefused(url: string, error: unknown): EdgeError | undefined {
  if (
    !(error instanceof OndeviceError) ||
    error.param !== 'responseFormat.type' ||
    (error.code !== 'unsupported' && error.code !== 'invalid_argument')
  ) {
    return undefined
  }
  return new EdgeError(
    'unsupported',
    `The edge at ${url} cannot enforce responseFormat (${edgeSays(error)}): it runs an ondevice older than structured output. Redeploy the edge from this version of ondevice, or let the device answer this request.`,
    { param: 'responseFormat', isRetryable: false, cause: error },
  )
}

/** The edge's own words, without the status prefix fromErrorBody adds or a final period. */
function edgeSays(error: OndeviceError): string {
  return `it answered: ${error.message.replace(/^The edge answered HTTP \d+: /, '').replace(/\.$/, '')}`
}
