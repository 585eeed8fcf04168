// Per-step token masks for a grammar state, and the state's advance by a chosen token.
//
// Where the time goes and how it is kept small (XGrammar's idea of context-independent tokens,
// specialised to JSON): most steps of a JSON answer sit inside a string, where almost every token
// could continue. For a string the mask splits in two parts:
// - tokens that stay inside the string: whether they fit depends only on the string's own
//   substate (escape, UTF-8, pattern automaton), not on the stack below nor on how long the string
//   already is. One walk of the vocabulary per substate finds them with their character counts,
//   cached per tokenizer; a step then ORs a precomputed bitset ("≤ r characters").
// - tokens that close the string (`abc",`) and go on into the parent: few (~1k of Qwen's 151k);
//   their continuation after the quote is checked against the real stack, once per distinct rest.
// Every other position (between values, numbers, keys, literals) walks the vocabulary trie with
// the state and prunes at the first refused byte: the grammar allows few first bytes there.
import { BackendError, InvalidArgumentError } from '../errors.ts'
import {
  AmbiguityLimitError,
  advanceAll,
  byteString,
  DocumentFrame,
  Frame,
  isComplete,
  keyString as keyStringNode,
  plainString as plainStringNode,
  type Stack,
  StringFrame,
  stackKey,
} from './frames.ts'
import type { SchemaNode, StringNode } from './json-schema.ts'
import { RawStringFrame } from './raw-string-frame.ts'
import { type TokenSource, type TokenVocabulary, vocabularyOf } from './vocabulary.ts'

/** A compiled grammar plus the masks it has computed (shared by the matchers of one request). */
export class Grammar {
  readonly #walks = new Map<string, Uint32Array>()
  readonly root: SchemaNode
  /** The request field the schema came from, named in errors about the schema itself. */
  readonly param: string
  readonly #prefix: Uint8Array
  readonly #suffix: Uint8Array
  /**
   * One value of `root`, between the bytes `prefix` and `suffix` (a tool call's "\n...\n").
   * `param` defaults to what such a grammar comes from: tool parameters when framed, else the
   * response format.
   */
  constructor(
    root: SchemaNode,
    prefix: Uint8Array = new Uint8Array(0),
    suffix: Uint8Array = new Uint8Array(0),
    param: string = prefix.length > 0 ? 'tools' : 'responseFormat',
  ) {
    this.root = root
    this.#prefix = prefix
    this.#suffix = suffix
    this.param = param
  }

  initialStacks(): Stack[] {
    return [{ frame: new DocumentFrame(this.root, 0, 0, this.#prefix, this.#suffix), below: undefined }]
  }

  cachedWalk(key: string): Uint32Array | undefined {
    return this.#walks.get(key)
  }

  storeWalk(key: string, bits: Uint32Array): void {
    // One bitset per remembered state (~19-31 KB): 64 of them per grammar.
    if (this.#walks.size >= 64) this.#walks.delete(this.#walks.keys().next().value as string)
    this.#walks.set(key, bits)
  }
}

interface StringScan {
  /** Tokens that stay inside the string, by cost ascending (characters, plus what patterns still need after them). */
  readonly insideIds: Int32Array
  readonly insideCounts: Uint16Array
  readonly all: Uint32Array
  readonly maxCount: number
  readonly byLimit: Map<number, Uint32Array>
  /** Tokens that close the string: their characters before the quote and where their rest starts. */
  readonly closeIds: Int32Array
  readonly closeCounts: Uint16Array
  readonly closeRest: Uint16Array
  /** Per close token, the index of its rest (the bytes after the quote) in `rests`. */
  readonly closeRestIndex: Int32Array
  readonly rests: readonly Uint8Array[]
}

/** The frame a scan's string hands back when it closes (the parent's role is only to notice). */
class ScanSink extends Frame {
  step(): void {}
  override childDone(): Frame {
    return closedMarker
  }
  protected computeKey(): string {
    return 'sink'
  }
}
class ClosedMarker extends Frame {
  step(): void {}
  protected computeKey(): string {
    return 'closed'
  }
}
const closedMarker = new ClosedMarker()
const sinkStack: Stack = { frame: new ScanSink(), below: undefined }

function scanString(vocabulary: TokenVocabulary, frame: StringFrame): StringScan {
  const cacheKey = `scan|${frame.scanKey}`
  const cached = (vocabulary.caches.get(cacheKey) ?? vocabulary.caches.get(`pattern|${cacheKey}`)) as
    | StringScan
    | undefined
  if (cached !== undefined) return cached
  const scan =
    frame.state === undefined ? scanPlainString(vocabulary, frame) : scanWithFrames(vocabulary, frame)
  // Plain strings and names: a bounded set of substates (~40), kept for the tokenizer's life.
  // Pattern states: unbounded in number, from a few bytes (a uuid's hex digit) to ~1 MB (an
  // email's local part): kept within the pattern scans' budget.
  if (frame.state === undefined) vocabulary.caches.set(cacheKey, scan)
  else keepPatternScan(vocabulary, `pattern|${cacheKey}`, scan)
  return scan
}

class ScanCollector {
  readonly insideIds: number[] = []
  readonly insideCounts: number[] = []
  readonly closeIds: number[] = []
  readonly closeCounts: number[] = []
  readonly closeRest: number[] = []
  readonly vocabulary: TokenVocabulary
  constructor(vocabulary: TokenVocabulary) {
    this.vocabulary = vocabulary
  }

  inside(at: number, count: number): void {
    const id = this.vocabulary.nodeToken[at]!
    if (id < 0) return
    this.insideIds.push(id)
    this.insideCounts.push(count)
    for (const duplicate of this.vocabulary.duplicates.get(at) ?? []) {
      this.insideIds.push(duplicate)
      this.insideCounts.push(count)
    }
  }

  /** Every token below node `at` closes the string there; its rest starts at `depth`. */
  closeSubtree(at: number, count: number, depth: number): void {
    const { nodeToken, nodeEnd, duplicates } = this.vocabulary
    const end = nodeEnd[at]!
    for (let node = at; node < end; node++) {
      const id = nodeToken[node]!
      if (id < 0) continue
      for (const each of [id, ...(duplicates.get(node) ?? [])]) {
        this.closeIds.push(each)
        this.closeCounts.push(count)
        this.closeRest.push(depth)
      }
    }
  }

  result(): StringScan {
    const { insideIds, insideCounts } = this
    // A counting sort by character count (counts are small; a comparison sort of ~150k ids is slow).
    let maxCount = 0
    for (const count of insideCounts) if (count > maxCount) maxCount = count
    const starts = new Int32Array(maxCount + 2)
    for (const count of insideCounts) starts[count + 1]!++
    for (let count = 1; count < starts.length; count++) starts[count]! += starts[count - 1]!
    const sortedIds = new Int32Array(insideIds.length)
    const sortedCounts = new Uint16Array(insideIds.length)
    const all = new Uint32Array(this.vocabulary.wordCount)
    for (let position = 0; position < insideIds.length; position++) {
      const id = insideIds[position]!
      const count = insideCounts[position]!
      const target = starts[count]!++
      sortedIds[target] = id
      sortedCounts[target] = Math.min(count, 65535)
      all[id >>> 5]! |= 1 << (id & 31)
    }
    // Distinct rests after the closing quote: checked once each per step, not once per token.
    const restIndex = new Map<string, number>()
    const rests: Uint8Array[] = []
    const closeRestIndex = new Int32Array(this.closeIds.length)
    for (let position = 0; position < this.closeIds.length; position++) {
      const rest = this.vocabulary.bytesOf(this.closeIds[position]!)!.subarray(this.closeRest[position]!)
      const key = byteString(rest)
      let index = restIndex.get(key)
      if (index === undefined) {
        index = rests.length
        rests.push(rest)
        restIndex.set(key, index)
      }
      closeRestIndex[position] = index
    }
    return {
      insideIds: sortedIds,
      insideCounts: sortedCounts,
      all,
      maxCount,
      byLimit: new Map(),
      closeIds: Int32Array.from(this.closeIds),
      closeCounts: Uint16Array.from(this.closeCounts, (count) => Math.min(count, 65535)),
      closeRest: Uint16Array.from(this.closeRest),
      closeRestIndex,
      rests,
    }
  }
}

/** The scan of a string without patterns: an integer state machine per trie node (no allocation). */
function scanPlainString(vocabulary: TokenVocabulary, frame: StringFrame): StringScan {
  const table = plainStringTable(frame.node.isKey)
  const { nodeByte, nodeDepth, nodeEnd, nodeCount } = vocabulary
  const collector = new ScanCollector(vocabulary)
  const states = new Int32Array(1024)
  const counts = new Int32Array(1024)
  states[0] = frame.substate
  counts[0] = 0
  let index = 1
  while (index < nodeCount) {
    const depth = nodeDepth[index]!
    const state = states[depth - 1]!
    const next = table[state * 256 + nodeByte[index]!]!
    if (next === rejectState) {
      index = nodeEnd[index]!
      continue
    }
    if (next === closeState) {
      collector.closeSubtree(index, counts[depth - 1]!, depth)
      index = nodeEnd[index]!
      continue
    }
    states[depth] = next & 0xff
    const count = counts[depth - 1]! + (next >>> 8)
    counts[depth] = count
    collector.inside(index, count)
    index++
  }
  return collector.result()
}

const rejectState = -1
const closeState = -2
const plainTables = new Map<boolean, Int32Array>()

/**
 * (substate × byte) → next substate | (1 << 8 when a character starts), or reject / close:
 * StringFrame.step's rules for a string without patterns, as a table.
 */
function plainStringTable(isKey: boolean): Int32Array {
  const cached = plainTables.get(isKey)
  if (cached !== undefined) return cached
  const node = isKey ? keyStringNode : plainStringNode
  const table = new Int32Array(64 * 256).fill(rejectState)
  const sink: Stack = { frame: new ScanSink(), below: undefined }
  const out: Stack[] = []
  const valid = [0, 1, 2, 3, 4, 5, 6]
  for (let need = 1; need <= 3; need++)
    for (let range = 0; range < 5; range++) valid.push(16 + 8 * need + range)
  for (const substate of valid) {
    const frame = new StringFrame(node, substate, 0, undefined, 0, undefined, undefined)
    for (let byte = 0; byte < 256; byte++) {
      out.length = 0
      frame.step(byte, { frame, below: sink }, out)
      if (out.length === 0) continue
      const next = out[0]!.frame
      if (next === closedMarker) table[substate * 256 + byte] = closeState
      else table[substate * 256 + byte] = (next as StringFrame).substate | ((next as StringFrame).count << 8)
    }
  }
  plainTables.set(isKey, table)
  return table
}

function scanWithFrames(vocabulary: TokenVocabulary, frame: StringFrame): StringScan {
  const node = frame.node
  const unbounded: StringNode = { ...node, minLength: 0, maxLength: Number.POSITIVE_INFINITY }
  const start = new StringFrame(
    unbounded,
    frame.substate,
    0,
    frame.state,
    frame.partial,
    undefined,
    undefined,
  )
  const { nodeByte, nodeDepth, nodeEnd, nodeCount } = vocabulary
  const levels: StringFrame[] = [start]
  const collector = new ScanCollector(vocabulary)
  const out: Stack[] = []
  let index = 1
  while (index < nodeCount) {
    const depth = nodeDepth[index]!
    const parent = levels[depth - 1]!
    out.length = 0
    parent.step(nodeByte[index]!, { frame: parent, below: sinkStack }, out)
    if (out.length === 0) {
      index = nodeEnd[index]!
      continue
    }
    const next = out[0]!.frame
    if (next === closedMarker) {
      collector.closeSubtree(index, parent.count, depth)
      index = nodeEnd[index]!
      continue
    }
    const stringFrame = next as StringFrame
    levels[depth] = stringFrame
    // The token's cost in characters includes what the patterns still need after it.
    collector.inside(index, stringFrame.count + stringFrame.needed)
    index++
  }
  return collector.result()
}

/** The tokens a raw string keeps inside itself from `frame`'s state (none with a line break). */
function scanRawString(vocabulary: TokenVocabulary, frame: RawStringFrame): StringScan {
  const key = `pattern|raw|${frame.scanKey}`
  const cached = vocabulary.caches.get(key) as StringScan | undefined
  if (cached !== undefined) return cached
  const { nodeByte, nodeDepth, nodeEnd, nodeCount } = vocabulary
  const levels: RawStringFrame[] = [frame.unbounded()]
  const collector = new ScanCollector(vocabulary)
  const out: Stack[] = []
  let index = 1
  while (index < nodeCount) {
    const depth = nodeDepth[index]!
    const byte = nodeByte[index]!
    out.length = 0
    if (byte !== 0x0a) levels[depth - 1]!.step(byte, { frame: levels[depth - 1]!, below: sinkStack }, out)
    if (out.length === 0) {
      index = nodeEnd[index]!
      continue
    }
    const next = out[0]!.frame as RawStringFrame
    levels[depth] = next
    collector.inside(index, next.count + next.needed)
    index++
  }
  const scan = collector.result()
  // Kept within the pattern scans' budget: a plain raw string has a few hundred substates.
  keepPatternScan(vocabulary, key, scan)
  return scan
}

const lineBreakTokenLists = new WeakMap<TokenVocabulary, Int32Array>()
/** The tokens whose bytes hold a line break. */
function lineBreakTokens(vocabulary: TokenVocabulary): Int32Array {
  let ids = lineBreakTokenLists.get(vocabulary)
  if (ids === undefined) {
    const found: number[] = []
    for (let id = 0; id < vocabulary.size; id++) if (vocabulary.bytesOf(id)?.includes(0x0a)) found.push(id)
    ids = Int32Array.from(found)
    lineBreakTokenLists.set(vocabulary, ids)
  }
  return ids
}

// A Worker isolate has 128 MB in all: the pattern scans get a bounded share of it.
const patternBudgetBytes = 16 * 2 ** 20
const patternOrders = new WeakMap<TokenVocabulary, { entries: [string, number][]; bytes: number }>()
/** Caches `scan` under `key`, dropping the oldest pattern scans past the budget. */
function keepPatternScan(vocabulary: TokenVocabulary, key: string, scan: StringScan): void {
  let order = patternOrders.get(vocabulary)
  if (order === undefined) {
    order = { entries: [], bytes: 0 }
    patternOrders.set(vocabulary, order)
  }
  const size = scanBytes(scan)
  order.entries.push([key, size])
  order.bytes += size
  vocabulary.caches.set(key, scan)
  while (order.bytes > patternBudgetBytes && order.entries.length > 1) {
    const [oldest, oldestSize] = order.entries.shift() as [string, number]
    order.bytes -= oldestSize
    vocabulary.caches.delete(oldest)
  }
}

/** Bytes held by the string scans cached for this vocabulary (for the benchmark's memory figure). */
export function cachedScanBytes(vocabulary: TokenVocabulary): number {
  let total = 0
  for (const value of vocabulary.caches.values()) total += scanBytes(value as StringScan)
  return total
}

function scanBytes(scan: StringScan): number {
  // Sparse scans (few inside tokens) keep no full bitset worth counting beyond its words.
  return scan.insideIds.length * 6 + scan.all.byteLength + scan.closeIds.length * 12
}

/** Inside tokens of at most `limit` characters, as a bitset (built once per limit). */
function insideUpTo(scan: StringScan, limit: number, words: number): Uint32Array {
  if (limit >= scan.maxCount) return scan.all
  let bits = scan.byLimit.get(limit)
  if (bits === undefined) {
    bits = new Uint32Array(words)
    const { insideIds, insideCounts } = scan
    for (let position = 0; position < insideIds.length && insideCounts[position]! <= limit; position++) {
      const id = insideIds[position]!
      bits[id >>> 5]! |= 1 << (id & 31)
    }
    scan.byLimit.set(limit, bits)
  }
  return bits
}

/** Whether `bytes[from..]` can follow on `stacks` (the empty rest always can). */
function accepts(stacks: readonly Stack[], bytes: Uint8Array, from: number): boolean {
  let current = stacks
  for (let index = from; index < bytes.length; index++) {
    current = advanceAll(current, bytes[index]!)
    if (current.length === 0) return false
  }
  return true
}

/** Follows one grammar through a generation: which tokens may come next, and the chosen ones. */
export class GrammarMatcher {
  #stacks: Stack[]
  #ended = false
  readonly words: number

  readonly grammar: Grammar
  readonly vocabulary: TokenVocabulary
  constructor(grammar: Grammar, vocabulary: TokenVocabulary, stacks?: Stack[]) {
    this.grammar = grammar
    this.vocabulary = vocabulary
    this.#stacks = stacks ?? grammar.initialStacks()
    this.words = vocabulary.wordCount
  }

  /** The document is complete: EOS may come (and, compact, nothing else can follow). */
  get isComplete(): boolean {
    return this.#stacks.some(isComplete)
  }

  /** EOS was accepted: nothing may follow. */
  get isEnded(): boolean {
    return this.#ended
  }

  /** Whether `id` may come next. */
  allows(id: number): boolean {
    if (this.#ended) return false
    if (this.vocabulary.eosTokenIds.includes(id)) return this.isComplete
    const bytes = this.vocabulary.bytesOf(id)
    if (bytes === undefined || bytes.length === 0) return false
    return this.#bounded(() => accepts(this.#stacks, bytes, 0))
  }

  /** Advances by a token; returns false (and changes nothing) when the grammar refuses it. */
  accept(id: number): boolean {
    if (this.#ended) return false
    if (this.vocabulary.eosTokenIds.includes(id)) {
      if (!this.isComplete) return false
      this.#ended = true
      return true
    }
    const bytes = this.vocabulary.bytesOf(id)
    if (bytes === undefined || bytes.length === 0) return false
    const next = this.#bounded(() => {
      let current: Stack[] = this.#stacks
      for (const byte of bytes) {
        current = advanceAll(current, byte)
        if (current.length === 0) return undefined
      }
      return current
    })
    if (next === undefined) return false
    this.#stacks = next
    return true
  }

  /**
   * Runs a step that advances stacks, turning the frames' bound on live readings into the
   * request's error: the schema is at fault, not the engine, and the answer cannot go on.
   */
  #bounded<T>(step: () => T): T {
    try {
      return step()
    } catch (error) {
      if (!(error instanceof AmbiguityLimitError)) throw error
      if (error.patterns !== undefined)
        throw new InvalidArgumentError(
          this.grammar.param,
          `The schema in ${this.grammar.param} is too ambiguous: ${error.patterns} strings under different patterns or formats are live at once (more than ${error.limit}: anyOf alternatives that overlap up to a string, each with its own pattern), and each would take a pass over the whole vocabulary at every token. Make the alternatives distinguishable before the string (different types, or a const tag property first in each object), or give them fewer distinct patterns.`,
          { cause: error },
        )
      throw new InvalidArgumentError(
        this.grammar.param,
        `The schema in ${this.grammar.param} is too ambiguous: its anyOf alternatives overlap so much that more than ${error.limit} readings of the document are live at once (each alternative that still fits the text is one, and nested overlapping anyOf multiply them), which would take unbounded time and memory per token. Make the alternatives distinguishable from their first bytes (different types, or a const tag property first in each object), or nest fewer overlapping anyOf.`,
        { cause: error },
      )
    }
  }

  /**
   * Writes the allowed next tokens into `bits` (bit id set = allowed), EOS included when the
   * document is complete. Throws when nothing is allowed (a grammar that cannot go on: never
   * expected, since every state has a completion; better loud than a silent invalid answer).
   */
  fillMask(bits: Uint32Array): void {
    bits.fill(0)
    if (this.#ended) return
    const generic: Stack[] = []
    this.#bounded(() => {
      for (const stack of this.#stacks) {
        if (stack.frame instanceof StringFrame) this.#stringMask(stack, stack.frame, bits)
        else if (stack.frame instanceof RawStringFrame) this.#rawStringMask(stack, stack.frame, bits)
        else generic.push(stack)
      }
      if (generic.length > 0) this.#walkMask(generic, bits)
    })
    if (this.isComplete) for (const id of this.vocabulary.eosTokenIds) bits[id >>> 5]! |= 1 << (id & 31)
    for (let word = 0; word < bits.length; word++) if (bits[word] !== 0) return
    throw new BackendError(
      'backend_failed',
      'The output constraint reached a state where no token can continue the document; this is a bug in the grammar engine, please report the schema.',
    )
  }

  #stringMask(stack: Stack, frame: StringFrame, bits: Uint32Array): void {
    const vocabulary = this.vocabulary
    const scan = scanString(vocabulary, frame)
    const node = frame.node
    const inside = insideUpTo(scan, node.maxLength - frame.count, this.words)
    for (let word = 0; word < bits.length; word++) bits[word]! |= inside[word]!
    const below = stack.below
    if (below === undefined) return
    const { closeIds, closeCounts, closeRest, closeRestIndex, rests } = scan
    // 0 = not checked yet, 1 = the rest may follow, 2 = it may not.
    const restResults = new Uint8Array(rests.length)
    let sharedParent: Stack[] | undefined
    for (let position = 0; position < closeIds.length; position++) {
      const total = frame.count + closeCounts[position]!
      if (total < node.minLength || total > node.maxLength) continue
      const id = closeIds[position]!
      if (frame.text !== undefined) {
        const bytes = vocabulary.bytesOf(id)!
        const restStart = closeRest[position]!
        // A property name: the name decides the object's next state (no repeats, no listed names).
        const name = frame.text + byteString(bytes.subarray(0, restStart - 1))
        if (frame.forbidden?.has(name)) continue
        const closed = new StringFrame(node, 0, total, frame.state, 0, name, frame.forbidden)
        const parent = [{ frame: below.frame.childDone(closed), below: below.below }]
        if (!accepts(parent, bytes, restStart)) continue
      } else {
        const restIndex = closeRestIndex[position]!
        let allowed = restResults[restIndex]!
        if (allowed === 0) {
          sharedParent ??= [{ frame: below.frame.childDone(frame), below: below.below }]
          allowed = accepts(sharedParent, rests[restIndex]!, 0) ? 1 : 2
          restResults[restIndex] = allowed
        }
        if (allowed === 2) continue
      }
      bits[id >>> 5]! |= 1 << (id & 31)
    }
  }

  /**
   * A raw string (a tool call's string parameter in the XML dialect) as #stringMask does a JSON
   * string: tokens without a line break stay inside it (the terminator starts with one), from a
   * scan per substate sorted by characters; the ~2k tokens with a line break may end it, and each
   * is checked on the real stack.
   */
  #rawStringMask(stack: Stack, frame: RawStringFrame, bits: Uint32Array): void {
    const vocabulary = this.vocabulary
    const scan = scanRawString(vocabulary, frame)
    const inside = insideUpTo(scan, frame.node.maxLength - frame.count, this.words)
    for (let word = 0; word < bits.length; word++) bits[word]! |= inside[word]!
    // Without a maxLength the stack's key leaves the count out, so the result repeats: remember it.
    const key =
      frame.node.maxLength === Number.POSITIVE_INFINITY
        ? `${vocabulary.id}|raw|${stackKey(stack)}`
        : undefined
    let allowed = key === undefined ? undefined : this.grammar.cachedWalk(key)
    if (allowed === undefined) {
      allowed = new Uint32Array(this.words)
      const stacks = [stack]
      for (const id of lineBreakTokens(vocabulary))
        if (accepts(stacks, vocabulary.bytesOf(id)!, 0)) allowed[id >>> 5]! |= 1 << (id & 31)
      if (key !== undefined) this.grammar.storeWalk(key, allowed)
    }
    for (let word = 0; word < bits.length; word++) bits[word]! |= allowed[word]!
  }

  #walkMask(stacks: Stack[], bits: Uint32Array): void {
    const key = `${this.vocabulary.id}|${stacks.map(stackKey).join('|')}`
    let walked = this.grammar.cachedWalk(key)
    if (walked === undefined) {
      walked = new Uint32Array(this.words)
      const { nodeByte, nodeDepth, nodeEnd, nodeToken, nodeCount, duplicates } = this.vocabulary
      const levels: Stack[][] = [stacks]
      let index = 1
      while (index < nodeCount) {
        const depth = nodeDepth[index]!
        const next = advanceAll(levels[depth - 1]!, nodeByte[index]!)
        if (next.length === 0) {
          index = nodeEnd[index]!
          continue
        }
        levels[depth] = next
        const id = nodeToken[index]!
        if (id >= 0) {
          walked[id >>> 5]! |= 1 << (id & 31)
          for (const duplicate of duplicates.get(index) ?? [])
            walked[duplicate >>> 5]! |= 1 << (duplicate & 31)
        }
        index++
      }
      this.grammar.storeWalk(key, walked)
    }
    for (let word = 0; word < bits.length; word++) bits[word]! |= walked[word]!
  }

  /** A matcher at the same state (for look-ahead), sharing the grammar's caches. */
  fork(): GrammarMatcher {
    const copy = new GrammarMatcher(this.grammar, this.vocabulary, this.#stacks)
    copy.#ended = this.#ended
    return copy
  }
}

/**
 * The per-tokenizer preparation, done ahead of the first constrained request: the byte trie and
 * the string scans every JSON answer uses (plain strings and property names, in each UTF-8 /
 * escape substate). Pattern and format strings are scanned on first use per automaton state.
 */
export function prepareStrings(vocabulary: TokenVocabulary): void {
  const substates = [0, 1, 2, 3, 4, 5, 6]
  for (let need = 1; need <= 3; need++)
    for (let range = 0; range < 5; range++) substates.push(16 + 8 * need + range)
  for (const node of [plainStringNode, keyStringNode]) {
    for (const substate of substates) {
      if (node.isKey && substate !== 0 && substate < 16) continue // names have no escapes
      scanString(vocabulary, new StringFrame(node, substate, 0, undefined, 0, undefined, undefined))
    }
  }
}

/**
 * Builds everything a tokenizer's first constrained answer (JSON output, tool calls) would
 * otherwise build inside that request: a quarter second of synchronous work on a 151k
 * vocabulary, which on a server holds every other request and health check. Hosts call it at load.
 */
export function prepareConstrainedOutput(tokenizer: TokenSource): void {
  prepareStrings(vocabularyOf(tokenizer))
}

/** Sets every logit whose token `bits` does not allow to -Infinity. */
export function applyMask(logits: Float32Array, bits: Uint32Array): void {
  const size = logits.length
  for (let word = 0; word < bits.length; word++) {
    const value = bits[word]!
    const base = word << 5
    if (value === -1 >>> 0 || base >= size) continue
    const end = Math.min(base + 32, size)
    if (value === 0) {
      logits.fill(Number.NEGATIVE_INFINITY, base, end)
      continue
    }
    for (let id = base; id < end; id++)
      if ((value & (1 << (id - base))) === 0) logits[id] = Number.NEGATIVE_INFINITY
  }
  const covered = bits.length << 5
  if (covered < size) logits.fill(Number.NEGATIVE_INFINITY, covered)
}
