// Structured output through core's generate() on a real model: a tiny random-weight Qwen3
// package (the real Qwen3 vocabulary, so EOS exists; its logits are noise, so only the mask can
// make the output valid), on onnxruntime-node and on onnxruntime-web's WASM. Random schemas: 100 %
// of the answers parse and validate with ajv. A handoff inside a string, a number and a nested
// array continues exactly. Tool calls come back parsed.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomDecoderWeights } from '../../builder/architectures/random-weights.ts'
import { fixtureConfig, qwen3TokenizerFiles } from '../../builder/fixtures/fixture.ts'
import { writeModelPackage } from '../../builder/package/package-writer.ts'
import { type Backend, type LoadedModel, loadModel } from '../../client-runtime/index.ts'
import { createNodeStore } from '../../client-runtime/store/node-store.ts'
import { InvalidArgumentError } from '../../core/errors.ts'
import { generateText } from '../../core/generate.ts'
import { randomSchema } from '../support/random-schemas.ts'

const ajv = new Ajv2020({ strict: false })
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (instance: Ajv2020) => void
addFormats(ajv)

let folder: string
let packageDir: string
const models = new Map<Backend, LoadedModel>()

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-structured-'))
  packageDir = join(folder, 'qwen3-tiny')
  const config = fixtureConfig('qwen3')
  await writeModelPackage({
    outDir: packageDir,
    weights: randomDecoderWeights(config, 16),
    tokenizer: qwen3TokenizerFiles(),
    dtypes: ['q8'],
    name: 'structured-q8',
  })
}, 120_000)

afterAll(async () => {
  for (const model of models.values()) await model.dispose()
  await rm(folder, { recursive: true, force: true })
})

async function open(backend: Backend): Promise<LoadedModel> {
  let model = models.get(backend)
  if (model === undefined) {
    model = await loadModel({
      model: packageDir,
      backend,
      store: createNodeStore({ cacheDir: join(folder, 'cache') }),
    })
    models.set(backend, model)
  }
  return model
}

function prompt(model: LoadedModel, text: string): number[] {
  return model.tokenizer.encodeChat([{ role: 'user', content: text }], { enableThinking: false })
}

describe.each<Backend>(['native', 'wasm'])('structured output on %s', (backend) => {
  it('random schemas: every answer parses and validates', async () => {
    const model = await open(backend)
    const schemas = fc.sample(randomSchema, { numRuns: backend === 'native' ? 5 : 3, seed: 21 })
    for (const [index, schema] of schemas.entries()) {
      await model.session.reset()
      const result = await generateText(model.session, model.tokenizer, {
        promptTokenIds: prompt(model, 'Fill the form.'),
        maxTokens: 400,
        sampling: { temperature: 1, seed: 100 + index },
        constraint: { responseFormat: { type: 'json_schema', schema } },
      })
      expect(result.finishReason, `${JSON.stringify(schema)}: ${result.text}`).toBe('stop')
      expect(result.partial).toBeUndefined()
      const validate = ajv.compile(schema as object)
      expect(
        validate(JSON.parse(result.text)),
        `${result.text} vs ${JSON.stringify(schema)}: ${ajv.errorsText(validate.errors)}`,
      ).toBe(true)
    }
  }, 180_000)

  it('a handoff inside a string, a number and a nested array continues exactly', async () => {
    const model = await open(backend)
    const schema = {
      type: 'object',
      properties: {
        title: { type: 'string', minLength: 6, maxLength: 12 },
        count: { type: 'integer', minimum: 1000, maximum: 99999 },
        grid: {
          type: 'array',
          minItems: 2,
          maxItems: 2,
          items: {
            type: 'array',
            minItems: 2,
            maxItems: 3,
            items: { type: 'number', minimum: 0, maximum: 100 },
          },
        },
      },
      required: ['title', 'count', 'grid'],
      additionalProperties: false,
    }
    const request = {
      promptTokenIds: prompt(model, 'Make one.'),
      maxTokens: 200,
      sampling: { temperature: 1, topK: 40, seed: 7 },
      constraint: { responseFormat: { type: 'json_schema' as const, schema } },
    }
    await model.session.reset()
    const whole = await generateText(model.session, model.tokenizer, request)
    expect(whole.finishReason).toBe('stop')
    const text = whole.text
    // Cut points: a token ending inside the title string, inside the count, inside the grid.
    const ends: number[] = []
    let decoded = ''
    for (const id of whole.tokenIds) {
      decoded += model.tokenizer.decode([id])
      ends.push(decoded.length)
    }
    const inside = (from: number, to: number): number => ends.findIndex((end) => end > from && end < to)
    const titleAt = text.indexOf('"title":"') + 9
    const countAt = text.indexOf('"count":') + 8
    const gridAt = text.indexOf('"grid":[[') + 9
    const cuts = [
      inside(titleAt, text.indexOf('"', titleAt)),
      inside(countAt, text.indexOf(',', countAt)),
      inside(gridAt, text.length - 3),
    ]
    expect(
      cuts.every((cut) => cut >= 0),
      `${text} ${cuts}`,
    ).toBe(true)
    for (const cut of cuts) {
      const k = cut + 1
      await model.session.reset()
      const rest = await generateText(model.session, model.tokenizer, {
        ...request,
        maxTokens: request.maxTokens - k,
        continuation: { tokenIds: whole.tokenIds.slice(0, k), step: k },
      })
      expect(
        [...whole.tokenIds.slice(0, k), ...rest.tokenIds],
        `cut after ${JSON.stringify(model.tokenizer.decode(whole.tokenIds.slice(0, k)))}`,
      ).toEqual(whole.tokenIds)
    }
  }, 180_000)

  it('tool calls: required gives parsed calls; a max_tokens cut says the output is partial', async () => {
    const model = await open(backend)
    const tools = [
      {
        name: 'get_weather',
        parameters: {
          type: 'object',
          properties: { city: { type: 'string', maxLength: 10 } },
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
    const promptTokenIds = model.tokenizer.encodeChat([{ role: 'user', content: 'Weather in Paris?' }], {
      enableThinking: false,
      tools: tools.map((tool) => ({ type: 'function', function: tool })),
    })
    await model.session.reset()
    const result = await generateText(model.session, model.tokenizer, {
      promptTokenIds,
      maxTokens: 200,
      sampling: { temperature: 1, seed: 3 },
      constraint: { tools, toolChoice: 'required', parallelToolCalls: false },
    })
    expect(result.finishReason).toBe('tool-calls')
    expect(result.toolCalls).toHaveLength(1)
    const call = result.toolCalls![0]!
    const tool = tools.find((candidate) => candidate.name === call.name)!
    expect(ajv.compile(tool.parameters)(JSON.parse(call.arguments))).toBe(true)
    expect(call.id).toMatch(/^call_/)

    await model.session.reset()
    const cut = await generateText(model.session, model.tokenizer, {
      promptTokenIds: prompt(model, 'Fill the form.'),
      maxTokens: 3,
      sampling: { temperature: 1, seed: 3 },
      constraint: { responseFormat: { type: 'json_schema', schema: tools[0]!.parameters } },
    })
    expect(cut.finishReason).toBe('length')
    expect(cut.partial).toBe(true)
  }, 120_000)
})

describe('a bad constraint is refused before anything runs', () => {
  it('throws InvalidArgumentError naming the keyword, and the session is untouched', async () => {
    const model = await open('native')
    await model.session.reset()
    let error: unknown
    try {
      await generateText(model.session, model.tokenizer, {
        promptTokenIds: prompt(model, 'x'),
        maxTokens: 5,
        constraint: {
          responseFormat: {
            type: 'json_schema',
            schema: { type: 'object', properties: { n: { type: 'integer', multipleOf: 0.1 } } },
          },
        },
      })
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(InvalidArgumentError)
    expect((error as InvalidArgumentError).param).toBe('responseFormat.schema.properties.n.multipleOf')
    expect(model.session.tokens).toHaveLength(0)
  })
})
