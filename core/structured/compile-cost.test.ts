// What a schema costs the compiler stays in proportion to its size, or the schema is refused
// within a bound: a server compiles every request's schema on the thread that answers the others,
// and its body may be 1 MiB. Times are compared within the run, with a schema of the same size
// that lacks the cost in question, never against a fixed figure.
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../errors.ts'
import { compileJsonSchema } from './index.ts'

/** The fastest of a few compiles of `schema`, in milliseconds (the first also warms up). */
function compileTime(schema: unknown): number {
  let fastest = Number.POSITIVE_INFINITY
  for (let run = 0; run < 2; run++) {
    const started = performance.now()
    compileJsonSchema(schema)
    fastest = Math.min(fastest, performance.now() - started)
  }
  return fastest
}

/** How much longer `schema` compiles than `reference`, a schema of the same size without the cost in question. */
function slowdown(schema: unknown, reference: unknown): number {
  compileTime(reference) // warm up
  const time = compileTime(schema) / compileTime(reference)
  return time
}

function refusal(schema: unknown): InvalidArgumentError {
  try {
    compileJsonSchema(schema)
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError)
    return error as InvalidArgumentError
  }
  throw new Error('compiled')
}

const names = (count: number, prefix = 'p'): string[] =>
  Array.from({ length: count }, (_, index) => `${prefix}${index}`)

describe('compile cost', () => {
  it('required names cost what properties cost (each was searched for in the property list: 80,000 names, a 700 KB body, took 56 s)', () => {
    const listed = Object.fromEntries(names(15_000).map((name) => [name, { type: 'integer' }]))
    // Half the required names listed under properties, half not (their values follow additionalProperties).
    const schema = { type: 'object', properties: listed, required: [...names(15_000), ...names(15_000, 'q')] }
    const reference = {
      type: 'object',
      properties: {
        ...listed,
        ...Object.fromEntries(names(15_000, 'q').map((name) => [name, { type: 'integer' }])),
      },
    }
    expect(slowdown(schema, reference)).toBeLessThan(3)
  }, 60_000)

  it('oneOf: consts, enums and tagged objects are checked apart in one pass, near what anyOf costs (two by two, two enums of 30,000 values took 16 s)', () => {
    const withCombinator = (combinator: string, alternatives: unknown[]): unknown => ({
      [combinator]: alternatives,
    })
    const twoEnums = [{ enum: names(30_000, 'a') }, { enum: names(30_000, 'b') }]
    expect(slowdown(withCombinator('oneOf', twoEnums), withCombinator('anyOf', twoEnums))).toBeLessThan(5)
    const consts = names(8000, 'c').map((value) => ({ const: value }))
    expect(slowdown(withCombinator('oneOf', consts), withCombinator('anyOf', consts))).toBeLessThan(5)
    // A discriminated union beside a null alternative (pydantic's Optional[Union[...]], flattened).
    const tagged = [
      { type: 'null' },
      ...names(4000, 't').map((tag) => ({
        type: 'object',
        properties: { kind: { const: tag }, value: { type: 'string' } },
        required: ['kind', 'value'],
        additionalProperties: false,
      })),
    ]
    expect(slowdown(withCombinator('oneOf', tagged), withCombinator('anyOf', tagged))).toBeLessThan(5)
  }, 60_000)

  it('oneOf: what overlaps is still refused naming the two alternatives; another tag may tell them apart', () => {
    expect(refusal({ oneOf: [{ const: 1 }, { const: 2 }, { enum: [3, 1] }] }).message).toContain(
      'alternatives 0 and 2',
    )
    const object = (kind: string, sub: number): unknown => ({
      type: 'object',
      properties: { kind: { const: kind }, sub: { const: sub } },
      required: ['kind', 'sub'],
    })
    expect(
      refusal({ oneOf: [object('a', 1), object('b', 1), { type: 'string' }, object('a', 1)] }).message,
    ).toContain('alternatives 0 and 3')
    // "kind" repeats, "sub" tells every two apart.
    expect(() => compileJsonSchema({ oneOf: [object('a', 1), object('a', 2), object('b', 3)] })).not.toThrow()
    expect(
      refusal({ oneOf: [{ type: 'string' }, object('a', 1), { type: ['string', 'null'] }] }).message,
    ).toContain('alternatives 0 and 2')
  })

  it('oneOf: alternatives only two by two can tell apart are checked within a bound, then refused', () => {
    // Each object has two of the tags a, b, c: every two share one (with different values), none
    // all of them, so no one pass decides it.
    const schemaOf = (count: number): unknown => ({
      oneOf: Array.from({ length: count }, (_, index) => {
        const tags = [
          ['a', 'b'],
          ['b', 'c'],
          ['a', 'c'],
        ][index % 3]!
        return {
          type: 'object',
          properties: Object.fromEntries(tags.map((tag) => [tag, { const: index }])),
          required: tags,
        }
      }),
    })
    expect(() => compileJsonSchema(schemaOf(300))).not.toThrow()
    const refused = refusal(schemaOf(3000))
    expect(refused.param).toBe('schema.oneOf')
    expect(refused.message).toMatch(/too many alternatives \(3000\).*use anyOf/)
  })

  it('patterns under one allOf: their intersection is bounded by the work it takes, not only its states (400 two-letter patterns took 20 s)', () => {
    const schemaOf = (count: number): unknown => ({
      allOf: Array.from({ length: count }, (_, index) => ({
        type: 'string',
        pattern: `${String.fromCharCode(97 + (index % 26))}${String.fromCharCode(97 + Math.floor(index / 26))}`,
      })),
    })
    const refused = refusal(schemaOf(100))
    // The first pattern where it is written (the merged "schema.pattern" is no path of the schema).
    expect(refused.param).toBe('schema.allOf.0.pattern')
    expect(refused.message).toContain('takes too much work')
    // Names a few of them, not all a hundred.
    expect(refused.message).toContain(
      'the pattern "aa" and the pattern "ba" and the pattern "ca" and 97 other',
    )
    // What password rules look like still compiles.
    expect(() =>
      compileJsonSchema({
        type: 'string',
        allOf: [{ pattern: '[a-z]' }, { pattern: '[A-Z]' }, { pattern: '\\d' }, { pattern: '[^A-Za-z0-9]' }],
        minLength: 12,
        maxLength: 64,
      }),
    ).not.toThrow()
  })
})
