// response_format: what the answer must look like. Only { type: "text" } today; anything else is
// refused as unsupported (never silently ignored).
import { OndeviceError } from '../errors.ts'
import type { JsonObject } from './checks.ts'

/** Checks the request's `response_format` (absent or null is fine). */
export function validateResponseFormat(responseFormat: unknown): void {
  if (responseFormat !== undefined && responseFormat !== null) {
    const type = typeof responseFormat === 'object' ? (responseFormat as JsonObject)['type'] : undefined
    if (type !== 'text') {
      throw new OndeviceError(
        'unsupported',
        `response_format ${JSON.stringify(type)} is not supported: only { type: "text" }. Ask for JSON in the prompt instead.`,
        {
          param: 'response_format.type',
        },
      )
    }
  }
}
