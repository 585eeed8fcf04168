// Schemas of the corpus (test/support/schema-corpus.ts: OpenAI's examples, zod through the AI SDK,
// draft 2020-12 keywords, large and deep schemas) through the public paths on a tiny random-weight
// Qwen3 package, whose noise logits at temperature 1 wander all over the grammar: the SDK's
// createClient on the device, and the server `ondevice serve` runs (createApp + serveApp) over
// HTTP with the official openai client. Every answer either finishes ('stop') with a document
// ajv accepts under the schema's draft, or is cut by max_tokens and says so ('length', partial);
// every schema the compiler cannot enforce is refused before anything runs, naming the keyword's
// path (InvalidArgumentError on the device, a 400 on the wire).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/index.ts'
import { InvalidArgumentError } from '../../core/errors.ts'
import { createClient } from '../../sdk/client.ts'
import { createApp } from '../../worker/app.ts'
import { createNodeModelHost, type RunningServer, serveApp } from '../../worker/node.ts'
import { type CorpusEntry, schemaCorpus } from '../support/schema-corpus.ts'

const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (instance: Ajv | Ajv2020) => void

/** ajv under the schema's own draft (07 or 2020-12), with ajv-formats' full formats. */
function validatorFor(entry: CorpusEntry): (value: unknown) => string | undefined {
  const draft = String((entry.schema as { $schema?: unknown } | undefined)?.$schema ?? '')
  const ajv = draft.includes('draft-07') ? new Ajv({ strict: false }) : new Ajv2020({ strict: false })
  addFormats(ajv)
  const validate = ajv.compile(entry.schema as object)
  return (value) => (validate(value) ? undefined : ajv.errorsText(validate.errors))
}

// A token costs tens of milliseconds here (the model and the mask on 2 shared cores), so each path
// answers a share of the corpus (core/structured/schema-corpus.test.ts walks all of it, many times
// each); the refusals are cheap and all go through both. CORPUS_ALL=1 sends every schema down both
// paths, CORPUS_SEEDS=N answers each N times (a longer trial than CI's).
const everyEnforced =
  process.env.CORPUS_ALL === '1' ? schemaCorpus.filter((entry) => entry.refused === undefined) : undefined
const named = (names: readonly string[]): CorpusEntry[] =>
  names.map((name) => {
    const entry = schemaCorpus.find((each) => each.name === name)
    if (entry === undefined) throw new Error(`no corpus entry ${name}`)
    return entry
  })
const onDevice =
  everyEnforced ??
  named([
    'openai: UI with $defs and anyOf of components',
    'openai: content moderation (nullable through anyOf and type lists)',
    'openai: function get_weather with strict unit enum',
    'AI SDK zod 4: discriminated union',
    'AI SDK zod 3: intersection',
    'AI SDK zod 4: recipe',
    'recursive tree through $defs',
    'enum and const of objects and arrays',
    'nullable types as type arrays',
    'large: enum of 2,000 strings',
    'properties beside anyOf of string and object',
  ])
const onServer =
  everyEnforced ??
  named([
    'openai: UI generation (recursive through #)',
    'zod 4 toJSONSchema: recursive category',
    'zod 4 toJSONSchema: intersection',
    'mutually recursive $defs (expression tree)',
    'oneOf with distinct types',
    'allOf merge of objects',
    'OpenAPI nullable: true',
    'prefixItems tuple with items false',
    'draft-07 definitions and items array',
    'discriminator (pydantic)',
    'unicode property names',
    'large: 200 $defs in a chain of refs',
    'minLength beside anyOf of enums (the values of its type must satisfy it)',
  ])
/** Per test: the longer trial answers hundreds of requests. */
const timeout = everyEnforced === undefined ? 120_000 : 3_600_000
const refused = schemaCorpus.filter((entry) => entry.refused !== undefined)
const messages = [{ role: 'user' as const, content: 'Answer with the JSON the schema asks for.' }]
const seeds = Number(process.env.CORPUS_SEEDS ?? 1)
const maxTokens = 64

/** What one answer must be: a finished valid document, or a cut that says it is partial. */
function checkAnswer(
  entry: CorpusEntry,
  answer: { readonly finishReason: string; readonly partial?: boolean | undefined; readonly text: string },
  where: string,
): void {
  const context = `${entry.name} (${where}): ${answer.finishReason} ${answer.text.slice(0, 400)}`
  if (answer.finishReason === 'length') {
    expect(answer.partial, context).toBe(true)
    return
  }
  expect(answer.finishReason, context).toBe('stop')
  expect(answer.partial, context).toBeFalsy()
  const value: unknown = JSON.parse(answer.text)
  expect(validatorFor(entry)(value), context).toBeUndefined()
}

let folder: string
let packageDir: string
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-schema-corpus-'))
  packageDir = join(folder, 'qwen3-tiny')
  await writeFixture({ arch: 'qwen3', outDir: packageDir, seed: 5, dtype: 'q8' })
}, timeout)

afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true })
})

describe('the schema corpus through the public paths', () => {
  it(
    'the SDK on the device: every answer a valid document or a cut marked partial; unsupported keywords refused naming their path',
    async () => {
      const client = createClient({ model: packageDir, policy: 'device-only' })
      try {
        for (const entry of onDevice) {
          for (let seed = 1; seed <= seeds; seed++) {
            const result = await client.chat({
              messages,
              responseFormat: { type: 'json_schema', schema: entry.schema as object },
              temperature: 1,
              seed,
              maxTokens,
            })
            checkAnswer(entry, result, `device, seed ${seed}`)
          }
        }
        for (const entry of refused) {
          const error = await client
            .chat({
              messages,
              responseFormat: { type: 'json_schema', schema: entry.schema as object },
              maxTokens,
            })
            .then(
              () => undefined,
              (caught: unknown) => caught,
            )
          expect(error, entry.name).toBeInstanceOf(InvalidArgumentError)
          expect((error as InvalidArgumentError).param, entry.name).toBe(`responseFormat.${entry.refused}`)
        }
      } finally {
        await client.dispose()
      }
    },
    timeout,
  )

  describe('the server over HTTP, with the openai client', () => {
    let server: RunningServer
    let openai: OpenAI
    beforeAll(async () => {
      const app = createApp({ modelHost: createNodeModelHost({ model: packageDir }), log: () => undefined })
      server = await serveApp({ app, port: 0, host: '127.0.0.1' })
      openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 })
    }, 60_000)
    afterAll(async () => {
      await server?.close()
    })

    it(
      'response_format json_schema: every answer a valid document or a cut marked partial; unsupported keywords a 400 naming their path',
      async () => {
        for (const entry of onServer) {
          for (let seed = 1; seed <= seeds; seed++) {
            const completion = await openai.chat.completions.create({
              model: 'qwen3-tiny',
              messages,
              response_format: {
                type: 'json_schema',
                json_schema: {
                  name: 'corpus',
                  schema: entry.schema as Record<string, unknown>,
                  strict: true,
                },
              },
              temperature: 1,
              seed: 100 + seed,
              max_tokens: maxTokens,
            })
            const choice = completion.choices[0]!
            const partial = (completion as unknown as { ondevice?: { partial?: boolean } }).ondevice?.partial
            checkAnswer(
              entry,
              { finishReason: choice.finish_reason, partial, text: choice.message.content ?? '' },
              `server, seed ${seed}`,
            )
          }
        }
        for (const entry of refused) {
          const error = await openai.chat.completions
            .create({
              model: 'qwen3-tiny',
              messages,
              response_format: {
                type: 'json_schema',
                json_schema: { name: 'corpus', schema: entry.schema as Record<string, unknown> },
              },
              max_tokens: maxTokens,
            })
            .then(
              () => undefined,
              (caught: unknown) => caught,
            )
          expect(error, entry.name).toBeInstanceOf(OpenAI.BadRequestError)
          expect((error as InstanceType<typeof OpenAI.BadRequestError>).param, entry.name).toBe(
            `response_format.json_schema.${entry.refused}`,
          )
        }
      },
      timeout,
    )
  })
})
