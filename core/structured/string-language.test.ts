// A string's language (pattern ∩ pattern ∩ length bounds) against JavaScript's own RegExp: random
// patterns over the letters a, b, é and random length bounds. The emptiness decided at compile
// time and the shortest string agree with a brute-force search; and the grammar, explored byte by
// byte over every prefix it allows, never reaches a state that cannot go on, and closes only
// strings RegExp accepts within the bounds.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { qwen3Tokenizer } from '../../test/support/qwen3-tokenizer.ts'
import { compileJsonSchema, Grammar, GrammarMatcher, vocabularyOf } from './index.ts'
import { stringNode } from './json-schema.ts'
import { compilePattern } from './regex.ts'
import { type StringConstraint, stringLanguage } from './string-language.ts'

const vocabulary = vocabularyOf(qwen3Tokenizer())
const letters = ['a', 'b', 'é']

const atom = fc.constantFrom('a', 'b', 'é', '[ab]', '(a|bb)', '(é|ab)', '(?:ba)', '.')
const quantifier = fc.constantFrom('', '', '?', '*', '+', '{2}', '{1,3}', '{0,2}')
const sequence = fc
  .array(fc.tuple(atom, quantifier), { minLength: 1, maxLength: 3 })
  .map((items) => items.map(([item, count]) => item + count).join(''))
const alternative = fc
  .tuple(fc.boolean(), sequence, fc.boolean())
  .map(([start, body, end]) => `${start ? '^' : ''}${body}${end ? '$' : ''}`)
const pattern = fc.oneof(
  alternative,
  fc.tuple(alternative, alternative).map(([left, right]) => `${left}|${right}`),
)
const bounds = fc.record({
  minLength: fc.integer({ min: 0, max: 4 }),
  maxLength: fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constant(Number.POSITIVE_INFINITY)),
})

/** The shortest string over a, b, é of length minLength..min(maxLength, 8) all patterns match. */
function shortestByBruteForce(
  patterns: readonly RegExp[],
  minLength: number,
  maxLength: number,
): number | undefined {
  let layer = ['']
  for (let length = 0; length <= Math.min(maxLength, 8); length++) {
    if (length >= minLength && layer.some((text) => patterns.every((each) => each.test(text)))) return length
    layer = layer.flatMap((text) => letters.map((letter) => text + letter))
  }
  return undefined
}

/**
 * Every prefix the grammar allows over the bytes of a, b, é (up to `depth` bytes after the
 * opening quote) can go on, and every string it closes passes `valid`. Returns the strings closed.
 */
function explore(grammar: Grammar, depth: number, valid: (text: string) => boolean): string[] {
  const closed: string[] = []
  const bytes = [0x61, 0x62, 0xc3, 0xa9]
  const opened = new GrammarMatcher(grammar, vocabulary)
  expect(opened.accept(vocabulary.idOfByte(0x22))).toBe(true)
  const pending: [GrammarMatcher, number[]][] = [[opened, []]]
  while (pending.length > 0) {
    const [matcher, prefix] = pending.pop()!
    let goesOn = false
    const close = matcher.fork()
    if (close.accept(vocabulary.idOfByte(0x22))) {
      goesOn = true
      expect(close.isComplete).toBe(true)
      const text = new TextDecoder().decode(Uint8Array.from(prefix))
      expect(valid(text), JSON.stringify(text)).toBe(true)
      closed.push(text)
    }
    for (const byte of bytes) {
      const next = matcher.fork()
      if (!next.accept(vocabulary.idOfByte(byte))) continue
      goesOn = true
      if (prefix.length < depth) pending.push([next, [...prefix, byte]])
    }
    // Over a, b and é alone: a completion of these patterns never needs another character.
    expect(
      goesOn,
      `dead end after ${JSON.stringify(new TextDecoder().decode(Uint8Array.from(prefix)))}`,
    ).toBe(true)
  }
  return closed
}

describe('string languages: pattern ∩ pattern ∩ length bounds', () => {
  it('emptiness and the shortest string match RegExp; the grammar never dead-ends and closes only valid strings', () => {
    let empty = 0
    let explored = 0
    fc.assert(
      fc.property(
        fc.array(pattern, { minLength: 1, maxLength: 2 }),
        bounds,
        (sources, { minLength, maxLength }) => {
          const expressions = sources.map((source) => new RegExp(source, 'u'))
          const constraints: StringConstraint[] = sources.map((source, index) => ({
            automaton: compilePattern(source, `schema.${index}`),
            param: index === 0 ? 'schema.pattern' : 'schema.format',
            label: `the pattern ${JSON.stringify(source)}`,
          }))
          const language = stringLanguage(constraints, minLength, maxLength, 'schema')
          const shortest = shortestByBruteForce(expressions, minLength, maxLength)
          const label = `${JSON.stringify(sources)} minLength ${minLength} maxLength ${maxLength}`
          if (language.empty) {
            empty++
            // Refused: no string at all (the brute force looks up to 8 characters; beyond that the
            // automaton's own distance, >= 9, would have been past maxLength or found).
            expect(shortest, label).toBeUndefined()
            expect(language.message).toMatch(/No string|more than maxLength|no string fits/)
            return
          }
          const distance = language.automaton === undefined ? 0 : language.automaton.start.distance
          expect(distance >= minLength || language.automaton === undefined, label).toBe(true)
          if (shortest !== undefined) expect(Math.max(distance, minLength), label).toBe(shortest)
          else expect(distance, label).toBeGreaterThan(8)
          const grammar = new Grammar(stringNode(0, minLength, maxLength, language.automaton, false))
          const valid = (text: string): boolean => {
            const length = [...text].length
            return (
              length >= minLength &&
              length <= maxLength &&
              expressions.every((expression) => expression.test(text))
            )
          }
          const closed = explore(grammar, 9, valid)
          if (shortest !== undefined && shortest <= 4) expect(closed.length, label).toBeGreaterThan(0)
          explored++
        },
      ),
      { numRuns: Number(process.env.STRUCTURED_RUNS ?? 150), seed: Number(process.env.STRUCTURED_SEED ?? 7) },
    )
    // Both outcomes were exercised.
    expect(empty).toBeGreaterThan(5)
    expect(explored).toBeGreaterThan(20)
  })

  it('a pattern whose only completion is a character the grammar never writes is refused', () => {
    expect(() => compilePattern('^a\\x01$', 'schema.pattern')).toThrow(
      /matches no string structured output can write/,
    )
    // With another way on, the unwritable one is just never taken.
    const grammar = new Grammar(stringNode(0, 0, 3, compilePattern('^a(\\x01|b)$', 'p'), false))
    expect(explore(grammar, 4, (text) => text === 'ab')).toEqual(['ab'])
  })

  it('JavaScript anchors per alternative: ^a|b$ is "starts with a, or ends with b"', () => {
    const grammar = new Grammar(stringNode(0, 2, 2, compilePattern('^a|b$', 'p'), false))
    expect(new Set(explore(grammar, 4, (text) => /^a|b$/u.test(text)))).toEqual(
      new Set(['aa', 'ab', 'aé', 'bb', 'éb']),
    )
  })
})

describe('patterns read as RegExp reads them with the u flag (as validators run them)', () => {
  it('a lone "}" or "]" is refused, as RegExp refuses it and "{" already was (they were literals: ajv cannot compile such a schema)', () => {
    for (const source of ['^a}$', '^a]$', 'x{1}}']) {
      expect(() => new RegExp(source, 'u'), source).toThrow(SyntaxError)
      expect(() => compilePattern(source, 'schema.pattern'), source).toThrow(
        /a lone "[}\]]" \(escape it as \\[}\]]\)/,
      )
    }
    // Escaped, or inside a class, they are characters.
    for (const source of ['^a\\}\\]$', '^[}\\]]$']) {
      expect(() => new RegExp(source, 'u'), source).not.toThrow()
      expect(() => compilePattern(source, 'schema.pattern'), source).not.toThrow()
    }
  })

  it('a surrogate pair written as two \\u escapes is one code point (it was read as two lone surrogates: the pattern matched nothing and was refused)', () => {
    for (const source of ['^\\uD83D\\uDE00$', '^[\\uD83D\\uDE00-\\uD83D\\uDE02]$']) {
      const grammar = new Grammar(compileJsonSchema({ type: 'string', pattern: source }).root)
      const matcher = new GrammarMatcher(grammar, vocabulary)
      for (const byte of new TextEncoder().encode('"😀"'))
        expect(matcher.accept(vocabulary.idOfByte(byte))).toBe(true)
      expect(matcher.isComplete).toBe(true)
      expect(new RegExp(source, 'u').test('😀')).toBe(true)
    }
  })
})
