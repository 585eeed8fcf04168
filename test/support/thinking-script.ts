// Scripts a test session to answer like a thinking model: after the last `<|im_start|>assistant\n`
// of whatever prompt it is given (and the empty `<think>` block a thinking-off prompt ends with),
// it favors `answer`'s tokens, then `<|im_end|>`. Device and edge sessions scripted alike give
// the same answer, so a handoff anywhere must join to it.
import { qwen3Tokenizer } from './qwen3-tokenizer.ts'

const tokenizer = qwen3Tokenizer()
const encode = (text: string) => tokenizer.encode(text, { addSpecialTokens: false })

export const thinkingAnswer = '<think>\nSix sevens make 42.\n</think>\n\nIt is 42.'
export const thinkingReasoning = '\nSix sevens make 42.\n'
export const thinkingText = 'It is 42.'
/**
 * The reasoning tokens of `thinkingAnswer` as usage counts them: the think block with both tags
 * (`<think>` and `</think>` are tokens of their own), not the `\n\n` after it nor the reply.
 */
export const thinkingReasoningTokens = encode(
  thinkingAnswer.slice(0, thinkingAnswer.indexOf('</think>') + '</think>'.length),
).length

export function thinkingScript(
  answer: string = thinkingAnswer,
): (tokens: readonly number[]) => number | undefined {
  const script = [...encode(answer), tokenizer.tokenToId('<|im_end|>') as number]
  const header = encode('<|im_start|>assistant\n')
  const emptyThink = encode('<think>\n\n</think>\n\n')
  const startsAt = (tokens: readonly number[], at: number, part: readonly number[]) =>
    part.every((id, index) => tokens[at + index] === id)
  return (tokens) => {
    let start = -1
    for (let at = tokens.length - header.length; at >= 0; at--) {
      if (startsAt(tokens, at, header)) {
        start = at + header.length
        break
      }
    }
    if (start < 0) return undefined
    if (startsAt(tokens, start, emptyThink)) start += emptyThink.length
    return script[tokens.length - start]
  }
}
