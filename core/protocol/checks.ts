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

/**
 * Refuses a key `object` does not define, naming it (`${at}.${key}`). A misspelt or misplaced key
 * would otherwise be dropped with what it carried, and the request answered without it: a tool's
 * `parameters` one level too high (no schema enforced), a `schema` beside `type: "json_object"`
 * (any object), an Ollama-style `images` list. `hints` says, for a key clients are known to send,
 * where it belongs; else `expected` lists the keys the object takes.
 */
export function refuseUnknownKeys(
  object: JsonObject,
  known: ReadonlySet<string>,
  at: string,
  expected: string,
  hints: Readonly<Record<string, string>> = {},
): void {
  for (const key of Object.keys(object)) {
    if (known.has(key)) continue
    // The client chose the key: a bounded prefix names it.
    const shown = key.slice(0, 64)
    // Own keys only: a key named `constructor` must not find Object.prototype's.
    const hint = Object.hasOwn(hints, key) ? hints[key] : undefined
    fail(`${at}.${shown}`, `Unknown field ${at}.${shown}: ${hint ?? expected}`)
  }
}

/** How many characters of a client's own value a refusal quotes: enough to recognise it. */
const quotedLength = 64

/**
 * The start of a client's string for an error message, `…` where it was cut. Refusals quote what
 * they refuse; quoted whole, a 100,000-character model id came back whole in the 404.
 */
export function clip(text: string, maxLength = quotedLength): string {
  return text.length > maxLength ? `${text.slice(0, maxLength)}…` : text
}

/** A client's value as JSON for an error message (`"role"`, `5`, `null`), a string's start only. */
export function quote(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(clip(value))
  return clip(JSON.stringify(value) ?? String(value))
}
