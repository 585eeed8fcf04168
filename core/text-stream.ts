// Turns a stream of token ids into text deltas that hold only complete characters. A byte-level
// BPE token can end in the middle of a multi-byte UTF-8 character (emoji, CJK): decoding it alone
// shows U+FFFD. Like Hugging Face's text-generation-inference, we decode a short window twice,
// with and without the new tokens, and release the difference. The window starts one emitted step
// back, so decoders that strip a leading space from the first piece (SentencePiece) only ever
// strip it from text already released.
//
// When to release: a tokenizer that says what each token adds (core's Tokenizer:
// tokenContribution) lets the stream follow the UTF-8 bytes themselves, exactly as the decoder's
// TextDecoder reads them, and hold precisely while a character is unfinished. Guessing from the
// text instead (hold while it ends in U+FFFD, give up after a few tokens) cannot tell a real
// U+FFFD from an unfinished character: "\uFFFD😀" spelled in byte tokens was released as "��"
// and then "\uDE00", a lone surrogate, and the joined deltas no longer equalled the decode. That
// guess remains only for tokenizers that do not describe their tokens.

export interface DecodingTokenizer {
  decode(ids: readonly number[], options?: { readonly skipSpecialTokens?: boolean }): string
  /**
   * What token `id` adds to the decoded text (optional; see TokenContribution). Without it a
   * stream holds tokens while the text ends in U+FFFD, up to a few tokens.
   */
  tokenContribution?(id: number, options?: { readonly skipSpecialTokens?: boolean }): TokenContribution
}

/** What one token adds to decoded text, as far as a stream needs to know. */
export type TokenContribution =
  /** UTF-8 bytes that join the bytes beside them (ByteLevel pieces, byte-fallback `<0xNN>`): they may start or end inside a character. */
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array }
  /** Whole characters of its own (an added token, a SentencePiece word): a character left unfinished before it is final (U+FFFD). */
  | { readonly kind: 'characters' }
  /** Nothing: a special token that this decode skips. */
  | { readonly kind: 'nothing' }

// A UTF-8 character is at most 4 bytes; byte-fallback tokens carry one each. Past this many held
// tokens the bytes are not going to complete (the model produced invalid UTF-8): show them. Only
// for tokenizers without tokenContribution.
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

/**
 * Whether the bytes so far end inside a character that later bytes could still complete, by the
 * rules TextDecoder (the WHATWG UTF-8 decoder) follows: a byte that cannot continue the character
 * makes it final (one U+FFFD) and starts over itself; a byte that cannot start one is U+FFFD at once.
 */
class Utf8Tail {
  #needed = 0
  #seen = 0
  #lower = 0x80
  #upper = 0xbf

  get unfinished(): boolean {
    return this.#needed > 0
  }

  reset(): void {
    this.#needed = 0
    this.#seen = 0
    this.#lower = 0x80
    this.#upper = 0xbf
  }

  push(byte: number): void {
    if (this.#needed === 0) {
      this.#start(byte)
      return
    }
    if (byte < this.#lower || byte > this.#upper) {
      this.reset()
      this.#start(byte)
      return
    }
    this.#lower = 0x80
    this.#upper = 0xbf
    if (++this.#seen === this.#needed) this.reset()
  }

  #start(byte: number): void {
    if (byte >= 0xc2 && byte <= 0xdf) this.#needed = 1
    else if (byte >= 0xe0 && byte <= 0xef) {
      this.#needed = 2
      // Overlong forms and surrogates are refused at the second byte.
      if (byte === 0xe0) this.#lower = 0xa0
      if (byte === 0xed) this.#upper = 0x9f
    } else if (byte >= 0xf0 && byte <= 0xf4) {
      this.#needed = 3
      if (byte === 0xf0) this.#lower = 0x90
      if (byte === 0xf4) this.#upper = 0x8f
    }
  }
}

export class TextStream {
  readonly #tokenizer: DecodingTokenizer
  readonly #skipSpecialTokens: boolean
  readonly #ids: number[] = []
  /** The ids the decode sees: all of them, less the skipped special tokens when they are known. */
  readonly #window: number[] = []
  readonly #tail = new Utf8Tail()
  #prefixOffset = 0
  #readOffset = 0
  /** Text of the held tokens already released (what broken bytes made final while a character is open). */
  #releasedPastRead = 0
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
    const contribution = this.#tokenizer.tokenContribution?.(tokenId, {
      skipSpecialTokens: this.#skipSpecialTokens,
    })
    if (contribution === undefined) return this.#pushGuessing(tokenId)
    // A skipped token is dropped before the decoder runs, so leaving it out of the window gives
    // the same text (bytes on either side still join) and a run of them costs nothing.
    if (contribution.kind === 'nothing') return ''
    this.#window.push(tokenId)
    if (contribution.kind === 'bytes') for (const byte of contribution.bytes) this.#tail.push(byte)
    else this.#tail.reset()
    if (!this.#tail.unfinished) return this.#release()
    // The open character shows as one U+FFFD at the end; what precedes it is final (bytes that
    // broke an earlier character), so it goes out now: a run of invalid bytes is never held.
    const before = this.#decode(this.#prefixOffset, this.#readOffset)
    const final = this.#decode(this.#prefixOffset, this.#window.length).slice(0, -1)
    const delta = final.slice(before.length + this.#releasedPastRead)
    this.#releasedPastRead += delta.length
    this.#text += delta
    return delta
  }

  /** Releases whatever is held at the end of the stream (incomplete bytes show as U+FFFD). */
  flush(): string {
    this.#tail.reset()
    if (this.#readOffset === this.#window.length) return ''
    return this.#release()
  }

  /** The text the held tokens add; the window then starts at the tokens released last. */
  #release(): string {
    const before = this.#decode(this.#prefixOffset, this.#readOffset)
    const after = this.#decode(this.#prefixOffset, this.#window.length)
    const delta = after.slice(before.length + this.#releasedPastRead)
    this.#prefixOffset = this.#readOffset
    this.#readOffset = this.#window.length
    this.#releasedPastRead = 0
    this.#text += delta
    return delta
  }

  /** For a tokenizer that does not say what its tokens add: hold while the text ends in U+FFFD. */
  #pushGuessing(tokenId: number): string {
    this.#window.push(tokenId)
    const before = this.#decode(this.#prefixOffset, this.#readOffset)
    const after = this.#decode(this.#prefixOffset, this.#window.length)
    const held = this.#window.length - this.#readOffset
    if (after.length > before.length && (!after.endsWith('\uFFFD') || held >= maximumHeldTokens)) {
      const delta = after.slice(before.length)
      this.#prefixOffset = this.#readOffset
      this.#readOffset = this.#window.length
      this.#text += delta
      return delta
    }
    if (held >= maximumHeldTokens && after.length <= before.length) {
      // Tokens that add no text (skipped special tokens): move the window on, or every later
      // push would decode all of them again (quadratic in a long run of them).
      this.#prefixOffset = this.#readOffset
      this.#readOffset = this.#window.length
    }
    return ''
  }

  #decode(start: number, end: number): string {
    return decodeWindow(this.#tokenizer, this.#window, start, end, this.#skipSpecialTokens)
  }
}
