// What a request asks the output to be (a JSON schema, any JSON object, or tool calls) compiled
// once, and the per-generation state that masks the logits before every draw.
//
// The state is a pure function of the tokens generated so far: a continuation (handoff) replays
// them and reaches the same state, so device and edge mask identically.
//
// Tool calls use the model's own syntax (Qwen3: the control token `<tool_call>`, a newline, the
// JSON `{"name":...,"arguments":...}`, a newline, `</tool_call>`; parallel calls are separated by
// a newline; Qwen3.5 / Qwen3-Coder: the same tokens around `<function=...>` and `<parameter=...>`
// blocks, see xml-tool-calls.ts). With `required` or a named tool the answer starts with a call; with `auto` the model
// may write text or open a call, and once it opens one, the call is constrained.
import { InvalidArgumentError, OndeviceError } from '../errors.ts'
import type { ModelToolCallSyntax, ToolCallSyntax } from './call-syntax.ts'
import { compileJsonObject, compileJsonSchema, literalNode, type SchemaNode } from './json-schema.ts'
import { applyMask, Grammar, GrammarMatcher } from './matcher.ts'
import { compileBudget } from './regex.ts'
import { type TokenSource, type TokenVocabulary, vocabularyOf } from './vocabulary.ts'
import { XmlCallGrammar, type XmlToolShape, xmlTool } from './xml-tool-calls.ts'

export type ResponseFormat =
  | { readonly type: 'text' }
  | { readonly type: 'json_object' }
  | {
      readonly type: 'json_schema'
      readonly schema: unknown
      readonly name?: string
      readonly description?: string
      readonly strict?: boolean
    }

export interface ToolDefinition {
  readonly name: string
  readonly description?: string
  /** A JSON Schema for the arguments (an object). Default: any object. */
  readonly parameters?: unknown
}

export type ToolChoice = 'none' | 'auto' | 'required' | { readonly name: string }

/**
 * The request fields a constraint's errors name: core's option names by default, the wire's
 * (`response_format`, `tools`, `tool_choice`) on the server. Errors found while the answer runs (a
 * schema too ambiguous to follow) name them too.
 */
export interface ConstraintFieldNames {
  readonly responseFormat: string
  readonly tools: string
  readonly toolChoice: string
}

export const defaultConstraintFieldNames: ConstraintFieldNames = {
  responseFormat: 'responseFormat',
  tools: 'tools',
  toolChoice: 'toolChoice',
}

export interface ConstraintOptions {
  readonly responseFormat?: ResponseFormat
  readonly tools?: readonly ToolDefinition[]
  readonly toolChoice?: ToolChoice
  /** Several calls in one answer (default true, as OpenAI; false with a named toolChoice, OpenAI's forced function). */
  readonly parallelToolCalls?: boolean
}

/** The compiled form of ConstraintOptions: validated, tokenizer-independent, reusable. */
export interface OutputConstraint {
  readonly responseGrammar: Grammar | undefined
  readonly toolGrammar: Grammar | undefined
  readonly toolMode: 'none' | 'auto' | 'required'
  readonly parallelToolCalls: boolean
  /** Tools were given (with `none`, the model must still not open a call). */
  readonly hasTools: boolean
  /** The calls' syntax (the model's template decides it; default 'json', Qwen3's). */
  readonly toolCallSyntax?: ToolCallSyntax
  /** In the XML syntax: which parameters of each tool are raw text (to read the calls back). */
  readonly xmlToolShapes?: ReadonlyMap<string, XmlToolShape>
}

/**
 * Keys other APIs give a tool's argument schema (MCP's and the AI SDK's `inputSchema`,
 * Anthropic's `input_schema`) and common slips: not read, so the schema was dropped without a word
 * (the model saw a tool without parameters, its calls were checked against none). The edge
 * refuses the same on the wire (core/protocol/tools.ts).
 */
const schemaKeys = ['inputSchema', 'input_schema', 'schema', 'params', 'paramaters', 'arguments', 'args']

/**
 * Refuses a schema under one of `schemaKeys` on a tool without `parameters`, and OpenAI's wire
 * shape ({ type, function }), naming the key. Other keys (an app's own beside its tools, such as
 * their implementation) are left alone.
 */
function refuseMisplacedSchema(tool: object, at: string): void {
  // Beside `parameters` such a key is the app's own (a zod schema kept to parse the arguments):
  // the calls are checked against `parameters` then, nothing was dropped.
  if (!Object.hasOwn(tool, 'parameters'))
    for (const key of schemaKeys)
      if (Object.hasOwn(tool, key))
        throw new InvalidArgumentError(
          `${at}.${key}`,
          `${at}.${key}: a tool's argument schema goes in ${at}.parameters (a tool is { name, description?, parameters? }); rename it, or the model sees no parameters and its calls are checked against none.`,
        )
  if (Object.hasOwn(tool, 'function') && !Object.hasOwn(tool, 'name'))
    throw new InvalidArgumentError(
      `${at}.function`,
      `${at} is OpenAI's wire shape { type: 'function', function: { ... } }: here a tool is the function's own fields, { name, description?, parameters? }.`,
    )
}

const toolNamePattern = /^[A-Za-z0-9_-]{1,64}$/
const encoder = new TextEncoder()
const newline = encoder.encode('\n')

/**
 * Validates and compiles the constraint options (throws InvalidArgumentError whose `param` points
 * at the field, e.g. `responseFormat.schema.properties.age.multipleOf`). Returns undefined when
 * nothing constrains the output. `names` gives the field names to report (the OpenAI wire uses
 * `response_format`, `tools`, `tool_choice`). `syntax` is the tool-call syntax of the model's
 * template (toolCallSyntaxOf).
 */
export function compileConstraint(
  options: ConstraintOptions,
  names: ConstraintFieldNames = defaultConstraintFieldNames,
  syntax: ToolCallSyntax = 'json',
): OutputConstraint | undefined {
  // Apps send the same schema again and again: reuse its grammar (and the masks it remembers).
  let key: string | undefined
  try {
    key = JSON.stringify([
      options.responseFormat,
      options.tools,
      options.toolChoice,
      options.parallelToolCalls,
      names,
      syntax,
    ])
  } catch {
    key = undefined
  }
  if (key !== undefined && compiledCache.has(key)) {
    const cached = compiledCache.get(key)
    compiledCache.delete(key)
    compiledCache.set(key, cached)
    return cached
  }
  const compiled = compileUncached(options, names, syntax)
  if (key !== undefined) {
    compiledCache.set(key, compiled)
    if (compiledCache.size > 8) compiledCache.delete(compiledCache.keys().next().value as string)
  }
  return compiled
}

const compiledCache = new Map<string, OutputConstraint | undefined>()

/**
 * The check every entry runs once it knows which model answers (the server its loaded model, the
 * SDK its device's package, the device before it takes the session): what the request's
 * constraint asks of that model. Tools it would have to call on a model without the call syntax
 * are an OndeviceError 'unsupported' naming `tools`; what the model's call syntax cannot write (in
 * the XML dialect: a parameter name with `>`, an enum value holding `\n</parameter>`, alternatives
 * that disagree on whether a parameter is a string) an InvalidArgumentError naming the path under
 * `tools.N.parameters`. Said before any token is drawn: the same refusal the answer would have
 * raised at its start, where a stream had already said 200 and a device had taken its turn.
 * Returns the compiled constraint (cached: generate() reuses it).
 */
export function validateConstraintForModel(
  options: ConstraintOptions | undefined,
  syntax: ModelToolCallSyntax,
  names: ConstraintFieldNames = defaultConstraintFieldNames,
): OutputConstraint | undefined {
  if (options === undefined) return undefined
  const callable =
    Array.isArray(options.tools) && options.tools.length > 0 && (options.toolChoice ?? 'auto') !== 'none'
  if (callable && syntax === 'none') {
    throw new OndeviceError(
      'unsupported',
      `This model has no tool-call syntax (its tokenizer has no <tool_call> / </tool_call> tokens), so it cannot call tools: send the request without ${names.tools} (or with ${names.toolChoice} "none"), or use a model whose template takes tools (Qwen3, Qwen3.5).`,
      { param: names.tools },
    )
  }
  return compileConstraint(options, names, syntax === 'none' ? 'json' : syntax)
}

/** The fields each responseFormat type takes: anything else is a mistake to name, not to ignore. */
const responseFormatFields: Readonly<Record<string, readonly string[]>> = {
  text: ['type'],
  json_object: ['type'],
  json_schema: ['type', 'schema', 'name', 'description', 'strict'],
}

function compileUncached(
  options: ConstraintOptions,
  names: ConstraintFieldNames,
  syntax: ToolCallSyntax,
): OutputConstraint | undefined {
  let responseGrammar: Grammar | undefined
  // One budget for the response format and every tool: what one request may make the compiler build.
  const budget = compileBudget()
  const format = options.responseFormat
  if (format !== undefined) {
    if (typeof format !== 'object' || format === null) {
      throw new InvalidArgumentError(
        names.responseFormat,
        `${names.responseFormat} must be { type: 'json_schema', schema } or { type: 'json_object' }.`,
      )
    }
    const fields = responseFormatFields[String(format.type)]
    const unknown =
      fields === undefined ? undefined : Object.keys(format).find((key) => !fields.includes(key))
    if (unknown !== undefined)
      throw new InvalidArgumentError(
        `${names.responseFormat}.${unknown}`,
        `Unknown field "${unknown}" in ${names.responseFormat} (type '${String(format.type)}' takes ${fields!.join(', ')})${unknown === 'json_schema' ? ": pass the schema itself as `schema`, not OpenAI's wire wrapper { json_schema: { schema } }" : ''}.`,
      )
    const empty = new Uint8Array(0)
    if (format.type === 'json_object')
      responseGrammar = new Grammar(compileJsonObject().root, empty, empty, names.responseFormat)
    else if (format.type === 'json_schema') {
      if (!('schema' in format) || format.schema === undefined) {
        throw new InvalidArgumentError(
          `${names.responseFormat}.schema`,
          `${names.responseFormat}.schema is required for type 'json_schema' (a JSON Schema object).`,
        )
      }
      if (format.strict !== undefined && typeof format.strict !== 'boolean') {
        throw new InvalidArgumentError(`${names.responseFormat}.strict`, 'strict must be true or false.')
      }
      // The edge receives name as OpenAI's response_format.json_schema.name, which takes these
      // characters only: the device answered "Recipe Card" (the AI SDK's schemaName) and the edge
      // refused it, so one request gave an answer or a 400 by route. Checked alike on both.
      if (
        format.name !== undefined &&
        (typeof format.name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(format.name))
      ) {
        throw new InvalidArgumentError(
          `${names.responseFormat}.name`,
          `${names.responseFormat}.name must be 1-64 letters, digits, "_" or "-" (as OpenAI's json_schema.name; the AI SDK's schemaName becomes it); got ${JSON.stringify(format.name)}.`,
        )
      }
      if (
        format.description !== undefined &&
        format.description !== null &&
        typeof format.description !== 'string'
      ) {
        throw new InvalidArgumentError(
          `${names.responseFormat}.description`,
          `${names.responseFormat}.description must be a string.`,
        )
      }
      responseGrammar = new Grammar(
        compileJsonSchema(format.schema, `${names.responseFormat}.schema`, budget).root,
        empty,
        empty,
        names.responseFormat,
      )
    } else if (format.type !== 'text') {
      throw new InvalidArgumentError(
        `${names.responseFormat}.type`,
        `${names.responseFormat}.type ${JSON.stringify((format as { type?: unknown }).type)} is not supported; use 'json_schema', 'json_object' or 'text'.`,
      )
    }
  }

  const tools = options.tools ?? []
  if (!Array.isArray(tools))
    throw new InvalidArgumentError(names.tools, `${names.tools} must be an array of tools.`)
  const choice = options.toolChoice ?? (tools.length > 0 ? 'auto' : 'none')
  // A named tool is OpenAI's forced function: exactly one call, unless several are asked for.
  const named = typeof choice === 'object' && choice !== null
  const parallel = options.parallelToolCalls ?? !named
  if (typeof parallel !== 'boolean')
    throw new InvalidArgumentError('parallelToolCalls', 'parallelToolCalls must be true or false.')
  const seen = new Set<string>()
  const calls: SchemaNode[] = []
  // In the XML dialect, the tools the answer may call (by name): only those must be writable in it.
  // With toolChoice 'none' no tool is (the template does not even show them), with a named tool
  // only that one; refusing the others would refuse a request that can never write them.
  const xmlTools = new Map<string, ReturnType<typeof xmlTool>>()
  const mayCall = (name: string): boolean =>
    choice === 'auto' || choice === 'required' || (named && (choice as { name?: unknown }).name === name)
  let id = 1_000_000
  for (const [index, tool] of tools.entries()) {
    const at = `${names.tools}.${index}`
    if (typeof tool !== 'object' || tool === null)
      throw new InvalidArgumentError(at, `${at} must be a tool like { name, description?, parameters? }.`)
    refuseMisplacedSchema(tool, at)
    if (typeof tool.name !== 'string' || !toolNamePattern.test(tool.name)) {
      throw new InvalidArgumentError(
        `${at}.name`,
        `${at}.name must be 1-64 letters, digits, "_" or "-"; got ${JSON.stringify(tool.name)}.`,
      )
    }
    if (seen.has(tool.name))
      throw new InvalidArgumentError(
        `${at}.name`,
        `Two tools are named "${tool.name}": names must be unique.`,
      )
    seen.add(tool.name)
    if (tool.description !== undefined && typeof tool.description !== 'string') {
      throw new InvalidArgumentError(`${at}.description`, `${at}.description must be a string.`)
    }
    const parameters = asObjectSchema(tool.parameters)
    const compiled = compileJsonSchema(parameters, `${at}.parameters`, budget).root
    if (!producesObjects(compiled)) {
      throw new InvalidArgumentError(
        `${at}.parameters`,
        `${at}.parameters must describe an object ({ type: 'object', properties: ... }): arguments are a JSON object.`,
      )
    }
    calls.push(callNode(tool.name, compiled, id))
    if (syntax === 'xml' && mayCall(tool.name))
      xmlTools.set(tool.name, xmlTool(tool.name, compiled, `${at}.parameters`))
    id += 3
  }

  let toolMode: 'none' | 'auto' | 'required'
  let allowed = calls
  let allowedXml = [...xmlTools.values()]
  if (choice === 'none' || choice === 'auto' || choice === 'required') {
    toolMode = choice
  } else if (typeof choice === 'object' && choice !== null && typeof choice.name === 'string') {
    const position = tools.findIndex((tool) => tool.name === choice.name)
    if (position === -1) {
      throw new InvalidArgumentError(
        `${names.toolChoice}.name`,
        `${names.toolChoice} names "${choice.name}", which is not in ${names.tools}.`,
      )
    }
    toolMode = 'required'
    allowed = [calls[position]!]
    allowedXml = syntax === 'xml' ? [xmlTools.get(choice.name)!] : []
  } else {
    throw new InvalidArgumentError(
      names.toolChoice,
      `${names.toolChoice} must be 'none', 'auto', 'required' or { name }.`,
    )
  }
  if (toolMode !== 'none' && tools.length === 0) {
    throw new InvalidArgumentError(
      names.toolChoice,
      `${names.toolChoice} is ${JSON.stringify(choice)} but no ${names.tools} are given.`,
    )
  }
  if (toolMode === 'required' && responseGrammar !== undefined) {
    throw new InvalidArgumentError(
      names.responseFormat,
      `${names.responseFormat} does not apply when a tool call is required (the answer is the call).`,
    )
  }
  const toolGrammar =
    toolMode === 'none'
      ? undefined
      : syntax === 'xml'
        ? new XmlCallGrammar(
            allowedXml.map((each) => each.tool),
            names.tools,
          )
        : new Grammar(
            allowed.length === 1 ? allowed[0]! : { kind: 'union', id: id++, options: allowed },
            newline,
            newline,
            names.tools,
          )
  if (responseGrammar === undefined && toolGrammar === undefined && toolMode === 'none' && tools.length === 0)
    return undefined
  return {
    responseGrammar,
    toolGrammar,
    toolMode,
    parallelToolCalls: parallel,
    hasTools: tools.length > 0,
    toolCallSyntax: syntax,
    ...(syntax === 'xml'
      ? { xmlToolShapes: new Map([...xmlTools].map(([name, each]) => [name, each.shape])) }
      : {}),
  }
}

/**
 * A tool's parameters as the schema of an object: absent, `true`, `{}` and a schema that names no
 * type or alternatives (`{ properties, required }` without `type`, as some clients write a tool
 * with no or loose parameters; OpenAI takes them) describe the arguments, which are always an
 * object, so they get `type: 'object'`. Anything else is compiled as given.
 */
function asObjectSchema(parameters: unknown): unknown {
  if (parameters === undefined || parameters === true) return { type: 'object' }
  if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) return parameters
  const keys = ['type', 'anyOf', 'oneOf', 'allOf', '$ref', 'enum', 'const', 'not']
  return keys.some((key) => key in parameters) ? parameters : { ...parameters, type: 'object' }
}

function producesObjects(node: SchemaNode): boolean {
  if (node.kind === 'object') return true
  if (node.kind === 'union') return node.options.every(producesObjects)
  if (node.kind === 'reference') return node.target !== undefined && producesObjects(node.target)
  return false
}

/** `{"name":"<name>","arguments":<parameters>}`, in that order. */
function callNode(name: string, parameters: SchemaNode, id: number): SchemaNode {
  return {
    kind: 'object',
    id,
    properties: [
      { name: 'name', keyBytes: encoder.encode('"name"'), node: literalNode([name], id + 1), required: true },
      { name: 'arguments', keyBytes: encoder.encode('"arguments"'), node: parameters, required: true },
    ],
    additional: undefined,
    names: new Set(['name', 'arguments']),
  }
}

/** What the per-generation state needs from a tokenizer (core's Tokenizer has it). */
export interface ConstraintTokenizer extends TokenSource {
  tokenToId(token: string): number | undefined
}

// --- Per generation ----------------------------------------------------------------------------

/** Where a tool-call answer stands. */
const textMode = 0 // free text (auto) or the response format's document
const callOpenMode = 1 // only `<tool_call>` may come (required, or between parallel calls)
const callMode = 2 // inside the call's JSON
const afterCallMode = 3 // EOS, or "\n" then another call

/**
 * The state of one generation under a constraint: `mask(logits)` before each draw, `accept(id)`
 * after it. Built from the tokens already generated (a continuation replays them).
 */
export class ConstraintState {
  readonly constraint: OutputConstraint
  readonly vocabulary: TokenVocabulary
  readonly #bits: Uint32Array
  #mode: number
  #text: GrammarMatcher | undefined
  #call: GrammarMatcher | undefined
  #tokens = 0
  readonly #openId: number
  readonly #closeId: number
  readonly #newlineId: number
  readonly #tokenizer: ConstraintTokenizer

  constructor(
    constraint: OutputConstraint,
    tokenizer: ConstraintTokenizer,
    generated: readonly number[] = [],
  ) {
    this.#tokenizer = tokenizer
    this.constraint = constraint
    this.vocabulary = vocabularyOf(tokenizer)
    this.#bits = new Uint32Array(Math.max(this.vocabulary.wordCount, 1))
    this.#openId = -1
    this.#closeId = -1
    this.#newlineId = -1
    const callsAllowed = constraint.toolMode !== 'none' || constraint.toolGrammar !== undefined
    if (callsAllowed || constraint.hasTools) {
      const open = tokenizer.tokenToId('<tool_call>')
      const close = tokenizer.tokenToId('</tool_call>')
      const line = this.vocabulary.idOfByte(0x0a)
      if (open !== undefined && close !== undefined && line !== -1) {
        this.#openId = open
        this.#closeId = close
        this.#newlineId = line
      } else if (callsAllowed) {
        // The edge's code and param for the same refusal (worker/chat-completions.ts checks it
        // before its status line): a device answer and an edge answer fail alike.
        throw new OndeviceError(
          'unsupported',
          "This model has no tool-call syntax (its tokenizer has no <tool_call> / </tool_call> tokens), so it cannot call tools: send the request without tools (or with toolChoice 'none'), or use a model whose template takes tools (Qwen3, Qwen3.5).",
          { param: 'tools' },
        )
      }
      // toolChoice 'none' on a model without the call syntax: there is no call to keep out.
    }
    this.#mode = constraint.toolMode === 'required' ? callOpenMode : textMode
    this.#text =
      constraint.responseGrammar === undefined
        ? undefined
        : new GrammarMatcher(constraint.responseGrammar, this.vocabulary)
    for (const [index, id] of generated.entries()) {
      if (!this.accept(id)) {
        throw new InvalidArgumentError(
          `continuation.tokenIds.${index}`,
          `Token ${id} does not fit the output constraint at this point: the continuation was not produced under the same constraint.`,
        )
      }
    }
  }

  /** Whether generation is in free text (no mask). */
  get #unconstrained(): boolean {
    return this.#mode === textMode && this.#text === undefined
  }

  /**
   * The id of `<tool_call>` when the answer may call a tool (auto, required, a named tool), else
   * undefined: the generation loop shows no text from this token on (the call is not text).
   */
  get toolCallOpenId(): number | undefined {
    return this.constraint.toolMode === 'none' || this.#openId < 0 ? undefined : this.#openId
  }

  /** Tokens accepted so far (the generated ones the state follows). */
  get tokenCount(): number {
    return this.#tokens
  }

  /**
   * The sampler's logits-processor hook: catches up with the generated tokens in `context` (the
   * state is a function of them alone, so a handoff that replays them lands on the same state),
   * then masks `logits`.
   */
  process(
    logits: Float32Array,
    context: { readonly previousTokenIds: readonly number[]; readonly promptLength: number },
  ): void {
    const generated = context.previousTokenIds.length - context.promptLength
    if (generated < this.#tokens) {
      throw new InvalidArgumentError(
        'previousTokenIds',
        'The output constraint saw fewer generated tokens than before: use one constraint state per generation.',
      )
    }
    for (let index = context.promptLength + this.#tokens; index < context.previousTokenIds.length; index++) {
      const id = context.previousTokenIds[index]!
      if (!this.accept(id)) {
        throw new InvalidArgumentError(
          `continuation.tokenIds.${index - context.promptLength}`,
          `Token ${id} does not fit the output constraint at this point: the tokens were not produced under the same constraint.`,
        )
      }
    }
    this.mask(logits)
  }

  /** Sets every logit the constraint does not allow next to -Infinity. */
  mask(logits: Float32Array): void {
    const bits = this.#bits
    switch (this.#mode) {
      case textMode:
        if (this.#text === undefined) {
          // Free text: anything but a stray `</tool_call>`, and `<tool_call>` only with auto.
          if (this.#closeId >= 0 && this.#closeId < logits.length)
            logits[this.#closeId] = Number.NEGATIVE_INFINITY
          if (this.constraint.toolMode !== 'auto' && this.#openId >= 0 && this.#openId < logits.length)
            logits[this.#openId] = Number.NEGATIVE_INFINITY
          return
        }
        this.#text.fillMask(bits)
        // With auto tools, a call may open instead of the document, at the very start.
        if (this.constraint.toolMode === 'auto' && this.#tokens === 0) setBit(bits, this.#openId)
        break
      case callOpenMode:
        bits.fill(0)
        setBit(bits, this.#openId)
        break
      case callMode:
        ;(this.#call as GrammarMatcher).fillMask(bits)
        // The call's grammar ends with its "\n": then `</tool_call>`, never EOS.
        for (const id of this.vocabulary.eosTokenIds) clearBit(bits, id)
        if ((this.#call as GrammarMatcher).isComplete) setBit(bits, this.#closeId)
        break
      case afterCallMode:
        bits.fill(0)
        for (const id of this.vocabulary.eosTokenIds) setBit(bits, id)
        if (this.constraint.parallelToolCalls) setBit(bits, this.#newlineId)
        break
    }
    applyMask(logits, bits)
  }

  /** Advances by the token drawn; false when the constraint refuses it (state unchanged). */
  accept(id: number): boolean {
    const eos = this.vocabulary.eosTokenIds.includes(id)
    switch (this.#mode) {
      case textMode:
        if (
          id === this.#openId &&
          this.#openId >= 0 &&
          this.constraint.toolMode === 'auto' &&
          (this.#text === undefined || this.#tokens === 0)
        ) {
          this.#startCall()
          break
        }
        if (this.#text === undefined) {
          if ((id === this.#closeId || id === this.#openId) && id >= 0) return false
          break
        }
        if (!this.#text.accept(id)) return false
        break
      case callOpenMode:
        if (id !== this.#openId) return false
        this.#startCall()
        break
      case callMode: {
        const call = this.#call as GrammarMatcher
        if (id === this.#closeId) {
          if (!call.isComplete) return false
          this.#mode = afterCallMode
          break
        }
        if (eos || !call.accept(id)) return false
        break
      }
      case afterCallMode:
        if (eos) break
        if (id === this.#newlineId && this.constraint.parallelToolCalls) {
          this.#mode = callOpenMode
          break
        }
        return false
    }
    this.#tokens++
    return true
  }

  #startCall(): void {
    this.#call = new GrammarMatcher(this.constraint.toolGrammar as Grammar, this.vocabulary)
    this.#mode = callMode
  }

  /**
   * Whether the answer would be complete after `more` tokens (the ones drawn since the last mask;
   * the state itself is not changed). EOS tokens among them count as the end.
   */
  isCompleteAfter(more: readonly number[]): boolean {
    const probe = new ConstraintState(this.constraint, this.#tokenizer, [])
    probe.#replayFrom(this)
    for (const id of more) {
      if (this.vocabulary.eosTokenIds.includes(id)) return probe.isComplete
      if (!probe.accept(id)) return false
    }
    return probe.isComplete
  }

  /**
   * Whether the answer after `more` tokens is complete and nothing but its end (EOS) may follow:
   * a call's `</tool_call>` where no further call is allowed (a named tool, parallelToolCalls
   * false), a JSON document's closing `}`. A token limit reached there took nothing from the
   * answer: one more draw could only have been EOS. Not after a call that another may follow, nor
   * after a document that may still grow (`12` of an integer may become `123`).
   */
  isFinishedAfter(more: readonly number[]): boolean {
    const probe = new ConstraintState(this.constraint, this.#tokenizer, [])
    probe.#replayFrom(this)
    for (const id of more) {
      if (this.vocabulary.eosTokenIds.includes(id)) return probe.isComplete
      if (!probe.accept(id)) return false
    }
    return probe.#onlyEndFollows()
  }

  #onlyEndFollows(): boolean {
    if (this.#mode === afterCallMode) return !this.constraint.parallelToolCalls
    if (this.#mode !== textMode || this.#text === undefined || !this.#text.isComplete) return false
    const bits = this.#bits
    this.#text.fillMask(bits)
    for (const id of this.vocabulary.eosTokenIds) clearBit(bits, id)
    return bits.every((word) => word === 0)
  }

  #replayFrom(other: ConstraintState): void {
    this.#mode = other.#mode
    this.#tokens = other.#tokens
    this.#text = other.#text?.fork()
    this.#call = other.#call?.fork()
  }

  /** Whether the answer so far is a complete document or a complete set of calls. */
  get isComplete(): boolean {
    if (this.#mode === afterCallMode) return true
    if (this.#mode === textMode) return this.#text === undefined || this.#text.isComplete
    return false
  }

  /** Whether the model is free to write anything right now (a text answer with auto tools). */
  get isFree(): boolean {
    return this.#unconstrained
  }
}

function setBit(bits: Uint32Array, id: number): void {
  if (id >= 0 && id >>> 5 < bits.length) bits[id >>> 5]! |= 1 << (id & 31)
}

function clearBit(bits: Uint32Array, id: number): void {
  if (id >= 0 && id >>> 5 < bits.length) bits[id >>> 5]! &= ~(1 << (id & 31))
}
