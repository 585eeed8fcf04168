// Stop strings are matched on decoded text, not on tokens: "\n\nUser:" may arrive as one token or
// as four. Text that could still turn into a stop string is held back until it either completes
// the stop (and is dropped with everything after it) or stops matching (and is released), so a
// stop string never leaks into the output.
//
// The list comes from untrusted clients, so it is bounded (count and length, as OpenAI bounds it)
// and matched with one Knuth-Morris-Pratt pass per stop string over the text that is held plus the
// new piece: the work per piece is linear in their lengths, never quadratic in a stop's length.
import { InvalidArgumentError } from './errors.ts'

/** Most stop strings one request may carry (OpenAI's limit). */
export const maximumStopStrings = 4
/** Longest stop string, in UTF-16 code units: a stop string is a delimiter, not a document. */
export const maximumStopStringLength = 256

export interface StopStringResult {
  /** Text safe to show now. */
  readonly text: string
  /** True when a stop string was found; `text` ends right before it. */
  readonly stopped: boolean
}

/**
 * Checks a stop list: at most `maximumStopStrings` non-empty strings of at most
 * `maximumStopStringLength` characters (an empty string would stop before the first character).
 */
export function validateStopStrings(stop: unknown, param = 'stop'): readonly string[] {
  if (stop === undefined) return []
  if (!Array.isArray(stop)) throw new InvalidArgumentError(param, `${param} must be an array of strings.`)
  if (stop.length > maximumStopStrings) {
    throw new InvalidArgumentError(
      param,
      `${param} has ${stop.length} strings; send at most ${maximumStopStrings}.`,
    )
  }
  // Every index, holes included (forEach would skip a sparse array's hole, and the matcher crash on it).
  for (let index = 0; index < stop.length; index++) {
    const value: unknown = stop[index]
    if (typeof value !== 'string' || value.length === 0) {
      throw new InvalidArgumentError(`${param}.${index}`, `${param}.${index} must be a non-empty string.`)
    }
    if (value.length > maximumStopStringLength) {
      throw new InvalidArgumentError(
        `${param}.${index}`,
        `${param}.${index} is ${value.length} characters long; stop strings may have at most ${maximumStopStringLength}.`,
      )
    }
  }
  return stop as readonly string[]
}

/**
 * Refuses stop strings next to a JSON answer format. Stop strings apply to content, and under
 * `json_object` / `json_schema` the whole answer is one document that ends when it closes: a stop
 * string could only cut it into invalid JSON, so it is never matched there, and a request that
 * sends both is told rather than having its stop list silently do nothing. `formatParam` names the
 * format field as the caller spells it (`responseFormat`, `response_format`).
 */
export function refuseStopWithDocument(
  stop: readonly string[],
  formatType: unknown,
  formatParam: string,
  param = 'stop',
): void {
  if (stop.length === 0 || (formatType !== 'json_object' && formatType !== 'json_schema')) return
  throw new InvalidArgumentError(
    param,
    `${param} cannot apply with ${formatParam} ${JSON.stringify(formatType)}: stop strings cut content, and this answer is one JSON document that ends when it closes (a stop string could only cut it into invalid JSON). Leave ${param} out of this request.`,
  )
}

/** One stop string with its KMP failure table: `failure[i]` is the longest proper border of stop[0..i]. */
interface CompiledStop {
  readonly text: string
  readonly failure: Int32Array
}

function compile(stop: string): CompiledStop {
  const failure = new Int32Array(stop.length)
  let border = 0
  for (let index = 1; index < stop.length; index++) {
    while (border > 0 && stop.charCodeAt(index) !== stop.charCodeAt(border))
      border = failure[border - 1] as number
    if (stop.charCodeAt(index) === stop.charCodeAt(border)) border++
    failure[index] = border
  }
  return { text: stop, failure }
}

/**
 * Scans `text` for `stop` in one pass. Returns where the first occurrence starts, or, when there
 * is none, `-1 - held` where `held` is the longest suffix of `text` that is a proper prefix of
 * `stop` (the text that may still become it).
 */
function scan(stop: CompiledStop, text: string): number {
  const { text: pattern, failure } = stop
  let matched = 0
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index)
    while (matched > 0 && code !== pattern.charCodeAt(matched)) matched = failure[matched - 1] as number
    if (code === pattern.charCodeAt(matched)) matched++
    if (matched === pattern.length) return index + 1 - pattern.length
  }
  return -1 - matched
}

export class StopStringMatcher {
  readonly #stops: readonly CompiledStop[]
  #pending = ''
  #stopped = false

  constructor(stops: readonly string[]) {
    this.#stops = validateStopStrings(stops).map(compile)
  }

  get stopped(): boolean {
    return this.#stopped
  }

  /** Feeds newly decoded text; returns what may be shown and whether a stop string ended it. */
  push(text: string): StopStringResult {
    if (this.#stopped) return { text: '', stopped: true }
    if (this.#stops.length === 0) return { text, stopped: false }
    // `pending` is shorter than the longest stop string, so each push costs O(stops × (stop + text)).
    const pending = this.#pending + text
    let earliest = -1
    let hold = 0
    for (const stop of this.#stops) {
      const found = scan(stop, pending)
      if (found >= 0) {
        if (earliest === -1 || found < earliest) earliest = found
      } else if (-1 - found > hold) {
        hold = -1 - found
      }
    }
    if (earliest !== -1) {
      this.#stopped = true
      this.#pending = ''
      return { text: pending.slice(0, earliest), stopped: true }
    }
    this.#pending = pending.slice(pending.length - hold)
    return { text: pending.slice(0, pending.length - hold), stopped: false }
  }

  /** Releases held text at the end of generation (it did not become a stop string). */
  flush(): string {
    const rest = this.#stopped ? '' : this.#pending
    this.#pending = ''
    return rest
  }
}
