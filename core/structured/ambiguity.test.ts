// Overlapping anyOf alternatives are legal, but nested ones multiply the live readings of the
// document (one stack per alternative that still fits): past a bound the request is refused with
// the field at fault instead of taking seconds and gigabytes per token.
import { Ajv2020 } from 'ajv/dist/2020.js'
import { describe, expect, it } from 'vitest'
import { allowedIds, seededRandom as random } from '../../test/support/grammar-masks.ts'
import { qwen3Tokenizer } from '../../test/support/qwen3-tokenizer.ts'
import { InvalidArgumentError } from '../errors.ts'
import { maxLivePatternStrings, maxLiveStacks } from './frames.ts'
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

describe('anyOf alternatives that overlap: the live readings are bounded', () => {
  /** Each level: two arrays that differ only in maxItems, so every `[` doubles the readings. */
  function overlapping(depth: number): Record<string, unknown> {
    const defs: Record<string, unknown> = {}
    for (let level = 0; level < depth; level++) {
      const items = level + 1 < depth ? { $ref: `#/$defs/d${level + 1}` } : { type: 'integer' }
      defs[`d${level}`] = { anyOf: [5, 6].map((maxItems) => ({ type: 'array', items, maxItems })) }
    }
    return { $defs: defs, $ref: '#/$defs/d0' }
  }

  /** Masks and feeds `ids` one by one; returns the error that stopped it (fails when none did). */
  function feedUntilRefused(state: ConstraintState, ids: readonly number[]): InvalidArgumentError {
    const logits = new Float32Array(tokenizer.vocabularySize)
    try {
      for (const id of ids) {
        logits.fill(0)
        state.mask(logits)
        expect(logits[id]).toBeGreaterThan(Number.NEGATIVE_INFINITY)
        expect(state.accept(id)).toBe(true)
      }
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidArgumentError)
      return error as InvalidArgumentError
    }
    throw new Error('every token was taken')
  }

  const bytes = (text: string) => [...new TextEncoder().encode(text)].map((byte) => vocabulary.idOfByte(byte))

  it('doubling readings per `[` (2^20 at depth 20): refused with the field and how to fix it, not computed', () => {
    const constraint = compileConstraint({
      responseFormat: { type: 'json_schema', schema: overlapping(20) },
    })!
    const error = feedUntilRefused(new ConstraintState(constraint, tokenizer), bytes('['.repeat(20)))
    expect(error.code).toBe('invalid_argument')
    expect(error.param).toBe('responseFormat')
    expect(error.isRetryable).toBe(false)
    expect(error.message).toContain(`more than ${maxLiveStacks} readings`)
    expect(error.message).toMatch(/anyOf alternatives overlap.*distinguishable.*const tag.*fewer/s)
  })

  it('in tool parameters the error names tools', () => {
    const { $defs } = overlapping(20)
    const parameters = { type: 'object', $defs, properties: { x: { $ref: '#/$defs/d0' } }, required: ['x'] }
    const constraint = compileConstraint({ tools: [{ name: 't', parameters }], toolChoice: 'required' })!
    const state = new ConstraintState(constraint, tokenizer)
    const open = tokenizer.tokenToId('<tool_call>')!
    const error = feedUntilRefused(state, [
      open,
      ...bytes(`\n{"name":"t","arguments":{"x":${'['.repeat(20)}`),
    ])
    expect(error.param).toBe('tools')
    expect(error.message).toContain(`more than ${maxLiveStacks} readings`)
  })

  it('overlap below the bound (32 readings) still walks to valid documents (ajv)', () => {
    const schema = overlapping(5)
    const validate = new Ajv2020({ strict: false }).compile(schema)
    const closers = [...tokenizer.eosTokenIds, ...bytes(']')]
    for (let seed = 1; seed <= 3; seed++) {
      const matcher = new GrammarMatcher(new Grammar(compileJsonSchema(schema).root), vocabulary)
      const bits = new Uint32Array(matcher.words)
      const next = random(seed)
      const tokens: number[] = []
      let ended = false
      for (let step = 0; step < 200 && !ended; step++) {
        matcher.fillMask(bits)
        const ids = allowedIds(bits)
        let id = ids[Math.floor(next() * ids.length)]!
        // After a few free steps, close whenever closing is allowed (the walk ends).
        if (step >= 12) id = closers.find((closer) => ids.includes(closer)) ?? id
        if (tokenizer.eosTokenIds.includes(id)) ended = true
        else {
          expect(matcher.accept(id)).toBe(true)
          tokens.push(id)
        }
      }
      const text = tokenizer.decode(tokens)
      expect(ended, text).toBe(true)
      expect(validate(JSON.parse(text)), text).toBe(true)
    }
  })

  it(`strings under more than ${maxLivePatternStrings} distinct patterns live at once: refused at the quote (1,000 took 9-14 s per token, each pattern state a pass over the vocabulary)`, () => {
    const alternatives = Array.from({ length: 40 }, (_, index) => ({
      type: 'string',
      pattern: `^[a-z]*${index}?`,
    }))
    for (const [schema, text, param] of [
      [{ anyOf: alternatives }, '"', 'responseFormat'],
      // Inside objects that overlap up to the string.
      [
        {
          anyOf: alternatives.map((alternative) => ({
            type: 'object',
            properties: { a: alternative },
            required: ['a'],
          })),
        },
        '{"a":"',
        'responseFormat',
      ],
    ] as const) {
      const constraint = compileConstraint({ responseFormat: { type: 'json_schema', schema } })!
      const error = feedUntilRefused(new ConstraintState(constraint, tokenizer), [
        ...bytes(text),
        bytes('a')[0]!,
      ])
      expect(error.param).toBe(param)
      expect(error.message).toContain('40 strings under different patterns or formats are live at once')
      expect(error.message).toContain('const tag')
    }
    // Every format in one anyOf (nine pattern states at the quote) stays below the bound: six tokens
    // into the string, no mask refuses (nothing here checks a finished document).
    const formats = ['date', 'date-time', 'time', 'email', 'uri', 'uuid', 'ipv4', 'ipv6', 'hostname']
    const schema = { anyOf: formats.map((format) => ({ type: 'string', format })) }
    const grammar = new Grammar(compileJsonSchema(schema).root)
    for (let seed = 1; seed <= 2; seed++) {
      const matcher = new GrammarMatcher(grammar, vocabulary)
      const bits = new Uint32Array(matcher.words)
      const next = random(seed)
      for (let step = 0; step < 6; step++) {
        matcher.fillMask(bits)
        const ids = allowedIds(bits).filter((id) => !tokenizer.eosTokenIds.includes(id))
        if (ids.length === 0) break
        expect(matcher.accept(ids[Math.floor(next() * ids.length)]!)).toBe(true)
      }
    }
  })
})
