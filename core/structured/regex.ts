// A regular-expression subset compiled to an automaton over code points, for JSON Schema `pattern`
// and the string formats. Matching follows JavaScript's `new RegExp(pattern, 'u').test(value)`,
// which is what JSON Schema validators run: unanchored unless the pattern starts with `^` / ends
// with `$` (per top-level alternative: `^a|b$` is "starts with a, or ends with b").
//
// The subset: literals, `.`, escapes (\d \w \s \D \W \S, \t \n \r \f \v \0, \uXXXX, \u{X},
// \xXX, escaped punctuation), classes `[...]` with ranges and `^`, groups `(...)`, `(?:...)`,
// `(?<name>...)`, alternation `|`, quantifiers `* + ? {n} {n,} {n,m}` (lazy forms match the same
// strings), `^` at the start and `$` at the end of a top-level alternative. Anything else (backreferences, lookaround, `\b`,
// anchors in the middle) is refused with the construct named, never approximated.
//
// Dead states (from which no accepting state is reachable) are pruned at compile time, so a string
// can always be completed from any state the matcher reaches. The automaton reads only the
// characters a generated string can hold (`generatableCharacters`): a pattern whose only way on
// is a character the grammar never writes would otherwise lead the matcher into a dead end.
import { InvalidArgumentError } from '../errors.ts'

/** A set of code points as sorted, disjoint, inclusive [low, high] pairs. */
export type CodePointRanges = readonly (readonly [number, number])[]

const maxCodePoint = 0x10ffff
const maxStates = 20_000
/** Determinized states a pattern keeps at once (see CodePointAutomaton's #stateFor). */
const maxDeterminizedStates = 20_000

/**
 * The characters a string under a pattern can hold: every Unicode scalar value but the control
 * characters without a short JSON escape (U+0000-U+001F other than \b \t \n \f \r). Such strings are
 * written raw or with those escapes; `\uXXXX` is not generated there, since the automaton reads
 * whole characters.
 */
export const generatableCharacters: CodePointRanges = [
  [0x08, 0x0a],
  [0x0c, 0x0d],
  [0x20, 0xd7ff],
  [0xe000, maxCodePoint],
]

interface NfaState {
  /** Code point ranges and their targets. */
  readonly edges: [number, number, number][]
  readonly epsilon: number[]
}

/**
 * What the string grammar needs of a string's language: a deterministic automaton over code
 * points, every state of which can still reach acceptance, with exact distances to it.
 */
export interface Automaton {
  /** Identifies the language (strings with equal sources share mask caches). */
  readonly source: string
  readonly start: AutomatonState
  /** The state after `codePoint`, or undefined when no live state takes it. */
  next(from: AutomatonState, codePoint: number): AutomatonState | undefined
  /**
   * The fewest characters still needed after taking some code point in [low, high] from `from`
   * (the least `distance` among the states they lead to), or Infinity when none of them is taken.
   */
  cheapest(from: AutomatonState, low: number, high: number): number
  /** Where the transitions out of `from` may change: each edge's low end and high end + 1. */
  boundaries(from: AutomatonState): number[]
}

/** A compiled pattern: a lazily determinized automaton over code points. */
export class CodePointAutomaton implements Automaton {
  readonly source: string
  readonly #states: NfaState[]
  readonly #accepting: number
  readonly #cache = new Map<string, AutomatonState>()
  /** NFA states, for the cache's bound. */
  readonly stateCount: number
  /** Per DFA state, its runs of code points (from boundaries()) and where each leads, once known. */
  readonly #partitions = new WeakMap<
    AutomatonState,
    { readonly points: number[]; readonly targets: (AutomatonState | null | undefined)[] }
  >()
  readonly start: AutomatonState

  /** Per NFA state, the fewest code points that lead to acceptance (for maxLength). */
  readonly #distance: Int32Array

  constructor(source: string, states: NfaState[], start: number, accepting: number) {
    this.source = source
    this.stateCount = states.length
    this.#states = states
    this.#accepting = accepting
    this.#distance = distances(states, accepting)
    this.start = this.#stateFor(this.#closure([start]))
  }

  #closure(seeds: readonly number[]): number[] {
    const seen = new Set<number>(seeds)
    const work = [...seeds]
    while (work.length > 0) {
      const state = work.pop() as number
      for (const next of this.#states[state]!.epsilon) {
        if (!seen.has(next)) {
          seen.add(next)
          work.push(next)
        }
      }
    }
    return [...seen].sort((a, b) => a - b)
  }

  #stateFor(members: number[]): AutomatonState {
    const key = members.join(',')
    let state = this.#cache.get(key)
    if (state === undefined) {
      // A pattern whose determinization keeps making states (`^(a|b)*a(a|b){12}$` has 8,192) must
      // not hold them all for the life of a server that keeps it cached: past a bound the table
      // starts over. States in use keep working (their keys, which caches use, stay the same).
      if (this.#cache.size >= maxDeterminizedStates) this.#cache.clear()
      let distance = Number.POSITIVE_INFINITY
      for (const member of members) {
        const each = this.#distance[member]!
        if (each !== unreachable) distance = Math.min(distance, each)
      }
      state = new AutomatonState(this, key, members, members.includes(this.#accepting), distance)
      this.#cache.set(key, state)
    }
    return state
  }

  /**
   * The state after `codePoint`, or undefined when no live state takes it. Computed once per run
   * of code points that the same NFA edges take (the state's partition), not once per code point:
   * a state with many members (`^.*.{1000}$` has up to a thousand) met by a vocabulary scan of
   * thousands of distinct characters took seconds per token that way.
   */
  next(from: AutomatonState, codePoint: number): AutomatonState | undefined {
    const { points, targets } = this.#partitionOf(from)
    const at = runAt(points, codePoint)
    if (at < 0) return undefined
    const cached = targets[at]
    if (cached !== undefined) return cached ?? undefined
    const reached: number[] = []
    for (const member of from.members) {
      for (const [edgeLow, edgeHigh, target] of this.#states[member]!.edges) {
        if (codePoint >= edgeLow && codePoint <= edgeHigh) reached.push(target)
      }
    }
    const result = reached.length === 0 ? undefined : this.#stateFor(this.#closure(reached))
    targets[at] = result ?? null
    return result
  }

  cheapest(from: AutomatonState, low: number, high: number): number {
    // Over the runs of the partition that meet [low, high]: each run leads to one state, whose
    // distance is the least of its members'. (Edge by edge, this cost a pass over every member
    // for every partial UTF-8 character a vocabulary scan met.)
    const { points } = this.#partitionOf(from)
    let cheapest = Number.POSITIVE_INFINITY
    for (let at = Math.max(0, runAt(points, low)); at < points.length && points[at]! <= high; at++) {
      const after = this.next(from, Math.max(points[at]!, low))
      if (after !== undefined) cheapest = Math.min(cheapest, after.distance)
    }
    return cheapest
  }

  #partitionOf(from: AutomatonState): {
    readonly points: number[]
    readonly targets: (AutomatonState | null | undefined)[]
  } {
    let partition = this.#partitions.get(from)
    if (partition === undefined) {
      const points = [...new Set(this.boundaries(from))].sort((a, b) => a - b)
      partition = { points, targets: new Array<AutomatonState | null | undefined>(points.length) }
      this.#partitions.set(from, partition)
    }
    return partition
  }

  boundaries(from: AutomatonState): number[] {
    const points: number[] = []
    for (const member of from.members)
      for (const [low, high] of this.#states[member]!.edges) points.push(low, high + 1)
    return points
  }
}

/** The last of the sorted `points` at or below `codePoint` (its run), or -1 when none is. */
function runAt(points: readonly number[], codePoint: number): number {
  let low = 0
  let high = points.length - 1
  let at = -1
  while (low <= high) {
    const middle = (low + high) >> 1
    if (points[middle]! <= codePoint) {
      at = middle
      low = middle + 1
    } else high = middle - 1
  }
  return at
}

export class AutomatonState {
  readonly automaton: Automaton
  /** Unique within the automaton, stable across compilations of the same source (cache keys). */
  readonly key: string
  /** The NFA states this DFA state stands for (pattern automata only). */
  readonly members: readonly number[]
  readonly accepting: boolean
  /** The fewest further code points that reach acceptance (0 when accepting). */
  readonly distance: number
  constructor(
    automaton: Automaton,
    key: string,
    members: readonly number[],
    accepting: boolean,
    distance: number,
  ) {
    this.automaton = automaton
    this.key = key
    this.members = members
    this.accepting = accepting
    this.distance = distance
  }
}

// --- Parsing ---------------------------------------------------------------------------------

type RegexNode =
  | { readonly kind: 'set'; readonly ranges: CodePointRanges }
  | { readonly kind: 'sequence'; readonly items: readonly RegexNode[] }
  | { readonly kind: 'alternation'; readonly options: readonly RegexNode[] }
  | { readonly kind: 'repeat'; readonly item: RegexNode; readonly min: number; readonly max: number }

const digit: CodePointRanges = [[0x30, 0x39]]
const word: CodePointRanges = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
]
// JavaScript's \s: WhiteSpace and LineTerminator code points.
const space: CodePointRanges = [
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
]
const lineTerminators: CodePointRanges = [
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
]

function normalize(ranges: readonly (readonly [number, number])[]): CodePointRanges {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0])
  const out: [number, number][] = []
  for (const [low, high] of sorted) {
    const last = out[out.length - 1]
    if (last !== undefined && low <= last[1] + 1) last[1] = Math.max(last[1], high)
    else out.push([low, high])
  }
  return out
}

/** The code points in both sets. */
export function intersect(a: CodePointRanges, b: CodePointRanges): [number, number][] {
  const out: [number, number][] = []
  const left = normalize(a)
  const right = normalize(b)
  let i = 0
  let j = 0
  while (i < left.length && j < right.length) {
    const low = Math.max(left[i]![0], right[j]![0])
    const high = Math.min(left[i]![1], right[j]![1])
    if (low <= high) out.push([low, high])
    if (left[i]![1] < right[j]![1]) i++
    else j++
  }
  return out
}

export function complement(ranges: CodePointRanges): CodePointRanges {
  const out: [number, number][] = []
  let next = 0
  for (const [low, high] of normalize(ranges)) {
    if (low > next) out.push([next, low - 1])
    next = high + 1
  }
  if (next <= maxCodePoint) out.push([next, maxCodePoint])
  return out
}

/**
 * How deep groups may nest. The parser (and what walks its tree) recurses once per group, so
 * 30,000 "(" overflowed the stack: a 500 on the edge, a RangeError from chat() on the device.
 */
const maxGroupDepth = 64

class RegexParser {
  #position = 0
  #depth = 0
  readonly source: string
  readonly param: string
  constructor(source: string, param: string) {
    this.source = source
    this.param = param
  }

  fail(what: string): never {
    throw new InvalidArgumentError(
      this.param,
      `The pattern ${JSON.stringify(this.source)} uses ${what} at offset ${this.#position}, which structured output cannot enforce. Supported: literals, ".", classes [...], \\d \\w \\s (and negations), groups, "|", the quantifiers * + ? {n,m}, and "^"/"$" at the ends.`,
    )
  }

  get done(): boolean {
    return this.#position >= this.source.length
  }

  peek(): string {
    return this.source[this.#position] ?? ''
  }

  /** The next code point as a string (a surrogate pair stays together, as with the u flag). */
  take(): string {
    const codePoint = this.source.codePointAt(this.#position)
    if (codePoint === undefined) this.fail('an unexpected end')
    const text = String.fromCodePoint(codePoint)
    this.#position += text.length
    return text
  }

  parseAlternation(): RegexNode {
    const options = [this.parseSequence()]
    while (this.peek() === '|') {
      this.#position++
      options.push(this.parseSequence())
    }
    return options.length === 1 ? options[0]! : { kind: 'alternation', options }
  }

  /**
   * The whole pattern: alternatives, each of which may start with `^` and end with `$` (as in
   * JavaScript, `^a|b$` is "starts with a, or ends with b"); an unanchored side matches anything.
   */
  parsePattern(): RegexNode {
    const anything: RegexNode = {
      kind: 'repeat',
      item: { kind: 'set', ranges: [[0, maxCodePoint]] },
      min: 0,
      max: Number.POSITIVE_INFINITY,
    }
    const options: RegexNode[] = []
    for (;;) {
      const anchoredStart = this.peek() === '^'
      if (anchoredStart) this.#position++
      const body = this.parseSequence(true)
      const anchoredEnd = this.peek() === '$'
      if (anchoredEnd) this.#position++
      const items: RegexNode[] = []
      if (!anchoredStart) items.push(anything)
      items.push(body)
      if (!anchoredEnd) items.push(anything)
      options.push({ kind: 'sequence', items })
      if (this.peek() !== '|') break
      this.#position++
    }
    if (!this.done) this.fail('an unmatched ")"')
    return options.length === 1 ? options[0]! : { kind: 'alternation', options }
  }

  /** Atoms up to `|`, `)` or the end; at the top level also up to a `$` that ends an alternative. */
  parseSequence(topLevel = false): RegexNode {
    const items: RegexNode[] = []
    while (!this.done && this.peek() !== '|' && this.peek() !== ')') {
      if (topLevel && this.peek() === '$' && /^\$(\||$)/.test(this.source.slice(this.#position))) break
      const atom = this.parseAtom()
      items.push(this.parseQuantifier(atom))
    }
    return { kind: 'sequence', items }
  }

  parseQuantifier(atom: RegexNode): RegexNode {
    let node = atom
    for (;;) {
      const next = this.peek()
      let min: number
      let max: number
      if (next === '*') {
        min = 0
        max = Number.POSITIVE_INFINITY
        this.#position++
      } else if (next === '+') {
        min = 1
        max = Number.POSITIVE_INFINITY
        this.#position++
      } else if (next === '?') {
        min = 0
        max = 1
        this.#position++
      } else if (next === '{') {
        const match = /^\{(\d+)(,(\d*))?\}/.exec(this.source.slice(this.#position))
        if (match === null) this.fail('a "{" that is not a quantifier (escape it as \\{)')
        min = Number(match[1])
        max = match[2] === undefined ? min : match[3] === '' ? Number.POSITIVE_INFINITY : Number(match[3])
        if (max < min) this.fail(`the quantifier ${match[0]} (its maximum is below its minimum)`)
        if (min > 1000 || (max !== Number.POSITIVE_INFINITY && max > 1000)) {
          this.fail(`the quantifier ${match[0]} (counts above 1000)`)
        }
        this.#position += match[0].length
      } else {
        return node
      }
      // A lazy quantifier matches the same set of strings.
      if (this.peek() === '?') this.#position++
      if (node.kind === 'repeat' && atom === node) this.fail('a quantifier on a quantifier')
      node = { kind: 'repeat', item: node, min, max }
    }
  }

  parseAtom(): RegexNode {
    const character = this.peek()
    if (character === '(') {
      this.#position++
      if (this.peek() === '?') {
        const rest = this.source.slice(this.#position)
        if (rest.startsWith('?:')) this.#position += 2
        else if (/^\?<[A-Za-z_$][\w$]*>/.test(rest)) this.#position += rest.indexOf('>') + 1
        else this.fail('a lookaround or group modifier "(?"')
      }
      if (this.#depth === maxGroupDepth) this.fail(`groups nested more than ${maxGroupDepth} deep`)
      this.#depth++
      const inner = this.parseAlternation()
      this.#depth--
      if (this.peek() !== ')') this.fail('an unclosed group')
      this.#position++
      return inner
    }
    if (character === ')') this.fail('an unmatched ")"')
    if (character === '[') return this.parseClass()
    if (character === '.') {
      this.#position++
      return { kind: 'set', ranges: complement(lineTerminators) }
    }
    if (character === '^') this.fail('"^" away from the start')
    if (character === '$') this.fail('"$" away from the end')
    if (character === '*' || character === '+' || character === '?' || character === '{') {
      this.fail(`a quantifier "${character}" with nothing to repeat`)
    }
    // Syntax errors under the u flag, as a lone "{" is (validators run patterns with it: ajv
    // refuses the schema); read as literals, the grammar enforced what no such validator checks.
    if (character === '}' || character === ']')
      this.fail(`a lone "${character}" (escape it as \\${character})`)
    if (character === '\\') return { kind: 'set', ranges: this.parseEscape(false) }
    const text = this.take()
    const codePoint = text.codePointAt(0)!
    return { kind: 'set', ranges: [[codePoint, codePoint]] }
  }

  parseEscape(inClass: boolean): CodePointRanges {
    this.#position++ // the backslash
    const letter = this.take()
    switch (letter) {
      case 'd':
        return digit
      case 'D':
        return complement(digit)
      case 'w':
        return word
      case 'W':
        return complement(word)
      case 's':
        return space
      case 'S':
        return complement(space)
      case 't':
        return [[9, 9]]
      case 'n':
        return [[10, 10]]
      case 'v':
        return [[11, 11]]
      case 'f':
        return [[12, 12]]
      case 'r':
        return [[13, 13]]
      case '0':
        if (/\d/.test(this.peek())) this.fail('an octal escape')
        return [[0, 0]]
      case 'x': {
        const match = /^[0-9a-fA-F]{2}/.exec(this.source.slice(this.#position))
        if (match === null) this.fail('a malformed \\x escape')
        this.#position += 2
        const value = Number.parseInt(match[0], 16)
        return [[value, value]]
      }
      case 'u': {
        const rest = this.source.slice(this.#position)
        const braced = /^\{([0-9a-fA-F]{1,6})\}/.exec(rest)
        const plain = /^[0-9a-fA-F]{4}/.exec(rest)
        const match = braced ?? plain
        if (match === null) this.fail('a malformed \\u escape')
        this.#position += match[0].length
        const value = Number.parseInt(braced === null ? match[0] : match[1]!, 16)
        if (value > maxCodePoint) this.fail('a \\u escape above U+10FFFF')
        // Under the u flag a high and a low surrogate escaped one after the other are one code
        // point (/^\uD83D\uDE00$/u matches "😀"); read apart, the pattern matched nothing.
        const low = /^\\u(d[c-f][0-9a-f]{2})/i.exec(this.source.slice(this.#position))
        if (braced === null && value >= 0xd800 && value <= 0xdbff && low !== null) {
          this.#position += low[0].length
          const combined = 0x10000 + ((value - 0xd800) << 10) + (Number.parseInt(low[1]!, 16) - 0xdc00)
          return [[combined, combined]]
        }
        return [[value, value]]
      }
      case 'b':
        if (inClass) return [[8, 8]]
        return this.fail('a word boundary "\\b"')
      case 'B':
        return this.fail('"\\B"')
      case 'p':
      case 'P':
        return this.fail(`a Unicode property escape "\\${letter}"`)
      case 'k':
        return this.fail('a named backreference')
      case 'c':
        return this.fail('a control escape "\\c"')
      default: {
        if (/[1-9]/.test(letter)) this.fail('a backreference')
        // Under the u flag only syntax characters (and "-" in a class) may be escaped.
        if (!/[\^$\\.*+?()[\]{}|/]/.test(letter) && !(inClass && letter === '-')) {
          this.fail(`the escape "\\${letter}"`)
        }
        const codePoint = letter.codePointAt(0)!
        return [[codePoint, codePoint]]
      }
    }
  }

  parseClass(): RegexNode {
    this.#position++ // [
    let negated = false
    if (this.peek() === '^') {
      negated = true
      this.#position++
    }
    const ranges: [number, number][] = []
    const single = (): CodePointRanges => {
      if (this.peek() === '\\') return this.parseEscape(true)
      if (this.peek() === '[') this.fail('a nested "[" in a class (escape it as \\[)')
      const codePoint = this.take().codePointAt(0)!
      return [[codePoint, codePoint]]
    }
    while (this.peek() !== ']') {
      if (this.done) this.fail('an unclosed class "["')
      const first = single()
      if (
        this.peek() === '-' &&
        this.source[this.#position + 1] !== ']' &&
        this.#position + 1 < this.source.length
      ) {
        this.#position++
        const second = single()
        if (
          first.length !== 1 ||
          second.length !== 1 ||
          first[0]![0] !== first[0]![1] ||
          second[0]![0] !== second[0]![1]
        ) {
          this.fail('a class range with a class escape as an end')
        }
        const low = first[0]![0]
        const high = second[0]![0]
        if (high < low) this.fail('a class range out of order')
        ranges.push([low, high])
      } else {
        ranges.push(...first.map(([low, high]) => [low, high] as [number, number]))
      }
    }
    this.#position++ // ]
    const set = normalize(ranges)
    return { kind: 'set', ranges: negated ? complement(set) : set }
  }
}

class NfaBuilder {
  readonly states: NfaState[] = []
  readonly limit: number
  readonly fail: (what: string) => never
  constructor(limit: number, fail: (what: string) => never) {
    this.limit = limit
    this.fail = fail
  }

  add(): number {
    if (this.states.length >= this.limit)
      this.fail('so many repetitions that its automaton exceeds 20,000 states')
    this.states.push({ edges: [], epsilon: [] })
    return this.states.length - 1
  }

  /** Builds `node` between fresh states; returns [start, end]. */
  build(node: RegexNode): [number, number] {
    switch (node.kind) {
      case 'set': {
        const start = this.add()
        const end = this.add()
        // Only what a generated string can hold (no lone surrogates, few control characters).
        for (const [low, high] of intersect(node.ranges, generatableCharacters))
          this.states[start]!.edges.push([low, high, end])
        return [start, end]
      }
      case 'sequence': {
        const start = this.add()
        let end = start
        for (const item of node.items) {
          const [itemStart, itemEnd] = this.build(item)
          this.states[end]!.epsilon.push(itemStart)
          end = itemEnd
        }
        return [start, end]
      }
      case 'alternation': {
        const start = this.add()
        const end = this.add()
        for (const option of node.options) {
          const [optionStart, optionEnd] = this.build(option)
          this.states[start]!.epsilon.push(optionStart)
          this.states[optionEnd]!.epsilon.push(end)
        }
        return [start, end]
      }
      case 'repeat': {
        const start = this.add()
        let end = start
        for (let i = 0; i < node.min; i++) {
          const [itemStart, itemEnd] = this.build(node.item)
          this.states[end]!.epsilon.push(itemStart)
          end = itemEnd
        }
        if (node.max === Number.POSITIVE_INFINITY) {
          const [itemStart, itemEnd] = this.build(node.item)
          const loopEnd = this.add()
          this.states[end]!.epsilon.push(itemStart, loopEnd)
          this.states[itemEnd]!.epsilon.push(itemStart, loopEnd)
          return [start, loopEnd]
        }
        const finalEnd = this.add()
        for (let i = node.min; i < node.max; i++) {
          const [itemStart, itemEnd] = this.build(node.item)
          this.states[end]!.epsilon.push(itemStart, finalEnd)
          end = itemEnd
        }
        this.states[end]!.epsilon.push(finalEnd)
        return [start, finalEnd]
      }
    }
  }
}

/** The distance of a state from which acceptance cannot be reached. */
const unreachable = 0x3fffffff

/** Fewest code points from each state to `accepting` (0-1 breadth-first search backwards). */
function distances(states: NfaState[], accepting: number): Int32Array {
  const reverse: [number, number][][] = states.map(() => [])
  states.forEach((state, index) => {
    for (const [, , target] of state.edges) reverse[target]!.push([index, 1])
    for (const target of state.epsilon) reverse[target]!.push([index, 0])
  })
  const distance = new Int32Array(states.length).fill(unreachable)
  distance[accepting] = 0
  const queue: number[] = [accepting]
  for (let head = 0; head < queue.length; head++) {
    const state = queue[head]!
    for (const [previous, cost] of reverse[state]!) {
      const candidate = distance[state]! + cost
      if (candidate < distance[previous]!) {
        distance[previous] = candidate
        queue.push(previous)
      }
    }
  }
  return distance
}

/** Removes edges into states from which `accepting` is unreachable (so no dead end is ever entered). */
function pruneDeadStates(states: NfaState[], accepting: number): void {
  const reverse: number[][] = states.map(() => [])
  states.forEach((state, index) => {
    for (const [, , target] of state.edges) reverse[target]!.push(index)
    for (const target of state.epsilon) reverse[target]!.push(index)
  })
  const live = new Set<number>([accepting])
  const work = [accepting]
  while (work.length > 0) {
    const state = work.pop() as number
    for (const previous of reverse[state]!) {
      if (!live.has(previous)) {
        live.add(previous)
        work.push(previous)
      }
    }
  }
  for (const state of states) {
    for (let i = state.edges.length - 1; i >= 0; i--)
      if (!live.has(state.edges[i]![2])) state.edges.splice(i, 1)
    for (let i = state.epsilon.length - 1; i >= 0; i--)
      if (!live.has(state.epsilon[i]!)) state.epsilon.splice(i, 1)
  }
}

/**
 * Compiles `source` with JavaScript `u`-flag semantics (unanchored unless `^` / `$` are given).
 * Throws InvalidArgumentError naming `param` for anything outside the subset.
 */
/**
 * What one constraint (a response format and its tools, compiled together) may still build. Each
 * pattern and each intersection is bounded alone; these bound them in all, since one request
 * could otherwise hold hundreds (500 patterns of ~18,000 states each, a 26 KB body, took a
 * server's heap past 4 GB; 40 intersections near their bound, 5.3 s of one thread).
 */
export interface CompileBudget {
  /** NFA states of the constraint's distinct patterns not compiled before (see compilePattern). */
  patternStates: number
  /** States of intersections not built before (string-language.ts). */
  intersectionStates: number
  /**
   * Steps of building those intersections: a state of an intersection of many automata costs a
   * step per automaton and per run of characters, so a state count alone let 400 two-letter
   * patterns under one allOf (a 13 KB body) hold a thread 20 s within the state bounds.
   */
  intersectionWork: number
}

export const constraintPatternStates = 25_000
export const constraintIntersectionStates = 100_000
export const constraintIntersectionWork = 3_000_000

export function compileBudget(): CompileBudget {
  return {
    patternStates: constraintPatternStates,
    intersectionStates: constraintIntersectionStates,
    intersectionWork: constraintIntersectionWork,
  }
}

// Compiled patterns by source: the same pattern in many places (or requests) is one automaton,
// whose lazily built states then serve them all. The recent ones are kept up to a number of NFA
// states in all (a Worker isolate has 128 MB).
const compiledPatterns = new Map<string, CodePointAutomaton>()
const maxCachedPatternStates = 40_000
let cachedPatternStates = 0

export function compilePattern(
  source: string,
  param: string,
  budget: CompileBudget = compileBudget(),
): CodePointAutomaton {
  if (typeof source !== 'string') throw new InvalidArgumentError(param, 'pattern must be a string.')
  const known = compiledPatterns.get(source)
  if (known !== undefined) return known
  const parser = new RegexParser(source, param)
  const tree = parser.parsePattern()
  const limit = Math.min(maxStates, budget.patternStates)
  const builder = new NfaBuilder(limit, (what) =>
    limit < maxStates
      ? parser.fail(
          `so many repetitions, with the schema's other patterns, that their automata exceed ${constraintPatternStates.toLocaleString('en')} states in all (use fewer or simpler patterns)`,
        )
      : parser.fail(what),
  )
  const [start, end] = builder.build(tree)
  budget.patternStates -= builder.states.length
  pruneDeadStates(builder.states, end)
  const automaton = new CodePointAutomaton(source, builder.states, start, end)
  if (!Number.isFinite(automaton.start.distance)) {
    throw new InvalidArgumentError(
      param,
      `The pattern ${JSON.stringify(source)} matches no string structured output can write (strings it writes hold no control characters but tab, newline, carriage return, backspace and form feed).`,
    )
  }
  compiledPatterns.set(source, automaton)
  cachedPatternStates += builder.states.length
  while (cachedPatternStates > maxCachedPatternStates && compiledPatterns.size > 1) {
    const oldest = compiledPatterns.keys().next().value as string
    cachedPatternStates -= compiledPatterns.get(oldest)!.stateCount
    compiledPatterns.delete(oldest)
  }
  return automaton
}
