// Prompts of an exact token length from a package's own tokenizer, the same ids for every engine.
import type { Tokenizer } from '../../../core/tokenizer.ts'

const text =
  'Once upon a time, in a small town by the sea, there lived a girl named Lily who loved to build boats. ' +
  'Every morning she walked to the harbour with her dog Max, and they watched the fishermen mend their nets. ' +
  'One day a storm came, and the little boats were tossed about like leaves, so Lily ran to help. '

/** `length` token ids: BOS (when the model wants one) then the story text, repeated as needed. */
export function promptOfLength(
  tokenizer: Tokenizer,
  length: number,
  bosTokenId: number | undefined,
): number[] {
  const body = tokenizer.encode(text, { addSpecialTokens: false })
  const ids: number[] = bosTokenId === undefined ? [] : [bosTokenId]
  while (ids.length < length) ids.push(...body)
  return ids.slice(0, length)
}
