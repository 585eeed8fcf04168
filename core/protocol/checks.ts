// Small checks the validator composes; each failure names the field and says how to fix it.
import { InvalidArgumentError } from '../errors.ts'

export type JsonObject = Record<string, unknown>

/** A rule for a number: undefined when fine, else the fix to put in the message. */
export type NumberCheck = (value: number) => string | undefined

export function fail(param: string, message: string): never {
  throw new InvalidArgumentError(param, message)
}

export function optionalNumber(body: JsonObject, field: string, check: NumberCheck): void {
  const value = body[field]
  if (value === undefined || value === null) return
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    fail(field, `${field} must be a finite number (got ${JSON.stringify(value) ?? String(value)}).`)
  }
  const problem = check(value)
  if (problem !== undefined) fail(field, `${field} is ${value}: ${problem}`)
}

export const range = (minimum: number, maximum: number, note = ''): NumberCheck => {
  return (value) =>
    value < minimum || value > maximum ? `use a value in [${minimum}, ${maximum}]${note}.` : undefined
}

export const wholeAtLeast = (minimum: number, note = ''): NumberCheck => {
  return (value) =>
    !Number.isInteger(value) || value < minimum ? `use a whole number ≥ ${minimum}${note}.` : undefined
}
