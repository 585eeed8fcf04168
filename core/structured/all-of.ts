// allOf as one schema: the grammar follows one schema per value, so an intersection is merged
// into the schema it means before it is compiled, keyword by keyword, exactly (every document of
// the merge satisfies each member, and each document satisfying every member satisfies the merge,
// up to the grammar's usual subset: an object with properties writes only listed names).
//
// Generators write allOf for intersections (zod 3's z.intersection / .and(), through
// zod-to-json-schema and the AI SDK), for "extends" ({ allOf: [{ $ref: Base }, { properties }] }),
// and 2020-12 reads keywords beside $ref/anyOf/oneOf the same way. What cannot be merged exactly is
// refused with the keyword named (compile() then checks the merged keywords as usual).

import { deepEqual, isPlainObject } from './json-value.ts'

/** Why a merged place has no value (a member forbids what another needs): see SchemaCompiler.never. */
export const noValue: unique symbol = Symbol('noValue')
/** Further patterns/formats a merged string must match (one `pattern`/`format` key holds one). */
export const extraStringChecks: unique symbol = Symbol('extraStringChecks')

export interface NoValue {
  readonly [noValue]: { readonly param: string; readonly message: string }
}
export interface StringCheck {
  readonly keyword: 'pattern' | 'format'
  readonly value: unknown
  readonly param: string
}

export interface MergeContext {
  /** The schema a `$ref` leads to (root-relative), or undefined when it points nowhere known. */
  dereference(reference: string): unknown
  refuse(param: string, message: string): never
  /** Keywords that only annotate (title, description, $defs, ...): left out of the merge. */
  readonly annotations: ReadonlySet<string>
  /** The JSON types a keyword applies to ("minLength": string), none for one that applies to all. */
  owners(key: string, value: unknown): readonly string[]
  /** Refuses a count or bound keyword's value that compile() would refuse (named at param.key). */
  checkValue(schema: Record<string, unknown>, key: string, param: string): void
}

/**
 * Where a schema that a distributed anyOf/oneOf copied into each alternative was written (its
 * real path): its errors name that, not the `allOf` the distribution made up.
 */
const origins = new WeakMap<object, string>()
function remember(schema: unknown, param: string): void {
  if (isPlainObject(schema) && !origins.has(schema)) origins.set(schema, param)
}
/** The path a schema the merge copied elsewhere was written at, when known. */
export function originOf(schema: object): string | undefined {
  return origins.get(schema)
}

/**
 * The member that wrote each keyword of a merged schema (the first that has it), so that an error
 * compile() finds in a keyword names where the user wrote it, not the place the merge put it.
 */
export function keywordOrigins(intersection: Intersection): Map<string, string> {
  const found = new Map<string, string>()
  for (const member of intersection.members)
    for (const key of Object.keys(member.schema))
      if (!found.has(key)) found.set(key, `${member.param}.${key}`)
  return found
}

/** A member of the intersection, with where it came from (errors point there). */
interface Member {
  readonly schema: Record<string, unknown>
  readonly param: string
}

type Schema = Record<string | symbol, unknown>

export function never(param: string, message: string): NoValue {
  return { [noValue]: { param, message } }
}

/** Keywords merged here; any other is copied from the one member that has it (equal values: once). */
const merged = new Set([
  'type',
  'nullable',
  'enum',
  'const',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minItems',
  'maxItems',
  'items',
  'prefixItems',
  'additionalItems',
  'properties',
  'required',
  'additionalProperties',
  'unevaluatedProperties',
  'allOf',
  '$ref',
])

/**
 * Keywords that read their siblings (then/else read if; contains' bounds read contains): copied
 * only as a group, from one member.
 */
const groups: readonly (readonly string[])[] = [
  ['if', 'then', 'else'],
  ['contains', 'minContains', 'maxContains'],
]

/** "Rest" schemas (a schema without its anyOf), one object per source so that merges stay keyed alike. */
const withoutKey = new WeakMap<object, Map<string, Record<string, unknown>>>()
/** The schema without the keyword(s) `keys` (and a discriminator that goes with an anyOf/oneOf). */
export function without(
  schema: Record<string, unknown>,
  keys: string | readonly string[],
): Record<string, unknown> {
  const list = typeof keys === 'string' ? [keys] : keys
  const cacheKey = list.join('\u0000')
  let byKey = withoutKey.get(schema)
  if (byKey === undefined) {
    byKey = new Map()
    withoutKey.set(schema, byKey)
  }
  let rest = byKey.get(cacheKey)
  if (rest === undefined) {
    rest = { ...schema }
    for (const key of list) {
      delete rest[key]
      if (key === 'anyOf' || key === 'oneOf') delete rest['discriminator']
    }
    byKey.set(cacheKey, rest)
  }
  return rest
}

/**
 * The members of an intersection, flattened: nested allOf expanded, $refs followed (a $ref with
 * other keywords beside it is the target and those keywords), `true` left out. Returns `false`
 * (as a NoValue) when a member is `false`.
 */
export interface Intersection {
  readonly members: Member[]
  /**
   * unevaluatedProperties beside the intersection's own allOf/$ref/anyOf: the schema of names no
   * member evaluates (then no member may have additionalProperties), with where it was written.
   */
  readonly unevaluated: { readonly schema: unknown; readonly param: string } | undefined
}

export function flattenAllOf(
  list: readonly { schema: unknown; param: string }[],
  context: MergeContext,
): Intersection | NoValue {
  const members: Member[] = []
  let unevaluated: Intersection['unevaluated']
  const outer = new Set(list.map((item) => item.schema))
  const pending = [...list].reverse()
  let steps = 0
  while (pending.length > 0) {
    if (++steps > 1000)
      context.refuse(
        list[0]?.param ?? '',
        'allOf expands to more than 1,000 schemas (a $ref cycle through allOf?).',
      )
    const { schema, param } = pending.pop() as { schema: unknown; param: string }
    if (schema === true) continue
    if (schema === false) return never(param, 'This allOf member is `false`: no value satisfies it.')
    if (!isPlainObject(schema))
      context.refuse(param, 'An allOf member must be a schema (an object or a boolean).')
    if (noValue in schema) return schema as unknown as NoValue
    // The intersection's own anyOf/oneOf too: unevaluatedProperties beside it sees the names of
    // the alternative written (mergeMembers distributes them under it).
    const composed =
      schema['$ref'] !== undefined ||
      schema['allOf'] !== undefined ||
      (outer.has(schema) && (schema['anyOf'] !== undefined || schema['oneOf'] !== undefined))
    if (composed && schema['unevaluatedProperties'] !== undefined) {
      // It sees the names every part evaluates: only the intersection's own is read that way.
      if (!outer.has(schema) || unevaluated !== undefined) {
        context.refuse(
          `${param}.unevaluatedProperties`,
          'unevaluatedProperties beside a nested allOf/$ref is not supported: put it on the outermost schema, or use additionalProperties.',
        )
      }
      unevaluated = { schema: schema['unevaluatedProperties'], param: `${param}.unevaluatedProperties` }
      pending.push({ schema: without(schema, 'unevaluatedProperties'), param })
      continue
    }
    const reference = schema['$ref']
    if (reference !== undefined) {
      if (typeof reference !== 'string')
        context.refuse(`${param}.$ref`, '$ref must be a string like "#/$defs/Name".')
      const target = context.dereference(reference)
      const rest = without(schema, '$ref')
      const next: { schema: unknown; param: string }[] = [{ schema: target, param: `${param}.$ref` }]
      if (Object.keys(rest).some((key) => !context.annotations.has(key))) next.push({ schema: rest, param })
      pending.push(...next.reverse())
      continue
    }
    const nested = schema['allOf']
    if (nested !== undefined) {
      if (!Array.isArray(nested) || nested.length === 0)
        context.refuse(`${param}.allOf`, 'allOf must be a non-empty array of schemas.')
      const rest = without(schema, 'allOf')
      const next = nested.map((item, index) => ({
        schema: item as unknown,
        param: (isPlainObject(item) ? origins.get(item) : undefined) ?? `${param}.allOf.${index}`,
      }))
      if (Object.keys(rest).some((key) => !context.annotations.has(key))) next.push({ schema: rest, param })
      pending.push(...next.reverse())
      continue
    }
    members.push({ schema, param })
  }
  return { members, unevaluated }
}

/** How many alternatives distributing anyOf/oneOf over an intersection may produce. */
const maxAlternatives = 256

/**
 * The one schema an intersection of flattened members means. anyOf/oneOf in a member are
 * distributed: (A | B) & R = (A & R) | (B & R), each compiled (and merged) in turn.
 */
export function mergeMembers(
  { members, unevaluated }: Intersection,
  path: string,
  context: MergeContext,
): unknown {
  if (unevaluated === undefined) {
    if (members.length === 0) return true
    if (members.length === 1) return members[0]!.schema
  }
  const choice = members.find(
    (member) => member.schema['anyOf'] !== undefined || member.schema['oneOf'] !== undefined,
  )
  if (choice !== undefined) {
    const key = choice.schema['anyOf'] !== undefined ? 'anyOf' : 'oneOf'
    const alternatives = choice.schema[key]
    if (!Array.isArray(alternatives) || alternatives.length === 0)
      context.refuse(`${choice.param}.${key}`, `${key} must be a non-empty array of schemas.`)
    let count = 1
    for (const member of members) {
      for (const other of ['anyOf', 'oneOf'] as const) {
        const list = member.schema[other]
        if (Array.isArray(list)) count *= list.length
      }
    }
    if (count > maxAlternatives) {
      context.refuse(
        `${choice.param}.${key}`,
        `allOf of several anyOf/oneOf lists makes ${count} combinations, more than ${maxAlternatives}: write the alternatives out.`,
      )
    }
    const restMembers = members.filter((member) => member !== choice)
    const remainder = without(choice.schema, key)
    if (Object.keys(remainder).some((name) => !context.annotations.has(name)))
      restMembers.push({ schema: remainder, param: choice.param })
    for (const member of restMembers) remember(member.schema, member.param)
    alternatives.forEach((alternative, index) => {
      remember(alternative, `${choice.param}.${key}.${index}`)
    })
    const rest = restMembers.map((member) => member.schema)
    // Each alternative with the rest; unevaluatedProperties then sees that alternative's names
    // (a document of one alternative is valid; one matching several would see more).
    const extra = unevaluated === undefined ? {} : { unevaluatedProperties: unevaluated.schema }
    return { [key]: alternatives.map((alternative) => ({ allOf: [alternative, ...rest], ...extra })) }
  }

  const result: Schema = {}
  const normalized = members.map((member) => normalize(member))
  // A keyword of a type its own schema's `type` excludes is a mistake compile() refuses; refused
  // here, where the member's real path is known (the merge below drops such keywords otherwise).
  for (const member of normalized) {
    const type = member.schema['type']
    if (type === undefined) continue
    const own = (Array.isArray(type) ? type : [type]).map(String)
    for (const [key, value] of Object.entries(member.schema)) {
      const owners = context.owners(key, value)
      if (owners.length > 0 && !admits(new Set(own), owners)) {
        context.refuse(
          `${member.param}.${key}`,
          `"${key}" applies to ${owners.join('/')} values, but this schema's type is ${own.join(' | ')}.`,
        )
      }
    }
  }

  // type: the types every member allows (integer is a number).
  // A conflict names the member that emptied it, at its real path (`${path}.allOf` is made up
  // where an anyOf/oneOf alternative meets the keywords beside it).
  let types: Set<string> | undefined
  let emptied: string | undefined
  for (const member of normalized) {
    const type = member.schema['type']
    if (type === undefined) continue
    const own = new Set((Array.isArray(type) ? type : [type]).map(String))
    if (own.has('number')) own.add('integer')
    types = types === undefined ? own : new Set([...types].filter((name) => own.has(name)))
    if (types.size === 0 && emptied === undefined) emptied = `${member.param}.type`
  }
  if (types !== undefined) {
    if (types.size === 0)
      return never(
        emptied ?? `${path}.allOf`,
        'This type has none in common with the schemas it is combined with (allOf members, or the keywords beside an anyOf/oneOf/$ref and its alternative).',
      )
    const list = [...types]
    result['type'] = list.includes('number') ? list.filter((name) => name !== 'integer') : list
  }

  // enum/const: the values every member lists.
  let values: unknown[] | undefined
  for (const member of normalized) {
    const own =
      member.schema['const'] !== undefined
        ? [member.schema['const']]
        : Array.isArray(member.schema['enum'])
          ? (member.schema['enum'] as unknown[])
          : undefined
    if (own === undefined) continue
    values =
      values === undefined ? [...own] : values.filter((value) => own.some((other) => deepEqual(value, other)))
    if (values.length === 0 && emptied === undefined)
      emptied = `${member.param}.${member.schema['const'] !== undefined ? 'const' : 'enum'}`
  }
  if (values !== undefined) {
    if (values.length === 0)
      return never(
        emptied ?? `${path}.allOf`,
        'No value of this enum/const is allowed by the schemas it is combined with (allOf members, or the keywords beside an anyOf/oneOf/$ref and its alternative).',
      )
    result['enum'] = values
  }

  // Bounds: the tightest of each.
  const tightest = (key: string, pick: (a: number, b: number) => number): void => {
    for (const member of normalized) {
      const value = member.schema[key]
      if (value === undefined) continue
      if (typeof value !== 'number') context.refuse(`${member.param}.${key}`, `${key} must be a number.`)
      result[key] = result[key] === undefined ? value : pick(result[key] as number, value)
    }
  }
  tightest('minLength', Math.max)
  tightest('maxLength', Math.min)
  tightest('minimum', Math.max)
  tightest('exclusiveMinimum', Math.max)
  tightest('maximum', Math.min)
  tightest('exclusiveMaximum', Math.min)
  tightest('minItems', Math.max)
  tightest('maxItems', Math.min)

  // pattern/format: every one applies; the first of each in its key, the others beside it.
  const extra: StringCheck[] = []
  for (const keyword of ['pattern', 'format'] as const) {
    for (const member of normalized) {
      const value = member.schema[keyword]
      if (value === undefined) continue
      if (result[keyword] === undefined) result[keyword] = value
      else if (!deepEqual(result[keyword], value))
        extra.push({ keyword, value, param: `${member.param}.${keyword}` })
    }
  }
  if (extra.length > 0) result[extraStringChecks] = extra

  mergeArrays(normalized, result)
  mergeObjects(normalized, result)
  if (unevaluated !== undefined && result['additionalProperties'] === undefined) {
    // No member evaluates the names none lists (an additionalProperties would): those follow it.
    result['additionalProperties'] = unevaluated.schema
    if (result['type'] === undefined)
      result['type'] = ['object', 'array', 'string', 'number', 'boolean', 'null']
  }

  // Everything else applies to the whole value: copied from the member that has it.
  const grouped = new Set(groups.flat())
  for (const member of normalized) {
    for (const [key, value] of Object.entries(member.schema)) {
      if (merged.has(key) || grouped.has(key) || context.annotations.has(key)) continue
      if (result[key] === undefined) result[key] = value
      else if (!deepEqual(result[key], value)) {
        context.refuse(
          `${member.param}.${key}`,
          `Two allOf members give "${key}" different values, which structured output cannot combine: merge them into one.`,
        )
      }
    }
  }
  for (const group of groups) {
    const owners = normalized.filter((member) => group.some((key) => member.schema[key] !== undefined))
    if (owners.length > 1) {
      context.refuse(
        `${owners[1]!.param}.${group.find((key) => owners[1]!.schema[key] !== undefined)}`,
        `Two allOf members use ${group.join('/')}, which structured output cannot combine: merge them into one.`,
      )
    }
    for (const key of group) if (owners[0]?.schema[key] !== undefined) result[key] = owners[0].schema[key]
  }
  return dropVacuous(result, normalized, path, context)
}

/** Whether a value of one of `types` is one a keyword of `owners` applies to (integers are numbers). */
function admits(types: ReadonlySet<string>, owners: readonly string[]): boolean {
  return owners.some(
    (owner) =>
      types.has(owner) ||
      (owner === 'integer' && types.has('number')) ||
      (owner === 'number' && types.has('integer')),
  )
}

function jsonType(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number'
  return typeof value
}

/** Keywords beside an enum/const that are checked against its values here (the rest are refused). */
const valueChecks: Record<string, (value: unknown, bound: number) => boolean> = {
  minLength: (value, bound) => [...(value as string)].length >= bound,
  maxLength: (value, bound) => [...(value as string)].length <= bound,
  minimum: (value, bound) => (value as number) >= bound,
  maximum: (value, bound) => (value as number) <= bound,
  exclusiveMinimum: (value, bound) => (value as number) > bound,
  exclusiveMaximum: (value, bound) => (value as number) < bound,
  minItems: (value, bound) => (value as unknown[]).length >= bound,
  maxItems: (value, bound) => (value as unknown[]).length <= bound,
  minProperties: (value, bound) => Object.keys(value as object).length >= bound,
  maxProperties: (value, bound) => Object.keys(value as object).length <= bound,
}

/**
 * A keyword applies only to values of its type (properties to objects, minLength to strings):
 * where the merge allows no value of that type (a string alternative of an anyOf beside
 * `properties`), the keyword has no effect, so it is dropped instead of refused. Beside an
 * enum/const, the values of its type must satisfy it: bounds filter the values, and what cannot
 * be checked here is refused at the keyword's own path.
 */
function dropVacuous(
  result: Schema,
  members: readonly Member[],
  path: string,
  context: MergeContext,
): Schema | NoValue {
  const type = result['type']
  const values = Array.isArray(result['enum']) ? (result['enum'] as unknown[]) : undefined
  let types: Set<string> | undefined
  if (type !== undefined) types = new Set((Array.isArray(type) ? type : [type]).map(String))
  if (values !== undefined) {
    const own = new Set(values.map(jsonType))
    types = types === undefined ? own : new Set([...own].filter((name) => admits(types!, [name])))
  }
  if (types === undefined) return result
  const origin = (key: string): Member | undefined =>
    members.find((member) => member.schema[key] !== undefined)
  for (const key of Object.keys(result)) {
    const owners = context.owners(key, result[key])
    if (owners.length === 0) continue
    const member = origin(key)
    if (member !== undefined) context.checkValue(member.schema, key, member.param)
    if (!admits(types, owners)) {
      delete result[key]
      continue
    }
    if (values === undefined) continue
    const check = valueChecks[key]
    if (check === undefined) {
      context.refuse(
        `${member?.param ?? path}.${key}`,
        `"${key}" beside an enum/const (written in another schema of this anyOf/oneOf/allOf) is not supported: list only the values that satisfy it.`,
      )
    }
    const bound = result[key] as number
    result['enum'] = (result['enum'] as unknown[]).filter(
      (value) => !admits(new Set(owners), [jsonType(value)]) || check(value, bound),
    )
    delete result[key]
  }
  const extra = result[extraStringChecks] as StringCheck[] | undefined
  if (extra !== undefined && !types.has('string')) delete result[extraStringChecks]
  else if (extra !== undefined && values !== undefined && extra[0] !== undefined)
    context.refuse(
      extra[0].param,
      `"${extra[0].keyword}" beside an enum/const (written in another schema of this anyOf/oneOf/allOf) is not supported: list only the values that satisfy it.`,
    )
  if (values !== undefined && (result['enum'] as unknown[]).length === 0) {
    const source = origin('enum') ?? origin('const')
    return never(
      source === undefined
        ? path
        : `${source.param}.${source.schema['enum'] !== undefined ? 'enum' : 'const'}`,
      'No enum/const value satisfies the keywords beside it (in another schema of this anyOf/oneOf/allOf).',
    )
  }
  return result
}

/** A member with draft-4/OpenAPI forms turned into 2020-12 ones, so that bounds and types merge alike. */
function normalize(member: Member): Member {
  const schema = { ...member.schema }
  for (const [flag, bound] of [
    ['exclusiveMinimum', 'minimum'],
    ['exclusiveMaximum', 'maximum'],
  ] as const) {
    if (typeof schema[flag] !== 'boolean') continue
    if (schema[flag] === true && typeof schema[bound] === 'number') {
      schema[flag] = schema[bound]
      delete schema[bound]
    } else if (schema[flag] === false) delete schema[flag]
  }
  // OpenAPI's nullable widens the type only (an enum beside it must list null itself, as ajv and
  // OpenAPI 3.0.3 read it): adding null to the enum wrote a null every validator refused.
  if (schema['nullable'] === true && schema['type'] !== undefined) {
    const type = schema['type']
    schema['type'] = [...(Array.isArray(type) ? type : [type]), 'null']
  }
  delete schema['nullable']
  if (schema['additionalProperties'] === undefined && schema['unevaluatedProperties'] !== undefined)
    schema['additionalProperties'] = schema['unevaluatedProperties']
  delete schema['unevaluatedProperties']
  return { schema, param: member.param }
}

/** The schemas constraining one place, as one: none = any value, one = it, several = their allOf. */
function all(list: readonly unknown[]): unknown {
  const blocked = list.find((item) => isPlainObject(item) && noValue in item)
  if (blocked !== undefined) return blocked
  if (list.some((item) => item === false)) return false
  const constraining = list.filter((item) => item !== true)
  if (constraining.length === 0) return true
  if (constraining.length === 1) return constraining[0]
  return { allOf: constraining }
}

function mergeArrays(members: readonly Member[], result: Schema): void {
  // Each member as a prefix and the schema of what follows it (undefined: anything).
  const shapes = members
    .filter((member) =>
      ['items', 'prefixItems', 'additionalItems'].some((key) => member.schema[key] !== undefined),
    )
    .map((member) => {
      const items = member.schema['items']
      if (Array.isArray(items))
        return {
          member,
          prefix: items as unknown[],
          rest: member.schema['additionalItems'],
          restKey: 'additionalItems',
        }
      const prefix = member.schema['prefixItems']
      return {
        member,
        prefix: Array.isArray(prefix) ? (prefix as unknown[]) : [],
        rest: items,
        restKey: 'items',
      }
    })
  if (shapes.length === 0) return
  for (const shape of shapes) {
    const { param, schema } = shape.member
    const prefixKey = Array.isArray(schema['items']) ? 'items' : 'prefixItems'
    for (const [index, item] of shape.prefix.entries()) remember(item, `${param}.${prefixKey}.${index}`)
    remember(shape.rest, `${param}.${shape.restKey}`)
  }
  const length = Math.max(...shapes.map((shape) => shape.prefix.length))
  const at = (index: number): unknown =>
    all(
      shapes.map((shape) =>
        index < shape.prefix.length
          ? shape.prefix[index]
          : shape.rest === false
            ? never(
                `${shape.member.param}.${shape.restKey}`,
                `This allOf member allows ${shape.prefix.length} items, so item ${index} of another member can never be present.`,
              )
            : (shape.rest ?? true),
      ),
    )
  if (length > 0) result['prefixItems'] = Array.from({ length }, (_, index) => at(index))
  const rests = shapes.map((shape) => shape.rest).filter((rest) => rest !== undefined)
  if (rests.length > 0) result['items'] = all(rests)
}

function mergeObjects(members: readonly Member[], result: Schema): void {
  const required = new Set<string>()
  for (const member of members) {
    const list = member.schema['required']
    if (Array.isArray(list)) for (const name of list) required.add(String(name))
  }
  if (required.size > 0) result['required'] = [...required]
  const listing = members.filter(
    (member) =>
      member.schema['properties'] !== undefined || member.schema['additionalProperties'] !== undefined,
  )
  if (listing.length === 0) return
  const names: string[] = []
  for (const member of listing) {
    const properties = member.schema['properties']
    if (isPlainObject(properties))
      for (const name of Object.keys(properties)) if (!names.includes(name)) names.push(name)
  }
  for (const member of listing) {
    const own = member.schema['properties']
    if (isPlainObject(own))
      for (const [name, value] of Object.entries(own)) remember(value, `${member.param}.properties.${name}`)
    remember(member.schema['additionalProperties'], `${member.param}.additionalProperties`)
  }
  // A name each member constrains by its own property schema, or else by its additionalProperties.
  const properties: Record<string, unknown> = {}
  for (const name of names) {
    properties[name] = all(
      listing.map((member) => {
        const own = member.schema['properties']
        if (isPlainObject(own) && Object.hasOwn(own, name)) return own[name]
        const additional = member.schema['additionalProperties']
        if (additional === false) {
          return never(
            `${member.param}.additionalProperties`,
            `This allOf member allows no property it does not list (additionalProperties: false), so "${name}" of another member can never be present: list it there too, or drop additionalProperties: false.`,
          )
        }
        return additional ?? true
      }),
    )
  }
  result['properties'] = properties
  const additional = listing
    .map((member) => member.schema['additionalProperties'])
    .filter((item) => item !== undefined)
  if (additional.length > 0) result['additionalProperties'] = all(additional)
}
