// Repetition, presence and frequency penalties. Repetition looks at every previous token (prompt
// included, as Hugging Face does); presence and frequency only at the generated ones (OpenAI's
// definition). One processor, one pass, one rounding to float32 per token: applying them as
// separate processors would round the repetition result to float32 before subtracting the others,
// which changes the specified arithmetic (and so the token another implementation draws).
import { InvalidArgumentError } from '../errors.ts'
import type { LogitsContext, LogitsProcessor } from './logits-processor.ts'

export interface Penalties {
  /** > 0; 1 = off. Divides positive / multiplies negative logits of every token seen. */
  readonly repetitionPenalty: number
  /** Subtracted once from every generated token. */
  readonly presencePenalty: number
  /** Subtracted per occurrence in the generated tokens. */
  readonly frequencyPenalty: number
}

/** True when the penalties change nothing (the Sampler then leaves the processor out). */
export function penaltiesOff(penalties: Penalties): boolean {
  return (
    penalties.repetitionPenalty === 1 && penalties.presencePenalty === 0 && penalties.frequencyPenalty === 0
  )
}

export class PenaltiesProcessor implements LogitsProcessor {
  readonly #penalties: Penalties

  constructor(penalties: Penalties) {
    this.#penalties = penalties
  }

  process(logits: Float32Array, context: LogitsContext): void {
    const { previousTokenIds, promptLength } = context
    const size = logits.length
    const repetition = this.#penalties.repetitionPenalty
    const presence = this.#penalties.presencePenalty
    const frequency = this.#penalties.frequencyPenalty
    // Occurrences in the generated part; prompt tokens count 0 but are still "seen" (repetition).
    const counts = new Map<number, number>()
    for (let index = 0; index < previousTokenIds.length; index++) {
      const id = previousTokenIds[index]!
      if (!(id >= 0 && id < size && Number.isInteger(id))) {
        throw new InvalidArgumentError(
          `previousTokenIds.${index}`,
          `Token id ${id} is outside the logits vector (0..${size - 1}).`,
        )
      }
      const generated = index >= promptLength ? 1 : 0
      counts.set(id, (counts.get(id) ?? 0) + generated)
    }
    for (const [id, count] of counts) {
      let value = logits[id]!
      if (repetition !== 1) value = value > 0 ? value / repetition : value * repetition
      if (count > 0) value -= presence + frequency * count
      logits[id] = value
    }
  }
}
