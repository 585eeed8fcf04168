// A string parameter's raw text in the Qwen3-Coder XML call syntax (xml-tool-calls.ts): the
// characters themselves, no quotes or escapes, ended by `\n</parameter>` (which the text may
// therefore never contain). Its own file so the matcher can give it a fast mask (as it does JSON
// strings) without importing the dialect's grammar.
import { Frame, type Stack } from './frames.ts'
import type { StringNode } from './json-schema.ts'
import type { AutomatonState } from './regex.ts'
import {
  cheapestAfterSequence,
  continuationNeeded,
  continuedSubstate,
  leadBits,
  leadSubstate,
} from './utf8-sequence.ts'

const terminator = new TextEncoder().encode('\n</parameter>')

/** The terminator state after `byte` (how much of `\n</parameter>` the text ends with). */
function nextMatch(matched: number, byte: number): number {
  if (terminator[matched] === byte) return matched + 1
  return byte === 0x0a ? 1 : 0
}

const plainState = 0

/**
 * A string parameter's raw text: valid UTF-8, its characters in the string's language (pattern,
 * format) and length bounds, never containing `\n</parameter>`. The same checks as a JSON
 * string's (StringFrame), minus quotes and escapes: a completion always exists.
 */
export class RawStringFrame extends Frame {
  readonly node: StringNode
  readonly substate: number
  readonly count: number
  readonly state: AutomatonState | undefined
  readonly partial: number
  /** Bytes of `\n</parameter>` the text ends with. */
  readonly matched: number
  constructor(
    node: StringNode,
    substate: number,
    count: number,
    state: AutomatonState | undefined,
    partial: number,
    matched: number,
  ) {
    super()
    this.node = node
    this.substate = substate
    this.count = count
    this.state = state
    this.partial = partial
    this.matched = matched
  }

  static open(node: StringNode): RawStringFrame {
    return new RawStringFrame(node, plainState, 0, node.automaton?.start, 0, 0)
  }

  override get canEnd(): boolean {
    if (this.substate !== plainState || this.count < this.node.minLength) return false
    return this.state === undefined || this.state.accepting
  }

  /** The fewest characters still needed (StringFrame.needed without escapes). */
  get needed(): number {
    const state = this.state
    if (state === undefined) return 0
    if (this.substate === plainState) return state.distance
    return cheapestAfterSequence(state, this.substate, this.partial)
  }

  #push(
    substate: number,
    count: number,
    state: AutomatonState | undefined,
    partial: number,
    matched: number,
    below: Stack | undefined,
    out: Stack[],
  ): void {
    const frame = new RawStringFrame(this.node, substate, count, state, partial, matched)
    const needed = frame.needed
    if (Number.isFinite(needed) && frame.count + needed <= this.node.maxLength) out.push({ frame, below })
  }

  step(byte: number, stack: Stack, out: Stack[]): void {
    const matched = nextMatch(this.matched, byte)
    if (matched === terminator.length) return
    const below = stack.below
    const state = this.state
    if (this.substate === plainState) {
      if (byte < 0x80) {
        if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) return
        const after = state === undefined ? undefined : state.automaton.next(state, byte)
        if (state === undefined || after !== undefined)
          this.#push(plainState, this.count + 1, after, 0, matched, below, out)
        return
      }
      const lead = leadSubstate(byte)
      if (lead !== -1)
        this.#push(lead, this.count + 1, state, state === undefined ? 0 : leadBits(byte), matched, below, out)
      return
    }
    const need = continuationNeeded(this.substate, byte)
    if (need === -1) return
    const bits = (this.partial << 6) | (byte & 0x3f)
    if (need === 1) {
      const after = state === undefined ? undefined : state.automaton.next(state, bits)
      if (state === undefined || after !== undefined)
        this.#push(plainState, this.count, after, 0, matched, below, out)
      return
    }
    this.#push(
      continuedSubstate(need),
      this.count,
      state,
      state === undefined ? 0 : bits,
      matched,
      below,
      out,
    )
  }

  /** This state with no length bounds and nothing counted (what a vocabulary scan starts from). */
  unbounded(): RawStringFrame {
    const node: StringNode = { ...this.node, minLength: 0, maxLength: Number.POSITIVE_INFINITY }
    return new RawStringFrame(node, this.substate, 0, this.state, this.partial, this.matched)
  }

  /** The part of the key a mask depends on besides the count. */
  get scanKey(): string {
    let key = `${this.node.signature}#${this.substate}#${this.matched}`
    if (this.state !== undefined) key += `#${this.partial}#${this.state.key}`
    return key
  }

  protected computeKey(): string {
    // Past minLength and far from maxLength the exact count changes nothing a mask sees: leaving
    // it out lets the walks of a long value be reused.
    const node = this.node
    const count =
      node.maxLength === Number.POSITIVE_INFINITY ? Math.min(this.count, node.minLength) : this.count
    return `XR${node.id}.${count}.${this.scanKey}`
  }
}
