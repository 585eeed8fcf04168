// The Qwen3-Coder XML tool-call dialect (Qwen3.5's own chat template): after the `<tool_call>`
// token a call reads
//
//   \n<function=NAME>\n<parameter=PNAME>\nVALUE\n</parameter>\n ... </function>\n
//
// then the `</tool_call>` token. The template writes a string argument as its raw text and any
// other value as JSON (`args_value | string if args_value is string else args_value | tojson`), so
// a parameter whose schema admits only strings is raw text here (its pattern, format, length and
// enum enforced on the characters themselves; it never contains `\n</parameter>`, which ends it),
// and any other parameter is compact JSON of its schema, walked by the JSON frames. Parameters come
// in any order, each at most once, every required one before `</function>`.
//
// Calls read back into the same `{ id, name, arguments }` as the JSON dialect, `arguments` being
// the JSON object's text (a raw value as a JSON string, a JSON value as written), so every client
// sees what it sees for Qwen3's syntax.
import { InvalidArgumentError } from '../errors.ts'
import type { ToolCall, ToolCallProgress } from '../stream-parts.ts'
import { byteString, Frame, type Stack, startValue } from './frames.ts'
import type { ObjectNode, SchemaNode, StringNode } from './json-schema.ts'
import { Grammar } from './matcher.ts'
import { RawStringFrame } from './raw-string-frame.ts'
import { CallTextReader } from './tool-calls.ts'

export { type ToolCallSyntax, toolCallSyntaxOf } from './call-syntax.ts'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const parameterOpenText = '<parameter='
const parameterCloseText = '\n</parameter>\n'
const functionCloseText = '</function>\n'
const parameterOpen = encoder.encode(parameterOpenText)
const functionClose = encoder.encode(functionCloseText)
const parameterClose = encoder.encode(parameterCloseText)
/** What ends a raw value; the value itself never contains it. */
const terminatorText = '\n</parameter>'
const maxExtraNameLength = 64

/** How each of a tool's parameters is written: raw text (string-only schemas) or JSON. */
export interface XmlToolShape {
  /** Listed parameters written as raw text. */
  readonly raw: ReadonlySet<string>
  /** Every listed parameter. */
  readonly listed: ReadonlySet<string>
  /** Whether parameters the schema does not list (additionalProperties) are raw text. */
  readonly additionalRaw: boolean
}

interface XmlTool {
  readonly name: string
  /** `\n<function=NAME>\n`: what follows the `<tool_call>` token. */
  readonly head: Uint8Array
  readonly objects: readonly XmlObject[]
}

interface XmlObject {
  readonly node: ObjectNode
  /** Listed names (UTF-8 bytes, one char per byte) and their rules' indices. */
  readonly listed: ReadonlyMap<string, number>
  readonly listedNames: readonly string[]
  readonly requiredNames: readonly string[]
}

/** The options of a string-only node: strings (raw text under their constraints) and string literals. */
type RawOption =
  | StringNode
  | { readonly kind: 'raw-literal'; readonly id: number; readonly values: readonly Uint8Array[] }

function rawOptions(node: SchemaNode, seen = new Set<SchemaNode>()): RawOption[] | undefined {
  if (seen.has(node)) return undefined
  seen.add(node)
  switch (node.kind) {
    case 'string':
      return node.isKey ? undefined : [node]
    case 'literal': {
      const values: Uint8Array[] = []
      for (const bytes of node.values) {
        const value: unknown = JSON.parse(decoder.decode(bytes))
        if (typeof value !== 'string') return undefined
        values.push(encoder.encode(value))
      }
      return [{ kind: 'raw-literal', id: node.id, values }]
    }
    case 'union': {
      const options: RawOption[] = []
      for (const option of node.options) {
        const raw = rawOptions(option, seen)
        if (raw === undefined) return undefined
        options.push(...raw)
      }
      return options
    }
    case 'reference':
      return node.target === undefined ? undefined : rawOptions(node.target, seen)
    default:
      return undefined
  }
}

const rawOptionsCache = new WeakMap<SchemaNode, RawOption[] | null>()
function rawOptionsOf(node: SchemaNode): RawOption[] | undefined {
  let cached = rawOptionsCache.get(node)
  if (cached === undefined) {
    cached = rawOptions(node) ?? null
    rawOptionsCache.set(node, cached)
  }
  return cached ?? undefined
}

function objectsOf(node: SchemaNode, out: ObjectNode[], seen = new Set<SchemaNode>()): void {
  if (seen.has(node)) return
  seen.add(node)
  if (node.kind === 'object') out.push(node)
  else if (node.kind === 'union') for (const option of node.options) objectsOf(option, out, seen)
  else if (node.kind === 'reference' && node.target !== undefined) objectsOf(node.target, out, seen)
}

/** The XML form of one tool: its parameters' object schema(s), checked for what the dialect can write. */
export function xmlTool(
  name: string,
  parameters: SchemaNode,
  param: string,
): { tool: XmlTool; shape: XmlToolShape } {
  const nodes: ObjectNode[] = []
  objectsOf(parameters, nodes)
  const raw = new Set<string>()
  const json = new Set<string>()
  let additionalRaw: boolean | undefined
  const objects = nodes.map((node): XmlObject => {
    const listed = new Map<string, number>()
    for (const [index, rule] of node.properties.entries()) {
      if (/[>\n]/.test(rule.name) || rule.name === '') {
        throw new InvalidArgumentError(
          `${param}.properties.${rule.name}`,
          `${param} has a parameter named ${JSON.stringify(rule.name)}: this model writes each argument as <parameter=NAME>, so a name must be non-empty without ">" or a line break. Rename it.`,
        )
      }
      listed.set(byteString(encoder.encode(rule.name)), index)
      const isRaw = rawOptionsOf(rule.node) !== undefined
      ;(isRaw ? raw : json).add(rule.name)
      if (raw.has(rule.name) && json.has(rule.name)) {
        throw new InvalidArgumentError(
          `${param}.properties.${rule.name}`,
          `${param}: the alternatives of the parameters disagree on whether "${rule.name}" is a string; this model writes strings as raw text and other values as JSON, so the two could not be told apart. Give it one type.`,
        )
      }
    }
    if (node.additional !== undefined) {
      const isRaw = rawOptionsOf(node.additional) !== undefined
      if (additionalRaw !== undefined && additionalRaw !== isRaw) {
        throw new InvalidArgumentError(
          `${param}.additionalProperties`,
          `${param}: the alternatives of the parameters disagree on whether unlisted parameters are strings; give additionalProperties one type.`,
        )
      }
      additionalRaw = isRaw
    }
    return {
      node,
      listed,
      listedNames: [...listed.keys()],
      requiredNames: node.properties
        .filter((rule) => rule.required)
        .map((rule) => byteString(encoder.encode(rule.name))),
    }
  })
  for (const object of objects)
    for (const rule of object.node.properties) {
      if (rawOptionsOf(rule.node) === undefined) continue
      for (const option of rawOptionsOf(rule.node)!)
        if (
          option.kind === 'raw-literal' &&
          option.values.some((value) => byteString(value).includes(terminatorText))
        )
          throw new InvalidArgumentError(
            `${param}.properties.${rule.name}`,
            `${param}.properties.${rule.name} allows a value containing "\\n</parameter>", which ends a parameter in this model's call syntax.`,
          )
    }
  return {
    tool: { name, head: encoder.encode(`\n<function=${name}>\n`), objects },
    shape: { raw, listed: new Set([...raw, ...json]), additionalRaw: additionalRaw ?? false },
  }
}

/** The grammar of one call in the XML dialect, from the `<tool_call>` token to `</tool_call>`. */
export class XmlCallGrammar extends Grammar {
  readonly #tools: readonly XmlTool[]
  constructor(tools: readonly XmlTool[], param: string) {
    super({ kind: 'any', id: -100 }, new Uint8Array(0), new Uint8Array(0), param)
    this.#tools = tools
  }
  override initialStacks(): Stack[] {
    return [
      {
        frame: new HeadFrame(
          this.#tools,
          this.#tools.map((_, index) => index),
          0,
        ),
        below: undefined,
      },
    ]
  }
}

// --- Frames ------------------------------------------------------------------------------------

/** `\n<function=NAME>\n` for the tools still possible. */
class HeadFrame extends Frame {
  readonly tools: readonly XmlTool[]
  readonly alive: readonly number[]
  readonly position: number
  constructor(tools: readonly XmlTool[], alive: readonly number[], position: number) {
    super()
    this.tools = tools
    this.alive = alive
    this.position = position
  }
  step(byte: number, _stack: Stack, out: Stack[]): void {
    const next: number[] = []
    for (const index of this.alive) if (this.tools[index]!.head[this.position] === byte) next.push(index)
    if (next.length === 0) return
    const position = this.position + 1
    // Names have no ">" so no head is a prefix of another: a finished head is the only one alive.
    const only = this.tools[next[0]!]!
    if (next.length === 1 && only.head.length === position) {
      for (const object of only.objects)
        out.push({ frame: new ParametersFrame(object, [], between, 0, ''), below: undefined })
      return
    }
    out.push({ frame: new HeadFrame(this.tools, next, position), below: undefined })
  }
  protected computeKey(): string {
    return `XH${this.position}.${this.alive.join(',')}`
  }
}

const between = 0 // `<parameter=` or, once every required one is written, `</function>\n`
const opening = 1 // inside `<parameter=` (index: bytes read)
const closing = 2 // inside `</function>\n`
const naming = 3 // the parameter's name (name: bytes so far)
const named = 4 // after the name's `>`: the `\n`
const valueStart = 5 // the value's first byte
const inValue = 6 // a value frame above
const afterValue = 7 // inside `\n</parameter>\n`
const done = 8

const isNameByte = (byte: number): boolean =>
  (byte >= 0x30 && byte <= 0x39) ||
  (byte >= 0x41 && byte <= 0x5a) ||
  (byte >= 0x61 && byte <= 0x7a) ||
  byte === 0x5f ||
  byte === 0x2d ||
  byte === 0x2e

/** The parameters of one call, then `</function>\n`: the bottom of every stack inside a call. */
class ParametersFrame extends Frame {
  readonly object: XmlObject
  /** Names written so far (bytes, one char per byte), the one being read last once its value starts. */
  readonly seen: readonly string[]
  readonly stage: number
  readonly index: number
  readonly name: string
  constructor(object: XmlObject, seen: readonly string[], stage: number, index: number, name: string) {
    super()
    this.object = object
    this.seen = seen
    this.stage = stage
    this.index = index
    this.name = name
  }

  override get canEnd(): boolean {
    return this.stage === done
  }

  #at(stage: number, index = 0, name = this.name, seen = this.seen): ParametersFrame {
    return new ParametersFrame(this.object, seen, stage, index, name)
  }

  get #requiredDone(): boolean {
    return this.object.requiredNames.every((name) => this.seen.includes(name))
  }

  get #mayAdd(): boolean {
    return (
      this.object.node.additional !== undefined ||
      this.object.listedNames.some((name) => !this.seen.includes(name))
    )
  }

  /** Whether `name` may be a parameter's full name here. */
  #allowed(name: string): boolean {
    if (name === '' || this.seen.includes(name)) return false
    if (this.object.listed.has(name)) return true
    return this.object.node.additional !== undefined && !this.object.node.names.has(name)
  }

  /** Whether some allowed name starts with `prefix`. */
  #mayStart(prefix: string): boolean {
    for (const name of this.object.listedNames)
      if (name.startsWith(prefix) && !this.seen.includes(name)) return true
    if (this.object.node.additional === undefined || prefix.length > maxExtraNameLength) return false
    for (let index = 0; index < prefix.length; index++)
      if (!isNameByte(prefix.charCodeAt(index))) return false
    return true
  }

  #valueNode(): SchemaNode {
    const index = this.object.listed.get(this.name)
    return index === undefined
      ? (this.object.node.additional as SchemaNode)
      : this.object.node.properties[index]!.node
  }

  step(byte: number, stack: Stack, out: Stack[]): void {
    const below = stack.below
    switch (this.stage) {
      case between:
        if (byte !== parameterOpen[0]) return
        if (this.#mayAdd) out.push({ frame: this.#at(opening, 1), below })
        if (this.#requiredDone) out.push({ frame: this.#at(closing, 1), below })
        return
      case opening:
        if (parameterOpen[this.index] !== byte) return
        out.push({
          frame:
            this.index + 1 === parameterOpen.length
              ? this.#at(naming, 0, '')
              : this.#at(opening, this.index + 1),
          below,
        })
        return
      case closing:
        if (functionClose[this.index] !== byte) return
        out.push({
          frame: this.index + 1 === functionClose.length ? this.#at(done) : this.#at(closing, this.index + 1),
          below,
        })
        return
      case naming: {
        if (byte === 0x3e) {
          if (this.#allowed(this.name)) out.push({ frame: this.#at(named), below })
          return
        }
        const name = this.name + String.fromCharCode(byte)
        if (this.#mayStart(name)) out.push({ frame: this.#at(naming, 0, name), below })
        return
      }
      case named:
        if (byte === 0x0a) out.push({ frame: this.#at(valueStart), below })
        return
      case valueStart: {
        const node = this.#valueNode()
        const waiting: Stack = { frame: this.#at(inValue), below }
        const options = rawOptionsOf(node)
        if (options === undefined) {
          startValue(node, byte, waiting, out)
          return
        }
        for (const option of options) {
          const start =
            option.kind === 'string' ? RawStringFrame.open(option) : new RawLiteralFrame(option, undefined, 0)
          // An empty value: the byte is the terminator's first.
          if (start.canEnd) {
            const after = this.childDone()
            after.step(byte, { frame: after, below }, out)
          }
          start.step(byte, { frame: start, below: waiting }, out)
        }
        return
      }
      case afterValue:
        if (parameterClose[this.index] !== byte) return
        out.push({
          frame:
            this.index + 1 === parameterClose.length
              ? this.#at(between)
              : this.#at(afterValue, this.index + 1),
          below,
        })
        return
    }
  }

  /** After a value: `\n</parameter>\n`, the parameter counted as written. */
  override childDone(): ParametersFrame {
    return this.#at(afterValue, 0, '', [...this.seen, this.name])
  }

  protected computeKey(): string {
    return `XP${this.object.node.id}.${this.stage}.${this.index}.${this.name}.${this.seen.join('\u0001')}`
  }
}

/** A string parameter with an enum or const: one of the values' raw text. */
class RawLiteralFrame extends Frame {
  readonly option: Extract<RawOption, { kind: 'raw-literal' }>
  readonly alive: readonly number[] | undefined
  readonly position: number
  constructor(
    option: Extract<RawOption, { kind: 'raw-literal' }>,
    alive: readonly number[] | undefined,
    position: number,
  ) {
    super()
    this.option = option
    this.alive = alive
    this.position = position
  }
  #alive(): readonly number[] {
    return this.alive ?? this.option.values.map((_, index) => index)
  }
  override get canEnd(): boolean {
    return this.#alive().some((index) => this.option.values[index]!.length === this.position)
  }
  step(byte: number, stack: Stack, out: Stack[]): void {
    const next = this.#alive().filter((index) => this.option.values[index]![this.position] === byte)
    if (next.length > 0)
      out.push({ frame: new RawLiteralFrame(this.option, next, this.position + 1), below: stack.below })
  }
  protected computeKey(): string {
    return `XL${this.option.id}.${this.position}.${this.#alive().join(',')}`
  }
}

// --- Reading calls back ------------------------------------------------------------------------

/** One call's text after `<tool_call>` read as far as it goes. */
interface ParsedCall {
  readonly name: string | undefined
  /** The arguments' JSON text so far (a prefix of the finished one's). */
  readonly arguments: string
  /** `</function>\n` was read. */
  readonly complete: boolean
  /** Characters of `text` the call used (up to and including `</function>\n`). */
  readonly length: number
}

/** The longest suffix of `text` that `of` starts with (how much of `of` may be starting). */
function startingSuffix(text: string, of: string): number {
  for (let length = Math.min(text.length, of.length - 1); length > 0; length--)
    if (of.startsWith(text.slice(text.length - length))) return length
  return 0
}

/** Reads the call in `text` (what follows the `<tool_call>` token), as far as it is written. */
function parseCall(text: string, shapes: ReadonlyMap<string, XmlToolShape>): ParsedCall {
  const head = '\n<function='
  const none = { name: undefined, arguments: '', complete: false, length: 0 }
  if (!text.startsWith(head)) return none
  const nameEnd = text.indexOf('>\n', head.length)
  if (nameEnd === -1) return none
  const name = text.slice(head.length, nameEnd)
  const shape = shapes.get(name)
  let at = nameEnd + 2
  let written = '{'
  let first = true
  for (;;) {
    const rest = text.slice(at)
    if (rest.startsWith(functionCloseText)) {
      return { name, arguments: `${written}}`, complete: true, length: at + functionCloseText.length }
    }
    if (!rest.startsWith(parameterOpenText)) return { name, arguments: written, complete: false, length: at }
    const parameterEnd = rest.indexOf('>\n', parameterOpenText.length)
    if (parameterEnd === -1) return { name, arguments: written, complete: false, length: at }
    const parameter = rest.slice(parameterOpenText.length, parameterEnd)
    const key = `${first ? '' : ','}${JSON.stringify(parameter)}:`
    first = false
    const valueStart = parameterEnd + 2
    const isRaw =
      shape !== undefined &&
      (shape.raw.has(parameter) || (!shape.listed.has(parameter) && shape.additionalRaw))
    const end = rest.indexOf(terminatorText, valueStart)
    if (end === -1) {
      // The value so far: what cannot be the start of its terminator.
      const partial = rest.slice(valueStart)
      if (isRaw) {
        const kept = partial.slice(0, partial.length - startingSuffix(partial, terminatorText))
        written += `${key}${JSON.stringify(kept).slice(0, -1)}`
      } else {
        const newline = partial.indexOf('\n')
        written += `${key}${newline === -1 ? partial : partial.slice(0, newline)}`
      }
      return { name, arguments: written, complete: false, length: at }
    }
    const value = rest.slice(valueStart, end)
    written += `${key}${isRaw ? JSON.stringify(value) : value}`
    if (!rest.startsWith(parameterCloseText, end))
      return { name, arguments: written, complete: false, length: at }
    at += end + parameterCloseText.length
  }
}

/**
 * Splits an answer in the XML dialect into its content (before the first call) and its complete
 * calls (`</function>` read, `</tool_call>` after it). Ids as readToolCalls gives them.
 */
export function readXmlToolCalls(
  text: string,
  shapes: ReadonlyMap<string, XmlToolShape>,
  idOf: (index: number) => string,
): { content: string; toolCalls: ToolCall[] } {
  const open = '<tool_call>'
  const first = text.indexOf(open)
  if (first === -1) return { content: text, toolCalls: [] }
  const toolCalls: ToolCall[] = []
  let at = first
  while (at !== -1) {
    const call = parseCall(text.slice(at + open.length), shapes)
    const end = at + open.length + call.length
    if (!call.complete || call.name === undefined || !text.startsWith('</tool_call>', end)) break
    toolCalls.push({ id: idOf(toolCalls.length), name: call.name, arguments: call.arguments })
    at = text.indexOf(open, end)
  }
  return { content: text.slice(0, first).trimEnd(), toolCalls }
}

/** ToolCallReader's counterpart for the XML dialect: the call being written, for a stream. */
export class XmlToolCallReader extends CallTextReader {
  readonly #shapes: ReadonlyMap<string, XmlToolShape>
  constructor(shapes: ReadonlyMap<string, XmlToolShape>) {
    super()
    this.#shapes = shapes
  }

  get progress(): ToolCallProgress | undefined {
    const call = parseCall(this.text, this.#shapes)
    if (call.name === undefined) return undefined
    return { index: this.index, id: this.id, name: call.name, arguments: call.arguments }
  }
}
