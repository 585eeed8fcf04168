// The grammar engine on the real Qwen3 vocabulary: random schemas walked with random tokens among
// the allowed ones (what noise logits do) always give documents an independent validator (ajv)
// accepts; the cached mask equals the token-by-token check; unsupported keywords are refused.
import { Ajv } from 'ajv'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { allowedIds, seededRandom as random } from '../../test/support/grammar-masks.ts'
import { qwen3Tokenizer } from '../../test/support/qwen3-tokenizer.ts'
import { randomSchema } from '../../test/support/random-schemas.ts'
import { createTestSession } from '../../test/support/test-session.ts'
import { InvalidArgumentError } from '../errors.ts'
import { generateText } from '../generate.ts'
import {
  ConstraintState,
  compileConstraint,
  compileJsonSchema,
  Grammar,
  GrammarMatcher,
  vocabularyOf,
} from './index.ts'

const tokenizer = qwen3Tokenizer()
const vocabulary = vocabularyOf(tokenizer)
const ajv = new Ajv2020({ strict: false })
// ajv-formats is CommonJS: its default export arrives as the module object under Node's ESM.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (instance: Ajv2020) => void
addFormats(ajv)

const eos = new Set(tokenizer.eosTokenIds)
/** EOS first, then a quote (it ends a string, where brackets are just characters), then brackets. */
const closers = [
  ...eos,
  ...['"', '}', ']'].flatMap((text) => tokenizer.encode(text, { addSpecialTokens: false })),
]

/**
 * Walks the grammar choosing uniformly among the allowed tokens; checks on the way that the mask
 * agrees with `allows` on a sample of tokens. Returns the text and whether EOS came.
 */
function walk(
  schema: unknown,
  seed: number,
  budget = 300,
  check = 24,
  closeAfter = Number.POSITIVE_INFINITY,
): { text: string; ended: boolean; tokens: number[] } {
  const matcher = new GrammarMatcher(new Grammar(compileJsonSchema(schema).root), vocabulary)
  const bits = new Uint32Array(matcher.words)
  const next = random(seed)
  const tokens: number[] = []
  for (let step = 0; step < budget; step++) {
    matcher.fillMask(bits)
    const ids = allowedIds(bits)
    expect(ids.length).toBeGreaterThan(0)
    for (let probe = 0; probe < check; probe++) {
      const id = Math.floor(next() * tokenizer.vocabularySize)
      const inMask = (bits[id >>> 5]! & (1 << (id & 31))) !== 0
      expect(
        matcher.fork().allows(id),
        `token ${id} ${JSON.stringify(tokenizer.decode([id]))} after ${JSON.stringify(tokenizer.decode(tokens))}`,
      ).toBe(inMask)
    }
    let id = ids[Math.floor(next() * ids.length)]!
    // Unbounded strings (free keys, any values) end only when closing is favoured.
    if (step >= closeAfter) id = closers.find((closer) => ids.includes(closer)) ?? id
    if (eos.has(id)) return { text: tokenizer.decode(tokens), ended: true, tokens }
    expect(matcher.accept(id)).toBe(true)
    tokens.push(id)
  }
  return { text: tokenizer.decode(tokens), ended: false, tokens }
}

describe('structured output grammar on the Qwen3 vocabulary', () => {
  it('random schemas × random allowed tokens: every finished document parses and validates (ajv)', () => {
    let finished = 0
    fc.assert(
      fc.property(randomSchema, fc.integer({ min: 1, max: 2 ** 31 - 1 }), (schema, seed) => {
        const { text, ended } = walk(schema, seed, 400, 8)
        expect(ended, `no end within budget for ${JSON.stringify(schema)}: ${text}`).toBe(true)
        const value: unknown = JSON.parse(text)
        const validate = ajv.compile(schema as object)
        expect(
          validate(value),
          `${text} against ${JSON.stringify(schema)}: ${ajv.errorsText(validate.errors)}`,
        ).toBe(true)
        finished++
      }),
      { numRuns: Number(process.env.STRUCTURED_RUNS ?? 60), seed: Number(process.env.STRUCTURED_SEED ?? 16) },
    )
    expect(finished).toBe(Number(process.env.STRUCTURED_RUNS ?? 60))
  })

  it('accepts the tokenizer’s own encoding of valid compact documents', () => {
    const schema = {
      type: 'object',
      properties: {
        name: { type: 'string' },
        age: { type: 'integer', minimum: 0 },
        email: { type: 'string', format: 'email' },
        when: { type: 'string', format: 'date-time' },
        tags: { type: 'array', items: { type: 'string' } },
      },
      required: ['name'],
      additionalProperties: false,
    }
    const documents = [
      {
        name: 'Ada Lovelace',
        age: 36,
        email: 'ada@example.org',
        when: '1843-07-10T12:00:00Z',
        tags: ['math', 'poésie 🚀', 'line\nbreak "q"'],
      },
      { name: '' },
      { name: '日本語のテキスト', tags: [] },
    ]
    for (const document of documents) {
      const matcher = new GrammarMatcher(new Grammar(compileJsonSchema(schema).root), vocabulary)
      for (const id of tokenizer.encode(JSON.stringify(document), { addSpecialTokens: false })) {
        expect(matcher.accept(id), `${JSON.stringify(document)} at ${tokenizer.decode([id])}`).toBe(true)
      }
      expect(matcher.isComplete).toBe(true)
      expect(matcher.allows(tokenizer.eosTokenIds[0]!)).toBe(true)
    }
  })

  it('refuses what breaks the schema: a missing required property, a wrong type, a number out of range', () => {
    const schema = {
      type: 'object',
      properties: { n: { type: 'integer', minimum: 1, maximum: 9 } },
      required: ['n'],
      additionalProperties: false,
    }
    const accepts = (text: string): boolean => {
      const matcher = new GrammarMatcher(new Grammar(compileJsonSchema(schema).root), vocabulary)
      for (const byte of new TextEncoder().encode(text)) {
        const id = vocabulary.idOfByte(byte)
        if (!matcher.accept(id)) return false
      }
      return matcher.isComplete
    }
    expect(accepts('{"n":5}')).toBe(true)
    expect(accepts('{}')).toBe(false)
    expect(accepts('{"n":"5"}')).toBe(false)
    expect(accepts('{"n":10}')).toBe(false)
    expect(accepts('{"n":0}')).toBe(false)
    expect(accepts('{"n":5,"m":1}')).toBe(false)
    expect(accepts('{ "n":5}')).toBe(false) // compact: no whitespace
  })

  it('recursion through $ref/$defs: random walks end in valid trees', () => {
    const schema = {
      $defs: {
        node: {
          type: 'object',
          properties: {
            value: { type: 'integer', minimum: 0, maximum: 9 },
            children: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 },
          },
          required: ['value'],
          additionalProperties: false,
        },
      },
      $ref: '#/$defs/node',
    }
    const validate = ajv.compile(schema)
    let ended = 0
    for (let seed = 1; seed <= 12; seed++) {
      const result = walk(schema, seed, 300, 4)
      if (!result.ended) continue
      ended++
      expect(validate(JSON.parse(result.text)), result.text).toBe(true)
    }
    expect(ended).toBeGreaterThanOrEqual(8)
  })

  it('number bounds down to the 15th fraction digit: every walk ends inside them (ajv)', () => {
    const schemas = [
      { type: 'number', minimum: 1e-15, maximum: 2e-15 },
      { type: 'number', exclusiveMinimum: 0.1, exclusiveMaximum: 0.100000000000002 },
      { type: 'number', minimum: -0.30000000000000004, maximum: -0.3 },
      { type: 'number', minimum: 123456789012345.5, maximum: 123456789012345.6 },
      { type: 'number', exclusiveMinimum: -1, exclusiveMaximum: 1 },
    ]
    for (const schema of schemas) {
      const validate = ajv.compile(schema)
      for (let seed = 1; seed <= 6; seed++) {
        const result = walk(schema, seed, 60, 2)
        expect(result.ended, `${JSON.stringify(schema)}: ${result.text}`).toBe(true)
        const value: unknown = JSON.parse(result.text)
        expect(validate(value), `${result.text} against ${JSON.stringify(schema)}`).toBe(true)
      }
    }
  })

  it('number bounds no decimal of at most 15 fraction digits fits are refused before anything runs', () => {
    for (const schema of [
      { type: 'number', minimum: 1e-20, maximum: 2e-20 },
      { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1e-16 },
      { type: 'number', exclusiveMinimum: 1, exclusiveMaximum: 1.0000000000000002 },
    ]) {
      expect(() => compileJsonSchema(schema), JSON.stringify(schema)).toThrow(/at most 15 fraction digits/)
    }
  })

  it('5,000 levels of objects through $ref: compiles and walks to a valid document (was a stack overflow)', () => {
    const schema = refChain(5000, (index) => ({
      type: 'object',
      properties: { x: { $ref: `#/$defs/d${index + 1}` } },
      ...(index < 3 ? { required: ['x'] } : {}),
      additionalProperties: false,
    }))
    const result = walk(schema, 3, 200, 2)
    expect(result.ended, result.text).toBe(true)
    // Checked by hand: ajv itself overflows the stack compiling this chain.
    let value: unknown = JSON.parse(result.text)
    let depth = 0
    while (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      expect(Object.keys(value).every((key) => key === 'x')).toBe(true)
      value = (value as { x?: unknown }).x
      depth++
    }
    expect(depth).toBeGreaterThanOrEqual(3)
    expect(value === undefined || (depth === 5000 && Number.isInteger(value))).toBe(true)
  })

  it('an enum deduplicates equal values whatever their key order, in one pass', () => {
    const compiled = compileJsonSchema({ enum: [{ a: 1, b: [2] }, { b: [2], a: 1 }, 0, -0, 'x', 'x'] })
    expect(compiled.root.kind === 'literal' && compiled.root.values.length).toBe(3)
    const large = compileJsonSchema({
      enum: Array.from({ length: 100_000 }, (_, index) => `v${index % 50_000}`),
    })
    expect(large.root.kind === 'literal' && large.root.values.length).toBe(50_000)
  })

  it('free JSON (json_object): any object, valid JSON', () => {
    const constraint = compileConstraint({ responseFormat: { type: 'json_object' } })!
    for (let seed = 1; seed <= 6; seed++) {
      const state = new ConstraintState(constraint, tokenizer)
      const next = random(seed)
      const tokens: number[] = []
      for (let step = 0; step < 400; step++) {
        const logits = new Float32Array(tokenizer.vocabularySize + 200)
        for (let id = 0; id < logits.length; id++) logits[id] = next()
        // Favour closing once long enough, so the walk ends.
        state.mask(logits)
        let best = -1
        for (let id = 0; id < logits.length; id++)
          if (logits[id]! > Number.NEGATIVE_INFINITY && (best === -1 || logits[id]! > logits[best]!))
            best = id
        if (step > 60) {
          // A quote first (it ends a string, where brackets are just characters), then brackets.
          const closer = [
            ...eos,
            ...['"', '}', ']'].flatMap((text) => tokenizer.encode(text, { addSpecialTokens: false })),
          ].find((id) => logits[id]! > Number.NEGATIVE_INFINITY)
          if (closer !== undefined) best = closer
        }
        if (eos.has(best)) break
        expect(state.accept(best)).toBe(true)
        tokens.push(best)
      }
      expect(state.isComplete).toBe(true)
      const value: unknown = JSON.parse(tokenizer.decode(tokens))
      expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true)
    }
  })
})

/** A test title for a schema: its JSON, cut short (a deeply nested one cannot be stringified). */
function title(schema: unknown): string {
  let text: string
  try {
    text = JSON.stringify(schema)
  } catch {
    text = '(nested too deep to print)'
  }
  return text.length > 120 ? `${text.slice(0, 117)}...` : text
}

/** `depth` arrays, one inside the other. */
function nested(depth: number): unknown {
  let value: unknown = []
  for (let level = 1; level < depth; level++) value = [value]
  return value
}

/** `$defs` d0 … dN where d_i = make(i) and dN is an integer, and the root a $ref to d0. */
function refChain(length: number, make: (index: number) => unknown): unknown {
  const defs: Record<string, unknown> = {}
  for (let index = 0; index < length; index++) defs[`d${index}`] = make(index)
  defs[`d${length}`] = { type: 'integer', minimum: 0, maximum: 9 }
  return { $defs: defs, $ref: '#/$defs/d0' }
}

describe('schemas structured output cannot enforce are refused, naming the keyword', () => {
  const cases: [unknown, string][] = [
    [{ type: 'integer', multipleOf: 0.1 }, 'schema.multipleOf'],
    [
      { type: 'object', properties: { a: { type: 'string', not: { const: 'x' } } } },
      'schema.properties.a.not',
    ],
    [{ allOf: [{ type: 'integer', multipleOf: 2 }, { multipleOf: 3 }] }, 'schema.allOf.1.multipleOf'],
    [{ allOf: [{ type: 'string' }, { type: 'integer' }] }, 'schema.allOf'],
    [{ type: 'object', patternProperties: { '^x': {} } }, 'schema.patternProperties'],
    [{ type: 'array', uniqueItems: true }, 'schema.uniqueItems'],
    [{ type: 'array', prefixItems: [{ type: 'string' }], items: [{ type: 'string' }] }, 'schema.prefixItems'],
    [{ type: 'array', prefixItems: [{ type: 'string' }], additionalItems: false }, 'schema.additionalItems'],
    [{ type: 'object', propertyNames: { maxLength: 3 } }, 'schema.propertyNames'],
    [{ type: 'object', propertyNames: { type: 'string', pattern: '^x' } }, 'schema.propertyNames'],
    [{ type: 'object', propertyNames: { enum: ['a'] }, required: ['b'] }, 'schema.required.0'],
    [{ type: 'string', format: 'regex' }, 'schema.format'],
    [{ type: 'string', pattern: '(a)\\1' }, 'schema.pattern'],
    [{ type: 'string', pattern: '(?=a)' }, 'schema.pattern'],
    [{ type: 'string', pattern: 'a\\b' }, 'schema.pattern'],
    [{ type: 'strin' }, 'schema.type'],
    [{ type: 'string', minLength: 5, maxLength: 2 }, 'schema.maxLength'],
    [{ type: 'string', format: 'uuid', maxLength: 10 }, 'schema.maxLength'],
    [{ type: 'integer', minimum: 5, maximum: 4 }, 'schema'],
    [{ $ref: '#/$defs/missing' }, 'schema.$defs'],
    [{ $ref: 'https://example.com/schema.json' }, 'schema.$ref'],
    [
      { type: 'object', properties: { a: {} }, required: ['a', 'x'], additionalProperties: false },
      'schema.required.1',
    ],
    [{ oneOf: [{ type: 'number' }, { type: 'integer' }] }, 'schema.oneOf'],
    [{ type: 'integer', minLength: 2 }, 'schema.minLength'],
    [{ enum: [] }, 'schema.enum'],
    [false, 'schema'],
    ['string', 'schema'],
    // Left recursion: an alternative that is its own first step (was a stack overflow, a 500).
    [{ $defs: { a: { anyOf: [{ $ref: '#/$defs/a' }, { type: 'null' }] } }, $ref: '#/$defs/a' }, 'schema'],
    [{ anyOf: [{ $ref: '#' }, { type: 'boolean' }] }, 'schema'],
    // Values nested 5,000 deep (were a stack overflow comparing them: a 500 on the edge).
    [{ const: nested(5000) }, 'schema.const'],
    [{ enum: ['a', nested(5000)] }, 'schema.enum.1'],
    // Annotations the template prints for a tool (it overflowed the stack rendering this one).
    [{ type: 'object', description: nested(5000) }, 'schema.description'],
    [{ type: 'string', default: nested(5000) }, 'schema.default'],
    // 5,000 $refs each pointing at the next (was a stack overflow at the first token).
    [refChain(5000, (index) => ({ $ref: `#/$defs/d${index + 1}` })), 'schema'],
    [
      {
        $defs: { a: { type: 'object', properties: { self: { $ref: '#/$defs/a' } }, required: ['self'] } },
        $ref: '#/$defs/a',
      },
      'schema',
    ],
  ]
  for (const [schema, param] of cases) {
    it(`${title(schema)} → ${param}`, () => {
      let error: unknown
      try {
        compileJsonSchema(schema)
      } catch (caught) {
        error = caught
      }
      expect(error).toBeInstanceOf(InvalidArgumentError)
      expect(
        (error as InvalidArgumentError).param?.startsWith(param),
        `param ${(error as InvalidArgumentError).param}: ${(error as Error).message}`,
      ).toBe(true)
    })
  }

  it('a $ref through Object\'s or an array\'s own members points at nothing ("#/__proto__" compiled as any value)', () => {
    const cases: [unknown, string][] = [
      [{ $ref: '#/__proto__' }, 'schema.__proto__'],
      [
        { type: 'object', properties: { a: { $ref: '#/$defs/__proto__' } }, $defs: {} },
        'schema.$defs.__proto__',
      ],
      [{ $ref: '#/$defs/toString', $defs: {} }, 'schema.$defs.toString'],
      [{ anyOf: [{ type: 'null' }, { $ref: '#/anyOf/length' }] }, 'schema.anyOf.length'],
      [{ anyOf: [{ type: 'null' }, { $ref: '#/anyOf/01' }] }, 'schema.anyOf.01'],
    ]
    for (const [schema, param] of cases) {
      const error = refusal(schema)
      expect(error.param, JSON.stringify(schema)).toBe(param)
      expect(error.message).toContain('points at nothing')
    }
    // Members named like them are found: a property called "constructor", a def called "toString".
    const named = JSON.parse(
      '{"$defs":{"toString":{"type":"integer","minimum":0,"maximum":3}},"type":"object","properties":{"__proto__":{"$ref":"#/$defs/toString"}},"required":["__proto__"],"additionalProperties":false}',
    )
    expect(acceptsText(named, '{"__proto__":2}')).toBe(true)
    expect(acceptsText({ $ref: '#/anyOf/1', anyOf: [{ type: 'null' }, { const: 1 }] }, '1')).toBe(true)
  })

  it('allOf of one schema is that schema (a $ref wrapped to carry a description), walks validate (ajv)', () => {
    const schema = {
      $defs: {
        point: {
          type: 'object',
          properties: { x: { type: 'integer', minimum: 0, maximum: 9 } },
          required: ['x'],
          additionalProperties: false,
        },
      },
      type: 'object',
      properties: { at: { allOf: [{ $ref: '#/$defs/point' }], description: 'where' } },
      required: ['at'],
      additionalProperties: false,
    }
    const validate = ajv.compile(schema)
    for (let seed = 1; seed <= 5; seed++) {
      const { text, ended } = walk(schema, seed, 200, 8)
      expect(ended, text).toBe(true)
      expect(validate(JSON.parse(text)), `${text}: ${ajv.errorsText(validate.errors)}`).toBe(true)
    }
  })

  it('a schema of many strings whose checks build large automata is refused within a budget, not compiled for seconds', () => {
    // Each string alone is under the one-automaton bound; forty of them took 5.3 s of one thread.
    const properties: Record<string, unknown> = {}
    for (let index = 0; index < 40; index++)
      properties[`p${index}`] = { type: 'string', pattern: '^[ab]*a[ab]{8}$', minLength: 40 + index }
    let caught: unknown
    try {
      compileJsonSchema({ type: 'object', properties, required: Object.keys(properties) })
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError)
    expect((caught as InvalidArgumentError).param).toMatch(/^schema\.properties\.p\d+\.minLength$/)
    expect((caught as Error).message).toContain('more than 100000 states in all')
  })

  it("a request's patterns share a budget of NFA states (response format and tools together); one pattern repeated is compiled once", () => {
    const repeated: Record<string, unknown> = {}
    for (let index = 0; index < 50; index++)
      repeated[`p${index}`] = { type: 'string', pattern: '^(a{1000}){9}$' }
    expect(() => compileJsonSchema({ type: 'object', properties: repeated })).not.toThrow()
    // Distinct large patterns (500 of them took a server's heap past 4 GB) are refused, naming one.
    const distinct: Record<string, unknown> = {}
    for (let index = 0; index < 50; index++)
      distinct[`p${index}`] = {
        type: 'string',
        pattern: `^(${String.fromCharCode(0x4e00 + index)}{1000}){9}$`,
      }
    let caught: unknown
    try {
      compileJsonSchema({ type: 'object', properties: distinct })
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError)
    expect((caught as InvalidArgumentError).param).toMatch(/^schema\.properties\.p\d+\.pattern$/)
    expect((caught as Error).message).toContain('exceed 25,000 states in all')
  })

  it('accepts oneOf alternatives told apart by type or by a const tag', () => {
    expect(() => compileJsonSchema({ oneOf: [{ type: 'string' }, { type: 'integer' }] })).not.toThrow()
    expect(() =>
      compileJsonSchema({
        oneOf: [
          {
            type: 'object',
            properties: { kind: { const: 'a' }, x: { type: 'integer' } },
            required: ['kind'],
          },
          { type: 'object', properties: { kind: { const: 'b' }, y: { type: 'string' } }, required: ['kind'] },
        ],
      }),
    ).not.toThrow()
  })
})

/** The InvalidArgumentError compiling `schema` throws (the test fails when it compiles). */
function refusal(schema: unknown): InvalidArgumentError {
  try {
    compileJsonSchema(schema)
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError)
    return error as InvalidArgumentError
  }
  throw new Error(`compiled: ${JSON.stringify(schema)}`)
}

/** Whether the grammar takes `text` (fed byte by byte) as a whole document. */
function acceptsText(schema: unknown, text: string): boolean {
  const matcher = new GrammarMatcher(new Grammar(compileJsonSchema(schema).root), vocabulary)
  for (const byte of new TextEncoder().encode(text))
    if (!matcher.accept(vocabulary.idOfByte(byte))) return false
  return matcher.isComplete
}

/** Random walks of `schema` on the real vocabulary: each ends, and `validator` accepts it. */
function walksValidate(
  schema: unknown,
  validator: { compile: (schema: object) => ((value: unknown) => boolean) & { errors?: unknown } },
  seeds = 4,
  budget = 200,
): unknown[] {
  const validate = validator.compile(schema as object)
  const values: unknown[] = []
  for (let seed = 1; seed <= seeds; seed++) {
    const { text, ended } = walk(schema, seed, budget, 4, 40)
    expect(ended, `${JSON.stringify(schema)}: ${text}`).toBe(true)
    const value: unknown = JSON.parse(text)
    expect(
      validate(value),
      `${text} against ${JSON.stringify(schema)}: ${JSON.stringify(validate.errors)}`,
    ).toBe(true)
    values.push(value)
  }
  return values
}

describe('schemas without a value are refused before anything runs; values without one are left out', () => {
  it('strings no string satisfies (pattern ∩ format ∩ length bounds) are refused with the keyword and why', () => {
    const cases: [unknown, string, RegExp][] = [
      [
        { type: 'string', pattern: '^a{1,2}$', minLength: 3 },
        'schema.minLength',
        /pattern "\^a\{1,2\}\$" and minLength 3/,
      ],
      [
        { type: 'string', format: 'email', pattern: '^[a]$' },
        'schema.pattern',
        /both the pattern .* and the format "email"/,
      ],
      [{ type: 'string', format: 'date', pattern: '-02-29$' }, 'schema.pattern', /February at the 28th/],
      [
        { type: 'string', pattern: '^a{5}$', maxLength: 3 },
        'schema.maxLength',
        /at least 5 characters, more than maxLength \(3\)/,
      ],
      [
        { type: 'string', pattern: '^(a|aaaaa)$', minLength: 2, maxLength: 4 },
        'schema.maxLength',
        /at least 5/,
      ],
      [{ type: 'string', format: 'uuid', pattern: 'g' }, 'schema.pattern', /the format "uuid"/],
      [
        { type: 'string', pattern: '^a\\x01$' },
        'schema.pattern',
        /matches no string structured output can write/,
      ],
    ]
    for (const [schema, param, message] of cases) {
      const error = refusal(schema)
      expect(error.param, JSON.stringify(schema)).toBe(param)
      expect(error.message, JSON.stringify(schema)).toMatch(message)
      expect(error.message).not.toMatch(/bug in the grammar engine/)
    }
  })

  it('emptiness propagates: a required property, needed items, every alternative; the param names the cause', () => {
    const impossible = { type: 'string', pattern: '^a{1,2}$', minLength: 3 }
    const cases: [unknown, string][] = [
      [
        { type: 'object', properties: { name: impossible }, required: ['name'] },
        'schema.properties.name.minLength',
      ],
      [{ type: 'array', items: impossible, minItems: 1 }, 'schema.items.minLength'],
      [
        { type: 'array', prefixItems: [{ type: 'null' }, impossible], minItems: 2 },
        'schema.prefixItems.1.minLength',
      ],
      [{ anyOf: [impossible, { type: 'integer', minimum: 3, maximum: 2 }] }, 'schema.anyOf.0.minLength'],
      [{ type: 'object', properties: { a: false }, required: ['a'] }, 'schema.properties.a'],
      [
        { type: 'object', properties: { a: { type: 'string', enum: [1, 2] } }, required: ['a'] },
        'schema.properties.a.enum',
      ],
      [
        {
          $defs: { s: impossible },
          type: 'object',
          properties: { a: { $ref: '#/$defs/s' } },
          required: ['a'],
        },
        'schema.$defs.s.minLength',
      ],
    ]
    for (const [schema, param] of cases) {
      const error = refusal(schema)
      expect(error.param, `${JSON.stringify(schema)}: ${error.message}`).toBe(param)
      expect(error.message).toMatch(/none can be generated/)
    }
  })

  it('optional places without a value are never entered: walks validate (ajv)', () => {
    const impossible = { type: 'string', format: 'date', pattern: '-02-29$' }
    const reserved = {
      type: 'object',
      properties: { a: impossible, b: { type: 'integer' } },
      additionalProperties: { type: 'boolean' },
    }
    const schemas = [
      reserved,
      { type: 'object', properties: { a: false, b: { enum: [1] } }, required: ['b'] },
      { anyOf: [impossible, { type: 'integer', minimum: 0, maximum: 9 }] },
      { type: 'array', items: impossible, maxItems: 3 },
      { type: 'string', nullable: true, minLength: 4, maxLength: 2 },
    ]
    for (const schema of schemas) walksValidate(schema, ajv, 5)
    // The name of a property that can never be written stays reserved: no unlisted key takes it.
    expect(acceptsText(reserved, '{"c":true}')).toBe(true)
    expect(acceptsText(reserved, '{"a":true}')).toBe(false)
    // An item without a value ends the tuple before it.
    const tuple = { type: 'array', prefixItems: [{ type: 'boolean' }, impossible, { type: 'null' }] }
    const arrays = walksValidate(tuple, ajv, 5)
    expect(arrays.every((value) => Array.isArray(value) && value.length <= 1)).toBe(true)
  })

  it('pattern ∩ format ∩ length bounds that some string satisfies: walks end and validate (ajv)', () => {
    for (const schema of [
      { type: 'string', format: 'email', minLength: 12, maxLength: 20 },
      { type: 'string', format: 'date', pattern: '-02-2' },
      { type: 'string', format: 'uuid', pattern: '^0+-' },
      { type: 'string', pattern: '^(éxx|y)$', maxLength: 2 },
      { type: 'string', pattern: '^(a|aaaaa)$', minLength: 2, maxLength: 5 },
      { type: 'string', pattern: '^[a-c]{1,3}$', minLength: 3 },
    ]) {
      walksValidate(schema, ajv, 4, 120)
    }
  })

  it('numbers: bounds past 15 integer digits say so; no "-0"', () => {
    const far = refusal({ type: 'integer', minimum: 1e16 })
    expect(far.param).toBe('schema.minimum')
    expect(far.message).toMatch(/at most 15 integer digits/)
    expect(refusal({ type: 'integer', minimum: 1e15 }).message).toMatch(/at most 15 integer digits/)
    expect(refusal({ type: 'number', exclusiveMaximum: -1e15 }).param).toBe('schema.exclusiveMaximum')
    expect(refusal({ type: 'integer', minimum: 5, maximum: 4 }).message).toMatch(
      /No integer satisfies both minimum 5 and maximum 4/,
    )
    expect(refusal(null).message).toMatch(/got null\./)
    const age = { type: 'object', properties: { age: { type: 'integer', minimum: 0 } }, required: ['age'] }
    expect(acceptsText(age, '{"age":0}')).toBe(true)
    expect(acceptsText(age, '{"age":-0}')).toBe(false)
    expect(acceptsText({ type: 'integer' }, '-0')).toBe(false)
    expect(acceptsText({ type: 'integer' }, '-10')).toBe(true)
    for (const text of ['-0', '-0.0', '-0.000'])
      expect(acceptsText({ type: 'number' }, text), text).toBe(false)
    for (const text of ['0', '0.0', '-0.5', '-0.01'])
      expect(acceptsText({ type: 'number' }, text), text).toBe(true)
    expect(acceptsText({ type: 'number', minimum: -1, maximum: 0 }, '-0.0')).toBe(false)
  })

  it('multipleOf past 2^53: no multiple within 15 digits is refused; 0 alone is written, never a dead end', () => {
    // The double remainder rounded past 2^53, so every value looked like a multiple: the grammar
    // wrote digits no multiple completes, then threw mid-answer (a 500 on the edge).
    for (const step of [1e20, 2 ** 53, 1e300]) {
      expect(refusal({ type: 'integer', multipleOf: step, minimum: 1 }).param).toBe('schema.multipleOf')
      expect(acceptsText({ type: 'integer', multipleOf: step }, '0')).toBe(true)
      expect(acceptsText({ type: 'integer', multipleOf: step }, '1'), String(step)).toBe(false)
      expect(acceptsText({ type: 'integer', multipleOf: step }, '-1'), String(step)).toBe(false)
      expect(walk({ type: 'integer', multipleOf: step }, 1).text).toBe('0')
    }
  })

  it('a format named like an Object method is an unknown format, on strings and numbers', () => {
    // The format tables were plain objects: "constructor" found Object's own, so a string's was
    // refused as a bad pattern and a number's was taken as known and silently ignored.
    for (const format of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const text = refusal({ type: 'string', format })
      expect(text.param).toBe('schema.format')
      expect(text.message).toMatch(/is no JSON Schema format/)
      const number = refusal({ type: 'number', format })
      expect(number.param).toBe('schema.format')
      expect(number.message).toMatch(/"format" applies to string values/)
    }
  })

  it('a maxLength below the shortest string a format is written as says the grammar writes a subset', () => {
    // "::1" (ipv6) and "a:b" (uri) pass ajv: the refusal must not say that no such string exists.
    const ipv6 = refusal({ type: 'string', format: 'ipv6', maxLength: 3 })
    expect(ipv6.param).toBe('schema.maxLength')
    expect(ipv6.message).toMatch(/full form: eight groups, no "::"\) has at least 15 characters/)
    expect(refusal({ type: 'string', format: 'uri', maxLength: 3 }).message).toMatch(/http or https URL/)
    expect(refusal({ type: 'string', format: 'ipv4', maxLength: 6 }).message).not.toMatch(/written here/)
  })

  it('required names properties does not list follow additionalProperties (any value when absent)', () => {
    const open = { type: 'object', properties: { a: { type: 'boolean' } }, required: ['a', 'b'] }
    for (const value of walksValidate(open, ajv, 4)) expect(Object.keys(value as object)).toEqual(['a', 'b'])
    const typed = {
      type: 'object',
      required: ['n'],
      additionalProperties: { type: 'integer', minimum: 1, maximum: 3 },
    }
    for (const value of walksValidate(typed, ajv, 4)) expect(Object.keys(value as object)[0]).toBe('n')
    expect(acceptsText(typed, '{"n":2,"n":3}')).toBe(false)
    expect(acceptsText(typed, '{"m":2}')).toBe(false)
  })

  it("OpenAPI's annotations (example, externalDocs, xml) and x- extensions are accepted and change nothing", () => {
    // FastAPI apps and OpenAPI 3.0 documents write these; each was refused as a keyword that
    // cannot be enforced, though validators ignore them.
    const schema = {
      type: 'object',
      'x-order': ['b', 'a'],
      example: { a: 'xyz', b: 1 },
      properties: {
        a: { type: 'string', maxLength: 3, example: 'abc', 'x-go-type': 'string' },
        b: {
          type: 'integer',
          minimum: 0,
          maximum: 5,
          xml: { name: 'B' },
          externalDocs: { url: 'https://example.com' },
        },
      },
      required: ['a', 'b'],
      additionalProperties: false,
    }
    for (const value of walksValidate(schema, ajv, 4))
      expect(Object.keys(value as object)).toEqual(['a', 'b'])
    expect(acceptsText(schema, '{"a":"abcd","b":1}')).toBe(false)
    expect(acceptsText({ type: 'integer', maximum: 3, example: 9 }, '9')).toBe(false)
    // Bounded like default and examples (the chat template prints a tool's parameters).
    let deep: unknown = 1
    for (let level = 0; level < 100; level++) deep = [deep]
    expect(refusal({ type: 'string', 'x-deep': deep }).param).toBe('schema.x-deep')
    // Keywords that only look alike are still refused.
    expect(refusal({ type: 'string', examples2: [] }).param).toBe('schema.examples2')
  })

  it('nullable: true widens the type only: an enum or const beside it (or a combinator beside a type) must still admit null, as ajv and OpenAPI 3.0.3 read it', () => {
    // OpenAPI 3.0 documents and zod's openapi-3.0 target write nullable enums this way; null was
    // written for all of them, and ajv refused every such document.
    const withType: [unknown, boolean][] = [
      [{ type: 'string', enum: ['open', 'closed'], nullable: true }, false],
      [{ type: 'integer', const: 3, nullable: true }, false],
      [{ type: ['string', 'null'], enum: ['a'], nullable: true }, false],
      [{ type: 'string', allOf: [{ type: 'string' }], nullable: true }, false],
      [{ allOf: [{ type: 'string', enum: ['a', 'b'], nullable: true }, { description: 'Status' }] }, false],
      [{ type: 'string', enum: ['a', null], nullable: true }, true],
      [{ type: 'string', maxLength: 3, nullable: true }, true],
      [{ type: 'object', properties: { a: { type: 'string' } }, required: ['a'], nullable: true }, true],
      [{ type: 'string', anyOf: [{ maxLength: 2 }, { type: 'null' }], nullable: true }, true],
    ]
    for (const [schema, admitsNull] of withType) {
      expect(acceptsText(schema, 'null'), JSON.stringify(schema)).toBe(admitsNull)
      expect(ajv.validate(schema as object, null), JSON.stringify(schema)).toBe(admitsNull)
    }
    const nullableEnum = {
      type: 'object',
      properties: {
        status: { type: 'string', enum: ['open', 'closed'], nullable: true },
        count: { type: 'integer', const: 3, nullable: true },
      },
      required: ['status', 'count'],
      additionalProperties: false,
    }
    for (const value of walksValidate(nullableEnum, ajv, 6)) expect(value).not.toHaveProperty('status', null)
    // Without a type (ajv takes no such schema), OpenAPI 3.0 generators mean "or null" by it, as for
    // a nullable reference; an enum or const still has to list null.
    const reference = { allOf: [{ $ref: '#/$defs/x' }], nullable: true, $defs: { x: { type: 'string' } } }
    expect(acceptsText(reference, 'null')).toBe(true)
    expect(acceptsText({ enum: ['a'], nullable: true }, 'null')).toBe(false)
    expect(acceptsText({ enum: ['a', null], nullable: true }, 'null')).toBe(true)
  })
})

describe('keywords beside an anyOf/oneOf apply only to values of their type (JSON Schema)', () => {
  // From a schema trial (7 December): the keywords beside the anyOf were merged into each
  // alternative, and `properties` in the string alternative was refused as a mistake, naming
  // "schema.anyOf.0.properties", which the schema does not have.
  const refusal = (schema: unknown): InvalidArgumentError | undefined => {
    try {
      compileJsonSchema(schema)
    } catch (error) {
      if (error instanceof InvalidArgumentError) return error
      throw error
    }
    return undefined
  }

  it('an alternative of another type ignores them; the alternative of their type keeps them', () => {
    const schema = { properties: { a: { type: 'string' } }, anyOf: [{ type: 'string' }, { type: 'object' }] }
    expect(refusal(schema)).toBeUndefined()
    expect(acceptsText(schema, '"x"')).toBe(true)
    expect(acceptsText(schema, '{"a":"b"}')).toBe(true)
    expect(acceptsText(schema, '{"a":1}')).toBe(false)
    const typeList = {
      properties: { a: { type: 'boolean' } },
      minLength: 2,
      anyOf: [{ type: ['string', 'null'] }, { type: 'object' }],
    }
    expect(acceptsText(typeList, 'null')).toBe(true)
    expect(acceptsText(typeList, '"x"')).toBe(false)
    expect(acceptsText(typeList, '"xy"')).toBe(true)
    expect(acceptsText(typeList, '{"a":true}')).toBe(true)
    expect(acceptsText(typeList, '{"a":"x"}')).toBe(false)
    const reference = {
      $defs: { s: { type: 'string', maxLength: 2 } },
      required: ['n'],
      anyOf: [{ $ref: '#/$defs/s' }, { type: 'object' }],
    }
    expect(acceptsText(reference, '"ab"')).toBe(true)
    expect(acceptsText(reference, '{}')).toBe(false)
    expect(acceptsText(reference, '{"n":1}')).toBe(true)
    const nested = {
      minimum: 3,
      items: { type: 'null' },
      anyOf: [{ oneOf: [{ type: 'integer' }, { type: 'string' }] }, { type: 'array' }],
    }
    expect(acceptsText(nested, '2')).toBe(false)
    expect(acceptsText(nested, '3')).toBe(true)
    expect(acceptsText(nested, '"2"')).toBe(true)
    expect(acceptsText(nested, '[null]')).toBe(true)
    expect(acceptsText(nested, '[1]')).toBe(false)
    for (const each of [schema, typeList, reference, nested]) walksValidate(each, ajv, 12)
  })

  it('beside an enum/const, only the values that satisfy them are written; what cannot be checked is refused at its path', () => {
    const schema = { minLength: 3, anyOf: [{ enum: ['ab', 'abcd'] }] }
    expect(acceptsText(schema, '"abcd"')).toBe(true)
    expect(acceptsText(schema, '"ab"')).toBe(false)
    // Values of other types ignore them: 1 stays, a string keyword says nothing about a number.
    const mixed = { maxLength: 1, minimum: 2, anyOf: [{ enum: ['a', 'ab', 1, 2, null] }, { const: 'é' }] }
    expect(['"a"', '"ab"', '1', '2', 'null', '"é"'].map((text) => acceptsText(mixed, text))).toEqual([
      true,
      false,
      false,
      true,
      true,
      true,
    ])
    for (const each of [schema, mixed]) walksValidate(each, ajv, 12)
    expect(refusal({ minLength: 5, anyOf: [{ enum: ['ab'] }] })?.param).toBe('schema.anyOf.0.enum')
    expect(refusal({ pattern: '^a', anyOf: [{ enum: ['ab', 'b'] }] })?.param).toBe('schema.pattern')
    // A pattern beside only numbers says nothing about them.
    expect(acceptsText({ pattern: '^a', anyOf: [{ enum: [1, 2] }] }, '2')).toBe(true)
  })

  it('errors in a keyword written beside the anyOf name where it was written', () => {
    const lookahead = {
      anyOf: [{ type: 'string' }, { type: 'object' }],
      properties: { a: { pattern: '(?=x)' } },
    }
    expect(refusal(lookahead)?.param).toBe('schema.properties.a.pattern')
    const format = { format: 'regex', anyOf: [{ type: 'string' }, { type: 'object' }] }
    expect(refusal(format)?.param).toBe('schema.format')
    const items = { items: { format: 'regex' }, anyOf: [{ type: 'string' }, { type: 'array' }] }
    expect(refusal(items)?.param).toBe('schema.items.format')
    // A property of a schema beside an allOf is named there, not in the member that lists others.
    const besideAllOf = { allOf: [{ properties: { a: {} } }], properties: { b: { pattern: '(?=x)' } } }
    expect(refusal(besideAllOf)?.param).toBe('schema.properties.b.pattern')
    // A type beside the anyOf that no alternative shares: named there (was "schema.anyOf.0.allOf").
    expect(refusal({ type: 'object', anyOf: [{ type: 'string' }] })?.param).toBe('schema.type')
    // Its own schema's type still makes a keyword of another type a mistake.
    expect(refusal({ type: 'string', properties: {}, anyOf: [{ maxLength: 3 }] })?.param).toBe(
      'schema.properties',
    )
    expect(refusal({ minLength: -1, anyOf: [{ type: 'object' }] })?.param).toBe('schema.minLength')
  })

  it('a bound too large to be exact says so', () => {
    const infinite = refusal(JSON.parse('{"type":"number","minimum":1e400}'))
    expect(infinite?.param).toBe('schema.minimum')
    expect(infinite?.message).toMatch(/out of range/)
    expect(infinite?.message).not.toMatch(/got null/)
    const large = refusal({ type: 'string', minLength: 2 ** 53 + 1 })
    expect(large?.param).toBe('schema.minLength')
    expect(large?.message).toMatch(/too large/)
    expect(large?.message).not.toMatch(/whole number/)
    expect(refusal(JSON.parse('{"type":"integer","multipleOf":1e400}'))?.message).toMatch(/out of range/)
  })
})

describe('what zod becomes through the AI SDK (draft-07): records and tuples', () => {
  // The JSON Schema the ai package's zodSchema() gives for z.record(z.string(), z.number()),
  // z.object({ t: z.tuple([z.string().max(2), z.number()]) }) and z.tuple([z.string()]).rest(z.number()).
  const draft07 = 'http://json-schema.org/draft-07/schema#'
  const record = {
    $schema: draft07,
    type: 'object',
    propertyNames: { type: 'string' },
    additionalProperties: { type: 'number' },
  }
  const tuple = {
    $schema: draft07,
    type: 'object',
    properties: {
      t: {
        type: 'array',
        items: [{ type: 'string', maxLength: 2 }, { type: 'number' }],
        additionalItems: false,
        minItems: 2,
        maxItems: 2,
      },
    },
    required: ['t'],
    additionalProperties: false,
  }
  const rest = {
    $schema: draft07,
    type: 'array',
    items: [{ type: 'string', maxLength: 3 }],
    additionalItems: { type: 'boolean' },
    minItems: 1,
    maxItems: 4,
  }
  const draft07Ajv = new Ajv({ strict: false })

  it('records (propertyNames that allows every string) and draft-07 tuples walk to documents ajv (draft-07) accepts', () => {
    walksValidate(record, draft07Ajv, 4)
    for (const value of walksValidate(tuple, draft07Ajv, 4)) {
      const items = (value as { t: unknown[] }).t
      expect(typeof items[0]).toBe('string')
      expect(typeof items[1]).toBe('number')
    }
    for (const value of walksValidate(rest, draft07Ajv, 5)) {
      const [first, ...others] = value as unknown[]
      expect(typeof first).toBe('string')
      expect(others.every((item) => typeof item === 'boolean')).toBe(true)
    }
    // z.record(z.enum(['a', 'b']), z.number()): the names listed by propertyNames, both required.
    const keyed = {
      $schema: draft07,
      type: 'object',
      propertyNames: { type: 'string', enum: ['a', 'b'] },
      additionalProperties: { type: 'number' },
      required: ['a', 'b'],
    }
    for (const value of walksValidate(keyed, draft07Ajv, 4))
      expect(Object.keys(value as object)).toEqual(['a', 'b'])
    const optional = {
      type: 'object',
      propertyNames: { enum: ['x', 'y'] },
      additionalProperties: { type: 'null' },
    }
    for (const value of walksValidate(optional, draft07Ajv, 6))
      expect(Object.keys(value as object).every((key) => key === 'x' || key === 'y')).toBe(true)
    expect(acceptsText(optional, '{"z":null}')).toBe(false)
    // additionalItems false: nothing after the tuple; absent: anything (draft-07).
    expect(acceptsText(tuple, '{"t":["ab",1,2]}')).toBe(false)
    expect(acceptsText({ type: 'array', items: [{ type: 'null' }] }, '[null,"x",{}]')).toBe(true)
    // Without an items array, additionalItems constrains nothing in draft-07: accepted, no effect.
    expect(
      acceptsText({ type: 'array', items: { type: 'null' }, additionalItems: false }, '[null,null]'),
    ).toBe(true)
    expect(acceptsText({ type: 'object', propertyNames: true }, '{"x":1}')).toBe(true)
  })
})

describe('tool calls (Qwen3 syntax)', () => {
  const tools = [
    {
      name: 'get_weather',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 12 } },
        required: ['city'],
        additionalProperties: false,
      },
    },
    {
      name: 'add',
      parameters: {
        type: 'object',
        properties: { a: { type: 'integer' }, b: { type: 'integer' } },
        required: ['a', 'b'],
        additionalProperties: false,
      },
    },
  ]
  const open = tokenizer.tokenToId('<tool_call>')!
  const close = tokenizer.tokenToId('</tool_call>')!

  function run(options: Parameters<typeof compileConstraint>[0], seed: number): number[] {
    const state = new ConstraintState(compileConstraint(options)!, tokenizer)
    const next = random(seed)
    const tokens: number[] = []
    for (let step = 0; step < 300; step++) {
      const logits = new Float32Array(tokenizer.vocabularySize)
      state.mask(logits)
      const allowed: number[] = []
      for (let id = 0; id < logits.length; id++) if (logits[id]! > Number.NEGATIVE_INFINITY) allowed.push(id)
      const id = allowed[Math.floor(next() * allowed.length)]!
      if (eos.has(id)) {
        expect(state.isComplete).toBe(true)
        return tokens
      }
      expect(state.accept(id)).toBe(true)
      tokens.push(id)
    }
    throw new Error('no end')
  }

  function calls(tokens: number[]): { name: string; arguments: unknown }[] {
    const text = tokenizer.decode(tokens)
    return [...text.matchAll(/<tool_call>\n(.*?)\n<\/tool_call>/gs)].map(
      (match) => JSON.parse(match[1]!) as { name: string; arguments: unknown },
    )
  }

  it('required: the answer is one or more valid calls (parallel calls allowed by default)', () => {
    const counts: number[] = []
    for (let seed = 1; seed <= 6; seed++) {
      const tokens = run({ tools, toolChoice: 'required' }, seed)
      expect(tokens[0]).toBe(open)
      const found = calls(tokens)
      expect(found.length).toBeGreaterThan(0)
      counts.push(found.length)
      for (const call of found) {
        const tool = tools.find((candidate) => candidate.name === call.name)!
        expect(ajv.compile(tool.parameters)(call.arguments)).toBe(true)
      }
    }
    expect(Math.max(...counts), `calls per answer: ${counts}`).toBeGreaterThanOrEqual(2)
  })

  it('a named tool: only that tool, one call when parallel calls are off', () => {
    for (let seed = 1; seed <= 4; seed++) {
      const tokens = run({ tools, toolChoice: { name: 'add' }, parallelToolCalls: false }, seed)
      const found = calls(tokens)
      expect(found).toHaveLength(1)
      expect(found[0]!.name).toBe('add')
      expect(tokens.at(-1)).toBe(close)
    }
  })

  it('auto: text is free, an opened call is constrained; none: no call can open', () => {
    const state = new ConstraintState(compileConstraint({ tools, toolChoice: 'auto' })!, tokenizer)
    for (const id of tokenizer.encode('Let me check.', { addSpecialTokens: false }))
      expect(state.accept(id)).toBe(true)
    expect(state.accept(open)).toBe(true)
    const logits = new Float32Array(tokenizer.vocabularySize)
    state.mask(logits)
    const allowed: number[] = []
    for (let id = 0; id < logits.length; id++) if (logits[id] === 0) allowed.push(id)
    expect(allowed.map((id) => tokenizer.decode([id]))).toEqual(['\n'])
    const none = new ConstraintState(compileConstraint({ tools, toolChoice: 'none' })!, tokenizer)
    expect(none.accept(open)).toBe(false)
  })

  it('refuses bad tool lists with the field named', () => {
    const expectParam = (options: Parameters<typeof compileConstraint>[0], param: string): void => {
      let error: unknown
      try {
        compileConstraint(options)
      } catch (caught) {
        error = caught
      }
      expect(error).toBeInstanceOf(InvalidArgumentError)
      expect((error as InvalidArgumentError).param).toBe(param)
    }
    expectParam({ tools: [{ name: 'bad name', parameters: {} }] }, 'tools.0.name')
    expectParam({ tools: [{ name: 'a' }, { name: 'a' }] }, 'tools.1.name')
    expectParam({ tools: [{ name: 'a', parameters: { type: 'string' } }] }, 'tools.0.parameters')
    expectParam(
      {
        tools: [
          {
            name: 'a',
            parameters: { type: 'object', properties: { x: { type: 'string', format: 'regex' } } },
          },
        ],
      },
      'tools.0.parameters.properties.x.format',
    )
    expectParam({ tools, toolChoice: { name: 'missing' } }, 'toolChoice.name')
    expectParam({ toolChoice: 'required' }, 'toolChoice')
  })
})

describe('generate() with a constraint on the deterministic test session', () => {
  it('the token limit that cuts the document says partial; a finished one does not; a stop list is refused', async () => {
    const schema = {
      type: 'object',
      properties: { a: { type: 'string', maxLength: 4 } },
      required: ['a'],
      additionalProperties: false,
    }
    const run = (extra: { stop?: string[]; maxTokens?: number }) =>
      generateText(createTestSession({ vocabularySize: tokenizer.vocabularySize }), tokenizer, {
        promptTokenIds: tokenizer.encode('Hi', { addSpecialTokens: false }),
        sampling: { temperature: 1, seed: 4 },
        constraint: { responseFormat: { type: 'json_schema', schema } },
        maxTokens: extra.maxTokens ?? 40,
        ...(extra.stop ? { stop: extra.stop } : {}),
      })
    const whole = await run({})
    expect(whole.finishReason).toBe('stop')
    expect(whole.partial).toBeUndefined()
    expect(Object.keys(JSON.parse(whole.text) as object)).toEqual(['a'])
    // Stop strings match content, and the document is not content: a stop list could only do
    // nothing here, so it is refused rather than silently ignored.
    await expect(run({ stop: ['"a"', '}'] })).rejects.toMatchObject({
      code: 'invalid_argument',
      param: 'stop',
    })
    const cut = await run({ maxTokens: 2 })
    expect(cut).toMatchObject({ finishReason: 'length', partial: true })
    // The limit right at the closing `}` (the tokens before EOS) cut nothing: only EOS could follow.
    const atEnd = await run({ maxTokens: whole.tokenIds.length - 1 })
    expect(atEnd.text).toBe(whole.text)
    expect(atEnd.finishReason).toBe('stop')
    expect(atEnd.partial).toBeUndefined()
  })

  it('a limit at a complete document that could still grow is a cut: length, not partial', async () => {
    // An integer: `-5` is a complete document, but `-57` could follow.
    const digits = tokenizer.encode('-57', { addSpecialTokens: false })
    const promptTokenIds = tokenizer.encode('Hi', { addSpecialTokens: false })
    const answer = await generateText(
      createTestSession({
        vocabularySize: tokenizer.vocabularySize,
        favor: (tokens) => digits[tokens.length - promptTokenIds.length],
      }),
      tokenizer,
      {
        promptTokenIds,
        sampling: { temperature: 0 },
        constraint: { responseFormat: { type: 'json_schema', schema: { type: 'integer' } } },
        maxTokens: digits.length,
      },
    )
    expect(answer.text).toBe('-57')
    expect(answer.finishReason).toBe('length')
    expect(answer.partial).toBeUndefined()
  })
})
