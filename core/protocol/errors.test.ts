import { describe, expect, it } from 'vitest'
import { ContextLengthError, EdgeError, errorCodes, InvalidArgumentError } from '../errors.ts'
import { errorStatus, fromErrorBody, toErrorBody } from './errors.ts'

describe('toErrorBody (the worker)', () => {
  it('writes OpenAI error bodies with our code, the OpenAI type and a status for every code', () => {
    expect(toErrorBody('invalid_argument', 'temperature must be ≥ 0', 'temperature')).toEqual({
      error: {
        message: 'temperature must be ≥ 0',
        type: 'invalid_request_error',
        param: 'temperature',
        code: 'invalid_argument',
      },
    })
    expect(toErrorBody('rate_limited', 'slow down').error).toMatchObject({
      type: 'rate_limit_error',
      param: null,
    })
    expect(errorStatus('context_length_exceeded')).toBe(400)
    expect(errorStatus('backend_unavailable')).toBe(503)
    for (const code of errorCodes) expect(errorStatus(code), code).toBeGreaterThanOrEqual(400)
  })

  it('every code the worker writes reads back as the same code and class', () => {
    for (const code of errorCodes) {
      const error = fromErrorBody(
        errorStatus(code),
        toErrorBody(code, 'm', code === 'invalid_argument' ? 'x' : null),
      )
      expect(error.code, code).toBe(code)
      const expectedClass =
        code === 'invalid_argument'
          ? InvalidArgumentError
          : code === 'context_length_exceeded'
            ? ContextLengthError
            : EdgeError
      expect(error, code).toBeInstanceOf(expectedClass)
    }
  })
})

describe('fromErrorBody (the SDK)', () => {
  it('maps OpenAI error bodies to the library classes, keeping param, code and retryability', () => {
    const invalid = fromErrorBody(400, {
      error: {
        message: 'temperature must be ≥ 0',
        type: 'invalid_request_error',
        param: 'temperature',
        code: 'invalid_argument',
      },
    })
    expect(invalid).toBeInstanceOf(InvalidArgumentError)
    expect(invalid).toMatchObject({ param: 'temperature', isRetryable: false })
    expect(invalid.message).toBe('The edge answered HTTP 400: temperature must be ≥ 0')

    const tooLong = fromErrorBody(422, {
      error: {
        message: 'prompt too long',
        type: 'invalid_request_error',
        param: 'messages',
        code: 'context_length_exceeded',
      },
    })
    expect(tooLong).toBeInstanceOf(ContextLengthError)
    expect(tooLong.param).toBe('messages')

    // The field at fault is kept for every code: an edge that cannot serve a format names it.
    const unsupported = fromErrorBody(400, {
      error: {
        message: 'not served',
        type: 'invalid_request_error',
        param: 'ondevice_format',
        code: 'unsupported',
      },
    })
    expect(unsupported).toBeInstanceOf(EdgeError)
    expect(unsupported).toMatchObject({ code: 'unsupported', param: 'ondevice_format', isRetryable: false })

    const limited = fromErrorBody(
      429,
      { error: { message: 'slow down', type: 'rate_limit_error', param: null, code: 'rate_limited' } },
      7,
    )
    expect(limited).toBeInstanceOf(EdgeError)
    expect(limited).toMatchObject({ code: 'rate_limited', isRetryable: true, retryAfterSeconds: 7 })

    expect(fromErrorBody(401, {})).toMatchObject({ code: 'unauthorized', isRetryable: false })
    expect(fromErrorBody(502, 'Bad Gateway')).toMatchObject({ code: 'edge_failed', isRetryable: true })
    expect(fromErrorBody(503, { error: { message: 'loading', code: 'something_else' } })).toMatchObject({
      code: 'edge_unavailable',
      isRetryable: true,
    })
    // A mid-stream error event has no status: its code decides.
    expect(
      fromErrorBody(undefined, { error: { message: 'device lost', code: 'backend_failed' } }),
    ).toMatchObject({
      code: 'backend_failed',
      isRetryable: true,
    })
  })
})
