// The context a session opens with: the caller's cap (the runtime's `contextLength` option, a
// server's MODEL_CONTEXT_LENGTH or --context) within what the model was built for. A cap above the
// model's context is refused rather than quietly lowered: the operator asked for a context the
// model cannot give, and would otherwise size memory and limits for one it does not have.
import { InvalidArgumentError } from './errors.ts'

/** `requested` (or the model's own context when unset), checked against `modelMaximum`. */
export function sessionContextLength(requested: number | undefined, modelMaximum: number): number {
  if (requested === undefined) return modelMaximum
  if (!Number.isInteger(requested) || requested < 1)
    throw new InvalidArgumentError(
      'contextLength',
      `contextLength must be a positive integer, got ${String(requested)}.`,
    )
  if (requested > modelMaximum)
    throw new InvalidArgumentError(
      'contextLength',
      `contextLength ${requested} is above the model's context of ${modelMaximum} tokens (its config.json's max_position_embeddings); ask for at most ${modelMaximum}, or leave it out for the model's own.`,
    )
  return requested
}
