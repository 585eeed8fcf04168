// Every schema of the corpus (test/support/schema-corpus.ts: OpenAI's structured-output examples,
// zod through zod 4's toJSONSchema and the AI SDK, draft 2020-12 keywords, large and deep schemas)
// is either enforced, and random walks over the real Qwen3 vocabulary (any allowed token, as noise
// logits at temperature 1 pick them) never dead-end and end in documents ajv accepts under the
// schema's draft, or refused before anything runs naming the keyword's path.
import { Ajv } from 'ajv'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import { describe, expect, it } from 'vitest'
import { allowedIds, seededRandom } from '../../test/support/grammar-masks.ts'
import { qwen3Tokenizer } from '../../test/support/qwen3-tokenizer.ts'
import { schemaCorpus } from '../../test/support/schema-corpus.ts'
import { InvalidArgumentError } from '../errors.ts'
import { compileJsonSchema, Grammar, GrammarMatcher, vocabularyOf } from './index.ts'

const tokenizer = qwen3Tokenizer()
const vocabulary = vocabularyOf(tokenizer)
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (instance: Ajv | Ajv2020) => void
const eos = new Set(tokenizer.eosTokenIds)
/** EOS, then what ends a string, an object, an array: picked more and more often, so walks end. */
const closers = [
  ...eos,
  ...['"', '}', ']'].flatMap((text) => tokenizer.encode(text, { addSpecialTokens: false })),
]
const walks = 3
const maxSteps = 1500

describe('the schema corpus at the grammar', () => {
  it.each(schemaCorpus.filter((entry) => entry.refused === undefined).map((entry) => [entry.name, entry]))(
    '%s: walks end in valid documents',
    (_, entry) => {
      const draft = String((entry.schema as { $schema?: unknown } | undefined)?.$schema ?? '')
      const ajv = draft.includes('draft-07') ? new Ajv({ strict: false }) : new Ajv2020({ strict: false })
      addFormats(ajv)
      const validate = ajv.compile(entry.schema as object)
      const grammar = new Grammar(compileJsonSchema(entry.schema).root)
      let ended = 0
      for (let seed = 1; seed <= walks; seed++) {
        const matcher = new GrammarMatcher(grammar, vocabulary)
        const bits = new Uint32Array(matcher.words)
        const next = seededRandom(seed * 7919 + 13)
        const tokens: number[] = []
        let done = false
        for (let step = 0; step < maxSteps && !done; step++) {
          matcher.fillMask(bits)
          const ids = allowedIds(bits)
          expect(ids.length, `dead end after ${tokenizer.decode(tokens)}`).toBeGreaterThan(0)
          let id = ids[Math.floor(next() * ids.length)]!
          if (next() < step / 60) id = closers.find((closer) => ids.includes(closer)) ?? id
          if (eos.has(id)) done = true
          else {
            expect(matcher.accept(id)).toBe(true)
            tokens.push(id)
          }
        }
        if (!done) continue
        ended++
        const text = tokenizer.decode(tokens)
        const value: unknown = JSON.parse(text)
        expect(validate(value), `${text}: ${ajv.errorsText(validate.errors)}`).toBe(true)
      }
      expect(ended, 'no walk ended').toBeGreaterThan(0)
    },
    60_000,
  )

  it.each(schemaCorpus.filter((entry) => entry.refused !== undefined).map((entry) => [entry.name, entry]))(
    '%s: refused naming the keyword',
    (_, entry) => {
      let caught: unknown
      try {
        compileJsonSchema(entry.schema)
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(InvalidArgumentError)
      expect((caught as InvalidArgumentError).param).toBe(entry.refused)
    },
  )
})
