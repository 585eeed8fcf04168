// The pushdown automaton over bytes that a compiled schema describes. A state is a stack of
// immutable frames (one per open object, array, string, number or literal); a set of such stacks
// covers the places where the grammar is ambiguous (anyOf, keys with a common prefix, a number
// that may end or go on). Advancing never mutates a frame, so the mask walk can branch from any
// state for free, and a state is a pure function of the bytes fed so far.
//
// Every state the frames allow can be completed to a valid document: each step checks that a
// completion still exists (a string's length so far plus the exact distance of its language
// automaton, see string-language.ts; number ranges exactly, in units of the last fraction digit),
// so the mask never leads the model into a dead end.
import {
  type AnyNode,
  type ArrayNode,
  firstMultiple,
  integerRange,
  type LiteralNode,
  maxFractionDigits,
  maxIntegerDigits,
  type NumberNode,
  type ObjectNode,
  type SchemaNode,
  type StringNode,
  stringNode,
} from './json-schema.ts'
import { allowedUnits, largestUnits } from './number-range.ts'
import type { AutomatonState } from './regex.ts'
import {
  cheapestAfterSequence,
  continuationNeeded,
  continuedSubstate,
  leadBits,
  leadSubstate,
  utf8Base,
} from './utf8-sequence.ts'

export interface Stack {
  readonly frame: Frame
  readonly below: Stack | undefined
}

export abstract class Frame {
  #key: string | undefined
  /** Whether the value this frame reads may end here (the next byte then belongs to the parent). */
  get canEnd(): boolean {
    return false
  }
  /** Adds to `out` every stack that `byte` leads to from `stack` (whose top is this frame). */
  abstract step(byte: number, stack: Stack, out: Stack[]): void
  /** This frame after its child `child` completed. */
  childDone(_child: Frame): Frame {
    throw new Error('childDone on a frame without children')
  }
  protected abstract computeKey(): string
  get key(): string {
    this.#key ??= this.computeKey()
    return this.#key
  }
}

const stackKeys = new WeakMap<Stack, string>()

/** A stable identity of a stack's content (for deduplication and caches). */
export function stackKey(stack: Stack | undefined): string {
  if (stack === undefined) return ''
  let key = stackKeys.get(stack)
  if (key === undefined) {
    key = `${stack.frame.key}/${stackKey(stack.below)}`
    stackKeys.set(stack, key)
  }
  return key
}

/** The stack after its top frame completed and handed itself to the parent. */
export function popInto(stack: Stack): Stack | undefined {
  const below = stack.below
  if (below === undefined) return undefined
  return { frame: below.frame.childDone(stack.frame), below: below.below }
}

/** Adds every stack `byte` leads to from `stack`. */
export function advance(stack: Stack, byte: number, out: Stack[]): void {
  stack.frame.step(byte, stack, out)
  if (stack.frame.canEnd) {
    const parent = popInto(stack)
    if (parent !== undefined) advance(parent, byte, out)
  }
}

/** Whether the stack holds a complete document (every open frame may end). */
export function isComplete(stack: Stack): boolean {
  let current: Stack | undefined = stack
  while (current !== undefined) {
    if (!current.frame.canEnd) return false
    if (current.below === undefined) return true
    current = popInto(current)
  }
  return false
}

/**
 * The most readings (distinct stacks) a document may have at once. Overlapping anyOf
 * alternatives are legal, and each one that accepts the text so far is a live reading; nested
 * overlapping alternatives multiply them (two arrays differing in maxItems, nested twenty deep,
 * double the readings at every `[`: a million after twenty bytes, seconds per token and gigabytes).
 * Every step's work is proportional to the readings, so past this bound the request is refused.
 * Realistic schemas stay in the tens (the test and conformance schemas reach at most 4); at the
 * bound a mask still takes tens of milliseconds, not seconds.
 */
export const maxLiveStacks = 1024

/**
 * The most strings under distinct pattern or format states the readings may hold at once. Each
 * one's tokens come from a pass over the whole vocabulary (a scan of 10-100 ms on Qwen3's 151k
 * tokens), made again at every token past the scans' memory budget: an anyOf of 1,000 strings
 * with distinct patterns (a 40 KB body, within every compile bound) took 9-14 s per token,
 * holding every other request on a server. An anyOf of every format (date, date-time, time,
 * email, uri, uuid, ipv4, ipv6, hostname) opens nine at the quote. Counted over the readings
 * alone, not over what is cached, so the device and the edge refuse alike.
 */
export const maxLivePatternStrings = 16

/**
 * Thrown when a step would leave more than `maxLiveStacks` readings, or more than
 * `maxLivePatternStrings` pattern strings among them (`patterns`: how many); GrammarMatcher
 * names the schema.
 */
export class AmbiguityLimitError extends Error {
  override readonly name = 'AmbiguityLimitError'
  readonly limit: number
  readonly patterns: number | undefined
  constructor(limit: number, patterns?: number) {
    super(
      patterns === undefined
        ? `more than ${limit} readings of the document are live at once`
        : `${patterns} strings under distinct patterns are live at once (more than ${limit})`,
    )
    this.limit = limit
    this.patterns = patterns
  }
}

/** Throws when `stacks` hold more than `maxLivePatternStrings` distinct pattern-string states. */
function checkPatternStrings(stacks: readonly Stack[]): void {
  let keys: Set<string> | undefined
  for (const stack of stacks) {
    const frame = stack.frame
    if (!(frame instanceof StringFrame) || frame.state === undefined) continue
    keys ??= new Set()
    keys.add(frame.scanKey)
  }
  if (keys !== undefined && keys.size > maxLivePatternStrings)
    throw new AmbiguityLimitError(maxLivePatternStrings, keys.size)
}

/**
 * Advances a set of stacks by one byte, without duplicates. Deduplicates as it goes and stops at
 * `maxLiveStacks`, so a step's work stays bounded by the limit times one stack's fan-out.
 */
export function advanceAll(stacks: readonly Stack[], byte: number): Stack[] {
  const out: Stack[] = []
  let seen: Set<string> | undefined
  for (const stack of stacks) {
    const start = out.length
    advance(stack, byte, out)
    // Most steps have one stack: no keys to compute until there are two.
    if (out.length < 2) continue
    let read = start
    if (seen === undefined) {
      seen = new Set()
      read = 0
    }
    let write = read
    for (; read < out.length; read++) {
      const next = out[read]!
      const key = stackKey(next)
      if (seen.has(key)) continue
      seen.add(key)
      out[write++] = next
    }
    out.length = write
    if (write > maxLiveStacks) throw new AmbiguityLimitError(maxLiveStacks)
  }
  if (out.length > maxLivePatternStrings) checkPatternStrings(out)
  return out
}

function finish(stack: Stack, done: Frame, out: Stack[]): void {
  const below = stack.below
  if (below === undefined) return
  out.push({ frame: below.frame.childDone(done), below: below.below })
}

// --- The nodes free JSON expands to ------------------------------------------------------------

const anyNode: AnyNode = { kind: 'any', id: -1 }
const anyObject: ObjectNode = {
  kind: 'object',
  id: -2,
  properties: [],
  additional: anyNode,
  names: new Set(),
}
const anyArray: ArrayNode = {
  kind: 'array',
  id: -3,
  prefix: [],
  items: anyNode,
  minItems: 0,
  maxItems: Number.POSITIVE_INFINITY,
}
export const plainString: StringNode = stringNode(-4, 0, Number.POSITIVE_INFINITY, undefined, false)
const anyNumber: NumberNode = {
  kind: 'number',
  id: -5,
  integer: false,
  minimum: -(10 ** maxIntegerDigits),
  maximum: 10 ** maxIntegerDigits,
  exclusiveMinimum: false,
  exclusiveMaximum: false,
}
const encoder = new TextEncoder()
const anyLiteral: LiteralNode = {
  kind: 'literal',
  id: -6,
  values: ['true', 'false', 'null'].map((text) => encoder.encode(text)),
}

const quote = 0x22
const backslash = 0x5c

/** Starts a value of `node` with `byte`, on top of `parent` (the frame waiting for it). */
export function startValue(node: SchemaNode, byte: number, parent: Stack, out: Stack[]): void {
  switch (node.kind) {
    case 'any':
      if (byte === 0x7b) startValue(anyObject, byte, parent, out)
      else if (byte === 0x5b) startValue(anyArray, byte, parent, out)
      else if (byte === quote) startValue(plainString, byte, parent, out)
      else if (byte === 0x2d || (byte >= 0x30 && byte <= 0x39)) startValue(anyNumber, byte, parent, out)
      else startValue(anyLiteral, byte, parent, out)
      return
    case 'union':
      for (const option of node.options) startValue(option, byte, parent, out)
      return
    case 'reference':
      if (node.target !== undefined) startValue(node.target, byte, parent, out)
      return
    case 'object':
      if (byte === 0x7b)
        out.push({ frame: new ObjectFrame(node, 0, objectOpen, [], undefined), below: parent })
      return
    case 'array':
      if (byte === 0x5b) out.push({ frame: new ArrayFrame(node, 0, arrayOpen), below: parent })
      return
    case 'string':
      if (byte === quote) out.push({ frame: StringFrame.open(node), below: parent })
      return
    case 'number': {
      const frame = NumberFrame.start(node, byte)
      if (frame !== undefined) out.push({ frame, below: parent })
      return
    }
    case 'literal': {
      const alive: number[] = []
      for (let index = 0; index < node.values.length; index++)
        if (node.values[index]![0] === byte) alive.push(index)
      if (alive.length > 0) LiteralFrame.continueWith(node, alive, 1, parent, out)
      return
    }
  }
}

// --- Document ----------------------------------------------------------------------------------

const documentPrefix = 0
const documentInside = 1
const documentSuffix = 2
const noBytes: Uint8Array = new Uint8Array(0)

/** The bottom of every stack: `prefix`, one value of `node`, `suffix`, then nothing. */
export class DocumentFrame extends Frame {
  readonly node: SchemaNode
  readonly stage: number
  /** Bytes of the prefix or suffix read so far. */
  readonly index: number
  readonly prefix: Uint8Array
  readonly suffix: Uint8Array
  constructor(
    node: SchemaNode,
    stage = documentPrefix,
    index = 0,
    prefix: Uint8Array = noBytes,
    suffix: Uint8Array = noBytes,
  ) {
    super()
    this.node = node
    this.stage = stage
    this.index = index
    this.prefix = prefix
    this.suffix = suffix
  }
  override get canEnd(): boolean {
    return this.stage === documentSuffix && this.index === this.suffix.length
  }
  step(byte: number, _stack: Stack, out: Stack[]): void {
    if (this.stage === documentPrefix) {
      if (this.index < this.prefix.length) {
        if (this.prefix[this.index] === byte)
          out.push({ frame: this.#at(documentPrefix, this.index + 1), below: undefined })
        return
      }
      startValue(this.node, byte, { frame: this.#at(documentInside, 0), below: undefined }, out)
      return
    }
    if (
      this.stage === documentSuffix &&
      this.index < this.suffix.length &&
      this.suffix[this.index] === byte
    ) {
      out.push({ frame: this.#at(documentSuffix, this.index + 1), below: undefined })
    }
  }
  #at(stage: number, index: number): DocumentFrame {
    return new DocumentFrame(this.node, stage, index, this.prefix, this.suffix)
  }
  override childDone(): Frame {
    return this.#at(documentSuffix, 0)
  }
  protected computeKey(): string {
    return `D${this.node.id}.${this.stage}.${this.index}`
  }
}

// --- Literals (enum, const, true/false/null, property names) -----------------------------------

export class LiteralFrame extends Frame {
  readonly node: LiteralNode
  readonly alive: readonly number[]
  readonly position: number
  constructor(node: LiteralNode, alive: readonly number[], position: number) {
    super()
    this.node = node
    this.alive = alive
    this.position = position
  }

  /**
   * Pushes the frame for the candidates `alive` at `position`, or, when every candidate ends
   * exactly here, completes it into the parent at once.
   */
  static continueWith(
    node: LiteralNode,
    alive: readonly number[],
    position: number,
    parent: Stack | undefined,
    out: Stack[],
  ): void {
    if (parent === undefined) return
    const longer = alive.some((index) => node.values[index]!.length > position)
    const frame = new LiteralFrame(node, alive, position)
    if (longer) out.push({ frame, below: parent })
    else out.push({ frame: parent.frame.childDone(frame), below: parent.below })
  }

  override get canEnd(): boolean {
    return this.alive.some((index) => this.node.values[index]!.length === this.position)
  }

  step(byte: number, stack: Stack, out: Stack[]): void {
    const next: number[] = []
    for (const index of this.alive) {
      const value = this.node.values[index]!
      if (value.length > this.position && value[this.position] === byte) next.push(index)
    }
    if (next.length > 0) LiteralFrame.continueWith(this.node, next, this.position + 1, stack.below, out)
  }

  protected computeKey(): string {
    return `L${this.node.id}.${this.position}.${this.alive.join(',')}`
  }
}

/**
 * The listed properties' names (`"name"`, quotes included) that may be written at a key, after
 * the opening quote, as one frame: the candidates still matching the bytes so far. Each candidate
 * was a stack of its own, so an object with more than `maxLiveStacks` optional properties (a wide
 * OpenAPI object, a record keyed by a long propertyNames enum) failed at its first key as an
 * anyOf too ambiguous to follow, though it has none. The names are JSON texts ending at their
 * only unescaped quote, so no candidate is a prefix of another and at most one ends at a byte.
 */
export class KeyFrame extends Frame {
  /** Indices into `properties`, in schema order; never empty. */
  readonly candidates: readonly number[]
  readonly properties: readonly { readonly keyBytes: Uint8Array }[]
  readonly position: number
  constructor(
    candidates: readonly number[],
    properties: readonly { readonly keyBytes: Uint8Array }[],
    position: number,
  ) {
    super()
    this.candidates = candidates
    this.properties = properties
    this.position = position
  }
  /** The property whose name was read (once the frame is complete: one candidate left). */
  get property(): number {
    return this.candidates[0]!
  }
  step(byte: number, stack: Stack, out: Stack[]): void {
    const position = this.position
    const alive: number[] = []
    for (const index of this.candidates) {
      const bytes = this.properties[index]!.keyBytes
      if (bytes[position] !== byte) continue
      if (bytes.length === position + 1) {
        finish(stack, new KeyFrame([index], this.properties, position + 1), out)
        return
      }
      alive.push(index)
    }
    if (alive.length > 0)
      out.push({ frame: new KeyFrame(alive, this.properties, position + 1), below: stack.below })
  }
  protected computeKey(): string {
    // The stack below fixes the names this key started with; the first one still matching and
    // the position fix the bytes read, hence every candidate left.
    return `K${this.candidates[0]}.${this.position}`
  }
}

// --- Objects -----------------------------------------------------------------------------------

const objectOpen = 0
const objectKey = 1
const objectColon = 2
const objectValue = 3
const objectInValue = 4
const objectAfterValue = 5
const objectComma = 6

const requiredCounts = new WeakMap<ObjectNode, Int32Array>()

/**
 * How many required properties are listed from each index on (one more entry than properties):
 * a key's check looked through the rest of the list, for every candidate of every key.
 */
function requiredFrom(node: ObjectNode): Int32Array {
  let counts = requiredCounts.get(node)
  if (counts === undefined) {
    const properties = node.properties
    counts = new Int32Array(properties.length + 1)
    for (let index = properties.length - 1; index >= 0; index--)
      counts[index] = counts[index + 1]! + (properties[index]!.required ? 1 : 0)
    requiredCounts.set(node, counts)
  }
  return counts
}

export class ObjectFrame extends Frame {
  readonly node: ObjectNode
  /** The first listed property that may still be written (they go in schema order). */
  readonly next: number
  readonly phase: number
  /** Names of unlisted properties already written (byte strings). */
  readonly extras: readonly string[]
  /** The schema of the value being read (after a key). */
  readonly valueNode: SchemaNode | undefined
  /** How many keys are written (for minProperties/maxProperties). */
  readonly count: number
  constructor(
    node: ObjectNode,
    next: number,
    phase: number,
    extras: readonly string[],
    valueNode: SchemaNode | undefined,
    count = 0,
  ) {
    super()
    this.node = node
    this.next = next
    this.phase = phase
    this.extras = extras
    this.valueNode = valueNode
    this.count = count
  }

  /** Whether the object may end here: no required property left, minProperties reached. */
  get #mayClose(): boolean {
    return this.#restOptional && this.count >= (this.node.minProperties ?? 0)
  }

  /**
   * Whether a key may be written next so that the object can still end: after it, the required
   * properties left must fit under maxProperties, and enough names must remain for minProperties.
   * `index` is the listed property (its successors may follow), or undefined for an unlisted one.
   */
  #keyFits(index: number | undefined): boolean {
    const properties = this.node.properties
    const count = this.count + 1
    const maximum = this.node.maxProperties ?? Number.POSITIVE_INFINITY
    if (index === undefined) return count <= maximum
    if (count + requiredFrom(this.node)[index + 1]! > maximum) return false
    const minimum = this.node.minProperties ?? 0
    if (count >= minimum || this.node.additional !== undefined) return true
    return count + (properties.length - index - 1) >= minimum
  }

  /** Whether every listed property from `next` on may be left out. */
  get #restOptional(): boolean {
    const properties = this.node.properties
    for (let index = this.next; index < properties.length; index++)
      if (properties[index]!.required) return false
    return true
  }

  get #mayAddKey(): boolean {
    const properties = this.node.properties
    for (let index = this.next; index < properties.length; index++) {
      if (this.#keyFits(index)) return true
      if (properties[index]!.required) return false
    }
    return this.node.additional !== undefined && this.#keyFits(undefined)
  }

  step(byte: number, stack: Stack, out: Stack[]): void {
    const below = stack.below
    switch (this.phase) {
      case objectOpen:
      case objectComma:
        if (byte === 0x7d && this.phase === objectOpen && this.#mayClose) finish(stack, this, out)
        else if (byte === quote) this.#startKey(stack, out)
        return
      case objectColon:
        if (byte === 0x3a) out.push({ frame: this.#with(objectValue), below })
        return
      case objectValue:
        startValue(this.valueNode as SchemaNode, byte, { frame: this.#with(objectInValue), below }, out)
        return
      case objectAfterValue:
        if (byte === 0x2c && this.#mayAddKey) out.push({ frame: this.#with(objectComma), below })
        else if (byte === 0x7d && this.#mayClose) finish(stack, this, out)
        return
    }
  }

  #startKey(stack: Stack, out: Stack[]): void {
    const waiting: Stack = { frame: this.#with(objectKey), below: stack.below }
    const properties = this.node.properties
    const candidates: number[] = []
    let requiredLeft = false
    for (let index = this.next; index < properties.length; index++) {
      if (this.#keyFits(index)) candidates.push(index)
      if (properties[index]!.required) {
        requiredLeft = true
        break
      }
    }
    if (candidates.length > 0) out.push({ frame: new KeyFrame(candidates, properties, 1), below: waiting })
    if (requiredLeft) return
    if (this.node.additional !== undefined && this.#keyFits(undefined)) {
      const forbidden = new Set<string>(this.extras)
      for (const name of this.node.names) forbidden.add(name)
      out.push({ frame: StringFrame.open(keyString, forbidden), below: waiting })
    }
  }

  #with(phase: number): ObjectFrame {
    return new ObjectFrame(this.node, this.next, phase, this.extras, this.valueNode, this.count)
  }

  override childDone(child: Frame): Frame {
    if (this.phase === objectInValue)
      return new ObjectFrame(this.node, this.next, objectAfterValue, this.extras, undefined, this.count)
    if (child instanceof KeyFrame) {
      return new ObjectFrame(
        this.node,
        child.property + 1,
        objectColon,
        this.extras,
        this.node.properties[child.property]!.node,
        this.count + 1,
      )
    }
    const name = (child as StringFrame).text ?? ''
    return new ObjectFrame(
      this.node,
      this.node.properties.length,
      objectColon,
      [...this.extras, name],
      this.node.additional,
      this.count + 1,
    )
  }

  protected computeKey(): string {
    return `O${this.node.id}.${this.next}.${this.phase}.${this.valueNode?.id ?? ''}.${this.count}.${this.extras.join('\u0001')}`
  }
}

/** Unlisted property names: plain strings without escapes (so the bytes are the name). */
export const keyString: StringNode = stringNode(-7, 0, Number.POSITIVE_INFINITY, undefined, true)

export function byteString(bytes: Uint8Array): string {
  let text = ''
  for (const byte of bytes) text += String.fromCharCode(byte)
  return text
}

// --- Arrays ------------------------------------------------------------------------------------

const arrayOpen = 0
const arrayInValue = 1
const arrayAfterValue = 2
const arrayComma = 3

export class ArrayFrame extends Frame {
  readonly node: ArrayNode
  readonly count: number
  readonly phase: number
  constructor(node: ArrayNode, count: number, phase: number) {
    super()
    this.node = node
    this.count = count
    this.phase = phase
  }

  #item(index: number): SchemaNode | undefined {
    if (index >= this.node.maxItems) return undefined
    return this.node.prefix[index] ?? this.node.items
  }

  step(byte: number, stack: Stack, out: Stack[]): void {
    const below = stack.below
    switch (this.phase) {
      case arrayOpen:
      case arrayComma: {
        if (byte === 0x5d && this.phase === arrayOpen && this.node.minItems === 0) {
          finish(stack, this, out)
          return
        }
        const item = this.#item(this.count)
        if (item !== undefined)
          startValue(item, byte, { frame: new ArrayFrame(this.node, this.count, arrayInValue), below }, out)
        return
      }
      case arrayAfterValue:
        if (byte === 0x2c && this.#item(this.count) !== undefined)
          out.push({ frame: new ArrayFrame(this.node, this.count, arrayComma), below })
        else if (byte === 0x5d && this.count >= this.node.minItems) finish(stack, this, out)
        return
    }
  }

  override childDone(): Frame {
    return new ArrayFrame(this.node, this.count + 1, arrayAfterValue)
  }

  protected computeKey(): string {
    // Past the prefix and the limits, the count no longer matters: one key for every such state.
    const relevant = Math.max(this.node.prefix.length, this.node.minItems)
    const count =
      this.count >= relevant && this.node.maxItems === Number.POSITIVE_INFINITY ? relevant : this.count
    return `A${this.node.id}.${count}.${this.phase}`
  }
}

// --- Strings -----------------------------------------------------------------------------------

// Substates: 0 plain; 1 after a backslash; 2..5 inside \uXXXX with 0..3 digits read; 6 after
// "\uD" (the next digit must be 0-7: no surrogates); 16 + 8 * need + range: inside a UTF-8
// sequence needing `need` more bytes, the next one in the range `range` (utf8-sequence.ts).
const plainState = 0
const escapeState = 1
const unicodeState = 2
const unicodeAfterD = 6
const simpleEscapes: ReadonlyMap<number, number> = new Map([
  [0x22, 0x22],
  [0x5c, 0x5c],
  [0x2f, 0x2f],
  [0x62, 0x08],
  [0x66, 0x0c],
  [0x6e, 0x0a],
  [0x72, 0x0d],
  [0x74, 0x09],
])

function isHexDigit(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
}

/** The least distance after one of the simple escapes, per state (escapes are few, states many). */
const afterEscape = new WeakMap<AutomatonState, number>()
function cheapestEscape(state: AutomatonState): number {
  let cheapest = afterEscape.get(state)
  if (cheapest === undefined) {
    cheapest = Number.POSITIVE_INFINITY
    for (const value of simpleEscapes.values()) {
      const after = state.automaton.next(state, value)
      if (after !== undefined) cheapest = Math.min(cheapest, after.distance)
    }
    afterEscape.set(state, cheapest)
  }
  return cheapest
}

export class StringFrame extends Frame {
  readonly node: StringNode
  readonly substate: number
  /** Characters (code points) started so far. */
  readonly count: number
  /** The language automaton's state after the characters completed so far (none: any string). */
  readonly state: AutomatonState | undefined
  /** The code point bits read so far inside a multi-byte character (with an automaton only). */
  readonly partial: number
  /** Property names: the bytes so far, and the names that may not be used. */
  readonly text: string | undefined
  readonly forbidden: ReadonlySet<string> | undefined
  constructor(
    node: StringNode,
    substate: number,
    count: number,
    state: AutomatonState | undefined,
    partial: number,
    text: string | undefined,
    forbidden: ReadonlySet<string> | undefined,
  ) {
    super()
    this.node = node
    this.substate = substate
    this.count = count
    this.state = state
    this.partial = partial
    this.text = text
    this.forbidden = forbidden
  }

  static open(node: StringNode, forbidden?: ReadonlySet<string>): StringFrame {
    return new StringFrame(
      node,
      plainState,
      0,
      node.automaton?.start,
      0,
      node.isKey ? '' : undefined,
      forbidden,
    )
  }

  /**
   * The frame after `byte` when some completion of it still fits (the language and maxLength),
   * pushed onto `out`; nothing otherwise.
   */
  #push(
    substate: number,
    count: number,
    state: AutomatonState | undefined,
    partial: number,
    byte: number,
    below: Stack | undefined,
    out: Stack[],
  ): void {
    const text = this.text === undefined ? undefined : this.text + String.fromCharCode(byte)
    const frame = new StringFrame(this.node, substate, count, state, partial, text, this.forbidden)
    const needed = frame.needed
    if (Number.isFinite(needed) && frame.count + needed <= this.node.maxLength) out.push({ frame, below })
  }

  /**
   * The fewest characters that must still follow the ones counted so far (the one being written
   * included) before the string may close: exact, so the mask never enters a dead end. Infinity
   * when none can (the frame is then never pushed).
   */
  get needed(): number {
    const state = this.state
    if (state === undefined) return 0
    const substate = this.substate
    if (substate === plainState) return state.distance
    if (substate === escapeState) return cheapestEscape(state)
    if (substate >= utf8Base) return cheapestAfterSequence(state, substate, this.partial)
    return 0
  }

  /** Whether this string may close here (length and language; the name check is separate). */
  get mayClose(): boolean {
    if (this.substate !== plainState || this.count < this.node.minLength) return false
    return this.state === undefined || this.state.accepting
  }

  step(byte: number, stack: Stack, out: Stack[]): void {
    const below = stack.below
    const substate = this.substate
    const node = this.node
    const state = this.state
    if (substate === plainState) {
      if (byte === quote) {
        if (this.mayClose && (this.forbidden === undefined || !this.forbidden.has(this.text ?? '')))
          finish(stack, this, out)
        return
      }
      if (byte < 0x20) return
      if (byte === backslash) {
        if (!node.isKey) this.#push(escapeState, this.count + 1, state, 0, byte, below, out)
        return
      }
      if (byte < 0x80) {
        const after = state === undefined ? undefined : state.automaton.next(state, byte)
        if (state === undefined || after !== undefined)
          this.#push(plainState, this.count + 1, after, 0, byte, below, out)
        return
      }
      const lead = leadSubstate(byte)
      if (lead !== -1)
        this.#push(lead, this.count + 1, state, state === undefined ? 0 : leadBits(byte), byte, below, out)
      return
    }
    if (substate >= utf8Base) {
      const need = continuationNeeded(substate, byte)
      if (need === -1) return
      const bits = (this.partial << 6) | (byte & 0x3f)
      if (need === 1) {
        const after = state === undefined ? undefined : state.automaton.next(state, bits)
        if (state === undefined || after !== undefined)
          this.#push(plainState, this.count, after, 0, byte, below, out)
        return
      }
      this.#push(continuedSubstate(need), this.count, state, state === undefined ? 0 : bits, byte, below, out)
      return
    }
    if (substate === escapeState) {
      if (byte === 0x75) {
        // \uXXXX only in strings without an automaton (it reads whole characters).
        if (state === undefined) this.#push(unicodeState, this.count, state, 0, byte, below, out)
        return
      }
      const value = simpleEscapes.get(byte)
      if (value === undefined) return
      const after = state === undefined ? undefined : state.automaton.next(state, value)
      if (state === undefined || after !== undefined)
        this.#push(plainState, this.count, after, 0, byte, below, out)
      return
    }
    // Inside \uXXXX.
    if (!isHexDigit(byte)) return
    if (substate === unicodeAfterD) {
      if (!(byte >= 0x30 && byte <= 0x37)) return
      this.#push(unicodeState + 2, this.count, state, 0, byte, below, out)
      return
    }
    const read = substate - unicodeState
    if (read === 0 && (byte === 0x64 || byte === 0x44)) {
      this.#push(unicodeAfterD, this.count, state, 0, byte, below, out)
      return
    }
    this.#push(read === 3 ? plainState : substate + 1, this.count, state, 0, byte, below, out)
  }

  /** The part of the key the mask caches depend on (not the count, not the name so far). */
  get scanKey(): string {
    let key = `${this.node.signature}#${this.substate}`
    if (this.state !== undefined) key += `#${this.partial}#${this.state.key}`
    return key
  }

  protected computeKey(): string {
    return `S${this.node.id}.${this.count}.${this.scanKey}.${this.text ?? ''}`
  }
}

// --- Numbers -----------------------------------------------------------------------------------

const numberSign = 0
const numberZero = 1
const numberInteger = 2
const numberDot = 3
const numberFraction = 4

/**
 * A JSON number without exponent. The digits read so far are kept as text; each step checks
 * that some completion still lies within the bounds (by intervals of reachable values).
 */
export class NumberFrame extends Frame {
  readonly node: NumberNode
  readonly phase: number
  readonly negative: boolean
  readonly integerDigits: string
  readonly fractionDigits: string
  constructor(
    node: NumberNode,
    phase: number,
    negative: boolean,
    integerDigits: string,
    fractionDigits: string,
  ) {
    super()
    this.node = node
    this.phase = phase
    this.negative = negative
    this.integerDigits = integerDigits
    this.fractionDigits = fractionDigits
  }

  static start(node: NumberNode, byte: number): NumberFrame | undefined {
    if (byte === 0x2d) return new NumberFrame(node, numberSign, true, '', '').#feasible()
    if (byte === 0x30) return new NumberFrame(node, numberZero, false, '0', '').#feasible()
    if (byte > 0x30 && byte <= 0x39)
      return new NumberFrame(node, numberInteger, false, String.fromCharCode(byte), '').#feasible()
    return undefined
  }

  override get canEnd(): boolean {
    if (this.phase !== numberZero && this.phase !== numberInteger && this.phase !== numberFraction)
      return false
    const value = Number(
      `${this.negative ? '-' : ''}${this.integerDigits}${this.fractionDigits === '' ? '' : `.${this.fractionDigits}`}`,
    )
    // "-0" (and "-0.0") is valid JSON but an odd way to write zero: the grammar writes "0".
    if (value === 0 && this.negative) return false
    const node = this.node
    if (node.exclusiveMinimum ? !(value > node.minimum) : !(value >= node.minimum)) return false
    if (node.exclusiveMaximum ? !(value < node.maximum) : !(value <= node.maximum)) return false
    if (node.multipleOf !== undefined && value % node.multipleOf !== 0) return false
    return true
  }

  step(byte: number, stack: Stack, out: Stack[]): void {
    const isDigit = byte >= 0x30 && byte <= 0x39
    const digit = String.fromCharCode(byte)
    let next: NumberFrame | undefined
    switch (this.phase) {
      case numberSign:
        if (byte === 0x30) next = this.#with(numberZero, '0', '')
        else if (isDigit) next = this.#with(numberInteger, digit, '')
        break
      case numberZero:
        if (byte === 0x2e && !this.node.integer) next = this.#with(numberDot, this.integerDigits, '')
        break
      case numberInteger:
        if (isDigit && this.integerDigits.length < maxIntegerDigits)
          next = this.#with(numberInteger, this.integerDigits + digit, '')
        else if (byte === 0x2e && !this.node.integer) next = this.#with(numberDot, this.integerDigits, '')
        break
      case numberDot:
      case numberFraction:
        if (isDigit && this.fractionDigits.length < maxFractionDigits)
          next = this.#with(numberFraction, this.integerDigits, this.fractionDigits + digit)
        break
    }
    const feasible = next === undefined ? undefined : next.#feasible()
    if (feasible !== undefined) out.push({ frame: feasible, below: stack.below })
  }

  #with(phase: number, integerDigits: string, fractionDigits: string): NumberFrame {
    return new NumberFrame(this.node, phase, this.negative, integerDigits, fractionDigits)
  }

  /** This frame when some completion of it is within the bounds, else undefined. */
  #feasible(): NumberFrame | undefined {
    return (this.node.integer ? this.#integerFeasible() : this.#decimalFeasible()) ? this : undefined
  }

  #integerFeasible(): boolean {
    const node = this.node
    const range = integerRange(node.minimum, node.exclusiveMinimum, node.maximum, node.exclusiveMaximum)
    if (range === undefined) return false
    // Reachable absolute values as [low, high] intervals (integers up to 1e15 are exact doubles).
    const intervals: [number, number][] = []
    switch (this.phase) {
      case numberSign:
        intervals.push([0, 10 ** maxIntegerDigits - 1])
        break
      case numberZero:
        intervals.push([0, 0])
        break
      case numberInteger: {
        const prefix = Number(this.integerDigits)
        for (let more = 0; more <= maxIntegerDigits - this.integerDigits.length; more++) {
          const scale = 10 ** more
          intervals.push([prefix * scale, prefix * scale + scale - 1])
        }
        break
      }
      default:
        return false
    }
    for (const [absLow, absHigh] of intervals) {
      // A minus sign is never followed by a zero value (no "-0").
      const low = this.negative ? -absHigh : absLow
      const high = this.negative ? -Math.max(absLow, 1) : absHigh
      const from = Math.max(low, range[0])
      const to = Math.min(high, range[1])
      if (from <= to && (node.multipleOf === undefined || firstMultiple(from, node.multipleOf) <= to))
        return true
    }
    return false
  }

  /**
   * Whether a decimal the grammar can still write from here passes the bounds. Exact: the
   * reachable decimals are every multiple of 10^-15 in some intervals, compared in those units
   * with the node's allowed units (`allowedUnits`), so bounds finer than the 15 fraction digits
   * never leave the matcher without a token.
   */
  #decimalFeasible(): boolean {
    const allowed = allowedUnits(this.node)
    if (allowed === undefined) return false
    const unitsPerOne = 10n ** BigInt(maxFractionDigits)
    // Reachable absolute values in units, as [low, high] intervals.
    const intervals: [bigint, bigint][] = []
    switch (this.phase) {
      case numberSign:
        intervals.push([0n, largestUnits])
        break
      case numberZero:
        intervals.push([0n, unitsPerOne - 1n])
        break
      case numberInteger: {
        const prefix = BigInt(this.integerDigits)
        for (let more = 0; more <= maxIntegerDigits - this.integerDigits.length; more++) {
          const scale = 10n ** BigInt(more)
          intervals.push([prefix * scale * unitsPerOne, (prefix * scale + scale) * unitsPerOne - 1n])
        }
        break
      }
      case numberDot:
      case numberFraction: {
        const step = 10n ** BigInt(maxFractionDigits - this.fractionDigits.length)
        const base = BigInt(this.integerDigits) * unitsPerOne + BigInt(this.fractionDigits || '0') * step
        intervals.push([base, base + step - 1n])
        break
      }
    }
    for (const [absLow, absHigh] of intervals) {
      // A minus sign is never followed by a zero value (no "-0", "-0.00").
      const low = this.negative ? -absHigh : absLow
      const high = this.negative ? -(absLow > 1n ? absLow : 1n) : absHigh
      if (low <= high && low <= allowed[1] && allowed[0] <= high) return true
    }
    return false
  }

  protected computeKey(): string {
    return `N${this.node.id}.${this.phase}.${this.negative ? '-' : ''}${this.integerDigits}.${this.fractionDigits}`
  }
}
