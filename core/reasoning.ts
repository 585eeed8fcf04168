// Splits a thinking model's answer into its reasoning and the reply, as vLLM's and SGLang's
// reasoning parsers do: Qwen3 answers `<think>\n...\n</think>\n\nThe reply`. The reasoning is what
// comes between the tags, the reply what follows the closing tag, without the whitespace right
// after it; the tags themselves are in neither. A `<think>` opens the reasoning only at the very
// start of the answer (after optional whitespace), or before it, where the rendered prompt ends
// inside an open `<think>` (templates that write `<think>\n` into the generation prompt); later in
// the answer it is just text. Fed the answer's visible text piece by piece, the splitter holds
// back what may still become a tag, so its output depends on the text alone, never on how it was
// cut into pieces: a continuation that replays the same tokens rebuilds the same state.

export const reasoningOpenTag = '<think>'
export const reasoningCloseTag = '</think>'

/**
 * Where an answer starts: 'reasoning' (the prompt ends inside an open `<think>`), 'detect' (a
 * `<think>` at the start opens reasoning) or 'off' (no reasoning: thinking switched off, a model
 * without the tags, a structured answer that starts with its document).
 */
export type ReasoningStart = 'reasoning' | 'detect' | 'off'

/** What one piece of the answer's text adds to each side. */
export interface ReasoningSplit {
  readonly reasoning: string
  readonly text: string
}

const whitespace = /^\s*/

/** The longest suffix of `text` that is a proper prefix of `tag` (what may still become it). */
function heldTagStart(text: string, tag: string): number {
  for (let length = Math.min(text.length, tag.length - 1); length > 0; length--) {
    if (tag.startsWith(text.slice(text.length - length))) return length
  }
  return 0
}

/**
 * Where a rendered prompt leaves the answer: inside an open `<think>` ('reasoning'), after a
 * closed one (thinking switched off: 'off'), or anywhere else ('detect'). `promptTail` is the
 * prompt's last few tokens decoded.
 */
export function reasoningStartOf(promptTail: string): ReasoningStart {
  const tail = promptTail.trimEnd()
  if (tail.endsWith(reasoningOpenTag)) return 'reasoning'
  if (tail.endsWith(reasoningCloseTag)) return 'off'
  return 'detect'
}

export class ReasoningSplitter {
  #state: 'start' | 'reasoning' | 'after' | 'answer'
  #held = ''
  #touched = false

  constructor(start: ReasoningStart) {
    this.#state = start === 'reasoning' ? 'reasoning' : start === 'detect' ? 'start' : 'answer'
  }

  /** True while the answer is in its reasoning (text that comes now, if any, is reasoning). */
  get inReasoning(): boolean {
    return this.#state === 'reasoning'
  }

  /**
   * True when the last push() or flush() took in text of the think block, its tags included: the
   * piece opened it, was inside it or closed it. The generation loop counts such a token as a
   * reasoning token (usage's reasoningTokens), so `<think>` and `</think>`, which show no text of
   * their own, count as the reasoning they delimit.
   */
  get touchedReasoning(): boolean {
    return this.#touched
  }

  /** The next piece of the answer's text, split; text that may still become a tag is held. */
  push(piece: string): ReasoningSplit {
    let rest = this.#held + piece
    this.#held = ''
    this.#touched = this.#state === 'reasoning'
    let reasoning = ''
    let text = ''
    while (rest.length > 0) {
      if (this.#state === 'answer') {
        text += rest
        break
      }
      if (this.#state === 'start') {
        const after = rest.slice((whitespace.exec(rest)?.[0] ?? '').length)
        if (after.startsWith(reasoningOpenTag)) {
          // The whitespace before the tag is in neither side, as the tag is not.
          this.#state = 'reasoning'
          this.#touched = true
          rest = after.slice(reasoningOpenTag.length)
          continue
        }
        if (reasoningOpenTag.startsWith(after)) {
          // Only whitespace, or the tag's beginning so far: wait for what follows.
          this.#held = rest
          break
        }
        this.#state = 'answer'
        continue
      }
      if (this.#state === 'reasoning') {
        const close = rest.indexOf(reasoningCloseTag)
        if (close >= 0) {
          reasoning += rest.slice(0, close)
          this.#state = 'after'
          rest = rest.slice(close + reasoningCloseTag.length)
          continue
        }
        const held = heldTagStart(rest, reasoningCloseTag)
        reasoning += rest.slice(0, rest.length - held)
        this.#held = rest.slice(rest.length - held)
        break
      }
      // After `</think>`: the whitespace that separates the reasoning from the reply is dropped.
      const after = rest.slice((whitespace.exec(rest)?.[0] ?? '').length)
      if (after.length === 0) break
      this.#state = 'answer'
      rest = after
    }
    return { reasoning, text }
  }

  /** The answer ended: what was held goes to the side it was on (an unclosed reasoning stays reasoning). */
  flush(): ReasoningSplit {
    const held = this.#held
    this.#held = ''
    this.#touched = this.#state === 'reasoning'
    if (this.#state === 'reasoning') return { reasoning: held, text: '' }
    if (this.#state === 'start') this.#state = 'answer'
    return { reasoning: '', text: held }
  }
}
