// The model's own tokenizer, loaded from Hugging Face files (tokenizer.json and friends) through
// @huggingface/tokenizers' pipeline (normalizer, pre-tokenizer, added tokens, post-processor,
// decoder), plus what generation needs around it: EOS ids from the configs, the BOS token, the
// chat template, and a vocabulary size to check ids against. A BPE model (every Qwen / Llama
// tokenizer) runs as core/bpe's CompactBpe: its vocabulary and merges in typed arrays, read from
// the file's bytes, the same ids as the library's BPE at a fraction of the memory (Qwen3's:
// 27 MiB retained and ~120 MB at the parse's peak before, `npm run bench:memory:tokenizer`).
import { Tokenizer as HuggingFaceTokenizer } from '@huggingface/tokenizers'
import {
  type CompactBpe,
  readTokenizerJsonBytes,
  readTokenizerJsonObject,
  TokenizerJsonError,
} from './bpe/index.ts'
import { type ChatMessage, type ChatTool, renderChatTemplate } from './chat-template.ts'
import { InvalidArgumentError, TokenizerError } from './errors.ts'
import type { TokenByteTable } from './structured/vocabulary.ts'
import type { TokenContribution } from './text-stream.ts'

/** The files of a model package that describe its tokenizer, as text or already parsed. */
export interface TokenizerFiles {
  /**
   * tokenizer.json: its bytes (UTF-8, the leanest: nothing the size of the file is made from
   * them), its text, or the parsed object.
   */
  readonly tokenizerJson: string | object | Uint8Array
  /** The small JSON files: their bytes (UTF-8), their text, or the parsed object. */
  readonly tokenizerConfigJson?: string | object | Uint8Array
  readonly configJson?: string | object | Uint8Array
  readonly generationConfigJson?: string | object | Uint8Array
  /** chat_template.jinja, which wins over tokenizer_config.json's `chat_template`. */
  readonly chatTemplate?: string
}

export interface EncodeOptions {
  /** Add BOS/EOS as the tokenizer's post-processor says (Hugging Face's default: true). */
  readonly addSpecialTokens?: boolean
}

export interface DecodeOptions {
  /** Drop special tokens (`<|im_end|>`, `<s>`, ...) from the text. Default false. */
  readonly skipSpecialTokens?: boolean
}

export interface ApplyChatTemplateOptions {
  /** Append the opening of an assistant turn. Default true. */
  readonly addGenerationPrompt?: boolean
  readonly enableThinking?: boolean
  readonly tools?: readonly ChatTool[]
  readonly extraVariables?: Readonly<Record<string, unknown>>
}

type JsonObject = Record<string, unknown>

export class Tokenizer {
  readonly eosTokenIds: readonly number[]
  readonly bosTokenId: number | undefined
  /** One past the largest token id the tokenizer knows (the model's logits may be longer: padding). */
  readonly vocabularySize: number
  readonly chatTemplate: string | undefined
  readonly bosToken: string | undefined
  readonly eosToken: string | undefined
  readonly #tokenizer: HuggingFaceTokenizer
  readonly #model: TokenModel
  readonly #specialTokenIds: ReadonlySet<number>
  readonly #addedTokenIds: ReadonlySet<number>
  readonly #byteEncoding: 'byte-level' | 'byte-fallback' | undefined
  /** How the decoder turns pieces into bytes (its own steps, not the model's byte_fallback flag). */
  readonly #decoderBytes: 'byte-level' | 'byte-fallback' | undefined
  /** The texts decode drops with skipSpecialTokens (the library's special_tokens). */
  readonly #skippedTexts: ReadonlySet<string>
  #tokenByteTable: TokenByteTable | undefined

  private constructor(tokenizerJson: JsonObject, bpe: CompactBpe | undefined, files: TokenizerFiles) {
    const tokenizerConfig = parseJsonFile(files.tokenizerConfigJson, 'tokenizerConfigJson') ?? {}
    const config = parseJsonFile(files.configJson, 'configJson') ?? {}
    const generationConfig = parseJsonFile(files.generationConfigJson, 'generationConfigJson') ?? {}
    if (typeof tokenizerJson['model'] !== 'object' || tokenizerJson['model'] === null) {
      throw new TokenizerError(
        'tokenizer.json has no "model" section: this is not a Hugging Face tokenizer.json. Export it with `tokenizer.save_pretrained()`.',
      )
    }
    try {
      this.#tokenizer = new HuggingFaceTokenizer(tokenizerJson, tokenizerConfig)
    } catch (error) {
      throw new TokenizerError(
        `tokenizer.json could not be loaded (${error instanceof Error ? error.message : String(error)}). Check that it comes from a Hugging Face tokenizer.`,
        { cause: error },
      )
    }
    this.#model = bpe
      ? compactModel(this.#tokenizer as unknown as LibraryInternals, bpe)
      : libraryModel(this.#tokenizer as unknown as LibraryInternals)
    this.vocabularySize = this.#model.size

    const special = new Set<number>()
    const added = new Set<number>()
    for (const [id, token] of this.#tokenizer.get_added_tokens_decoder()) {
      added.add(id)
      if (token.special) special.add(id)
    }
    this.#specialTokenIds = special
    this.#addedTokenIds = added
    this.#byteEncoding = byteEncodingOf(tokenizerJson)
    this.#decoderBytes = decoderBytesOf(tokenizerJson)
    this.#skippedTexts = new Set((this.#tokenizer as unknown as LibraryInternals).special_tokens)

    this.bosToken = tokenText(tokenizerConfig['bos_token'])
    this.eosToken = tokenText(tokenizerConfig['eos_token'])
    const bosFromConfig = firstId(generationConfig['bos_token_id']) ?? firstId(config['bos_token_id'])
    this.bosTokenId =
      bosFromConfig ?? (this.bosToken === undefined ? undefined : this.tokenToId(this.bosToken))

    // EOS: every id any config names (generation_config lists all of Qwen's stop ids).
    const eos: number[] = []
    const add = (id: number | undefined): void => {
      if (id !== undefined && !eos.includes(id)) eos.push(id)
    }
    for (const id of allIds(generationConfig['eos_token_id'])) add(id)
    for (const id of allIds(config['eos_token_id'])) add(id)
    if (this.eosToken !== undefined) add(this.tokenToId(this.eosToken))
    this.eosTokenIds = eos

    const template = files.chatTemplate ?? tokenizerConfig['chat_template']
    this.chatTemplate = typeof template === 'string' && template.length > 0 ? template : undefined
  }

  /** Builds a tokenizer from a package's files; throws TokenizerError naming the file that is wrong. */
  static fromFiles(files: TokenizerFiles): Tokenizer {
    if (typeof files !== 'object' || files === null) {
      throw new InvalidArgumentError(
        'files',
        'Pass { tokenizerJson, tokenizerConfigJson?, ... } to Tokenizer.fromFiles.',
      )
    }
    if (files.tokenizerJson === undefined || files.tokenizerJson === null) {
      throw new InvalidArgumentError(
        'tokenizerJson',
        'tokenizerJson is required: pass the bytes or the text of tokenizer.json.',
      )
    }
    if (files.chatTemplate !== undefined && typeof files.chatTemplate !== 'string') {
      throw new InvalidArgumentError('chatTemplate', 'chatTemplate must be the text of chat_template.jinja.')
    }
    const { json, bpe } = readTokenizerJson(files.tokenizerJson)
    return new Tokenizer(json, bpe, files)
  }

  /** Text to token ids. Lone surrogates become U+FFFD (UTF-8 cannot carry them). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') {
      throw new InvalidArgumentError('text', `encode() takes a string (got ${typeof text}).`)
    }
    return this.#encodeIds(text, options.addSpecialTokens ?? true)
  }

  /** Token ids and their vocabulary pieces (as stored, e.g. `Ġworld`), for inspection. */
  tokenize(text: string, options: EncodeOptions = {}): { ids: number[]; pieces: string[] } {
    if (typeof text !== 'string') {
      throw new InvalidArgumentError('text', `tokenize() takes a string (got ${typeof text}).`)
    }
    const pieces: string[] = []
    const ids = this.#encodeIds(text, options.addSpecialTokens ?? true, pieces)
    return { ids, pieces }
  }

  /**
   * The library's Tokenizer.encode, step for step (added tokens split out before and after
   * normalizing, their lstrip / rstrip, the pre-tokenizer per section, the post-processor), with
   * the model giving ids directly: nothing but the order of the steps is ours.
   */
  #encodeIds(text: string, addSpecialTokens: boolean, pieces?: string[], literals?: Literals): number[] {
    const library = this.#tokenizer as unknown as LibraryInternals
    const added = library.added_tokens_map
    const ids: number[] = []
    const sections = library.splitter_unnormalized.split(text)
    stripAroundAddedTokens(sections, added)
    for (const [sectionIndex, section] of sections.entries()) {
      if (section.length === 0) continue
      const whole = added.get(section)
      if (whole !== undefined) {
        ids.push(whole.id)
        pieces?.push(section)
        continue
      }
      if (literals !== undefined && section.search(literals.placeholder) !== -1) {
        // The stretch with a caller's control text in it, put back, spelled as plain text.
        const plain = section.replace(
          literals.placeholder,
          (_, index: string) => literals.texts[Number(index)] ?? '',
        )
        this.#encodePlain(plain, sectionIndex, ids)
        continue
      }
      let processed = section
      if (library.remove_space === true) processed = processed.trim().split(/\s+/).join(' ')
      if (library.do_lowercase_and_remove_accent) processed = processed.toLowerCase().replace(/\p{M}/gu, '')
      if (library.normalizer !== null) processed = library.normalizer(processed)
      if (processed.length === 0) continue
      const subsections = library.splitter_normalized.split(processed)
      stripAroundAddedTokens(subsections, added)
      for (const subsection of subsections) {
        if (subsection.length === 0) continue
        const token = added.get(subsection)
        if (token !== undefined) {
          ids.push(token.id)
          pieces?.push(subsection)
          continue
        }
        const words =
          library.pre_tokenizer !== null
            ? library.pre_tokenizer(subsection, { section_index: sectionIndex })
            : [subsection]
        this.#model.encodeWords(words, ids, pieces)
      }
    }
    if (library.post_processor === null) return ids
    // The post-processor adds special tokens by their text; the model's ids pass through it as
    // they are (and the pieces, through a second run: it only concatenates and inserts).
    if (pieces !== undefined) {
      const processedPieces = library.post_processor([...pieces], null, addSpecialTokens).tokens as string[]
      pieces.length = 0
      for (const piece of processedPieces) pieces.push(piece)
    }
    const processed = library.post_processor(ids, null, addSpecialTokens).tokens
    return processed.map((token) =>
      typeof token === 'number' ? token : (this.#model.finalId(token) as number),
    )
  }

  /** Token ids to text. Incomplete UTF-8 at the end shows as U+FFFD (see TextStream for streaming). */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (!Array.isArray(ids)) throw new InvalidArgumentError('ids', 'decode() takes an array of token ids.')
    for (let index = 0; index < ids.length; index++) {
      const id = ids[index]!
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabularySize) {
        throw new InvalidArgumentError(
          `ids.${index}`,
          `Token id ${id} is not in this tokenizer's vocabulary (0..${this.vocabularySize - 1}).`,
        )
      }
    }
    if (ids.length === 0) return ''
    // The library's decode (without its clean-up of spaces), on our model's pieces.
    const library = this.#tokenizer as unknown as LibraryInternals
    let pieces = ids.map((id) => this.#model.pieceOf(id) ?? this.#model.unknownToken) as string[]
    if (options.skipSpecialTokens) {
      const special = new Set(library.special_tokens)
      pieces = pieces.filter((piece) => !special.has(piece))
    }
    let decoded = library.decoder ? library.decoder(pieces) : pieces.join(' ')
    const suffix = library.decoder?.end_of_word_suffix
    if (suffix) {
      decoded = decoded.replaceAll(suffix, ' ')
      if (options.skipSpecialTokens) decoded = decoded.trim()
    }
    return decoded
  }

  /**
   * What token `id` adds to decode()'s text, so a TextStream holds exactly the tokens of an
   * unfinished character: a ByteLevel piece's bytes (they join the bytes beside it), a
   * byte-fallback `<0xNN>` token's byte (runs of them are decoded together), whole characters for
   * anything the decoder keeps apart (added tokens; a SentencePiece word piece, which ends a run
   * of byte tokens), nothing for a special token that skipSpecialTokens drops.
   */
  tokenContribution(id: number, options: DecodeOptions = {}): TokenContribution {
    const piece = this.#model.pieceOf(id)
    if (piece === undefined) return { kind: 'characters' }
    if (options.skipSpecialTokens && this.#skippedTexts.has(piece)) return { kind: 'nothing' }
    if (this.#addedTokenIds.has(id)) return { kind: 'characters' }
    if (this.#decoderBytes === 'byte-level') {
      const table = byteLevelTable()
      const bytes = new Uint8Array(piece.length)
      for (let index = 0; index < piece.length; index++) {
        const byte = table.get(piece.charCodeAt(index))
        if (byte === undefined) return { kind: 'characters' }
        bytes[index] = byte
      }
      return { kind: 'bytes', bytes }
    }
    if (this.#decoderBytes === 'byte-fallback') {
      const byteToken = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece)
      if (byteToken !== null)
        return { kind: 'bytes', bytes: Uint8Array.of(Number.parseInt(byteToken[1]!, 16)) }
    }
    return { kind: 'characters' }
  }

  tokenToId(token: string): number | undefined {
    return this.#model.idOf(token)
  }

  idToToken(id: number): string | undefined {
    return this.#model.pieceOf(id)
  }

  isSpecialToken(id: number): boolean {
    return this.#specialTokenIds.has(id)
  }

  /**
   * The bytes each token id stands for in generated text (what structured output matches against
   * a grammar); undefined for added tokens (`<|im_end|>`, `<tool_call>`, ...), which are control
   * tokens, not text. Views into tokenByteTable(), made on each call: structured output reads the
   * table itself.
   */
  tokenBytes(): readonly (Uint8Array | undefined)[] {
    const { bytes, starts, ends } = this.tokenByteTable()
    const views: (Uint8Array | undefined)[] = new Array(starts.length)
    for (let id = 0; id < starts.length; id++)
      views[id] = starts[id] === -1 ? undefined : bytes.subarray(starts[id], ends[id])
    return views
  }

  /**
   * Every token's bytes in one buffer: id's are `bytes[starts[id], ends[id])`, starts[id] -1 for
   * control tokens. Computed once per tokenizer (Qwen3: ~1.9 MB).
   */
  tokenByteTable(): TokenByteTable {
    if (this.#tokenByteTable !== undefined) return this.#tokenByteTable
    if (this.#byteEncoding === undefined) {
      throw new TokenizerError(
        'Structured output needs the bytes of every token, and this tokenizer.json has neither a ByteLevel decoder nor byte-fallback pieces: it is not supported for responseFormat / tools.',
      )
    }
    const encoder = new TextEncoder()
    const table = this.#byteEncoding === 'byte-level' ? byteLevelTable() : undefined
    // Every token's bytes in one buffer with offsets: a Uint8Array per id costs ~230 bytes of
    // heap (34 MiB for Qwen3's 151k tokens), even a view into one buffer ~110.
    let buffer = new Uint8Array(1 << 16)
    let used = 0
    const reserve = (length: number): void => {
      if (used + length <= buffer.length) return
      const grown = new Uint8Array(Math.max(buffer.length * 2, used + length))
      grown.set(buffer.subarray(0, used))
      buffer = grown
    }
    const append = (piece: Uint8Array): void => {
      reserve(piece.length)
      buffer.set(piece, used)
      used += piece.length
    }
    const starts = new Int32Array(this.vocabularySize).fill(-1)
    const ends = new Int32Array(this.vocabularySize)
    for (let id = 0; id < this.vocabularySize; id++) {
      const piece = this.#addedTokenIds.has(id) ? undefined : this.#model.pieceOf(id)
      if (piece === undefined) continue
      starts[id] = used
      if (table !== undefined) {
        reserve(piece.length)
        let ok = true
        for (let index = 0; index < piece.length; index++) {
          const byte = table.get(piece.charCodeAt(index))
          if (byte === undefined) {
            ok = false
            break
          }
          buffer[used + index] = byte
        }
        if (ok) used += piece.length
        else append(encoder.encode(piece))
      } else {
        const byteToken = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece)
        append(
          byteToken === null
            ? encoder.encode(piece.replaceAll('\u2581', ' '))
            : Uint8Array.of(Number.parseInt(byteToken[1]!, 16)),
        )
      }
      ends[id] = used
    }
    this.#tokenByteTable = { bytes: buffer.slice(0, used), starts, ends }
    return this.#tokenByteTable
  }

  /**
   * The model's chat template rendered for `messages` (throws when the model has none): the text
   * encodeChat's prompt decodes to. Caller strings reach the template as data here too (see
   * encodeChat), so a template that reads them (Qwen3's, which takes a user turn that starts with
   * `<tool_response>` and ends with `</tool_response>` for a tool result) reads a user's typed
   * tags as the text they are, as the ids carry them.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ApplyChatTemplateOptions = {}): string {
    const hidden = this.#renderHidden(messages, options)
    if (hidden === undefined) return this.#render(messages, options)
    return hidden.rendered.replace(
      hidden.placeholder,
      (_, index: string) => hidden.literals[Number(index)] ?? '',
    )
  }

  #render(messages: readonly ChatMessage[], options: ApplyChatTemplateOptions): string {
    if (this.chatTemplate === undefined) {
      throw new InvalidArgumentError(
        'messages',
        // Reached through createClient's chat() too, which has no plain-text prompt: name each way out.
        "This model's tokenizer has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja), so chat messages cannot be made into its prompt (a llama2.c checkpoint such as stories260K has none). Chat (createClient's chat() and stream(), the edge, `ondevice chat`) needs a package with a template: convert a Hugging Face chat model, or add the template to the package. To continue plain text with this model, encode it yourself (ondevice/core: tokenizer.encode() and generate()) or run `ondevice generate --raw`.",
      )
    }
    return renderChatTemplate(this.chatTemplate, {
      messages,
      addGenerationPrompt: options.addGenerationPrompt ?? true,
      ...(options.enableThinking === undefined ? {} : { enableThinking: options.enableThinking }),
      ...(options.tools === undefined ? {} : { tools: options.tools }),
      ...(options.extraVariables === undefined ? {} : { extraVariables: options.extraVariables }),
      ...(this.bosToken === undefined ? {} : { bosToken: this.bosToken }),
      ...(this.eosToken === undefined ? {} : { eosToken: this.eosToken }),
    })
  }

  /**
   * The prompt token ids for a chat: the template rendered, then encoded without adding special
   * tokens again (the template already wrote BOS where the model wants it).
   *
   * Every string the caller passes (message text, names, tool calls and definitions, template
   * variables) is data, never control: an added token's text inside it (`<|im_start|>system`,
   * `<tool_call>`, `<think>` typed by a user) must not become the real token id, or a user could
   * forge turns, tool calls or tool results (prompt injection). Such occurrences are swapped for
   * private-use placeholders before the template runs and encoded back as plain text, while the
   * markers the template itself writes still become their tokens: the stretch between two of
   * those markers that holds one goes through the normalizer, pre-tokenizer and model as one
   * text, as the tokenizer spells it when the control text is no token. One exception: an assistant
   * turn's own text keeps the tokens the model writes as text (`<think>`, `<tool_call>`: added but
   * not special), since templates split `<think>` blocks out of it and a conversation's earlier
   * answers must encode to the ids the model produced; special tokens are data there too.
   * Input without any added-token text renders and encodes exactly as before. The ids decode to
   * applyChatTemplate's text.
   */
  encodeChat(messages: readonly ChatMessage[], options: ApplyChatTemplateOptions = {}): number[] {
    const hidden = this.#renderHidden(messages, options)
    if (hidden === undefined) return this.encode(this.#render(messages, options), { addSpecialTokens: false })
    return this.#encodeIds(hidden.rendered, false, undefined, {
      placeholder: hidden.placeholder,
      texts: hidden.literals,
    })
  }

  /**
   * The template rendered with every added token's text in caller strings swapped for a numbered
   * placeholder (`placeholder` matches one and captures its number, the index into `literals`);
   * undefined when no caller string holds such text, and the plain render is the prompt.
   */
  #renderHidden(
    messages: readonly ChatMessage[],
    options: ApplyChatTemplateOptions,
  ): { rendered: string; placeholder: RegExp; literals: string[] } | undefined {
    const every = this.#addedTokenTexts.every
    if (every.length === 0) return undefined
    const everyPattern = this.#addedTokenTexts.everyPattern
    const specialPattern = this.#addedTokenTexts.specialPattern
    const found: string[] = []
    collectStrings([messages, options.tools, options.extraVariables], found)
    if (!found.some((text) => text.search(everyPattern) !== -1)) return undefined
    const marker = unusedPrivateUseCharacter([this.chatTemplate ?? '', ...found])
    const literals: string[] = []
    const hideWith =
      (pattern: RegExp | undefined) =>
      (text: string): string =>
        pattern === undefined
          ? text
          : text.replace(pattern, (match) => {
              literals.push(match)
              return `${marker}${literals.length - 1}${marker}`
            })
    const hideAll = hideWith(everyPattern)
    const hideSpecial = hideWith(specialPattern)
    const hidden = messages.map((message): ChatMessage => {
      const own = message.role === 'assistant' ? hideSpecial : hideAll
      return {
        ...(hideDeep(message, hideAll, 'messages') as ChatMessage),
        content: typeof message.content === 'string' ? own(message.content) : message.content,
        ...(typeof message.reasoningContent === 'string'
          ? { reasoningContent: own(message.reasoningContent) }
          : {}),
      }
    })
    const hiddenOptions: ApplyChatTemplateOptions = {
      ...options,
      ...(options.tools === undefined
        ? {}
        : { tools: hideDeep(options.tools, hideAll, 'tools') as readonly ChatTool[] }),
      ...(options.extraVariables === undefined
        ? {}
        : {
            extraVariables: hideDeep(options.extraVariables, hideAll, 'chat_template_kwargs') as Record<
              string,
              unknown
            >,
          }),
    }
    return {
      rendered: this.#render(hidden, hiddenOptions),
      placeholder: new RegExp(`${marker}(\\d+)${marker}`, 'g'),
      literals,
    }
  }

  #addedTokenTextsCache: AddedTokenTexts | undefined

  /** Added tokens' texts (all, and the special ones), longest first so an alternation prefers the longest. */
  get #addedTokenTexts(): AddedTokenTexts {
    if (this.#addedTokenTextsCache) return this.#addedTokenTextsCache
    const every: string[] = []
    const special: string[] = []
    for (const [, token] of this.#tokenizer.get_added_tokens_decoder()) {
      if (token.content.length === 0) continue
      every.push(token.content)
      if (token.special) special.push(token.content)
    }
    const byLength = (a: string, b: string) => b.length - a.length
    every.sort(byLength)
    special.sort(byLength)
    const pattern = (texts: readonly string[]) =>
      texts.length === 0 ? undefined : new RegExp(texts.map(escapeRegExp).join('|'), 'g')
    this.#addedTokenTextsCache = {
      every,
      everyPattern: pattern(every) as RegExp,
      specialPattern: pattern(special),
    }
    return this.#addedTokenTextsCache
  }

  /**
   * A section's text to ids as #encodeIds encodes a section (the normalizer, the pre-tokenizer,
   * the model), with no added token matched in it: the text an added token's text in a caller's
   * string is part of.
   */
  #encodePlain(text: string, sectionIndex: number, ids: number[]): void {
    const library = this.#tokenizer as unknown as LibraryInternals
    let processed = text
    if (library.remove_space === true) processed = processed.trim().split(/\s+/).join(' ')
    if (library.do_lowercase_and_remove_accent) processed = processed.toLowerCase().replace(/\p{M}/gu, '')
    if (library.normalizer !== null) processed = library.normalizer(processed)
    if (processed.length === 0) return
    const words =
      library.pre_tokenizer !== null
        ? library.pre_tokenizer(processed, { section_index: sectionIndex })
        : [processed]
    const start = ids.length
    this.#model.encodeWords(words, ids)
    for (let index = start; index < ids.length; index++)
      if (ids[index] === undefined)
        throw new TokenizerError(
          `The text ${JSON.stringify(text)} cannot be encoded as plain text by this tokenizer.`,
        )
  }
}

/** Caller strings' added-token texts and the placeholders that stand for them in a render. */
interface Literals {
  /** Matches one placeholder (global) and captures its index into `texts`. */
  readonly placeholder: RegExp
  readonly texts: readonly string[]
}

/** The parts of @huggingface/tokenizers' Tokenizer (0.2) that its encode and decode use. */
interface LibraryInternals {
  readonly normalizer: ((text: string) => string) | null
  readonly pre_tokenizer: ((text: string, options: { section_index: number }) => string[]) | null
  readonly model: ((words: string[]) => string[]) & {
    readonly tokens_to_ids: Map<string, number>
    readonly vocab: readonly (string | undefined)[]
    readonly unk_token_id?: number
    readonly unk_token?: string
  }
  readonly post_processor:
    | ((
        tokens: (number | string)[],
        pair: null,
        addSpecialTokens: boolean,
      ) => { tokens: (number | string)[] })
    | null
  readonly decoder: (((pieces: string[]) => string) & { end_of_word_suffix?: string }) | null
  readonly added_tokens: readonly { readonly id: number; readonly content: string }[]
  readonly added_tokens_map: Map<
    string,
    { readonly id: number; readonly lstrip: boolean; readonly rstrip: boolean }
  >
  readonly special_tokens: readonly string[]
  readonly splitter_unnormalized: { split(text: string): string[] }
  readonly splitter_normalized: { split(text: string): string[] }
  readonly remove_space?: boolean
  readonly do_lowercase_and_remove_accent: boolean
}

/** The model step of encoding and the vocabulary, as ids (the library's model, or CompactBpe). */
interface TokenModel {
  /** One past the largest id, added tokens included. */
  readonly size: number
  readonly unknownToken: string | undefined
  /** token_to_id. */
  idOf(piece: string): number | undefined
  /** id_to_token. */
  pieceOf(id: number): string | undefined
  /** The id the library's encode gives a piece string (the post-processor's special tokens). */
  finalId(piece: string): number | undefined
  /** Appends the ids of one pre-tokenized section's words (and with `pieces`, their piece strings). */
  encodeWords(words: string[], out: number[], pieces?: string[]): void
}

function libraryModel(library: LibraryInternals): TokenModel {
  const model = library.model
  const finalId = (piece: string) =>
    library.added_tokens_map.get(piece)?.id ?? model.tokens_to_ids.get(piece) ?? model.unk_token_id
  return {
    size: model.vocab.length,
    unknownToken: model.unk_token ?? undefined,
    idOf: (piece) => model.tokens_to_ids.get(piece),
    pieceOf: (id) => model.vocab[id],
    finalId,
    encodeWords(words, out, pieces) {
      for (const piece of model(words)) {
        out.push(finalId(piece) as number)
        pieces?.push(piece)
      }
    },
  }
}

function compactModel(library: LibraryInternals, bpe: CompactBpe): TokenModel {
  const byText = new Map<string, number>()
  for (const [text, token] of library.added_tokens_map) byText.set(text, token.id)
  const byContent = new Map<string, number>()
  for (const token of library.added_tokens) byContent.set(token.content, token.id)
  bpe.attachAddedTokens({ byText, byContent })
  return {
    size: bpe.size,
    unknownToken: bpe.options.unknownToken ?? undefined,
    idOf: (piece) => bpe.idOf(piece),
    pieceOf: (id) => bpe.pieceOf(id),
    finalId: (piece) => bpe.finalId(piece),
    encodeWords: (words, out, pieces) => bpe.encodeWords(words, out, pieces),
  }
}

/** An added token with lstrip / rstrip trims the text beside it (the library's encode_text). */
function stripAroundAddedTokens(sections: string[], added: LibraryInternals['added_tokens_map']): void {
  for (let index = 0; index < sections.length; index++) {
    const token = added.get(sections[index]!)
    if (token === undefined) continue
    if (token.lstrip && index > 0) sections[index - 1] = sections[index - 1]!.trimEnd()
    if (token.rstrip && index < sections.length - 1) sections[index + 1] = sections[index + 1]!.trimStart()
  }
}

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * tokenizer.json in any of the accepted forms to its parsed form and, for a BPE model, the
 * compact model. Text is read through its UTF-8 bytes (the compact path) unless it holds a lone
 * surrogate, which UTF-8 cannot carry; then JSON.parse reads it as it is.
 */
function readTokenizerJson(value: string | object | Uint8Array): {
  json: JsonObject
  bpe: CompactBpe | undefined
} {
  try {
    if (value instanceof Uint8Array) return readTokenizerJsonBytes(value)
    if (typeof value === 'string') {
      if (!loneSurrogate.test(value)) return readTokenizerJsonBytes(new TextEncoder().encode(value))
      return readTokenizerJsonObject(parseJsonFile(value, 'tokenizerJson') as JsonObject)
    }
  } catch (error) {
    if (error instanceof SyntaxError)
      throw new TokenizerError(
        `tokenizerJson is not valid JSON (${error.message}). Pass the file's text or bytes unchanged, or the parsed object.`,
        { param: 'tokenizerJson', cause: error },
      )
    if (error instanceof TokenizerJsonError)
      throw new TokenizerError(`tokenizerJson ${error.message}.`, { param: 'tokenizerJson' })
    throw error
  }
  const parsed = parseJsonFile(value, 'tokenizerJson')
  return readTokenizerJsonObject(parsed as JsonObject)
}

interface AddedTokenTexts {
  readonly every: readonly string[]
  /** Matches any added token's text (global: use it with replace and search, never test). */
  readonly everyPattern: RegExp
  readonly specialPattern: RegExp | undefined
}

/** Deepest nesting of caller data (tool schemas, template variables) that encodeChat walks. */
const maximumNesting = 64

/** Every string (and object key) inside `value`, depth first. */
function collectStrings(value: unknown, into: string[], depth = 0): void {
  if (typeof value === 'string') {
    into.push(value)
    return
  }
  if (typeof value !== 'object' || value === null || depth > maximumNesting) return
  if (Array.isArray(value)) {
    for (const item of value) collectStrings(item, into, depth + 1)
    return
  }
  for (const [key, item] of Object.entries(value)) {
    into.push(key)
    collectStrings(item, into, depth + 1)
  }
}

/** A copy of `value` with `hide` applied to every string and object key. */
function hideDeep(value: unknown, hide: (text: string) => string, param: string, depth = 0): unknown {
  if (typeof value === 'string') return hide(value)
  if (typeof value !== 'object' || value === null) return value
  if (depth > maximumNesting) {
    throw new InvalidArgumentError(
      param,
      `${param} is nested more than ${maximumNesting} levels deep; flatten it.`,
    )
  }
  if (Array.isArray(value)) return value.map((item) => hideDeep(item, hide, param, depth + 1))
  const copy: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) copy[hide(key)] = hideDeep(item, hide, param, depth + 1)
  return copy
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** A private-use character that no caller string and not the template contains, so placeholders cannot be forged. */
function unusedPrivateUseCharacter(texts: readonly string[]): string {
  for (let code = 0xe000; code <= 0xf8ff; code++) {
    const candidate = String.fromCharCode(code)
    if (!texts.some((text) => text.includes(candidate))) return candidate
  }
  throw new TokenizerError('The messages use every private-use character; cannot encode them safely.')
}

/** How token pieces map to bytes, from tokenizer.json's decoder (undefined: not known). */
function byteEncodingOf(tokenizerJson: JsonObject): 'byte-level' | 'byte-fallback' | undefined {
  const model = tokenizerJson['model'] as JsonObject
  const fromDecoder = decoderBytesOf(tokenizerJson)
  if (fromDecoder === undefined && model['byte_fallback'] === true) return 'byte-fallback'
  return fromDecoder
}

/** Which of the decoder's own steps makes bytes of pieces (ByteLevel or ByteFallback), if any. */
function decoderBytesOf(tokenizerJson: JsonObject): 'byte-level' | 'byte-fallback' | undefined {
  const types: string[] = []
  const collect = (decoder: unknown): void => {
    if (typeof decoder !== 'object' || decoder === null) return
    const record = decoder as JsonObject
    if (typeof record['type'] === 'string') types.push(record['type'])
    if (Array.isArray(record['decoders'])) record['decoders'].forEach(collect)
  }
  collect(tokenizerJson['decoder'])
  if (types.includes('ByteLevel')) return 'byte-level'
  if (types.includes('ByteFallback')) return 'byte-fallback'
  return undefined
}

let byteLevel: Map<number, number> | undefined

/** GPT-2's byte-to-character table, inverted: the character a ByteLevel piece uses → its byte. */
function byteLevelTable(): Map<number, number> {
  if (byteLevel !== undefined) return byteLevel
  const table = new Map<number, number>()
  let extra = 0
  for (let byte = 0; byte < 256; byte++) {
    const printable =
      (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255)
    table.set(printable ? byte : 256 + extra++, byte)
  }
  byteLevel = table
  return table
}

function parseJsonFile(
  file: string | object | Uint8Array | undefined,
  field: string,
): JsonObject | undefined {
  if (file === undefined || file === null) return undefined
  // Bytes as read from disk or fetched, like tokenizerJson's; read as an object they would be a
  // config whose keys are byte offsets, and the chat template would silently be missing.
  const value = file instanceof Uint8Array ? new TextDecoder().decode(file) : file
  if (typeof value === 'string') {
    let parsed: unknown
    try {
      parsed = JSON.parse(value)
    } catch (error) {
      throw new TokenizerError(
        `${field} is not valid JSON (${error instanceof Error ? error.message : String(error)}). Pass the file's text unchanged, or the parsed object.`,
        { param: field, cause: error },
      )
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new TokenizerError(`${field} must hold a JSON object.`, { param: field })
    }
    return parsed as JsonObject
  }
  if (
    typeof value !== 'object' ||
    Array.isArray(value) ||
    ArrayBuffer.isView(value) ||
    value instanceof ArrayBuffer
  ) {
    throw new InvalidArgumentError(
      field,
      `${field} must be the file's bytes (a Uint8Array), its text or its parsed JSON object.`,
    )
  }
  return value as JsonObject
}

// tokenizer_config.json writes special tokens as "<s>" or as { content: "<s>", ... }.
function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (typeof value === 'object' && value !== null && typeof (value as JsonObject)['content'] === 'string') {
    return (value as { content: string }).content
  }
  return undefined
}

function allIds(value: unknown): number[] {
  if (typeof value === 'number' && Number.isInteger(value)) return [value]
  if (Array.isArray(value))
    return value.filter((v): v is number => typeof v === 'number' && Number.isInteger(v))
  return []
}

function firstId(value: unknown): number | undefined {
  return allIds(value)[0]
}
