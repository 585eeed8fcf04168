// Turns a stream of token ids into text deltas that hold only complete characters. A byte-level
// BPE token can end in the middle of a multi-byte UTF-8 character (emoji, CJK): decoding it alone
// shows U+FFFD. Like Hugging Face's text-generation-inference, we decode a short window twice,
// with and without the new tokens, and release the difference only once it no longer ends in
// U+FFFD. The window starts one emitted step back, so decoders that strip a leading space from
// the first piece (SentencePiece) only ever strip it from text already released.

export interface DecodingTokenizer {
  decode(ids: readonly number[], options?: { readonly skipSpecialTokens?: boolean }): string
}

// A UTF-8 character is at most 4 bytes; byte-fallback tokens carry one each. Past this many held
// tokens the bytes are not going to complete (the model produced invalid UTF-8): show them.
const maximumHeldTokens = 6

// Each push decodes the window before and after the new token; the "before" window is nearly
// always one token, the one released last step. decode() is a pure function of its ids, so those
// single-token decodes are remembered per tokenizer (bounded), halving the tokenizer work per token.
const maximumCachedPieces = 16_384
const pieceCaches = new WeakMap<DecodingTokenizer, Map<string, string>>()

function decodeWindow(
  tokenizer: DecodingTokenizer,
  ids: readonly number[],
  start: number,
  end: number,
  skipSpecialTokens: boolean,
): string {
  const options = { skipSpecialTokens }
  if (end - start !== 1) return tokenizer.decode(ids.slice(start, end), options)
  let cache = pieceCaches.get(tokenizer)
  if (cache === undefined) {
    cache = new Map()
    pieceCaches.set(tokenizer, cache)
  }
  const key = `${skipSpecialTokens ? 's' : 'k'}${ids[start]}`
  let piece = cache.get(key)
  if (piece === undefined) {
    piece = tokenizer.decode(ids.slice(start, end), options)
    if (cache.size >= maximumCachedPieces) cache.clear()
    cache.set(key, piece)
  }
  return piece
}

export class TextStream {
  readonly #tokenizer: DecodingTokenizer
  readonly #skipSpecialTokens: boolean
  readonly #ids: number[] = []
  #prefixOffset = 0
  #readOffset = 0
  #text = ''

  constructor(tokenizer: DecodingTokenizer, options: { readonly skipSpecialTokens?: boolean } = {}) {
    this.#tokenizer = tokenizer
    this.#skipSpecialTokens = options.skipSpecialTokens ?? false
  }

  /** Every id pushed so far. */
  get tokenIds(): readonly number[] {
    return this.#ids
  }

  /** All text released so far. */
  get text(): string {
    return this.#text
  }

  /** Adds one token; returns the newly complete text (often '', never half a character). */
  push(tokenId: number): string {
    this.#ids.push(tokenId)
    const before = this.#decode(this.#prefixOffset, this.#readOffset)
    const after = this.#decode(this.#prefixOffset, this.#ids.length)
    const held = this.#ids.length - this.#readOffset
    if (after.length > before.length && (!after.endsWith('\uFFFD') || held >= maximumHeldTokens)) {
      const delta = after.slice(before.length)
      this.#prefixOffset = this.#readOffset
      this.#readOffset = this.#ids.length
      this.#text += delta
      return delta
    }
    if (held >= maximumHeldTokens && after.length <= before.length) {
      // Tokens that add no text (skipped special tokens): move the window on, or every later
      // push would decode all of them again (quadratic in a long run of them).
      this.#prefixOffset = this.#readOffset
      this.#readOffset = this.#ids.length
    }
    return ''
  }

  /** Releases whatever is held at the end of the stream (incomplete bytes show as U+FFFD). */
  flush(): string {
    if (this.#readOffset === this.#ids.length) return ''
    const before = this.#decode(this.#prefixOffset, this.#readOffset)
    const after = this.#decode(this.#prefixOffset, this.#ids.length)
    const delta = after.slice(before.length)
    this.#prefixOffset = this.#readOffset
    this.#readOffset = this.#ids.length
    this.#text += delta
    return delta
  }

  #decode(start: number, end: number): string {
    return decodeWindow(this.#tokenizer, this.#ids, start, end, this.#skipSpecialTokens)
  }
}
