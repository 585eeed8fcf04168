import { describe, expect, it } from 'vitest'
import {
  AbortedError,
  BackendError,
  ContextLengthError,
  deserializeError,
  EdgeError,
  InvalidArgumentError,
  ModelError,
  OndeviceError,
  StoreError,
  serializeError,
  TemplateError,
  TokenizerError,
  toOndeviceError,
} from './errors.ts'

// What crossing a Web Worker (structured clone) or HTTP (JSON) boundary does to an error.
function crossBoundary(error: unknown): OndeviceError {
  return deserializeError(JSON.parse(JSON.stringify(serializeError(error))))
}

describe('errors', () => {
  const samples: OndeviceError[] = [
    new InvalidArgumentError('messages.0.content', 'messages.0.content must be a string.'),
    new ModelError('model_invalid', 'config.json lacks model_type.'),
    new StoreError('storage_quota_exceeded', 'Not enough storage.', { isRetryable: false }),
    new BackendError('backend_failed', 'WebGPU device lost.', { isRetryable: true }),
    new ContextLengthError('Too long.', { param: 'messages' }),
    new AbortedError(),
    new EdgeError('rate_limited', 'Slow down.', { isRetryable: true, retryAfterSeconds: 3 }),
    new TokenizerError('tokenizer.json is not JSON.', { param: 'tokenizerJson' }),
    new TemplateError('The template failed.'),
    new OndeviceError('unsupported', 'No.'),
  ]

  it.each(samples.map((error) => [error.name, error] as const))(
    '%s survives serialize → JSON → deserialize',
    (_name, error) => {
      const back = crossBoundary(error)
      expect(back).toBeInstanceOf(error.constructor)
      expect(back).toBeInstanceOf(OndeviceError)
      expect(back.name).toBe(error.name)
      expect(back.code).toBe(error.code)
      expect(back.message).toBe(error.message)
      expect(back.isRetryable).toBe(error.isRetryable)
      expect(back.param).toBe(error.param)
      expect(back.retryAfterSeconds).toBe(error.retryAfterSeconds)
    },
  )

  it('keeps the chain of earlier attempts', () => {
    const error = new EdgeError('edge_unavailable', 'Device and edge both failed.', {
      attempts: [new BackendError('backend_failed', 'WASM trap.', { isRetryable: true }), new AbortedError()],
    })
    const back = crossBoundary(error)
    expect(back.attempts).toHaveLength(2)
    expect(back.attempts[0]).toBeInstanceOf(BackendError)
    expect(back.attempts[0]!.isRetryable).toBe(true)
    expect(back.attempts[1]).toBeInstanceOf(AbortedError)
  })

  it('turns foreign errors into internal ones and leaves ours alone', () => {
    expect(serializeError(new TypeError('x is undefined'))).toEqual({
      name: 'OndeviceError',
      code: 'internal',
      message: 'x is undefined',
      isRetryable: false,
    })
    expect(serializeError('plain string').message).toBe('plain string')
    const ours = new AbortedError()
    expect(toOndeviceError(ours)).toBe(ours)
    const wrapped = toOndeviceError(new Error('socket closed'), 'edge_failed', true)
    expect(wrapped).toMatchObject({ code: 'edge_failed', isRetryable: true, message: 'socket closed' })
    expect(wrapped.cause).toBeInstanceOf(Error)
  })

  it('rebuilds an unknown error class as the base class with its code', () => {
    const back = deserializeError({
      name: 'FutureError',
      code: 'overloaded',
      message: 'Busy.',
      isRetryable: true,
    })
    expect(back).toBeInstanceOf(OndeviceError)
    expect(back.code).toBe('overloaded')
  })
})
