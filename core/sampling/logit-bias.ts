// OpenAI's logit_bias: a fixed value added to chosen tokens' logits (-100 effectively bans one).
import { InvalidArgumentError } from '../errors.ts'
import type { LogitsProcessor } from './logits-processor.ts'

export class LogitBiasProcessor implements LogitsProcessor {
  readonly #bias: ReadonlyMap<number, number>

  /** `bias`: token id → value, already checked by resolveSamplingOptions. */
  constructor(bias: ReadonlyMap<number, number>) {
    this.#bias = bias
  }

  process(logits: Float32Array): void {
    const size = logits.length
    for (const [id, bias] of this.#bias) {
      // The vocabulary size is known only now: a bias for a token past its end is the caller's mistake.
      if (id >= size) {
        throw new InvalidArgumentError(
          `logitBias.${id}`,
          `logitBias names token ${id}, but the vocabulary has ${size} tokens.`,
        )
      }
      logits[id]! += bias
    }
  }
}
