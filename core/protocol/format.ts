// `ondevice_format`, the weight format and backend a request asks to be answered in: its
// validation (the worker's for the wire field, the SDK's for the same object before it sends
// it) and the response headers that name what answered.
import { backends, knownDtypes } from '../weight-format.ts'
import { fail, type JsonObject } from './checks.ts'

/** Response headers naming what answers and the prompt's size (known before the first token, unlike usage). */
export const formatHeaderNames = {
  dtype: 'x-ondevice-dtype',
  backend: 'x-ondevice-backend',
  /**
   * core's packageFingerprint of the weights that answer: a handoff is continued only where it
   * equals the device's (other weights would continue the answer with other tokens).
   */
  package: 'x-ondevice-package',
  /** Why the request's ondevice_format was not honoured (it allowed a fallback). */
  fallback: 'x-ondevice-format-fallback',
  /**
   * The prompt's token count (usage.prompt_tokens), known before the first token: a client that
   * aborts a stream (and so never reads the final usage) still knows it.
   */
  promptTokens: 'x-ondevice-prompt-tokens',
} as const

/**
 * Checks an `ondevice_format` object: dtype and backend from core's lists (at least one of them),
 * fallback a boolean, no other key. `param` names the field in errors (the SDK's is `format`).
 */
export function validateFormat(value: unknown, param = 'ondevice_format'): void {
  const shape = `${param} must be an object like { "dtype": "q4", "backend": "wasm" } (add "fallback": true to accept another format rather than a refusal).`
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(param, shape)
  const format = value as JsonObject
  for (const key of Object.keys(format)) {
    if (key !== 'dtype' && key !== 'backend' && key !== 'fallback')
      fail(`${param}.${key.slice(0, 64)}`, `Unknown field ${param}.${key.slice(0, 64)}: ${shape}`)
  }
  const { dtype, backend, fallback } = format
  if (dtype === undefined && backend === undefined)
    fail(param, `${param} names neither dtype nor backend: ${shape}`)
  if (dtype !== undefined && (typeof dtype !== 'string' || !knownDtypes.includes(dtype))) {
    fail(
      `${param}.dtype`,
      `${param}.dtype is ${JSON.stringify(dtype)?.slice(0, 64)}; use one of ${knownDtypes.join(', ')}${dtype === 'quantized' ? " ('quantized' is q8)" : ''}.`,
    )
  }
  if (
    backend !== undefined &&
    (typeof backend !== 'string' || !(backends as readonly string[]).includes(backend))
  ) {
    fail(
      `${param}.backend`,
      `${param}.backend is ${JSON.stringify(backend)?.slice(0, 64)}; use one of ${backends.join(', ')} ('wasm' is ondevice's WebAssembly engine, 'ort-wasm' onnxruntime-web's, 'native' ONNX Runtime's native Node build).`,
    )
  }
  if (fallback !== undefined && typeof fallback !== 'boolean')
    fail(`${param}.fallback`, `${param}.fallback must be true or false.`)
}
