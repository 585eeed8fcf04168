// Stop strings are matched on decoded text, not on tokens: "\n\nUser:" may arrive as one token or
// as four. Text that could still turn into a stop string is held back until it either completes
// the stop (and is dropped with everything after it) or stops matching (and is released), so a
// stop string never leaks into the output.
import { InvalidArgumentError } from './errors.ts'

export interface StopStringResult {
  /** Text safe to show now. */
  readonly text: string
  /** True when a stop string was found; `text` ends right before it. */
  readonly stopped: boolean
}

/** Checks a stop list; an empty string would stop before the first character, so it is refused. */
export function validateStopStrings(stop: unknown, param = 'stop'): readonly string[] {
  if (stop === undefined) return []
  if (!Array.isArray(stop)) throw new InvalidArgumentError(param, `${param} must be an array of strings.`)
  stop.forEach((value: unknown, index) => {
    if (typeof value !== 'string' || value.length === 0) {
      throw new InvalidArgumentError(`${param}.${index}`, `${param}.${index} must be a non-empty string.`)
    }
  })
  return stop as readonly string[]
}

export class StopStringMatcher {
  readonly #stops: readonly string[]
  #pending = ''
  #stopped = false

  constructor(stops: readonly string[]) {
    this.#stops = validateStopStrings(stops)
  }

  get stopped(): boolean {
    return this.#stopped
  }

  /** Feeds newly decoded text; returns what may be shown and whether a stop string ended it. */
  push(text: string): StopStringResult {
    if (this.#stopped) return { text: '', stopped: true }
    if (this.#stops.length === 0) return { text, stopped: false }
    const pending = this.#pending + text
    let earliest = -1
    for (const stop of this.#stops) {
      const index = pending.indexOf(stop)
      if (index !== -1 && (earliest === -1 || index < earliest)) earliest = index
    }
    if (earliest !== -1) {
      this.#stopped = true
      this.#pending = ''
      return { text: pending.slice(0, earliest), stopped: true }
    }
    const hold = this.#heldSuffixLength(pending)
    this.#pending = pending.slice(pending.length - hold)
    return { text: pending.slice(0, pending.length - hold), stopped: false }
  }

  /** Releases held text at the end of generation (it did not become a stop string). */
  flush(): string {
    const rest = this.#stopped ? '' : this.#pending
    this.#pending = ''
    return rest
  }

  // The longest suffix of `text` that is a proper prefix of some stop string.
  #heldSuffixLength(text: string): number {
    let longest = 0
    for (const stop of this.#stops) {
      const maximum = Math.min(stop.length - 1, text.length)
      for (let length = maximum; length > longest; length--) {
        if (text.endsWith(stop.slice(0, length))) {
          longest = length
          break
        }
      }
    }
    return longest
  }
}
