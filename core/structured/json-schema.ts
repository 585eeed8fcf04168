// JSON Schema to the grammar the matcher walks. Every keyword is either enforced or refused with
// an InvalidArgumentError whose `param` points at it (`responseFormat.schema.properties.age.multipleOf`):
// a constraint is never silently dropped. A schema without a document is refused the same way,
// naming what empties it (see `never` and checkProductive), so no answer can reach a dead end.
//
// What the generated documents look like (each one validates against the schema; the grammar may
// produce a subset of the valid documents, never a superset):
// - compact: no whitespace between tokens;
// - object properties in the order the schema lists them; properties not listed only when
//   `additionalProperties` is true or a schema (an object schema without `properties` accepts any
//   keys, as JSON Schema does), after the listed ones, never repeating a key;
// - a required name `properties` does not list after the listed ones (its value follows
//   additionalProperties);
// - numbers without exponent, at most 15 integer digits and 15 fraction digits, never `-0`;
// - strings as valid UTF-8 without lone surrogates; property names without escapes.
import { InvalidArgumentError } from '../errors.ts'
import {
  extraStringChecks,
  flattenAllOf,
  keywordOrigins,
  type MergeContext,
  mergeMembers,
  noValue,
  originOf,
  type StringCheck,
  without as withoutKeyword,
} from './all-of.ts'
import { deepEqual, isPlainObject } from './json-value.ts'
import { allowedUnits } from './number-range.ts'
import { type Automaton, type CompileBudget, compileBudget, compilePattern } from './regex.ts'
import { type StringConstraint, stringLanguage } from './string-language.ts'

export type SchemaNode =
  | AnyNode
  | UnionNode
  | ObjectNode
  | ArrayNode
  | StringNode
  | NumberNode
  | LiteralNode
  | ReferenceNode

export interface AnyNode {
  readonly kind: 'any'
  readonly id: number
}
export interface UnionNode {
  readonly kind: 'union'
  readonly id: number
  readonly options: readonly SchemaNode[]
}
export interface PropertyRule {
  readonly name: string
  /** `"name"` as JSON text (UTF-8), quotes included. */
  readonly keyBytes: Uint8Array
  readonly node: SchemaNode
  readonly required: boolean
}
export interface ObjectNode {
  readonly kind: 'object'
  readonly id: number
  readonly properties: readonly PropertyRule[]
  /** Schema of keys not listed; undefined = none allowed. */
  readonly additional: SchemaNode | undefined
  /**
   * Every name `properties` lists, as its JSON text's bytes (one char per byte): unlisted keys may
   * not use them, not even a listed property that can never be written (its schema has no value).
   */
  readonly names: ReadonlySet<string>
  /** minProperties/maxProperties, when given (the frame counts the keys written). */
  readonly minProperties?: number
  readonly maxProperties?: number
}
export interface ArrayNode {
  readonly kind: 'array'
  readonly id: number
  readonly prefix: readonly SchemaNode[]
  /** Schema of items after the prefix; undefined = none allowed. */
  readonly items: SchemaNode | undefined
  readonly minItems: number
  readonly maxItems: number
}
export interface StringNode {
  readonly kind: 'string'
  readonly id: number
  readonly minLength: number
  readonly maxLength: number
  /**
   * The string's language (pattern ∩ format ∩ minLength, see string-language.ts), exact about
   * which strings can still be completed; undefined = any string.
   */
  readonly automaton: Automaton | undefined
  /** A property name: no escapes, and the names in `forbidden` are refused at the closing quote. */
  readonly isKey: boolean
  /** Identifies the constraints (not the node): strings with equal signatures share caches. */
  readonly signature: string
}
export interface NumberNode {
  readonly kind: 'number'
  readonly id: number
  readonly integer: boolean
  readonly minimum: number
  readonly maximum: number
  readonly exclusiveMinimum: boolean
  readonly exclusiveMaximum: boolean
  /** Values are multiples of it (an integer above 1; integer nodes only), when given. */
  readonly multipleOf?: number
}
export interface LiteralNode {
  readonly kind: 'literal'
  readonly id: number
  /** The accepted values as compact JSON text (UTF-8). */
  readonly values: readonly Uint8Array[]
}
export interface ReferenceNode {
  readonly kind: 'reference'
  readonly id: number
  target: SchemaNode | undefined
  readonly path: string
}

export const maxIntegerDigits = 15
export const maxFractionDigits = 15

/**
 * Keywords that say nothing about which values are valid. Besides JSON Schema's, OpenAPI's
 * (`example`, the singular that OpenAPI 3.0 documents and FastAPI apps write, `externalDocs`,
 * `xml`) and its specification extensions (any `x-...` key: `x-order`, `x-go-type`), which
 * validators ignore; each was refused as a keyword that "cannot be enforced", though there is
 * nothing to enforce.
 */
const annotations: ReadonlySet<string> = new (class extends Set<string> {
  override has(key: string): boolean {
    return super.has(key) || key.startsWith('x-')
  }
})([
  'title',
  'description',
  'default',
  'examples',
  'example',
  'externalDocs',
  'xml',
  '$comment',
  '$schema',
  '$id',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$defs',
  'definitions',
  'nullable',
  // Where a $ref may point ("#name"): resolved below.
  '$anchor',
  // OpenAPI's hint for oneOf/anyOf: checked against the alternatives (see #checkDiscriminator).
  'discriminator',
])

const typeNames = ['null', 'boolean', 'object', 'array', 'number', 'string', 'integer'] as const
type TypeName = (typeof typeNames)[number]

const keywordsByType: Record<TypeName, readonly string[]> = {
  null: [],
  boolean: [],
  object: [
    'properties',
    'required',
    'additionalProperties',
    'propertyNames',
    'unevaluatedProperties',
    'minProperties',
    'maxProperties',
  ],
  array: ['items', 'prefixItems', 'additionalItems', 'minItems', 'maxItems', 'uniqueItems'],
  number: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'],
  integer: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'],
  string: ['minLength', 'maxLength', 'pattern', 'format'],
}

/** The types a keyword applies to; OpenAPI's number formats (int32, double, ...) belong to numbers. */
function keywordOwners(key: string, value: unknown): TypeName[] {
  const owners = typeNames.filter((name) => keywordsByType[name].includes(key))
  if (key === 'format' && numberFormats[String(value)] !== undefined) owners.push('number', 'integer')
  return owners
}
/** Keywords whose list entries are schemas (their errors carry the schema's own path). */
const schemaLists = new Set(['prefixItems', 'items', 'allOf', 'anyOf', 'oneOf'])
const countKeywords = new Set([
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
])
const boundKeywords = new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'])

const combinators = new Set(['type', 'enum', 'const', 'anyOf', 'oneOf', 'allOf', '$ref'])

// One hostname label: letters, digits and inner hyphens, at most 62 characters here (63 is the
// limit; 62 lets four labels and their dots stay within a hostname's 253).
const hostLabel = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,60}[A-Za-z0-9])?'
// A URI (RFC 3986) subset: an http(s) URL with a host name, an optional port, path, query and
// fragment; percent signs only as escapes (%XX), as validators check.
const uriCharacters = "(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
const uriTail = "(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})"
const uri = `^https?://${hostLabel}(?:\\.${hostLabel})*(?::\\d{1,5})?(?:/${uriCharacters}*)*(?:\\?${uriTail}*)?(?:#${uriTail}*)?$`
const email =
  '^[A-Za-z0-9_+-]+(?:\\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$'
const hostname = `^${hostLabel}(?:\\.${hostLabel}){0,3}$`

/**
 * The string formats the grammar enforces, each as a pattern of (a subset of) its exact syntax:
 * every string it allows passes a validator's check of the format (ajv-formats' full mode).
 * These tables are looked up with the schema's own `format` string, so they have no prototype: a
 * format "constructor" found Object's and was refused as a bad pattern, and on a number it was
 * taken as a known format and silently ignored.
 */
const formatPatterns: Record<string, string> = Object.setPrototypeOf(
  {
    // February stops at 28: a subset of the valid dates that needs no leap-year arithmetic.
    date: '^\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|02-(?:0[1-9]|1\\d|2[0-8]))$',
    'date-time':
      '^\\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)|02-(?:0[1-9]|1\\d|2[0-8]))T(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,9})?(?:Z|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)$',
    // RFC 3339 full-time: the offset is required, no leap second.
    time: '^(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d{1,9})?(?:Z|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)$',
    // ISO 8601 durations as RFC 3339 appendix A writes them: weeks alone, or date and time parts in
    // order, at least one, a T only before a time part.
    duration:
      '^P(?:\\d+W|(?:\\d+Y)?(?:\\d+M)?(?:\\d+D)?T(?:\\d+H(?:\\d+M)?(?:\\d+S)?|\\d+M(?:\\d+S)?|\\d+S)|\\d+Y(?:\\d+M)?(?:\\d+D)?|\\d+M(?:\\d+D)?|\\d+D)$',
    email,
    'idn-email': email,
    hostname,
    'idn-hostname': hostname,
    ipv4: '^(?:(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)$',
    // The full form (eight groups), lower case.
    ipv6: '^(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}$',
    uri,
    'uri-reference': uri,
    iri: uri,
    'iri-reference': uri,
    uuid: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
    'json-pointer': '^(?:/(?:[^~/]|~0|~1)*)*$',
  },
  null,
)

/**
 * How the formats whose pattern is a strict subset of what validators take are written, for the
 * refusals that the subset causes (a maxLength of 3 fits ajv's "::1" but no full-form address):
 * an error saying that every ipv6 address has at least 15 characters would be false.
 */
const formatSubsets: Record<string, string> = Object.setPrototypeOf(
  {
    ipv6: 'written here in its full form: eight groups, no "::"',
    uri: 'written here as an http or https URL',
    'uri-reference': 'written here as an http or https URL',
    iri: 'written here as an http or https URL',
    'iri-reference': 'written here as an http or https URL',
  },
  null,
)

/**
 * Formats that constrain nothing (OpenAPI's and ajv-formats' `password`, a UI hint, and `binary`,
 * unchecked bytes): any string.
 */
const unconstrainedFormats = new Set(['password', 'binary'])

/**
 * OpenAPI's number formats: int32 bounds the value; the others fit every number the grammar
 * writes (at most 15 integer digits).
 */
const numberFormats: Record<
  string,
  { readonly integer: boolean; readonly minimum?: number; readonly maximum?: number }
> = Object.setPrototypeOf(
  {
    int32: { integer: true, minimum: -(2 ** 31), maximum: 2 ** 31 - 1 },
    int64: { integer: true },
    float: { integer: false },
    double: { integer: false },
  },
  null,
)

/**
 * The formats JSON Schema defines. Another name is no standard format (validators ignore it), so
 * it is accepted only next to a pattern that says what it means (zod 4 writes `format:
 * 'starts_with'` or `'cuid'` beside the pattern it checks); alone it is refused, since whoever
 * wrote it expects a check nobody makes.
 */
const standardFormats = new Set([
  ...Object.keys(formatPatterns),
  'uri-template',
  'relative-json-pointer',
  'regex',
])

/** Formats the grammar enforces (as patterns of the exact syntax). */
export const supportedFormats: readonly string[] = [...Object.keys(formatPatterns), ...unconstrainedFormats]

const encoder = new TextEncoder()
const decoder = new TextDecoder()

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

function jsonPointerUnescape(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~')
}

function jsonTypeOf(value: unknown): TypeName | undefined {
  if (value === null) return 'null'
  if (typeof value === 'boolean') return 'boolean'
  if (typeof value === 'string') return 'string'
  if (typeof value === 'number')
    return Number.isFinite(value) ? (Number.isInteger(value) ? 'integer' : 'number') : undefined
  if (Array.isArray(value)) return 'array'
  if (isPlainObject(value)) return 'object'
  return undefined
}

/** Whether a JSON value has JSON type `type` (integers are numbers too). */
function hasType(value: unknown, type: TypeName): boolean {
  const actual = jsonTypeOf(value)
  return actual === type || (type === 'number' && actual === 'integer')
}

/** The compiled grammar of one schema: the root node and its nodes, ready for matchers. */
export interface CompiledSchema {
  readonly root: SchemaNode
  readonly nodeCount: number
}

class SchemaCompiler {
  #nextId = 0
  readonly #references = new Map<string, ReferenceNode>()
  readonly #pending: ReferenceNode[] = []
  readonly #compiled = new WeakMap<object, SchemaNode>()
  #depth = 0
  /** Nodes no value satisfies (empty unions), with why: see `never`. */
  readonly empty = new Map<SchemaNode, EmptyReason>()
  /** What this schema (with the constraint's others) may still build (regex.ts). */
  readonly budget: CompileBudget

  readonly rootSchema: unknown
  readonly param: string
  constructor(rootSchema: unknown, param: string, budget: CompileBudget) {
    this.rootSchema = rootSchema
    this.param = param
    this.budget = budget
  }

  id(): number {
    return this.#nextId++
  }

  get nodeCount(): number {
    return this.#nextId
  }

  refuse(path: string, message: string): never {
    throw new InvalidArgumentError(path, message)
  }

  /**
   * A node no value satisfies (a union of nothing), with the keyword and the reason. Not refused
   * here: where it is optional (a property not required, an anyOf alternative, items past
   * minItems) the grammar just never enters it; where every document needs it, checkProductive
   * refuses the schema with this reason.
   */
  never(param: string, message: string): SchemaNode {
    const node: UnionNode = { kind: 'union', id: this.id(), options: [] }
    this.empty.set(node, { param, message })
    return node
  }

  compileRoot(): SchemaNode {
    const root = this.compile(this.rootSchema, this.param)
    // Resolve $refs breadth-first; a reference may add more.
    while (this.#pending.length > 0) {
      const reference = this.#pending.shift() as ReferenceNode
      const resolved = this.#resolvePointer(reference.path)
      reference.target = this.compile(resolved.schema, resolved.path)
    }
    return root
  }

  #resolvePointer(reference: string): { schema: unknown; path: string } {
    let schema: unknown = this.rootSchema
    let path = this.param
    // "#" is the root; "#/" + each segment after it, an empty one included: "#/$defs/" is the
    // definition named "" (dropping empty segments resolved it to $defs itself, refused as a
    // schema with the keyword "").
    const segments = reference === '#' ? [] : reference.slice(2).split('/')
    for (const raw of segments) {
      let decoded: string
      try {
        decoded = decodeURIComponent(raw)
      } catch {
        // A "%" that starts no escape threw URIError, a server's 500 instead of the request's 400.
        this.refuse(
          path,
          `$ref "${reference}" is not a valid URI fragment: "%" must start an escape of two hex digits (write a literal "%" as %25).`,
        )
      }
      const segment = jsonPointerUnescape(decoded)
      if (!isPlainObject(schema) && !Array.isArray(schema)) {
        this.refuse(path, `$ref "${reference}" does not point at a schema.`)
      }
      // Only the schema's own members: "#/$defs/toString" found Object's method and "#/__proto__"
      // Object.prototype, compiled as the empty schema (any value) for a $ref to nothing, and
      // "#/anyOf/length" an array's length.
      const container = schema as Record<string, unknown>
      const own = Array.isArray(container)
        ? /^(?:0|[1-9]\d*)$/.test(segment) && Number(segment) < container.length
        : Object.hasOwn(container, segment)
      schema = own ? container[segment] : undefined
      path = `${path}.${segment}`
      if (schema === undefined)
        this.refuse(path, `$ref "${reference}" points at nothing: define it under $defs.`)
    }
    return { schema, path }
  }

  compile(schema: unknown, path: string): SchemaNode {
    if (schema === true) return { kind: 'any', id: this.id() }
    if (schema === false) return this.never(path, 'The schema `false` matches nothing.')
    if (!isPlainObject(schema)) {
      this.refuse(
        path,
        `A schema must be an object (or true); got ${schema === null ? 'null' : Array.isArray(schema) ? 'an array' : typeof schema}.`,
      )
    }
    // A schema an allOf/anyOf merge copied to another place: its errors name where it was written.
    path = originOf(schema) ?? path
    // A place an allOf merge found no value for (all-of.ts), with the member that forbids it.
    const reason = (schema as { [noValue]?: { param: string; message: string } })[noValue]
    if (reason !== undefined) return this.never(reason.param, reason.message)
    const cached = this.#compiled.get(schema)
    if (cached !== undefined) return cached
    if (++this.#depth > 64)
      this.refuse(path, 'The schema nests deeper than 64 levels (use $ref for recursion).')
    try {
      const node = this.#compileObject(schema, path)
      this.#compiled.set(schema, node)
      return node
    } finally {
      this.#depth--
    }
  }

  #compileObject(schema: Record<string, unknown>, path: string): SchemaNode {
    const known = new Set<string>([...annotations, ...combinators])
    for (const type of typeNames) for (const keyword of keywordsByType[type]) known.add(keyword)
    for (const key of Object.keys(schema)) {
      if (key === 'contentEncoding') {
        // An annotation (draft-07, 2020-12: validators do not check it). zod 4's z.base64() writes
        // the pattern that says what the encoding allows beside it: then a label, as a format
        // JSON Schema does not define is; alone, what it asks for would go unenforced.
        if (typeof schema['pattern'] === 'string') continue
        this.refuse(
          `${path}.contentEncoding`,
          `contentEncoding ${JSON.stringify(schema[key])} is an annotation validators do not check, so structured output cannot enforce it alone: add a pattern that says what the encoded string allows (then contentEncoding is taken as a label), e.g. for base64 "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$".`,
        )
      }
      if (!known.has(key) && !annotations.has(key)) {
        this.refuse(
          `${path}.${key}`,
          `The schema keyword "${key}" is not supported by structured output, so it cannot be enforced. Remove it, or express it with the supported keywords (type, properties, required, additionalProperties, unevaluatedProperties, items, prefixItems, minItems, maxItems, minProperties, maxProperties, multipleOf, enum, const, anyOf, oneOf, allOf, $ref/$defs/$anchor, minLength, maxLength, pattern, format, minimum, maximum, exclusiveMinimum, exclusiveMaximum, nullable, discriminator; draft-07 tuples: items as an array with additionalItems; propertyNames that allows every string or lists the names). See docs/sdk.md, Structured output.`,
        )
      }
    }
    for (const key of ['$defs', 'definitions'] as const) {
      const defs = schema[key]
      if (defs !== undefined && !isPlainObject(defs))
        this.refuse(`${path}.${key}`, `${key} must be an object of named schemas.`)
    }
    if (schema['$id'] !== undefined && path !== this.param) {
      this.refuse(
        `${path}.$id`,
        '$id is supported on the root schema only (references are resolved within one document).',
      )
    }
    // Annotations are not enforced, but the chat template prints a tool's parameters: one nested
    // thousands deep overflowed the stack there. Strings where the draft says so, bounded values.
    for (const key of ['title', 'description', '$comment'] as const) {
      if (schema[key] !== undefined && typeof schema[key] !== 'string')
        this.refuse(`${path}.${key}`, `${key} must be a string.`)
    }
    const valued = Object.keys(schema).filter(
      (key) =>
        ['default', 'examples', 'example', 'externalDocs', 'xml'].includes(key) || key.startsWith('x-'),
    )
    for (const key of valued) {
      if (schema[key] !== undefined && jsonValueProblem(schema[key], 0) !== undefined) {
        this.refuse(
          `${path}.${key}`,
          `${key} must be a JSON value nesting at most ${maxValueDepth} levels of arrays and objects.`,
        )
      }
    }
    if (
      schema['discriminator'] !== undefined &&
      schema['oneOf'] === undefined &&
      schema['anyOf'] === undefined
    )
      this.refuse(
        `${path}.discriminator`,
        'discriminator belongs beside oneOf or anyOf (the alternatives it tells apart).',
      )
    if (schema['$anchor'] !== undefined && typeof schema['$anchor'] !== 'string')
      this.refuse(`${path}.$anchor`, '$anchor must be a name (a string).')
    const nullable = schema['nullable']
    if (nullable !== undefined && typeof nullable !== 'boolean')
      this.refuse(`${path}.nullable`, 'nullable must be true or false.')

    let node = this.#compileCore(schema, path)
    if (nullable === true && this.#nullableAdmitsNull(schema)) {
      node = { kind: 'union', id: this.id(), options: [node, this.#literal([null])] }
    }
    return node
  }

  /**
   * Whether `nullable: true` lets null through here. OpenAPI 3.0.3 and ajv read it as widening
   * `type` only: an enum or const beside it must still list null, and so must what an allOf,
   * anyOf, oneOf or $ref beside a `type` says (`{ type: 'string', enum: ['a', 'b'], nullable: true }`
   * is 'a' or 'b'; null was written, and every validator refused it). Without a `type` (what
   * OpenAPI 3.0 generators write for a nullable reference: `allOf: [{ $ref }], nullable: true`),
   * ajv takes no such schema and its writers mean "or null": only an enum or const is checked.
   */
  #nullableAdmitsNull(schema: Record<string, unknown>): boolean {
    if (schema['type'] === undefined) return this.#literalsAdmitNull(schema)
    return this.#nullPasses(schema, new Set())
  }

  #literalsAdmitNull(schema: Record<string, unknown>): boolean {
    if (Array.isArray(schema['enum']) && !schema['enum'].includes(null)) return false
    return !('const' in schema) || schema['const'] === null
  }

  /** Whether null validates against `schema` (type-specific keywords do not apply to null). */
  #nullPasses(schema: unknown, seen: Set<unknown>): boolean {
    if (schema === true) return true
    if (!isPlainObject(schema)) return false
    if (seen.has(schema)) return false
    seen.add(schema)
    try {
      const type = schema['type']
      if (type !== undefined) {
        const types: unknown[] = Array.isArray(type) ? type : [type]
        if (!types.includes('null') && schema['nullable'] !== true) return false
      }
      if (!this.#literalsAdmitNull(schema)) return false
      const allOf = schema['allOf']
      if (Array.isArray(allOf) && !allOf.every((member) => this.#nullPasses(member, seen))) return false
      const anyOf = schema['anyOf']
      if (Array.isArray(anyOf) && !anyOf.some((member) => this.#nullPasses(member, seen))) return false
      const oneOf = schema['oneOf']
      if (Array.isArray(oneOf) && oneOf.filter((member) => this.#nullPasses(member, seen)).length !== 1)
        return false
      const reference = schema['$ref']
      if (typeof reference === 'string') {
        const local = this.#localReference(reference)
        if (local === undefined) return false
        const target = this.#resolvePointer(local).schema
        if (!this.#nullPasses(target, seen)) return false
      }
      return true
    } finally {
      seen.delete(schema)
    }
  }

  #compileCore(schema: Record<string, unknown>, path: string): SchemaNode {
    const present = (key: string): boolean => schema[key] !== undefined
    const reference = schema['$ref']
    if (reference !== undefined) {
      if (typeof reference !== 'string')
        this.refuse(`${path}.$ref`, '$ref must be a string like "#/$defs/Name".')
      const local = this.#localReference(reference)
      if (local === undefined) {
        this.refuse(
          `${path}.$ref`,
          `$ref "${reference}" is not supported: only references inside the schema ("#/$defs/Name", "#anchor", or the root's $id followed by one of those) are.`,
        )
      }
      // Keywords beside $ref apply too (2020-12; draft-07 ignores them, and a document that
      // satisfies both satisfies either reading): the target and them, merged.
      const others = Object.keys(schema).filter((key) => !annotations.has(key) && key !== '$ref')
      if (others.length > 0) return this.#compileAllOf([{ schema, param: path }], path)
      return this.#referenceTo(local, path)
    }

    const hasEnum = present('enum')
    const hasConst = present('const')
    if (hasEnum || hasConst) return this.#compileEnum(schema, path, hasEnum, hasConst)

    for (const combinator of ['anyOf', 'oneOf', 'allOf'] as const) {
      if (!present(combinator)) continue
      const others = Object.keys(schema).filter((key) => !annotations.has(key) && key !== combinator)
      const list = schema[combinator]
      if (!Array.isArray(list) || list.length === 0)
        this.refuse(`${path}.${combinator}`, `${combinator} must be a non-empty array of schemas.`)
      // An intersection (allOf of several, or keywords beside a combinator, which apply to the
      // value as well) is merged into the one schema it means (all-of.ts). allOf of one schema is
      // that schema (generators wrap a $ref in it to hang a description beside it).
      if (others.length > 0 || (combinator === 'allOf' && list.length > 1)) {
        if (combinator === 'allOf') return this.#compileAllOf([{ schema, param: path }], path)
        if (present('discriminator'))
          this.#checkDiscriminator(schema['discriminator'], list, combinator, path)
        // unevaluatedProperties sees the names of the alternative written, so it stays with the
        // whole schema (all-of.ts distributes the alternatives under it). Split off with the
        // properties beside it, it read as additionalProperties and refused every name only an
        // alternative lists, naming a member path the schema does not have.
        if (present('unevaluatedProperties')) return this.#compileAllOf([{ schema, param: path }], path)
        return this.#compileAllOf(
          [
            { schema: withoutKeyword(schema, others), param: path },
            { schema: withoutKeyword(schema, combinator), param: path },
          ],
          path,
        )
      }
      const options = list.map((option, index) => this.compile(option, `${path}.${combinator}.${index}`))
      if (combinator === 'oneOf') this.#checkDisjoint(list, path)
      if (present('discriminator')) this.#checkDiscriminator(schema['discriminator'], list, combinator, path)
      return this.#union(options)
    }

    const types = this.#types(schema, path)
    const options = types.map((type) => this.#compileType(type, schema, path))
    return this.#union(options)
  }

  /**
   * The union of `options`, its literal alternatives (`const`, `enum`, booleans, null) as one
   * literal node. Each alternative that fits the text so far is a reading of its own, so an
   * anyOf or oneOf of more than `maxLiveStacks` consts (OpenAI's advice for an enum whose values
   * carry descriptions) failed at the value's first byte as too ambiguous to follow, while the
   * same values as one enum were fine.
   */
  #union(options: readonly SchemaNode[]): SchemaNode {
    if (options.length === 1) return options[0]!
    const literals = options.filter((option): option is LiteralNode => option.kind === 'literal')
    if (literals.length < 2) return { kind: 'union', id: this.id(), options }
    const seen = new Set<string>()
    const values: Uint8Array[] = []
    for (const literal of literals) {
      for (const value of literal.values) {
        const text = decoder.decode(value)
        if (seen.has(text)) continue
        seen.add(text)
        values.push(value)
      }
    }
    const merged: LiteralNode = { kind: 'literal', id: this.id(), values }
    const rest = options.filter((option) => option.kind !== 'literal')
    if (rest.length === 0) return merged
    return { kind: 'union', id: this.id(), options: [merged, ...rest] }
  }

  /** Intersections merged so far, by their members: a recursive one compiles to a loop, not forever. */
  readonly #merges = new Map<string, ReferenceNode>()
  readonly #identities = new WeakMap<object, number>()
  #nextIdentity = 0

  #compileAllOf(list: readonly { schema: unknown; param: string }[], path: string): SchemaNode {
    const context: MergeContext = {
      annotations,
      owners: keywordOwners,
      checkValue: (schema, key, param) => {
        if (countKeywords.has(key)) this.#count(schema, key, param, 0)
        else if (boundKeywords.has(key)) this.#bound(schema, key, param)
      },
      refuse: (param, message) => this.refuse(param, message),
      dereference: (reference) => {
        const local = this.#localReference(reference)
        if (local === undefined) {
          this.refuse(
            `${path}.$ref`,
            `$ref "${reference}" is not supported: only references inside the schema ("#/$defs/Name", "#anchor") are.`,
          )
        }
        return local === '#' ? this.rootSchema : this.#resolvePointer(local).schema
      },
    }
    const intersection = flattenAllOf(list, context)
    if (noValue in intersection) return this.compile(intersection, path)
    const identity = (schema: unknown): string => {
      if (typeof schema !== 'object' || schema === null) return JSON.stringify(schema) ?? 'none'
      let found = this.#identities.get(schema)
      if (found === undefined) {
        found = ++this.#nextIdentity
        this.#identities.set(schema, found)
      }
      return String(found)
    }
    const key = `${intersection.members.map((member) => identity(member.schema)).join(',')}|${identity(intersection.unevaluated?.schema)}`
    const known = this.#merges.get(key)
    if (known !== undefined) return known
    const node: ReferenceNode = { kind: 'reference', id: this.id(), target: undefined, path: `${path}.allOf` }
    this.#merges.set(key, node)
    const merged = mergeMembers(intersection, path, context)
    try {
      node.target = this.compile(merged, path)
    } catch (error) {
      // An error in a keyword of the merge names the keyword where its member wrote it (the merge
      // sits at the alternative's path, where a keyword written beside the anyOf is not).
      if (!(error instanceof InvalidArgumentError) || error.param === undefined) throw error
      for (const [key, param] of keywordOrigins(intersection)) {
        const at = `${path}.${key}`
        // The keyword itself, or an entry of its list (type.1, required.0); a schema inside one
        // (properties.a.pattern) is compiled at its own path already (originOf).
        const suffix = error.param.startsWith(at) ? error.param.slice(at.length) : undefined
        if (suffix === '' || (suffix !== undefined && /^\.\d+$/.test(suffix) && !schemaLists.has(key))) {
          if (error.param === param || error.param.startsWith(`${param}.`)) throw error
          throw new InvalidArgumentError(`${param}${error.param.slice(at.length)}`, error.message, {
            cause: error,
          })
        }
      }
      throw error
    }
    return node
  }

  /**
   * A $ref as a JSON pointer into the root schema ("#" or "#/..."), or undefined when it points
   * elsewhere. The root's $id before the "#" names this document; "#name" is a $anchor.
   */
  #localReference(reference: string): string | undefined {
    let local = reference
    const id = isPlainObject(this.rootSchema) ? this.rootSchema['$id'] : undefined
    if (typeof id === 'string' && id.length > 0) {
      const base = id.endsWith('#') ? id.slice(0, -1) : id
      if (local === base) local = '#'
      else if (local.startsWith(`${base}#`)) local = local.slice(base.length)
    }
    // "#/" is the root too: strictly the root's property "", but ajv reads it as "#" (its ids drop
    // a trailing "#/"), schemas in use write it so, and this compiler took it before the empty
    // segments counted ("#/$defs/" is the definition "").
    if (local === '#/') return '#'
    if (local === '#' || local.startsWith('#/')) return local
    if (/^#[A-Za-z_][A-Za-z0-9_.-]*$/.test(local)) {
      this.#anchors ??= findAnchors(this.rootSchema, this.param)
      const anchor = this.#anchors.get(local.slice(1))
      // Two schemas with one name: whichever the search met first was taken (ajv refuses it,
      // "resolves to more than one schema"; JSON Schema calls it an error).
      if (anchor?.twice !== undefined) {
        this.refuse(
          anchor.twice,
          `$anchor "${local.slice(1)}" names two schemas (also ${anchor.param}), so "${reference}" cannot tell which is meant: give each its own name.`,
        )
      }
      return anchor?.pointer
    }
    return undefined
  }

  #anchors: Map<string, Anchor> | undefined

  #referenceTo(reference: string, path: string): SchemaNode {
    let node = this.#references.get(reference)
    if (node === undefined) {
      node = {
        kind: 'reference',
        id: this.id(),
        target: undefined,
        path: reference,
      }
      this.#references.set(reference, node)
      this.#pending.push(node)
    }
    void path
    return node
  }

  /** The JSON types this schema allows, from `type` or inferred from the keywords present. */
  #types(schema: Record<string, unknown>, path: string): TypeName[] {
    const type = schema['type']
    let types: TypeName[]
    if (type === undefined) {
      const inferred = typeNames.filter((name) =>
        keywordsByType[name].some((keyword) => schema[keyword] !== undefined),
      )
      // No type and no type-specific keyword: any JSON value.
      if (inferred.length === 0) return [...typeNames].filter((name) => name !== 'integer')
      if (inferred.includes('number')) return inferred.filter((name) => name !== 'integer')
      return inferred
    }
    const list = Array.isArray(type) ? type : [type]
    if (list.length === 0) this.refuse(`${path}.type`, 'type must name at least one type.')
    types = []
    for (const [index, name] of list.entries()) {
      if (typeof name !== 'string' || !(typeNames as readonly string[]).includes(name)) {
        this.refuse(
          Array.isArray(type) ? `${path}.type.${index}` : `${path}.type`,
          `Unknown type ${JSON.stringify(name)}; the types are ${typeNames.join(', ')}.`,
        )
      }
      if (!types.includes(name as TypeName)) types.push(name as TypeName)
    }
    if (types.includes('number') && types.includes('integer'))
      types = types.filter((name) => name !== 'integer')
    // Keywords of a type the schema doesn't allow would be ignored by a validator: refuse them,
    // since they are almost always a mistake (e.g. minLength on an integer).
    for (const key of Object.keys(schema)) {
      const owners = keywordOwners(key, schema[key])
      if (
        owners.length > 0 &&
        !owners.some((owner) => types.includes(owner) || (owner === 'integer' && types.includes('number')))
      ) {
        this.refuse(
          `${path}.${key}`,
          `"${key}" applies to ${owners.join('/')} values, but this schema's type is ${types.join(' | ')}.`,
        )
      }
    }
    return types
  }

  #compileType(type: TypeName, schema: Record<string, unknown>, path: string): SchemaNode {
    switch (type) {
      case 'null':
        return this.#literal([null])
      case 'boolean':
        return this.#literal([true, false])
      case 'string':
        return this.#compileString(schema, path)
      case 'number':
      case 'integer':
        return this.#compileNumber(schema, path, type === 'integer')
      case 'array':
        return this.#compileArray(schema, path)
      case 'object':
        return this.#compileObjectType(schema, path)
    }
  }

  #count(schema: Record<string, unknown>, key: string, path: string, fallback: number): number {
    const value = schema[key]
    if (value === undefined) return fallback
    // A whole number past 2^53 - 1 (or one so large that JSON.parse made it Infinity) is not a
    // fraction: say it is too large, not "must be a whole number ... got null".
    if (typeof value === 'number' && value > Number.MAX_SAFE_INTEGER) {
      this.refuse(
        `${path}.${key}`,
        `${key} is too large: at most ${Number.MAX_SAFE_INTEGER} (2^53 - 1) is supported; got ${numberText(value)}. Use a smaller ${key}, or leave it out.`,
      )
    }
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      this.refuse(`${path}.${key}`, `${key} must be a whole number ≥ 0; got ${JSON.stringify(value)}.`)
    }
    return value
  }

  #compileString(schema: Record<string, unknown>, path: string): SchemaNode {
    const minLength = this.#count(schema, 'minLength', path, 0)
    const maxLength = this.#count(schema, 'maxLength', path, Number.POSITIVE_INFINITY)
    const constraints: StringConstraint[] = []
    const pattern = schema['pattern']
    if (pattern !== undefined) {
      if (typeof pattern !== 'string') this.refuse(`${path}.pattern`, 'pattern must be a string.')
      constraints.push({
        automaton: compilePattern(pattern, `${path}.pattern`, this.budget),
        param: `${path}.pattern`,
        label: `the pattern ${JSON.stringify(pattern)}`,
      })
    }
    const format = schema['format']
    if (format !== undefined) {
      if (typeof format !== 'string') this.refuse(`${path}.format`, 'format must be a string.')
      const formatPattern = formatPatterns[format]
      if (formatPattern !== undefined) {
        constraints.push({
          automaton: compilePattern(formatPattern, `${path}.format`, this.budget),
          param: `${path}.format`,
          label: `the format ${JSON.stringify(format)}${formatSubsets[format] === undefined ? '' : ` (${formatSubsets[format]})`}`,
        })
      } else if (
        !unconstrainedFormats.has(format) &&
        (standardFormats.has(format) || pattern === undefined || numberFormats[format] !== undefined)
      ) {
        this.refuse(
          `${path}.format`,
          standardFormats.has(format) || numberFormats[format] !== undefined
            ? `The format ${JSON.stringify(format)} is not supported by structured output on a string; the supported formats are ${supportedFormats.join(', ')} (or use a pattern).`
            : `The format ${JSON.stringify(format)} is no JSON Schema format, so no validator checks it: add a pattern that says what it means (then the format is taken as a label), or use one of ${supportedFormats.join(', ')}.`,
        )
      }
    }
    // An allOf merge's further patterns and formats (all-of.ts): each applies too.
    const extra = (schema as { [extraStringChecks]?: readonly StringCheck[] })[extraStringChecks] ?? []
    for (const check of extra) {
      const source = check.keyword === 'pattern' ? check.value : formatPatterns[String(check.value)]
      if (check.keyword === 'format' && unconstrainedFormats.has(String(check.value))) continue
      if (typeof source !== 'string') {
        this.refuse(
          check.param,
          `The ${check.keyword} ${JSON.stringify(check.value)} cannot be combined with another: the supported formats are ${supportedFormats.join(', ')}.`,
        )
      }
      constraints.push({
        automaton: compilePattern(source, check.param, this.budget),
        param: check.param,
        label: `the ${check.keyword} ${JSON.stringify(check.value)}`,
      })
    }
    // Whether any string satisfies them all, decided exactly (pattern ∩ format ∩ length bounds).
    const language = stringLanguage(constraints, minLength, maxLength, path, this.budget)
    if (language.empty) return this.never(language.param, language.message)
    return stringNode(this.id(), minLength, maxLength, language.automaton, false)
  }

  #bound(schema: Record<string, unknown>, key: string, path: string): number | undefined {
    const value = schema[key]
    if (value === undefined) return undefined
    if (typeof value === 'boolean' && (key === 'exclusiveMinimum' || key === 'exclusiveMaximum')) {
      // Draft 4 and OpenAPI 3.0 (what zod-to-json-schema writes for its openApi3 and openAi
      // targets): a flag that makes minimum/maximum exclusive.
      const bound = key === 'exclusiveMinimum' ? 'minimum' : 'maximum'
      if (value && typeof schema[bound] !== 'number') {
        this.refuse(
          `${path}.${key}`,
          `${key}: true (the draft-4 form) needs ${bound} beside it; or write ${key} as the bound itself (${key}: 0).`,
        )
      }
      return value ? this.#bound(schema, bound, path) : undefined
    }
    if (typeof value === 'number' && !Number.isFinite(value))
      this.refuse(`${path}.${key}`, outOfRange(key, value))
    if (typeof value !== 'number') {
      this.refuse(
        `${path}.${key}`,
        `${key} must be a finite number (draft 2020-12 form); got ${JSON.stringify(value)}.`,
      )
    }
    return value
  }

  #compileNumber(schema: Record<string, unknown>, path: string, integer: boolean): SchemaNode {
    // The schema's own bounds first, with the keyword that sets each (errors point at it).
    let minimum = Number.NEGATIVE_INFINITY
    let exclusiveMinimum = false
    let minimumKey = 'minimum'
    let maximum = Number.POSITIVE_INFINITY
    let exclusiveMaximum = false
    let maximumKey = 'maximum'
    const min = this.#bound(schema, 'minimum', path)
    const exMin = this.#bound(schema, 'exclusiveMinimum', path)
    const max = this.#bound(schema, 'maximum', path)
    const exMax = this.#bound(schema, 'exclusiveMaximum', path)
    const extraFormat = (schema as { [extraStringChecks]?: readonly StringCheck[] })[extraStringChecks]?.find(
      (check) => check.keyword === 'format',
    )
    if (extraFormat !== undefined)
      this.refuse(extraFormat.param, 'allOf members give a number two different formats: keep one.')
    // OpenAPI's number formats: int32 bounds the value (both are integers only, as validators check).
    const format = schema['format']
    if (format !== undefined) {
      const known = typeof format === 'string' ? numberFormats[format] : undefined
      if (known === undefined) {
        this.refuse(
          `${path}.format`,
          `The format ${JSON.stringify(format)} is not a number format; numbers take ${Object.keys(numberFormats).join(', ')}.`,
        )
      }
      integer ||= known.integer
      if (known.minimum !== undefined) minimum = known.minimum
      if (known.maximum !== undefined) maximum = known.maximum
    }
    // multipleOf: whole numbers only. A fraction (0.01) is refused: validators divide in floating
    // point (ajv finds 0.3 no multiple of 0.1, 1.1 none of 0.1), so its valid documents depend on
    // the validator. An integer step makes the value an integer (also under type number).
    const multipleOf = schema['multipleOf']
    let step: number | undefined
    if (multipleOf !== undefined) {
      if (typeof multipleOf === 'number' && !Number.isFinite(multipleOf))
        this.refuse(`${path}.multipleOf`, outOfRange('multipleOf', multipleOf))
      if (typeof multipleOf !== 'number' || multipleOf <= 0)
        this.refuse(
          `${path}.multipleOf`,
          `multipleOf must be a number above 0; got ${JSON.stringify(multipleOf)}.`,
        )
      if (!Number.isInteger(multipleOf)) {
        this.refuse(
          `${path}.multipleOf`,
          `multipleOf ${multipleOf} (a fraction) is not supported by structured output: validators divide in floating point and disagree on which decimals are its multiples (ajv rejects 0.3 for multipleOf 0.1). Use a whole multipleOf (count cents instead of dollars), or bound the digits with a pattern on a string.`,
        )
      }
      integer = true
      if (multipleOf > 1) step = multipleOf
    }
    if (min !== undefined && min >= minimum) minimum = min
    if (exMin !== undefined && exMin >= minimum) {
      minimum = exMin
      exclusiveMinimum = true
      minimumKey = 'exclusiveMinimum'
    }
    if (max !== undefined && max <= maximum) maximum = max
    if (exMax !== undefined && exMax <= maximum) {
      maximum = exMax
      exclusiveMaximum = true
      maximumKey = 'exclusiveMaximum'
    }
    const noun = integer ? 'integer' : 'number'
    const emptyBetween = (
      low: number,
      lowExclusive: boolean,
      high: number,
      highExclusive: boolean,
    ): boolean =>
      low > high ||
      (low === high && (lowExclusive || highExclusive)) ||
      (integer && integerRange(low, lowExclusive, high, highExclusive) === undefined)
    if (emptyBetween(minimum, exclusiveMinimum, maximum, exclusiveMaximum)) {
      return this.never(
        `${path}.${maximumKey}`,
        `No ${noun} satisfies both ${minimumKey} ${minimum} and ${maximumKey} ${maximum}.`,
      )
    }
    // Then what the grammar writes: at most 15 integer digits, no exponent (integers up to
    // 10^15 - 1; decimals are checked exactly below, in units of their last fraction digit).
    const limit = integer ? 10 ** maxIntegerDigits - 1 : 10 ** maxIntegerDigits
    if (minimum < -limit) {
      minimum = -limit
      exclusiveMinimum = false
    }
    if (maximum > limit) {
      maximum = limit
      exclusiveMaximum = false
    }
    if (emptyBetween(minimum, exclusiveMinimum, maximum, exclusiveMaximum)) {
      const key = minimum > 0 ? minimumKey : maximumKey
      return this.never(
        `${path}.${key}`,
        `Generated numbers have at most ${maxIntegerDigits} integer digits (no exponent), and no such ${noun} satisfies ${key} ${JSON.stringify(schema[key])}: structured output cannot write one.`,
      )
    }
    const node: NumberNode = {
      kind: 'number',
      id: this.id(),
      integer,
      minimum,
      maximum,
      exclusiveMinimum,
      exclusiveMaximum,
      ...(step === undefined ? {} : { multipleOf: step }),
    }
    if (step !== undefined) {
      const range = integerRange(minimum, exclusiveMinimum, maximum, exclusiveMaximum)
      if (range === undefined || firstMultiple(range[0], step) > range[1]) {
        return this.never(
          `${path}.multipleOf`,
          `No multiple of ${step} lies within this schema's bounds${maximum === 10 ** maxIntegerDigits - 1 || minimum === -(10 ** maxIntegerDigits - 1) ? ` (generated integers have at most ${maxIntegerDigits} digits)` : ''}.`,
        )
      }
    }
    if (!integer && allowedUnits(node) === undefined) {
      return this.never(
        `${path}.${maximumKey}`,
        `No number with at most ${maxFractionDigits} fraction digits satisfies the bounds of this schema (generated numbers have no exponent): widen the range.`,
      )
    }
    return node
  }

  #compileArray(schema: Record<string, unknown>, path: string): SchemaNode {
    const minItems = this.#count(schema, 'minItems', path, 0)
    const maxItems = this.#count(schema, 'maxItems', path, Number.POSITIVE_INFINITY)
    const unique = schema['uniqueItems']
    if (unique !== undefined && unique !== false) {
      this.refuse(
        `${path}.uniqueItems`,
        'uniqueItems: true is not supported by structured output (it cannot be enforced token by token).',
      )
    }
    const prefixList = schema['prefixItems']
    const itemsSchema = schema['items']
    const additionalItems = schema['additionalItems']
    let prefix: SchemaNode[] = []
    let items: SchemaNode | undefined
    // Where the schema says what comes after the prefix (`items`, or draft-07's `additionalItems`).
    let restKey = 'items'
    if (Array.isArray(itemsSchema)) {
      // Draft-07 tuples (what zod's tuples become): `items` is the prefix, `additionalItems` the
      // rest (absent = anything).
      if (prefixList !== undefined) {
        this.refuse(
          `${path}.prefixItems`,
          'prefixItems next to items as an array mixes two drafts: write the tuple either as prefixItems with items (2020-12) or as items with additionalItems (draft-07).',
        )
      }
      prefix = itemsSchema.map((item, index) => this.compile(item, `${path}.items.${index}`))
      restKey = 'additionalItems'
      items =
        additionalItems === undefined
          ? { kind: 'any', id: this.id() }
          : additionalItems === false
            ? undefined
            : this.compile(additionalItems, `${path}.additionalItems`)
    } else {
      if (additionalItems !== undefined) {
        // Without an items array, additionalItems constrains nothing (draft-07) or is not a
        // keyword at all (2020-12): harmless alone, but next to prefixItems it reads as a limit
        // that no validator of either draft would apply.
        if (prefixList !== undefined) {
          this.refuse(
            `${path}.additionalItems`,
            'additionalItems has no effect next to prefixItems (it belongs to draft-07 tuples, items as an array): to allow no further items, write items: false.',
          )
        }
        if (typeof additionalItems !== 'boolean' && !isPlainObject(additionalItems))
          this.refuse(`${path}.additionalItems`, 'additionalItems must be a schema (an object or a boolean).')
      }
      if (prefixList !== undefined) {
        if (!Array.isArray(prefixList))
          this.refuse(`${path}.prefixItems`, 'prefixItems must be an array of schemas.')
        prefix = prefixList.map((item, index) => this.compile(item, `${path}.prefixItems.${index}`))
      }
      if (itemsSchema === undefined) items = { kind: 'any', id: this.id() }
      else if (itemsSchema === false) items = undefined
      else items = this.compile(itemsSchema, `${path}.items`)
    }
    if (maxItems < minItems)
      return this.never(`${path}.maxItems`, `maxItems (${maxItems}) is below minItems (${minItems}).`)
    if (items === undefined && minItems > prefix.length) {
      return this.never(
        `${path}.minItems`,
        `minItems (${minItems}) exceeds the ${prefix.length} tuple items while ${restKey} is false.`,
      )
    }
    return { kind: 'array', id: this.id(), prefix, items, minItems, maxItems }
  }

  #compileObjectType(schema: Record<string, unknown>, path: string): SchemaNode {
    const propertiesSchema = schema['properties']
    if (propertiesSchema !== undefined && !isPlainObject(propertiesSchema)) {
      this.refuse(`${path}.properties`, 'properties must be an object mapping names to schemas.')
    }
    const requiredList = schema['required'] ?? []
    if (!Array.isArray(requiredList) || requiredList.some((name) => typeof name !== 'string')) {
      this.refuse(`${path}.required`, 'required must be an array of property names.')
    }
    // propertyNames: every name (records: { type: 'string' }), or a list of names (records keyed
    // by an enum), which is the same as listing those properties with additionalProperties' schema.
    const propertyNames = schema['propertyNames']
    let allowedNames: ReadonlySet<string> | undefined
    if (propertyNames !== undefined && !allowsEveryString(propertyNames)) {
      const listed = listedNames(propertyNames)
      if (listed === undefined) {
        this.refuse(
          `${path}.propertyNames`,
          'propertyNames is supported when it allows every name ({ type: "string" }, {} or true) or lists them (enum/const): for other rules, list the names under properties, with additionalProperties: false.',
        )
      }
      allowedNames = new Set(listed)
    }
    const required = new Set(requiredList as string[])
    let properties: PropertyRule[] = []
    for (const [name, propertySchema] of Object.entries(propertiesSchema ?? {})) {
      properties.push({
        name,
        keyBytes: encoder.encode(JSON.stringify(name)),
        node: this.compile(propertySchema, `${path}.properties.${name}`),
        required: required.has(name),
      })
    }
    // Without allOf/anyOf/oneOf/$ref beside it (refused or merged away), unevaluatedProperties
    // sees exactly the names properties does not list: additionalProperties, unless that is given.
    const additionalSchema = schema['additionalProperties'] ?? schema['unevaluatedProperties']
    // The schema of values under names properties does not list (undefined: none may appear).
    let additional: SchemaNode | undefined
    if (additionalSchema === false) additional = undefined
    else if (additionalSchema === undefined)
      additional = propertiesSchema === undefined ? { kind: 'any', id: this.id() } : undefined
    else if (additionalSchema === true) additional = { kind: 'any', id: this.id() }
    else additional = this.compile(additionalSchema, `${path}.additionalProperties`)
    // A required name properties does not list is still valid JSON Schema: its value follows
    // additionalProperties (any value when absent).
    const unlisted: SchemaNode | undefined =
      additionalSchema === false ? undefined : (additional ?? { kind: 'any', id: this.id() })
    if (allowedNames !== undefined) {
      for (const property of properties) {
        if (property.required && !allowedNames.has(property.name)) {
          return this.never(
            `${path}.propertyNames`,
            `The required property "${property.name}" is not among the names propertyNames allows: no object can have it.`,
          )
        }
      }
      properties = properties.filter((property) => allowedNames.has(property.name))
      if (additional !== undefined || unlisted !== undefined) {
        const kept = new Set(properties.map((property) => property.name))
        for (const name of allowedNames) {
          if (kept.has(name)) continue
          // Optional ones only where unlisted names may appear at all; required ones always.
          const node = required.has(name) ? unlisted : additional
          if (node === undefined) continue
          properties.push({
            name,
            keyBytes: encoder.encode(JSON.stringify(name)),
            node,
            required: required.has(name),
          })
        }
      }
      additional = undefined
    }
    // A set, not a search of the list per name: a schema may list tens of thousands of names, and
    // searching made this quadratic (80,000 required names, a 700 KB body, held a thread 56 s).
    const listed = new Set(properties.map((property) => property.name))
    for (const [index, name] of (requiredList as string[]).entries()) {
      if (listed.has(name)) continue
      listed.add(name)
      if (allowedNames !== undefined && !allowedNames.has(name)) {
        return this.never(
          `${path}.required.${index}`,
          `required names "${name}", which propertyNames does not allow: no object can have it.`,
        )
      }
      if (unlisted === undefined) {
        return this.never(
          `${path}.required.${index}`,
          `required names "${name}", which properties does not define, while additionalProperties is false: no object can have it. Define it under properties.`,
        )
      }
      properties.push({
        name,
        keyBytes: encoder.encode(JSON.stringify(name)),
        node: unlisted,
        required: true,
      })
    }
    const names = new Set(properties.map((property) => latin1(property.keyBytes.subarray(1, -1))))
    const minProperties = this.#count(schema, 'minProperties', path, 0)
    const maxProperties = this.#count(schema, 'maxProperties', path, Number.POSITIVE_INFINITY)
    if (maxProperties < minProperties) {
      return this.never(
        `${path}.maxProperties`,
        `maxProperties (${maxProperties}) is below minProperties (${minProperties}).`,
      )
    }
    const requiredCount = properties.filter((property) => property.required).length
    if (requiredCount > maxProperties) {
      return this.never(
        `${path}.maxProperties`,
        `The object requires ${requiredCount} properties, more than maxProperties (${maxProperties}).`,
      )
    }
    if (additional === undefined && properties.length < minProperties) {
      return this.never(
        `${path}.minProperties`,
        `minProperties (${minProperties}) exceeds the ${properties.length} properties an object may have here (no others are allowed).`,
      )
    }
    const node: ObjectNode = {
      kind: 'object',
      id: this.id(),
      properties,
      additional,
      names,
      ...(minProperties > 0 ? { minProperties } : {}),
      ...(maxProperties < Number.POSITIVE_INFINITY ? { maxProperties } : {}),
    }
    if (minProperties > 0) {
      minPropertiesReasons.set(node, {
        param: `${path}.minProperties`,
        message: `minProperties (${minProperties}) needs more properties than an object here can have (those whose schema has no value are never written).`,
      })
    }
    return node
  }

  #literal(values: readonly Json[]): LiteralNode {
    return literalNode(values, this.id())
  }

  #compileEnum(
    schema: Record<string, unknown>,
    path: string,
    hasEnum: boolean,
    hasConst: boolean,
  ): SchemaNode {
    const allowedNext = new Set(['type', 'enum', 'const'])
    for (const key of Object.keys(schema)) {
      if (!annotations.has(key) && !allowedNext.has(key)) {
        this.refuse(
          `${path}.${key}`,
          `"${key}" next to enum/const is not supported: list only the values that satisfy it.`,
        )
      }
    }
    let values: unknown[]
    if (hasEnum) {
      const list = schema['enum']
      if (!Array.isArray(list) || list.length === 0)
        this.refuse(`${path}.enum`, 'enum must be a non-empty array of values.')
      values = [...list]
    } else {
      values = [schema['const']]
    }
    // Checked first, with bounded recursion: a value nested thousands deep would overflow the
    // stack in the comparisons below (a 500 on the edge).
    const checked = hasEnum && hasConst ? [...values, schema['const']] : values
    for (const [index, value] of checked.entries()) {
      const problem = jsonValueProblem(value, 0)
      if (problem !== undefined)
        this.refuse(
          index === values.length ? `${path}.const` : hasEnum ? `${path}.enum.${index}` : `${path}.const`,
          problem === 'deep'
            ? `enum/const values may nest at most ${maxValueDepth} levels of arrays and objects.`
            : 'enum/const values must be JSON values (finite numbers).',
        )
    }
    if (hasEnum && hasConst) values = values.filter((value) => deepEqual(value, schema['const']))
    if (schema['type'] !== undefined) {
      const types = Array.isArray(schema['type']) ? schema['type'] : [schema['type']]
      values = values.filter((value) =>
        types.some((type) => typeof type === 'string' && hasType(value, type as TypeName)),
      )
    }
    if (values.length === 0)
      return this.never(
        hasEnum ? `${path}.enum` : `${path}.const`,
        'No enum/const value satisfies the rest of this schema.',
      )
    // Deduplicated by canonical text (object keys sorted, as deepEqual ignores their order): one
    // pass, where comparing each value with every kept one took seconds for a 20,000-value enum.
    const unique: Json[] = []
    const keys = new Set<string>()
    for (const value of values) {
      const key = canonicalJson(value)
      if (keys.has(key)) continue
      keys.add(key)
      unique.push(value as Json)
    }
    return this.#literal(unique)
  }

  /**
   * oneOf requires exactly one alternative to match. The grammar enforces "at least one" (like
   * anyOf), so oneOf is accepted only when no value can match two alternatives: different JSON
   * types, or objects told apart by a required property whose const/enum values differ.
   */
  #checkDisjoint(list: readonly unknown[], path: string): void {
    const overlap = (a: number, b: number): never =>
      this.refuse(
        `${path}.oneOf`,
        `oneOf alternatives ${Math.min(a, b)} and ${Math.max(a, b)} can match the same value, and "exactly one" cannot be enforced token by token: use anyOf, or tell them apart (different types, or a required property with a different const).`,
      )
    const summaries = list.map((option) => keyedSummary(this.#summary(option)))
    // Alternatives compared two by two cost the square of their number, and values compared one by
    // one the square of theirs: a 340 KB oneOf of two enums took 16 s of one thread, a 1 MB one
    // minutes. The common shapes are decided in one pass over the values instead (consts and
    // enums; objects tagged by one property, beside alternatives of other types); the rest two by
    // two, within a bound.
    let steps = 0
    const twoByTwo = (indices: readonly number[]): void => {
      // All consts and enums: no value in two of them.
      if (indices.every((index) => summaries[index]!.valueKeys !== undefined)) {
        const pair = firstShared(indices, (index) => summaries[index]!.valueKeys!)
        if (pair !== undefined) overlap(...pair)
        return
      }
      for (const [position, a] of indices.entries()) {
        for (const b of indices.slice(position + 1)) {
          steps += 1
          if (!disjoint(summaries[a]!, summaries[b]!, (lookups) => (steps += lookups))) overlap(a, b)
          if (steps > maxDisjointSteps) {
            this.refuse(
              `${path}.oneOf`,
              `oneOf has too many alternatives (${summaries.length}) to check that no value matches two of them: use anyOf, which needs no such check, or one const/enum tag property that tells every alternative apart.`,
            )
          }
        }
      }
    }
    const objects: number[] = []
    const others: number[] = []
    for (const [index, summary] of summaries.entries()) (onlyObjects(summary) ? objects : others).push(index)
    // The objects are told apart from the others by type, and among themselves by one tag property
    // (a discriminated union) whose values none of them share.
    const othersApart = others.every((index) => summaries[index]!.types?.has('object') === false)
    const firstObject = summaries[objects[0] ?? -1]
    if (othersApart && firstObject !== undefined) {
      for (const name of firstObject.tagKeys.keys()) {
        if (!objects.every((index) => summaries[index]!.tagKeys.has(name))) continue
        if (firstShared(objects, (index) => summaries[index]!.tagKeys.get(name)!) !== undefined) continue
        twoByTwo(others)
        return
      }
    }
    twoByTwo(summaries.map((_, index) => index))
  }

  /** The schema a $ref leads to (through chains of $refs), or the schema itself; undefined if unresolvable. */
  #dereference(schema: unknown): unknown {
    for (let depth = 0; depth < 16; depth++) {
      if (!isPlainObject(schema) || typeof schema['$ref'] !== 'string') return schema
      const local = this.#localReference(schema['$ref'])
      if (local === undefined) return undefined
      try {
        schema = local === '#' ? this.rootSchema : this.#resolvePointer(local).schema
      } catch {
        return undefined
      }
    }
    return undefined
  }

  /**
   * OpenAPI's discriminator (pydantic writes it beside a discriminated union's oneOf): validators
   * that read it pick the alternative by the tag's value and require it, so the grammar must give
   * every alternative a tag it maps. Accepted when each alternative requires `propertyName` with
   * const/enum values (what the grammar enforces) and `mapping` agrees with them.
   */
  #checkDiscriminator(
    discriminator: unknown,
    list: readonly unknown[],
    combinator: string,
    path: string,
  ): void {
    const at = `${path}.discriminator`
    if (!isPlainObject(discriminator) || typeof discriminator['propertyName'] !== 'string')
      this.refuse(at, 'discriminator must be { propertyName, mapping? }.')
    const name = discriminator['propertyName']
    const tags = list.map((option, index) => {
      const summary = this.#summary(option)
      const values = summary.tags.get(name)
      if (values === undefined) {
        this.refuse(
          `${path}.${combinator}.${index}`,
          `discriminator "${name}": every alternative must require "${name}" with a const (or enum) value, as validators of discriminators check; this one does not.`,
        )
      }
      return values
    })
    const mapping = discriminator['mapping']
    if (mapping === undefined) return
    if (!isPlainObject(mapping))
      this.refuse(`${at}.mapping`, 'discriminator.mapping must map tag values to $refs.')
    for (const [value, target] of Object.entries(mapping)) {
      const index = list.findIndex(
        (option) =>
          isPlainObject(option) &&
          (option['$ref'] === target || this.#dereference(option) === this.#dereference({ $ref: target })),
      )
      if (index < 0 || !tags[index]!.some((tag) => tag === value)) {
        this.refuse(
          `${at}.mapping.${value}`,
          `discriminator.mapping sends "${value}" to ${JSON.stringify(target)}, which is not the ${combinator} alternative whose "${name}" is "${value}".`,
        )
      }
    }
  }

  #summary(schema: unknown, depth = 0): OptionSummary {
    if (!isPlainObject(schema) || depth > 16) return { types: undefined, values: undefined, tags: new Map() }
    const reference = schema['$ref']
    if (typeof reference === 'string') {
      const target = this.#dereference(schema)
      return target === undefined
        ? { types: undefined, values: undefined, tags: new Map() }
        : this.#summary(target, depth + 1)
    }
    // An intersection (allOf, or what a oneOf distributed over allOf became) is disjoint from
    // another wherever one of its members is: its types are theirs in common, its tags all of theirs.
    const members = schema['allOf']
    if (Array.isArray(members)) {
      const parts = [withoutKeyword(schema, 'allOf'), ...members].map((member) => this.#dereference(member))
      let types: Set<TypeName> | undefined
      let values: readonly unknown[] | undefined
      const tags = new Map<string, readonly unknown[]>()
      for (const part of parts) {
        const summary = this.#summary(part, depth + 1)
        if (summary.types !== undefined)
          types =
            types === undefined
              ? summary.types
              : new Set([...types].filter((type) => summary.types!.has(type)))
        values ??= summary.values
        for (const [name, list] of summary.tags) if (!tags.has(name)) tags.set(name, list)
      }
      // A tag may be required by one part and fixed by another's properties.
      const required = new Set<string>()
      for (const part of parts)
        if (isPlainObject(part) && Array.isArray(part['required']))
          for (const name of part['required']) required.add(String(name))
      for (const name of required) {
        if (tags.has(name)) continue
        for (const part of parts) {
          const property =
            isPlainObject(part) && isPlainObject(part['properties']) ? part['properties'][name] : undefined
          if (!isPlainObject(property)) continue
          if (property['const'] !== undefined) tags.set(name, [property['const']])
          else if (Array.isArray(property['enum'])) tags.set(name, property['enum'])
          else continue
          break
        }
      }
      return { types, values, tags }
    }
    const values =
      schema['const'] !== undefined
        ? [schema['const']]
        : Array.isArray(schema['enum'])
          ? schema['enum']
          : undefined
    let types: Set<TypeName> | undefined
    if (typeof schema['type'] === 'string' || Array.isArray(schema['type'])) {
      types = new Set((Array.isArray(schema['type']) ? schema['type'] : [schema['type']]) as TypeName[])
      if (types.has('number')) types.add('integer')
      if (schema['nullable'] === true) types.add('null')
    }
    const tags = new Map<string, unknown[]>()
    const properties = schema['properties']
    const required = Array.isArray(schema['required']) ? schema['required'] : []
    if (isPlainObject(properties)) {
      for (const name of required) {
        const property = properties[name as string]
        if (!isPlainObject(property)) continue
        if (property['const'] !== undefined) tags.set(name as string, [property['const']])
        else if (Array.isArray(property['enum'])) tags.set(name as string, property['enum'])
      }
    }
    return { types, values, tags }
  }
}

interface OptionSummary {
  readonly types: Set<TypeName> | undefined
  readonly values: readonly unknown[] | undefined
  readonly tags: ReadonlyMap<string, readonly unknown[]>
}

/** An alternative's summary with its values as canonical JSON (equal values, equal keys). */
interface KeyedSummary {
  /** Its types, from its values when it lists them. */
  readonly types: Set<TypeName> | undefined
  readonly valueKeys: ReadonlySet<string> | undefined
  readonly tagKeys: ReadonlyMap<string, ReadonlySet<string>>
}

/** Pairs and value lookups a oneOf's check two by two may take (a few hundred milliseconds). */
const maxDisjointSteps = 2_000_000

function keyedSummary(summary: OptionSummary): KeyedSummary {
  let types = summary.types
  if (summary.values !== undefined) {
    types = new Set<TypeName>()
    for (const value of summary.values) {
      const type = jsonTypeOf(value)
      if (type !== undefined) types.add(type)
      if (type === 'integer') types.add('number')
    }
  }
  const keys = (values: readonly unknown[]): ReadonlySet<string> => new Set(values.map(canonicalJson))
  return {
    types,
    valueKeys: summary.values === undefined ? undefined : keys(summary.values),
    tagKeys: new Map([...summary.tags].map(([name, values]) => [name, keys(values)])),
  }
}

/** The first two of `indices` whose keys share one, or undefined when none do. */
function firstShared(
  indices: readonly number[],
  keysOf: (index: number) => ReadonlySet<string>,
): [number, number] | undefined {
  const owner = new Map<string, number>()
  for (const index of indices) {
    for (const key of keysOf(index)) {
      const first = owner.get(key)
      if (first !== undefined && first !== index) return [first, index]
      owner.set(key, index)
    }
  }
  return undefined
}

function onlyObjects(summary: KeyedSummary): boolean {
  return summary.valueKeys === undefined && summary.types?.size === 1 && summary.types.has('object')
}

/** Whether two sets share a member; `count` is told how many lookups that took. */
function meet(a: ReadonlySet<string>, b: ReadonlySet<string>, count: (lookups: number) => void): boolean {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a]
  count(small.size)
  for (const key of small) if (large.has(key)) return true
  return false
}

function disjoint(a: KeyedSummary, b: KeyedSummary, count: (lookups: number) => void): boolean {
  if (a.valueKeys !== undefined && b.valueKeys !== undefined) return !meet(a.valueKeys, b.valueKeys, count)
  if (a.types !== undefined && b.types !== undefined) {
    const shared = [...a.types].filter((type) => b.types!.has(type))
    if (shared.length === 0) return true
    if (shared.every((type) => type === 'object')) {
      for (const [name, keysA] of a.tagKeys) {
        const keysB = b.tagKeys.get(name)
        if (keysB !== undefined && !meet(keysA, keysB, count)) return true
      }
    }
  }
  return false
}

/**
 * Every `$anchor` in a schema, as the JSON pointer ("#/$defs/address") of the schema holding it.
 * Iterative (schemas may nest deep); the first of two equal anchors wins.
 */
interface Anchor {
  /** Where the schema is, as a $ref's JSON pointer ("#/$defs/a"). */
  readonly pointer: string
  /** Its `$anchor` keyword's param (`schema.$defs.a.$anchor`). */
  readonly param: string
  /** Another `$anchor` with the same name, when there is one (its param). */
  twice?: string
}

function findAnchors(root: unknown, param: string): Map<string, Anchor> {
  const anchors = new Map<string, Anchor>()
  const pending: [unknown, string, string][] = [[root, '#', param]]
  let visited = 0
  while (pending.length > 0 && visited++ < 100_000) {
    const [schema, pointer, path] = pending.pop() as [unknown, string, string]
    if (Array.isArray(schema)) {
      for (const [index, item] of schema.entries())
        pending.push([item, `${pointer}/${index}`, `${path}.${index}`])
      continue
    }
    if (!isPlainObject(schema)) continue
    const anchor = schema['$anchor']
    if (typeof anchor === 'string') {
      const known = anchors.get(anchor)
      if (known === undefined) anchors.set(anchor, { pointer, param: `${path}.$anchor` })
      else known.twice ??= `${path}.$anchor`
    }
    for (const [key, value] of Object.entries(schema)) {
      // Values of these are data, not schemas.
      if (key === 'enum' || key === 'const' || key === 'default' || key === 'examples') continue
      if (typeof value === 'object' && value !== null)
        // As a $ref writes it: a URI fragment, so "%" escaped too (a name with one was decoded).
        pending.push([
          value,
          `${pointer}/${key.replace(/~/g, '~0').replace(/\//g, '~1').replace(/%/g, '%25')}`,
          `${path}.${key}`,
        ])
    }
  }
  return anchors
}

/** How deep an enum/const value may nest arrays and objects. */
const maxValueDepth = 64

/** Why `value` cannot be an enum/const value ('deep' past maxValueDepth), or undefined if it can. */
function jsonValueProblem(value: unknown, depth: number): 'invalid' | 'deep' | undefined {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return undefined
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : 'invalid'
  const children = Array.isArray(value) ? value : isPlainObject(value) ? Object.values(value) : undefined
  if (children === undefined) return 'invalid'
  if (depth >= maxValueDepth) return 'deep'
  for (const child of children) {
    const problem = jsonValueProblem(child, depth + 1)
    if (problem !== undefined) return problem
  }
  return undefined
}

/** JSON text with object keys sorted: equal for deepEqual values, different otherwise. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (isPlainObject(value)) {
    const keys = Object.keys(value).sort()
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/** Whether a propertyNames schema allows every string (so it constrains no JSON key). */
function allowsEveryString(schema: unknown): boolean {
  if (schema === true) return true
  if (!isPlainObject(schema)) return false
  for (const [key, value] of Object.entries(schema)) {
    if (annotations.has(key)) continue
    if (key !== 'type') return false
    if (value !== 'string' && !(Array.isArray(value) && value.includes('string'))) return false
  }
  return true
}

/**
 * The names a propertyNames schema lists (`{ enum: [...] }`, `{ const: ... }`, with type string or
 * annotations beside them), or undefined when it is another kind of rule.
 */
function listedNames(schema: unknown): string[] | undefined {
  if (!isPlainObject(schema)) return undefined
  for (const [key, value] of Object.entries(schema)) {
    if (annotations.has(key) || key === 'enum' || key === 'const') continue
    if (key !== 'type' || !(value === 'string' || (Array.isArray(value) && value.includes('string'))))
      return undefined
  }
  const hasEnum = schema['enum'] !== undefined
  const hasConst = schema['const'] !== undefined
  if (!hasEnum && !hasConst) return undefined
  if (hasEnum && !Array.isArray(schema['enum'])) return undefined
  // Names are strings: other values match no key.
  let names = hasEnum ? (schema['enum'] as unknown[]) : [schema['const']]
  if (hasEnum && hasConst) names = names.filter((name) => name === schema['const'])
  return [...new Set(names.filter((name): name is string => typeof name === 'string'))]
}

/** Bytes as a string of one char each (the form the matcher keeps key names in). */
/** A number as the schema's author wrote it, near enough: JSON.stringify writes Infinity as null. */
function numberText(value: number): string {
  return Number.isFinite(value)
    ? String(value)
    : `a number beyond the double range (such as ${value < 0 ? '-' : ''}1e400), which JSON reads as ${value}`
}

/** A bound JSON.parse made ±Infinity (1e400): out of range, where "got null" (its JSON) misled. */
function outOfRange(key: string, value: number): string {
  return `${key} is out of range: got ${numberText(value)}. Use a finite number (at most about 1.8e308), or leave ${key} out.`
}

function latin1(bytes: Uint8Array): string {
  let text = ''
  for (const byte of bytes) text += String.fromCharCode(byte)
  return text
}

/** The integers allowed by the bounds as [low, high], or undefined when none is. */
export function integerRange(
  minimum: number,
  exclusiveMinimum: boolean,
  maximum: number,
  exclusiveMaximum: boolean,
): [number, number] | undefined {
  let low = Math.ceil(minimum)
  if (exclusiveMinimum && low === minimum) low++
  let high = Math.floor(maximum)
  if (exclusiveMaximum && high === maximum) high--
  return low <= high ? [low, high] : undefined
}

/**
 * The smallest multiple of `step` at or above `value`, both integers. Past 2^53 the double sum
 * `remainder + step` rounds (a step of 1e20 made every value look like a multiple, so the grammar
 * wrote digits no multiple completes and died mid-answer): such operands go through BigInt.
 */
export function firstMultiple(value: number, step: number): number {
  if (!Number.isSafeInteger(step) || !Number.isSafeInteger(value)) {
    const exactValue = BigInt(value)
    const exactStep = BigInt(step)
    const exactRemainder = ((exactValue % exactStep) + exactStep) % exactStep
    return Number(exactRemainder === 0n ? exactValue : exactValue + (exactStep - exactRemainder))
  }
  const remainder = ((value % step) + step) % step
  return remainder === 0 ? value : value + (step - remainder)
}

/** A node that accepts exactly these JSON values. */
export function literalNode(values: readonly unknown[], id: number): LiteralNode {
  return { kind: 'literal', id, values: values.map((value) => encoder.encode(JSON.stringify(value))) }
}

export function stringNode(
  id: number,
  minLength: number,
  maxLength: number,
  automaton: Automaton | undefined,
  isKey: boolean,
): StringNode {
  const signature = `${isKey ? 'k' : 's'}|${automaton?.source ?? ''}`
  return { kind: 'string', id, minLength, maxLength, automaton, isKey, signature }
}

/**
 * Compiles a JSON Schema (draft 2020-12 keywords; `true` = any JSON) into the grammar. `param`
 * is the request field the schema came in (errors point inside it).
 */
export function compileJsonSchema(
  schema: unknown,
  param = 'schema',
  budget: CompileBudget = compileBudget(),
): CompiledSchema {
  const compiler = new SchemaCompiler(schema, param, budget)
  const root = compiler.compileRoot()
  checkProductive(root, param, compiler.empty)
  checkDirectNesting(root, param)
  return { root, nodeCount: compiler.nodeCount }
}

/** Free JSON (`json_object`): any object at the top, any JSON inside. */
export function compileJsonObject(): CompiledSchema {
  const any: AnyNode = { kind: 'any', id: 1 }
  return { root: { kind: 'object', id: 0, properties: [], additional: any, names: new Set() }, nodeCount: 2 }
}

/** The nodes a node's documents are made of (every edge of the grammar). */
function childrenOf(node: SchemaNode): readonly SchemaNode[] {
  switch (node.kind) {
    case 'union':
      return node.options
    case 'object':
      return [
        ...node.properties.map((property) => property.node),
        ...(node.additional === undefined ? [] : [node.additional]),
      ]
    case 'array':
      return [...node.prefix, ...(node.items === undefined ? [] : [node.items])]
    case 'reference':
      return node.target === undefined ? [] : [node.target]
    default:
      return []
  }
}

/**
 * Every node reachable from root, each once, parents before their children's subtrees. Iterative:
 * a schema may nest thousands of levels through $ref, deeper than the call stack.
 */
function reachableNodes(root: SchemaNode): SchemaNode[] {
  const nodes: SchemaNode[] = []
  const seen = new Set<SchemaNode>()
  const pending: SchemaNode[] = [root]
  while (pending.length > 0) {
    const node = pending.pop() as SchemaNode
    if (seen.has(node)) continue
    seen.add(node)
    nodes.push(node)
    pending.push(...childrenOf(node))
  }
  return nodes
}

/** How many anyOf/oneOf/$ref steps may lead to a value before its first character. */
export const maxDirectNesting = 64

/**
 * anyOf/oneOf alternatives and $ref targets are entered before a value's first byte, by
 * recursion in the matcher. A chain of them that loops (`anyOf: [{ $ref: '#' }, ...]`, which a
 * validator cannot evaluate either) or runs thousands deep would overflow the stack at the first
 * token: refused here instead, with the reference that does it.
 */
function checkDirectNesting(root: SchemaNode, param: string): void {
  const direct = (node: SchemaNode): readonly SchemaNode[] =>
    node.kind === 'union'
      ? node.options
      : node.kind === 'reference' && node.target !== undefined
        ? [node.target]
        : []
  const depth = new Map<SchemaNode, number>()
  const open = new Set<SchemaNode>()
  const nodes = reachableNodes(root)
  const describe = (node: SchemaNode): string =>
    node.kind === 'reference' ? `$ref "${node.path}"` : 'anyOf/oneOf'
  for (const start of nodes) {
    if (depth.has(start)) continue
    // Depth-first over direct edges with an explicit stack: [node, index of the next edge].
    const stack: [SchemaNode, number][] = [[start, 0]]
    open.add(start)
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as [SchemaNode, number]
      const [node, index] = top
      const edges = direct(node)
      if (index < edges.length) {
        top[1]++
        const next = edges[index] as SchemaNode
        if (open.has(next)) {
          throw new InvalidArgumentError(
            param,
            `The schema's ${describe(next)} leads back to itself before any character of the value (an anyOf/oneOf alternative or $ref that is its own first step): no validator can evaluate it. Put the recursion inside a property or an item.`,
          )
        }
        if (!depth.has(next)) {
          open.add(next)
          stack.push([next, 0])
        }
        continue
      }
      let deepest = 0
      for (const edge of edges) deepest = Math.max(deepest, (depth.get(edge) ?? 0) + 1)
      if (deepest > maxDirectNesting) {
        throw new InvalidArgumentError(
          param,
          `The schema chains more than ${maxDirectNesting} anyOf/oneOf/$ref steps before a value's first character (at ${describe(node)}): point each $ref at its final schema.`,
        )
      }
      depth.set(node, deepest)
      open.delete(node)
      stack.pop()
    }
  }
}

/** Why an object with minProperties may have too few writable properties (see explainEmpty). */
const minPropertiesReasons = new WeakMap<SchemaNode, EmptyReason>()

/** Why a node has no value: the keyword that makes it so and a message. */
export interface EmptyReason {
  readonly param: string
  readonly message: string
}

/**
 * Refuses a schema without a finite document: a value every document needs has none (a string
 * whose pattern and minLength exclude each other, a required property whose schema is `false`,
 * all anyOf alternatives so), or only infinite ones (`{ $ref: '#' }` as a required property of
 * itself). Then prunes every way into a node without a value, so the matcher never enters a dead
 * end: such an anyOf alternative, optional property, additionalProperties or item is never offered.
 */
function checkProductive(root: SchemaNode, param: string, empty: ReadonlyMap<SchemaNode, EmptyReason>): void {
  const productive = new Set<SchemaNode>()
  const all = reachableNodes(root)
  // Children before parents: most nodes settle in the first pass.
  all.reverse()
  let changed = true
  while (changed) {
    changed = false
    for (const node of all) {
      if (productive.has(node)) continue
      let done = false
      switch (node.kind) {
        case 'union':
          done = node.options.some((option) => productive.has(option))
          break
        case 'object':
          done =
            node.properties.every((property) => !property.required || productive.has(property.node)) &&
            // minProperties needs that many writable names (any number when unlisted ones may come).
            (node.minProperties === undefined ||
              (node.additional !== undefined && productive.has(node.additional)) ||
              node.properties.filter((property) => productive.has(property.node)).length >=
                node.minProperties)
          break
        case 'array': {
          const needed = Math.min(node.minItems, node.prefix.length)
          done =
            node.prefix.slice(0, needed).every((item) => productive.has(item)) &&
            (node.minItems <= node.prefix.length || (node.items !== undefined && productive.has(node.items)))
          break
        }
        case 'reference':
          done = node.target !== undefined && productive.has(node.target)
          break
        default:
          done = true
      }
      if (done) {
        productive.add(node)
        changed = true
      }
    }
  }
  if (!productive.has(root)) {
    const found = explainEmpty(root, productive, empty)
    if (found === undefined) {
      throw new InvalidArgumentError(
        param,
        'The schema has no finite document (a required property or item refers back to itself without a way out).',
      )
    }
    const { reason, node, alternatives } = found
    throw new InvalidArgumentError(
      reason.param,
      node === root
        ? reason.message
        : `${reason.message} Every document needs this value${alternatives ? ' (the other anyOf/oneOf alternatives have none either)' : ''}, so none can be generated.`,
    )
  }
  // Drop the ways into nodes that can never finish, so the matcher never enters a dead end.
  for (const node of all) {
    if (node.kind === 'union')
      (node as { options: readonly SchemaNode[] }).options = node.options.filter((option) =>
        productive.has(option),
      )
    if (node.kind === 'object') {
      // The names stay in `names`: an unlisted key may not take them either.
      const writable = node as { properties: readonly PropertyRule[]; additional: SchemaNode | undefined }
      writable.properties = node.properties.filter(
        (property) => property.required || productive.has(property.node),
      )
      if (node.additional !== undefined && !productive.has(node.additional)) writable.additional = undefined
    }
    if (node.kind === 'array') {
      // An item without a value ends the array before it: nothing may come at or after it.
      const writable = node as { prefix: readonly SchemaNode[]; items: SchemaNode | undefined }
      const stop = node.prefix.findIndex((item) => !productive.has(item))
      if (stop >= 0) {
        writable.prefix = node.prefix.slice(0, stop)
        writable.items = undefined
      } else if (node.items !== undefined && !productive.has(node.items)) {
        writable.items = undefined
      }
    }
  }
}

/**
 * The first node without a value that every document of `root` needs, depth first along the
 * required parts (properties, items up to minItems, every alternative), and whether the way there
 * passed an alternative (then the others are empty too). Undefined when the emptiness is
 * recursion with no way out instead. Iterative: the way may run thousands of $refs deep.
 */
function explainEmpty(
  root: SchemaNode,
  productive: ReadonlySet<SchemaNode>,
  empty: ReadonlyMap<SchemaNode, EmptyReason>,
): { reason: EmptyReason; node: SchemaNode; alternatives: boolean } | undefined {
  const seen = new Set<SchemaNode>()
  const pending: [SchemaNode, boolean][] = [[root, false]]
  while (pending.length > 0) {
    const [node, alternatives] = pending.pop() as [SchemaNode, boolean]
    if (seen.has(node) || productive.has(node)) continue
    seen.add(node)
    const reason = empty.get(node)
    if (reason !== undefined) return { reason, node, alternatives }
    let next: SchemaNode[] = []
    switch (node.kind) {
      case 'union':
        next = [...node.options]
        break
      case 'object': {
        next = node.properties.filter((property) => property.required).map((property) => property.node)
        const short = minPropertiesReasons.get(node)
        if (short !== undefined && next.every((child) => productive.has(child)))
          return { reason: short, node, alternatives }
        break
      }
      case 'array':
        next = node.prefix.slice(0, node.minItems)
        if (node.minItems > node.prefix.length && node.items !== undefined) next.push(node.items)
        break
      case 'reference':
        if (node.target !== undefined) next = [node.target]
        break
    }
    const through = alternatives || (node.kind === 'union' && node.options.length > 1)
    for (let index = next.length - 1; index >= 0; index--) pending.push([next[index]!, through])
  }
  return undefined
}
