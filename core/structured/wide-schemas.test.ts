// Schemas that are wide rather than ambiguous, and $ref pointers at the edges of JSON Pointer and
// URI fragment syntax. Each walk picks any allowed token of the real Qwen3 vocabulary (noise
// logits at temperature 1 do) and must end in a document ajv accepts.
import { Ajv2020 } from 'ajv/dist/2020.js'
import { describe, expect, it } from 'vitest'
import { allowedIds, seededRandom } from '../../test/support/grammar-masks.ts'
import { qwen3Tokenizer } from '../../test/support/qwen3-tokenizer.ts'
import { InvalidArgumentError } from '../errors.ts'
import { maxLiveStacks } from './frames.ts'
import { compileJsonSchema, Grammar, GrammarMatcher, vocabularyOf } from './index.ts'

const tokenizer = qwen3Tokenizer()
const vocabulary = vocabularyOf(tokenizer)
const eos = new Set(tokenizer.eosTokenIds)
const closers = [
  ...eos,
  ...['"', '}', ']'].flatMap((text) => tokenizer.encode(text, { addSpecialTokens: false })),
]

/**
 * Random walks over the grammar of `schema`: each ends in a document ajv accepts, or `accepts`
 * where given (ajv's compiler overflows its stack on an anyOf of thousands of alternatives).
 */
function expectWalksValid(schema: object, accepts?: (value: unknown) => boolean, walks = 3): string[] {
  const ajv = new Ajv2020({ strict: false })
  const validate = accepts ?? ajv.compile(schema)
  const grammar = new Grammar(compileJsonSchema(schema).root)
  const documents: string[] = []
  for (let seed = 1; seed <= walks; seed++) {
    const matcher = new GrammarMatcher(grammar, vocabulary)
    const bits = new Uint32Array(matcher.words)
    const next = seededRandom(seed * 7919 + 13)
    const tokens: number[] = []
    for (let step = 0; step < 400; step++) {
      matcher.fillMask(bits)
      const ids = allowedIds(bits)
      expect(ids.length, `dead end after ${tokenizer.decode(tokens)}`).toBeGreaterThan(0)
      let id = ids[Math.floor(next() * ids.length)]!
      if (next() < step / 40) id = closers.find((closer) => ids.includes(closer)) ?? id
      if (eos.has(id)) break
      expect(matcher.accept(id)).toBe(true)
      tokens.push(id)
    }
    const text = tokenizer.decode(tokens)
    expect(validate(JSON.parse(text)), `${text}: ${ajv.errorsText(ajv.errors)}`).toBe(true)
    documents.push(text)
  }
  return documents
}

/** Feeds `text` token by token, masking before each (throws what the mask throws). */
function feed(schema: unknown, text: string): void {
  const matcher = new GrammarMatcher(new Grammar(compileJsonSchema(schema).root), vocabulary)
  const bits = new Uint32Array(matcher.words)
  for (const id of tokenizer.encode(text, { addSpecialTokens: false })) {
    matcher.fillMask(bits)
    expect(matcher.accept(id)).toBe(true)
  }
  matcher.fillMask(bits)
}

const names = (count: number, prefix: string): string[] =>
  Array.from({ length: count }, (_, index) => `${prefix}${index}`)
// Past the bound on live readings (ajv compiles an object this wide; it overflows its stack at 2,048).
const wide = maxLiveStacks + 100

describe('wide schemas are not ambiguous ones', () => {
  it(`an object with ${wide} optional properties (a wide OpenAPI object): every key is one reading, not one per property (it failed at the first key as "too ambiguous")`, () => {
    const properties = Object.fromEntries(names(wide, 'field_').map((name) => [name, { type: 'integer' }]))
    feed({ type: 'object', properties, additionalProperties: false }, '{"field_1":1,"field_')
    expectWalksValid({ type: 'object', properties, additionalProperties: false })
    // With property counts and unlisted names beside them.
    expectWalksValid({
      type: 'object',
      properties,
      required: ['field_7'],
      minProperties: 2,
      maxProperties: 3,
      additionalProperties: { type: 'boolean' },
    })
  })

  it(`a record keyed by a propertyNames enum of ${wide} names`, () => {
    expectWalksValid({
      type: 'object',
      propertyNames: { enum: names(wide, 'key_') },
      additionalProperties: { type: 'integer' },
      maxProperties: 4,
    })
  })

  it(`anyOf / oneOf of ${wide} consts (an enum whose values carry descriptions) reads as one enum`, () => {
    for (const combinator of ['anyOf', 'oneOf']) {
      const alternatives = names(wide, 'v').map((value) => ({ const: value, description: `value ${value}` }))
      const values = new Set<unknown>(names(wide, 'v'))
      feed({ [combinator]: alternatives }, '"v1')
      expectWalksValid({ [combinator]: alternatives }, (value) => values.has(value))
      // Beside alternatives of other types, and values the consts share with an enum.
      expectWalksValid(
        {
          anyOf: [
            ...alternatives,
            { enum: ['v1', 'v2', 3, null] },
            { type: 'integer', minimum: 10, maximum: 20 },
          ],
        },
        (value) =>
          values.has(value) ||
          value === 3 ||
          value === null ||
          (Number.isInteger(value) && (value as number) >= 10 && (value as number) <= 20),
      )
    }
  })
})

describe('$ref pointers at the edges of their syntax', () => {
  function refusal(schema: unknown): InvalidArgumentError {
    try {
      compileJsonSchema(schema)
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidArgumentError)
      return error as InvalidArgumentError
    }
    throw new Error('compiled')
  }
  const pointingAt = (reference: string, defs: Record<string, unknown>): Record<string, unknown> => ({
    $defs: defs,
    type: 'object',
    properties: { x: { $ref: reference } },
    required: ['x'],
    additionalProperties: false,
  })

  it('"#/$defs/" is the definition named "" (it resolved to $defs itself, refused as a schema with the keyword "")', () => {
    const documents = expectWalksValid(pointingAt('#/$defs/', { '': { type: 'boolean' } }))
    for (const text of documents) expect(typeof (JSON.parse(text) as { x: unknown }).x).toBe('boolean')
    // "#" is still the root.
    expectWalksValid({ type: 'object', properties: { next: { $ref: '#' } }, additionalProperties: false })
  })

  it('"#/" is still the root, as ajv reads it (b2de378 refused it: "points at nothing: define it under $defs")', () => {
    // A linked list by its root (ajv accepts "#/" as "#"; so did this compiler before b2de378).
    const list = (reference: string, extra: Record<string, unknown> = {}) => ({
      ...extra,
      type: 'object',
      properties: { value: { type: 'integer' }, next: { anyOf: [{ $ref: reference }, { type: 'null' }] } },
      required: ['value', 'next'],
      additionalProperties: false,
    })
    expectWalksValid(list('#/'))
    expectWalksValid(list('https://example.com/list.json#/', { $id: 'https://example.com/list.json' }))
    feed(list('#/'), '{"value":1,"next":{"value":2,"next":null}}')
  })

  it('a "%" that starts no escape is refused naming the $ref (it threw URIError: a 500, not a 400)', () => {
    const error = refusal(pointingAt('#/$defs/50%', { '50%': { type: 'integer' } }))
    expect(error.param).toBe('schema.$defs')
    expect(error.message).toContain('$ref "#/$defs/50%" is not a valid URI fragment')
    expect(error.message).toContain('%25')
    expectWalksValid(pointingAt('#/$defs/50%25', { '50%': { type: 'integer' } }))
  })

  it('a $anchor under a name with "%" is found (its pointer was decoded as an escape: a URIError, or another definition)', () => {
    expectWalksValid(pointingAt('#half', { '50%': { $anchor: 'half', type: 'boolean' } }))
    for (const text of expectWalksValid(
      pointingAt('#a', { 'a%41': { $anchor: 'a', type: 'null' }, aA: { type: 'string' } }),
    ))
      expect(JSON.parse(text)).toEqual({ x: null })
  })

  it('a $anchor name given to two schemas is refused naming both (whichever the search met first was used; ajv refuses it too)', () => {
    const error = refusal({
      $defs: { a: { $anchor: 'x', type: 'integer' }, b: { $anchor: 'x', type: 'string' } },
      $ref: '#x',
    })
    expect([error.param, error.message]).toEqual([
      'schema.$defs.a.$anchor',
      expect.stringContaining('$anchor "x" names two schemas (also schema.$defs.b.$anchor)'),
    ])
    // Unreferenced, a repeated name is left alone (ajv refuses it even so); a name used once
    // resolves as before.
    expectWalksValid(
      {
        $defs: {
          a: { $anchor: 'x', type: 'integer' },
          b: { $anchor: 'x', type: 'string' },
          c: { $anchor: 'y', type: 'null' },
        },
        $ref: '#y',
      },
      (value) => value === null,
    )
  })
})
