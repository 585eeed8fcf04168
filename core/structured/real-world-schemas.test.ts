// Schemas as tools write them (pydantic v2, zod 3 through zod-to-json-schema, zod 4's
// toJSONSchema, OpenAPI 3.0, OpenAI's structured-output examples): each is either enforced, and
// random walks over the real Qwen3 vocabulary end in documents ajv accepts under the schema's own
// draft, or refused before anything runs with the keyword named. These were refused (or, for
// discriminator mappings, would have been accepted without the check) before.
import { Ajv } from 'ajv'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { allowedIds, seededRandom } from '../../test/support/grammar-masks.ts'
import { qwen3Tokenizer } from '../../test/support/qwen3-tokenizer.ts'
import { randomSchema } from '../../test/support/random-schemas.ts'
import { InvalidArgumentError } from '../errors.ts'
import { compileJsonSchema, Grammar, GrammarMatcher, vocabularyOf } from './index.ts'

const tokenizer = qwen3Tokenizer()
/** The pattern zod 4.6's toJSONSchema writes for z.base64(). */
const z4Base64Pattern = '^$|^(?:[0-9a-zA-Z+/]{4})*(?:(?:[0-9a-zA-Z+/]{2}==)|(?:[0-9a-zA-Z+/]{3}=))?$'
const vocabulary = vocabularyOf(tokenizer)
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (instance: Ajv | Ajv2020) => void
const eos = new Set(tokenizer.eosTokenIds)
const closers = [
  ...eos,
  ...['"', '}', ']'].flatMap((text) => tokenizer.encode(text, { addSpecialTokens: false })),
]

/** A fresh validator for the schema's draft (07 or 2020-12), with ajv-formats' full formats. */
function validatorFor(schema: object): (value: unknown) => boolean {
  const draft = String((schema as { $schema?: unknown }).$schema ?? '')
  const ajv = draft.includes('draft-07') ? new Ajv({ strict: false }) : new Ajv2020({ strict: false })
  addFormats(ajv)
  const validate = ajv.compile(schema)
  return (value) => {
    const valid = validate(value)
    if (!valid) throw new Error(`${JSON.stringify(value)}: ${ajv.errorsText(validate.errors)}`)
    return valid
  }
}

/** Random walks (uniform among the allowed tokens, closing after a while): each ends and validates. */
function walksValidate(schema: object, seeds: number, validator: object = schema): unknown[] {
  const validate = validatorFor(validator)
  const grammar = new Grammar(compileJsonSchema(schema).root)
  const values: unknown[] = []
  for (let seed = 1; seed <= seeds; seed++) {
    const matcher = new GrammarMatcher(grammar, vocabulary)
    const bits = new Uint32Array(matcher.words)
    const next = seededRandom(seed * 7919)
    const tokens: number[] = []
    let ended = false
    for (let step = 0; step < 300 && !ended; step++) {
      matcher.fillMask(bits)
      const ids = allowedIds(bits)
      expect(ids.length, tokenizer.decode(tokens)).toBeGreaterThan(0)
      let id = ids[Math.floor(next() * ids.length)]!
      if (step >= 40) id = closers.find((closer) => ids.includes(closer)) ?? id
      if (eos.has(id)) ended = true
      else {
        expect(matcher.accept(id)).toBe(true)
        tokens.push(id)
      }
    }
    const text = tokenizer.decode(tokens)
    expect(ended, `no end: ${text}`).toBe(true)
    const value: unknown = JSON.parse(text)
    expect(validate(value)).toBe(true)
    values.push(value)
  }
  return values
}

function refusal(schema: unknown): InvalidArgumentError {
  try {
    compileJsonSchema(schema)
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError)
    return error as InvalidArgumentError
  }
  throw new Error(`${JSON.stringify(schema)} was accepted`)
}

describe('formats: each generated string passes ajv-formats (full mode)', () => {
  // Few walks for the formats with large character classes: each new pattern state scans the
  // vocabulary once (tens of milliseconds), and these reach many.
  it.each([
    ['time', 8],
    ['duration', 8],
    ['ipv4', 8],
    ['ipv6', 8],
    ['uri', 2],
    ['hostname', 1],
    ['json-pointer', 1],
  ] as const)('%s', (format, seeds) => {
    walksValidate({ type: 'string', format }, seeds)
  })

  it("pydantic's HttpUrl (uri with length bounds) and OpenAPI's password/binary and number formats", () => {
    walksValidate(
      {
        type: 'object',
        properties: {
          url: { format: 'uri', maxLength: 2083, minLength: 1, type: 'string' },
          pw: { format: 'password', type: 'string', writeOnly: true },
          small: { type: 'integer', format: 'int32' },
          ratio: { type: 'number', format: 'double', minimum: 0, maximum: 1 },
        },
        required: ['url', 'pw', 'small', 'ratio'],
        additionalProperties: false,
      },
      2,
    )
    // int32 bounds the value: past 2^31 - 1 nothing is left.
    expect(refusal({ type: 'integer', format: 'int32', minimum: 2 ** 31 }).param).toBe('schema.maximum')
    expect(refusal({ type: 'integer', format: 'uuid' }).param).toBe('schema.format')
  })

  it('a non-standard format is a label next to a pattern (zod 4), refused alone', () => {
    // zod 4: z.string().startsWith('ab') and z.cuid().
    const zod4 = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: {
        starts: { type: 'string', format: 'starts_with', pattern: '^ab.*' },
        cuid: { type: 'string', format: 'cuid', pattern: '^[cC][0-9a-z]{6,}$' },
      },
      required: ['starts', 'cuid'],
      additionalProperties: false,
    }
    for (const value of walksValidate(zod4, 2) as { starts: string; cuid: string }[]) {
      expect(value.starts.startsWith('ab')).toBe(true)
      expect(value.cuid).toMatch(/^[cC][0-9a-z]{6,}$/)
    }
    const alone = refusal({ type: 'string', format: 'phone' })
    expect(alone.param).toBe('schema.format')
    expect(alone.message).toMatch(/add a pattern/)
  })

  it("contentEncoding is a label next to a pattern (zod 4's z.base64(), z.base64url()), refused alone", () => {
    // An annotation in draft-07 and 2020-12 (ajv does not check it); zod writes the pattern that
    // says what base64 allows beside it. It was refused, so z.base64() could not be asked for.
    const base64 = z4Base64Pattern
    const zod4 = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: { data: { type: 'string', format: 'base64', contentEncoding: 'base64', pattern: base64 } },
      required: ['data'],
      additionalProperties: false,
    }
    for (const value of walksValidate(zod4, 3) as { data: string }[])
      expect(value.data).toMatch(new RegExp(base64))
    const alone = refusal({ type: 'string', contentEncoding: 'base64' })
    expect(alone.param).toBe('schema.contentEncoding')
    expect(alone.message).toMatch(/add a pattern/)
  })
})

describe('draft-4 / OpenAPI 3.0 forms', () => {
  it('exclusiveMinimum/exclusiveMaximum: true make minimum/maximum exclusive (zod-to-json-schema openApi3)', () => {
    const schema = {
      type: 'object',
      properties: {
        positive: { type: 'number', minimum: 0, exclusiveMinimum: true },
        below: { type: 'integer', minimum: 1, maximum: 3, exclusiveMaximum: true },
        flagOff: { type: 'integer', minimum: 5, maximum: 5, exclusiveMinimum: false },
      },
      required: ['positive', 'below', 'flagOff'],
      additionalProperties: false,
    }
    // ajv speaks the numeric form of the same bounds.
    const numeric = structuredClone(schema) as typeof schema & Record<string, never>
    numeric.properties.positive = { type: 'number', exclusiveMinimum: 0 } as never
    numeric.properties.below = { type: 'integer', minimum: 1, exclusiveMaximum: 3 } as never
    numeric.properties.flagOff = { type: 'integer', minimum: 5, maximum: 5 } as never
    for (const value of walksValidate(schema, 6, numeric) as { positive: number; below: number }[]) {
      expect(value.positive).toBeGreaterThan(0)
      expect(value.below).toBeLessThan(3)
    }
    expect(refusal({ type: 'number', exclusiveMinimum: true }).param).toBe('schema.exclusiveMinimum')
    expect(refusal({ type: 'integer', minimum: 4, maximum: 4, exclusiveMaximum: true }).param).toBe(
      'schema.exclusiveMaximum',
    )
  })
})

describe('references', () => {
  it('$anchor ("#name") and the root $id before a pointer resolve inside the document', () => {
    const schema = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: 'https://example.com/schemas/person',
      type: 'object',
      properties: {
        home: { $ref: '#address' },
        flag: { $ref: 'https://example.com/schemas/person#/$defs/flag' },
        self: { type: 'array', maxItems: 1, items: { $ref: 'https://example.com/schemas/person' } },
      },
      required: ['home', 'flag'],
      additionalProperties: false,
      $defs: {
        address: {
          $anchor: 'address',
          type: 'object',
          properties: { city: { enum: ['Oslo', 'Lima'] } },
          required: ['city'],
          additionalProperties: false,
        },
        flag: { type: 'boolean' },
      },
    }
    for (const value of walksValidate(schema, 5) as { home: { city: string } }[])
      expect(['Oslo', 'Lima']).toContain(value.home.city)
    expect(refusal({ $ref: '#nowhere' }).param).toBe('schema.$ref')
    expect(refusal({ $id: 'https://a.example/x', $ref: 'https://b.example/x#/$defs/y' }).param).toBe(
      'schema.$ref',
    )
  })
})

describe("pydantic's discriminated unions (oneOf + discriminator)", () => {
  const pets = {
    $defs: {
      Cat: {
        properties: {
          pet_type: { const: 'cat', title: 'Pet Type', type: 'string' },
          meows: { type: 'integer' },
        },
        required: ['pet_type', 'meows'],
        title: 'Cat',
        type: 'object',
      },
      Dog: {
        properties: {
          pet_type: { const: 'dog', title: 'Pet Type', type: 'string' },
          barks: { type: 'number' },
        },
        required: ['pet_type', 'barks'],
        title: 'Dog',
        type: 'object',
      },
      Lizard: {
        properties: {
          pet_type: { enum: ['reptile', 'lizard'], type: 'string' },
          scales: { type: 'boolean' },
        },
        required: ['pet_type', 'scales'],
        title: 'Lizard',
        type: 'object',
      },
    },
    properties: {
      pet: {
        discriminator: {
          mapping: {
            cat: '#/$defs/Cat',
            dog: '#/$defs/Dog',
            lizard: '#/$defs/Lizard',
            reptile: '#/$defs/Lizard',
          },
          propertyName: 'pet_type',
        },
        oneOf: [{ $ref: '#/$defs/Cat' }, { $ref: '#/$defs/Dog' }, { $ref: '#/$defs/Lizard' }],
        title: 'Pet',
      },
    },
    required: ['pet'],
    title: 'Model',
    type: 'object',
  }

  it('are enforced (each pet has its tag and its fields); ajv with discriminator support agrees', () => {
    // ajv reads discriminators without mapping (it derives the same from the const tags).
    const unmapped = structuredClone(pets) as {
      properties: { pet: { discriminator: { mapping?: unknown } } }
    }
    delete unmapped.properties.pet.discriminator.mapping
    const ajv = new Ajv2020({ strict: false, discriminator: true })
    const validate = ajv.compile(unmapped)
    for (const value of walksValidate(pets, 6) as { pet: { pet_type: string } }[]) {
      expect(validate(value), ajv.errorsText(validate.errors)).toBe(true)
      expect(['cat', 'dog', 'reptile', 'lizard']).toContain(value.pet.pet_type)
    }
  })

  it('a discriminator the alternatives do not carry, or a mapping that disagrees, is refused', () => {
    const untagged = structuredClone(pets)
    untagged.$defs.Dog.properties.pet_type = { type: 'string' } as never
    // Under oneOf the alternatives then overlap; under anyOf the discriminator names the one.
    expect(refusal(untagged).param).toBe('schema.properties.pet.oneOf')
    const anyOf = structuredClone(untagged) as { properties: { pet: Record<string, unknown> } }
    anyOf.properties.pet['anyOf'] = anyOf.properties.pet['oneOf']
    delete anyOf.properties.pet['oneOf']
    expect(refusal(anyOf).param).toBe('schema.properties.pet.anyOf.1')
    const wrongMapping = structuredClone(pets)
    wrongMapping.properties.pet.discriminator.mapping.cat = '#/$defs/Dog'
    expect(refusal(wrongMapping).param).toBe('schema.properties.pet.discriminator.mapping.cat')
    expect(refusal({ type: 'object', discriminator: { propertyName: 'x' } }).param).toBe(
      'schema.discriminator',
    )
  })
})

describe('unevaluatedProperties', () => {
  it('on a plain object is additionalProperties (false or a schema)', () => {
    const schema = {
      type: 'object',
      properties: { a: { type: 'string', maxLength: 3 } },
      required: ['a'],
      unevaluatedProperties: false,
    }
    for (const value of walksValidate(schema, 2)) expect(Object.keys(value as object)).toEqual(['a'])
    walksValidate(
      { type: 'object', properties: { a: { type: 'null' } }, unevaluatedProperties: { type: 'boolean' } },
      2,
    )
  })

  it('beside an anyOf/oneOf (no allOf or $ref): the names of the alternative written are evaluated', () => {
    // Refused before, naming schema.anyOf.0.allOf.1.additionalProperties (a path the schema does not
    // have): unevaluatedProperties was split off with the properties beside the anyOf and read as
    // additionalProperties: false, forbidding "b" and "c", which ajv accepts.
    const digit = { type: 'integer', minimum: 0, maximum: 9 }
    const schema = {
      type: 'object',
      properties: { a: digit },
      anyOf: [
        { properties: { b: digit }, required: ['b'] },
        { properties: { c: digit }, required: ['c'] },
      ],
      unevaluatedProperties: false,
    }
    const keys = new Set(walksValidate(schema, 8).flatMap((value) => Object.keys(value as object)))
    expect(keys.has('b') || keys.has('c')).toBe(true)
    expect(keys.has('d')).toBe(false)
    const tagged = {
      type: 'object',
      properties: { a: digit },
      oneOf: [
        { properties: { k: { const: 1 } }, required: ['k'] },
        { properties: { k: { const: 2 }, z: digit }, required: ['k', 'z'] },
      ],
      unevaluatedProperties: false,
    }
    walksValidate(tagged, 6)
    // The alternative's names only: z belongs to k: 2.
    const grammar = new Grammar(compileJsonSchema(tagged).root)
    const accepts = (text: string): boolean => {
      const matcher = new GrammarMatcher(grammar, vocabulary)
      for (const byte of new TextEncoder().encode(text))
        if (!matcher.accept(vocabulary.idOfByte(byte))) return false
      return matcher.isComplete
    }
    expect(accepts('{"k":2,"z":3}')).toBe(true)
    expect(accepts('{"k":1,"z":3}')).toBe(false)
    expect(accepts('{"k":1,"q":3}')).toBe(false)
  })
})

describe('allOf and keywords beside $ref/anyOf/oneOf: merged into the one schema they mean', () => {
  it("zod 3's intersections (zod-to-json-schema: draft-07 allOf; 2019-09 with unevaluatedProperties: false)", () => {
    const members = [
      { type: 'object', properties: { a: { type: 'string', maxLength: 4 } }, required: ['a'] },
      { type: 'object', properties: { b: { type: 'number' } }, required: ['b'] },
    ]
    const draft07 = { allOf: members, $schema: 'http://json-schema.org/draft-07/schema#' }
    for (const value of walksValidate(draft07, 3)) expect(Object.keys(value as object)).toEqual(['a', 'b'])
    const closed = { allOf: members, unevaluatedProperties: false }
    for (const value of walksValidate(closed, 3)) expect(Object.keys(value as object)).toEqual(['a', 'b'])
  })

  it('"extends" through $ref, keywords beside $ref, recursion through an allOf', () => {
    const extended = {
      $defs: {
        Base: {
          type: 'object',
          properties: { id: { type: 'string', format: 'uuid' }, kind: { enum: ['x', 'y', 'z'] } },
          required: ['id', 'kind'],
        },
      },
      allOf: [
        { $ref: '#/$defs/Base' },
        {
          properties: { kind: { enum: ['y', 'z', 'w'] }, name: { type: 'string', maxLength: 5 } },
          required: ['name'],
        },
      ],
    }
    for (const value of walksValidate(extended, 3) as { kind: string }[])
      expect(['y', 'z']).toContain(value.kind)
    const beside = {
      $defs: { S: { type: 'string', maxLength: 6 } },
      type: 'object',
      properties: { s: { $ref: '#/$defs/S', minLength: 2, pattern: '^[A-Z]' } },
      required: ['s'],
      additionalProperties: false,
    }
    for (const value of walksValidate(beside, 4) as { s: string }[]) expect(value.s).toMatch(/^[A-Z].{1,5}$/u)
    const recursive = {
      $defs: {
        Node: {
          type: 'object',
          properties: {
            v: { type: 'integer' },
            next: { anyOf: [{ $ref: '#/$defs/Named' }, { type: 'null' }] },
          },
          required: ['v', 'next'],
        },
        Named: {
          allOf: [
            { $ref: '#/$defs/Node' },
            { properties: { name: { type: 'string', maxLength: 3 } }, required: ['name'] },
          ],
        },
      },
      $ref: '#/$defs/Named',
    }
    walksValidate(recursive, 4)
  })

  it('anyOf/oneOf with keywords beside them, bounds and patterns from several members', () => {
    const contact = {
      type: 'object',
      properties: {
        email: { type: 'string', format: 'email' },
        phone: { type: 'string', pattern: '^\\+\\d{6,8}$' },
      },
      anyOf: [{ required: ['email'] }, { required: ['phone'] }],
      additionalProperties: false,
    }
    walksValidate({ ...contact, properties: { ...contact.properties, email: { enum: ['a@b.cd'] } } }, 4)
    const shapes = {
      type: 'object',
      required: ['shape'],
      properties: { shape: { type: 'string' } },
      oneOf: [
        { properties: { shape: { const: 'circle' }, r: { type: 'number' } }, required: ['r'] },
        { properties: { shape: { const: 'square' }, side: { type: 'number' } }, required: ['side'] },
      ],
    }
    walksValidate(shapes, 4)
    const word = {
      allOf: [{ type: 'string', pattern: '^[a-z]+$' }, { pattern: 'x', minLength: 2 }, { maxLength: 5 }],
    }
    for (const value of walksValidate(word, 4) as string[]) expect(value).toMatch(/^[a-z]{2,5}$/)
    const numbers = {
      allOf: [{ type: 'number', minimum: 0 }, { type: 'integer', maximum: 10 }, { exclusiveMinimum: 2 }],
    }
    for (const value of walksValidate(numbers, 4) as number[])
      expect(Number.isInteger(value) && value > 2).toBe(true)
  })

  it('what no document can satisfy is refused naming the member; an optional place is left out', () => {
    const closed = { type: 'object', properties: { a: { type: 'integer' } }, additionalProperties: false }
    const conflict = refusal({ allOf: [closed, { properties: { b: { type: 'integer' } }, required: ['b'] }] })
    expect(conflict.param).toBe('schema.allOf.0.additionalProperties')
    expect(conflict.message).toMatch(/"b"/)
    for (const value of walksValidate({ allOf: [closed, { properties: { b: { type: 'integer' } } }] }, 4))
      expect(Object.keys(value as object).every((key) => key === 'a')).toBe(true)
    expect(refusal({ allOf: [{ enum: ['a', 'b'] }, { enum: ['c'] }] }).param).toBe('schema.allOf.1.enum')
  })
})

describe('multipleOf', () => {
  it('a whole step is enforced digit by digit (zod .int().multipleOf(5), pydantic conint(multiple_of=...))', () => {
    const schema = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: {
        // zod 4 through the AI SDK: the safe-integer bounds, past the 15 digits the grammar writes.
        five: { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991, multipleOf: 5 },
        seven: { type: 'integer', multipleOf: 7, minimum: -50, maximum: 50 },
        dozen: { type: 'number', multipleOf: 12, exclusiveMinimum: 0 },
        big: { type: 'integer', multipleOf: 1000000007 },
      },
      required: ['five', 'seven', 'dozen', 'big'],
      additionalProperties: false,
    }
    for (const value of walksValidate(schema, 6) as Record<string, number>[]) {
      expect(Math.abs(value['five']! % 5)).toBe(0)
      expect(Math.abs(value['seven']!)).toBeLessThanOrEqual(49)
      expect(value['dozen']! > 0 && Number.isInteger(value['dozen'])).toBe(true)
    }
    const grammar = new Grammar(
      compileJsonSchema({ type: 'integer', multipleOf: 7, minimum: 30, maximum: 40 }).root,
    )
    const accepts = (text: string): boolean => {
      const matcher = new GrammarMatcher(grammar, vocabulary)
      for (const byte of new TextEncoder().encode(text))
        if (!matcher.accept(vocabulary.idOfByte(byte))) return false
      return matcher.isComplete
    }
    expect(accepts('35')).toBe(true)
    expect(accepts('36')).toBe(false)
    expect(accepts('4')).toBe(false)
  })

  it('no multiple within the bounds, or a fractional step (validators disagree on it), is refused', () => {
    expect(refusal({ type: 'integer', multipleOf: 10, minimum: 1, maximum: 9 }).param).toBe(
      'schema.multipleOf',
    )
    const fraction = refusal({ type: 'number', multipleOf: 0.01 })
    expect(fraction.param).toBe('schema.multipleOf')
    expect(fraction.message).toMatch(/fraction/)
    expect(refusal({ type: 'integer', multipleOf: 0 }).param).toBe('schema.multipleOf')
  })
})

describe('minProperties / maxProperties', () => {
  it("are counted as keys are written (pydantic's dict with min_length/max_length, listed properties, required ones)", () => {
    const schema = {
      type: 'object',
      properties: {
        tags: {
          type: 'object',
          additionalProperties: { type: 'string', maxLength: 3 },
          minProperties: 1,
          maxProperties: 2,
        },
        listed: {
          type: 'object',
          properties: { a: { type: 'string', maxLength: 2 }, b: { type: 'boolean' }, c: { type: 'null' } },
          minProperties: 2,
          additionalProperties: false,
        },
        capped: {
          type: 'object',
          properties: {
            a: { type: 'integer' },
            b: { type: 'integer' },
            c: { type: 'integer' },
            d: { type: 'integer' },
          },
          required: ['d'],
          maxProperties: 2,
        },
      },
      required: ['tags', 'listed', 'capped'],
      additionalProperties: false,
    }
    for (const value of walksValidate(schema, 6) as Record<string, object>[]) {
      expect(Object.keys(value['tags']!).length).toBeGreaterThanOrEqual(1)
      expect(Object.keys(value['listed']!).length).toBeGreaterThanOrEqual(2)
      expect(Object.keys(value['capped']!).length).toBeLessThanOrEqual(2)
    }
  })

  it('bounds no object can meet are refused naming the keyword', () => {
    const one = { type: 'object', properties: { a: { type: 'integer' } }, additionalProperties: false }
    expect(refusal({ ...one, minProperties: 2 }).param).toBe('schema.minProperties')
    // b has no value, so only a can be written.
    expect(
      refusal({ ...one, properties: { a: { type: 'integer' }, b: false }, minProperties: 2 }).param,
    ).toBe('schema.minProperties')
    expect(refusal({ ...one, required: ['a'], maxProperties: 0 }).param).toBe('schema.maxProperties')
    expect(refusal({ type: 'object', minProperties: 3, maxProperties: 2 }).param).toBe('schema.maxProperties')
  })
})

describe('random schemas with the keywords above', () => {
  // The shared random schemas (test/support/random-schemas.ts) inside the keywords this file
  // added: intersections, keywords beside anyOf, multipleOf, minProperties/maxProperties.
  const names = fc.constantFrom('a', 'b', 'ab', 'n')
  const object = (properties: fc.Arbitrary<unknown>) =>
    fc
      .uniqueArray(fc.tuple(names, properties, fc.boolean()), { maxLength: 3, selector: ([name]) => name })
      .map((entries) => ({
        type: 'object',
        properties: Object.fromEntries(entries.map(([name, schema]) => [name, schema])),
        required: entries.filter(([, , required]) => required).map(([name]) => name),
      }))
  const multiple = fc.record({
    type: fc.constantFrom('integer', 'number'),
    multipleOf: fc.constantFrom(1, 3, 7, 10),
    minimum: fc.constantFrom(-40, 0, 5),
    maximum: fc.constantFrom(30, 200),
  })
  const inner = fc.oneof(randomSchema, multiple)
  const wide = fc.oneof(
    fc.tuple(object(inner), object(inner), fc.boolean()).map(([a, b, closed]) => ({
      allOf: [a, b],
      ...(closed ? { unevaluatedProperties: false } : {}),
    })),
    fc
      .tuple(object(inner), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 2, max: 4 }))
      .map(([base, minProperties, maxProperties]) => ({
        ...base,
        additionalProperties: { type: 'integer', minimum: 0, maximum: 9 },
        minProperties,
        maxProperties,
      })),
    object(inner).map((base) => ({
      ...base,
      properties: { ...base.properties, p: { type: 'boolean' }, q: { type: 'null' } },
      anyOf: [{ required: ['p'] }, { required: ['q'] }],
      additionalProperties: false,
    })),
    fc.tuple(randomSchema, multiple).map(([value, number]) => ({ allOf: [{ anyOf: [value, number] }, {}] })),
  )

  it('every walk ends in a document ajv accepts; a contradiction is refused naming where', () => {
    let walked = 0
    fc.assert(
      fc.property(wide, (schema) => {
        try {
          compileJsonSchema(schema)
        } catch (error) {
          // Random members can contradict each other (integer ∧ string for a required name).
          expect(error).toBeInstanceOf(InvalidArgumentError)
          expect((error as InvalidArgumentError).param).toMatch(/^schema/)
          return
        }
        walksValidate(schema as object, 1)
        walked++
      }),
      { numRuns: Number(process.env.STRUCTURED_RUNS ?? 30), seed: Number(process.env.STRUCTURED_SEED ?? 7) },
    )
    expect(walked).toBeGreaterThanOrEqual(Number(process.env.STRUCTURED_RUNS ?? 30) / 2)
  })
})
