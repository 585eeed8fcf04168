// The Qwen3-Coder XML call syntax (Qwen3.5's template): the mask writes only calls the template's
// format allows, valid against each tool's parameters, whatever the logits; the calls read back
// into the JSON arguments every client sees, and a stream's fragments add up to them.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ajv2020 } from 'ajv/dist/2020.js'
import { describe, expect, it } from 'vitest'
import {
  qwen3Tokenizer,
  qwen3TokenizerFiles,
  qwen3TokenizerWithoutToolCalls,
} from '../../test/support/qwen3-tokenizer.ts'
import { createTestSession } from '../../test/support/test-session.ts'
import { generate, generateText } from '../generate.ts'
import { wireConstraintFieldNames } from '../protocol/response-format.ts'
import type { GenerationPart } from '../stream-parts.ts'
import { Tokenizer } from '../tokenizer.ts'
import { modelToolCallSyntaxOf } from './call-syntax.ts'
import {
  ConstraintState,
  compileConstraint,
  type ToolDefinition,
  validateConstraintForModel,
} from './constraint.ts'
import { readXmlToolCalls, toolCallSyntaxOf, XmlToolCallReader } from './xml-tool-calls.ts'

const tools: ToolDefinition[] = [
  {
    name: 'get_weather',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', minLength: 1, maxLength: 8 },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        days: { type: 'integer', minimum: 1, maximum: 7 },
      },
      required: ['city', 'days'],
      additionalProperties: false,
    },
  },
  {
    name: 'search',
    parameters: {
      type: 'object',
      properties: {
        query: { type: 'string', pattern: '^[a-z]{1,6}$' },
        tags: { type: 'array', maxItems: 2, items: { type: 'string', maxLength: 3 } },
        date: { type: 'string', format: 'date' },
      },
      required: ['query'],
      additionalProperties: false,
    },
  },
]

/** A seeded PRNG (mulberry32). */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('the XML call syntax', () => {
  const tokenizer = qwen3Tokenizer()
  const size = tokenizer.vocabularySize

  it('random logits at temperature 1: every call parses and validates', () => {
    const constraint = compileConstraint({ tools, toolChoice: 'required' }, undefined, 'xml')!
    const ajv = new Ajv2020({ formats: { date: /^\d{4}-\d{2}-\d{2}$/ } })
    const validators = new Map(tools.map((tool) => [tool.name, ajv.compile(tool.parameters as object)]))
    for (let seed = 1; seed <= 4; seed++) {
      const next = random(seed)
      const state = new ConstraintState(constraint, tokenizer)
      const tokens: number[] = []
      const logits = new Float32Array(size)
      for (let step = 0; step < 200; step++) {
        for (let id = 0; id < size; id++) logits[id] = next() * 8
        state.mask(logits)
        // Sample by Gumbel-max over the allowed tokens.
        let best = -1
        let bestScore = Number.NEGATIVE_INFINITY
        for (let id = 0; id < size; id++) {
          if (logits[id] === Number.NEGATIVE_INFINITY) continue
          const score = logits[id]! - Math.log(-Math.log(next() || 1e-12))
          if (score > bestScore) {
            bestScore = score
            best = id
          }
        }
        expect(state.accept(best)).toBe(true)
        tokens.push(best)
        if (tokenizer.eosTokenIds.includes(best)) break
      }
      const { toolCalls } = readXmlToolCalls(
        tokenizer.decode(tokens),
        constraint.xmlToolShapes!,
        (i) => `c${i}`,
      )
      expect(toolCalls.length).toBeGreaterThan(0)
      for (const call of toolCalls) {
        const validate = validators.get(call.name)!
        expect(validate(JSON.parse(call.arguments)), JSON.stringify(validate.errors)).toBe(true)
      }
    }
  }, 120_000)
})

describe('what the XML call syntax cannot write is refused when the tools compile', () => {
  const compile = (parameters: unknown) =>
    compileConstraint({ tools: [{ name: 'f', parameters }], toolChoice: 'required' }, undefined, 'xml')

  it('names the parameter and says why', () => {
    expect(() => compile({ type: 'object', properties: { 'a>b': { type: 'string' } } })).toThrow(
      expect.objectContaining({
        param: 'tools.0.parameters.properties.a>b',
        message: expect.stringContaining('<parameter=NAME>'),
      }),
    )
    expect(() =>
      compile({ type: 'object', properties: { s: { type: 'string', enum: ['ok', 'x\n</parameter>y'] } } }),
    ).toThrow(expect.objectContaining({ param: 'tools.0.parameters.properties.s' }))
    expect(() =>
      compile({
        anyOf: [
          { type: 'object', properties: { v: { type: 'string' } }, required: ['v'] },
          { type: 'object', properties: { v: { type: 'integer' } }, required: ['v'] },
        ],
      }),
    ).toThrow(expect.objectContaining({ param: 'tools.0.parameters.properties.v' }))
    // The JSON syntax writes all three.
    for (const parameters of [{ type: 'object', properties: { 'a>b': { type: 'string' } } }])
      expect(compileConstraint({ tools: [{ name: 'f', parameters }], toolChoice: 'required' })).toBeDefined()
  })
})

describe('the check every entry runs once the model is known', () => {
  it("reads the model's call syntax from its tokens and template; refuses what it cannot write", () => {
    const template = readFileSync(
      fileURLToPath(new URL('../../test/support/templates/qwen3-xml-tool-calls.jinja', import.meta.url)),
      'utf8',
    )
    const xml = Tokenizer.fromFiles({ ...qwen3TokenizerFiles(), chatTemplate: template })
    expect(modelToolCallSyntaxOf(xml)).toBe('xml')
    expect(modelToolCallSyntaxOf(qwen3Tokenizer())).toBe('json')
    expect(modelToolCallSyntaxOf(qwen3TokenizerWithoutToolCalls())).toBe('none')
    const odd = [{ name: 'f', parameters: { type: 'object', properties: { 'a>b': { type: 'string' } } } }]
    expect(validateConstraintForModel({ tools: odd }, 'json')).toBeDefined()
    expect(() => validateConstraintForModel({ tools: odd }, 'xml')).toThrow(
      expect.objectContaining({ code: 'invalid_argument', param: 'tools.0.parameters.properties.a>b' }),
    )
    // Only tools the answer may call must be writable: none with toolChoice 'none', the named one.
    const both = [{ name: 'g', parameters: { type: 'object' } }, ...odd]
    expect(validateConstraintForModel({ tools: both, toolChoice: 'none' }, 'xml')).toBeDefined()
    expect(validateConstraintForModel({ tools: both, toolChoice: { name: 'g' } }, 'xml')).toBeDefined()
    expect(() => validateConstraintForModel({ tools: both, toolChoice: { name: 'f' } }, 'xml')).toThrow(
      expect.objectContaining({ param: 'tools.1.parameters.properties.a>b' }),
    )
    // No call syntax: tools it would have to call are unsupported (named as the entry names them);
    // toolChoice 'none' is fine.
    expect(() =>
      validateConstraintForModel({ tools, toolChoice: 'auto' }, 'none', wireConstraintFieldNames),
    ).toThrow(
      expect.objectContaining({
        code: 'unsupported',
        param: 'tools',
        message: expect.stringContaining('tool_choice "none"'),
      }),
    )
    expect(validateConstraintForModel({ tools, toolChoice: 'none' }, 'none')).toBeDefined()
    expect(validateConstraintForModel(undefined, 'none')).toBeUndefined()
  })
})

describe('reading XML calls back', () => {
  const constraint = compileConstraint({ tools, toolChoice: 'auto' }, undefined, 'xml')!
  const shapes = constraint.xmlToolShapes!

  it('raw strings become JSON strings, other values stay as written; a cut call is no call', () => {
    const value = 'a "quoted"\\ line\n</param not the end\n</parameter'
    const call = `<tool_call>\n<function=get_weather>\n<parameter=city>\n${value}\n</parameter>\n<parameter=days>\n7\n</parameter>\n</function>\n</tool_call>`
    const text = `Let me look.\n\n${call}\n${call.slice(0, 40)}`
    const { content, toolCalls } = readXmlToolCalls(text, shapes, (index) => `id-${index}`)
    expect(content).toBe('Let me look.')
    expect(toolCalls).toEqual([
      { id: 'id-0', name: 'get_weather', arguments: `{"city":${JSON.stringify(value)},"days":7}` },
    ])
    expect(JSON.parse(toolCalls[0]!.arguments)).toEqual({ city: value, days: 7 })
  })

  it('a stream reader whose progress, character by character, only grows into the final arguments', () => {
    const body =
      '\n<function=search>\n<parameter=query>\nab\n</par\tc\n</parameter>\n<parameter=tags>\n["x"]\n</parameter>\n</function>\n'
    const reader = new XmlToolCallReader(shapes)
    reader.open('id')
    let previous = ''
    for (const character of body) {
      reader.push(character)
      const progress = reader.progress
      if (progress === undefined) continue
      expect(progress.name).toBe('search')
      expect(progress.arguments.startsWith(previous)).toBe(true)
      previous = progress.arguments
    }
    expect(previous).toBe('{"query":"ab\\n</par\\tc","tags":["x"]}')
  })
})

describe('generate() with a template of the XML dialect', () => {
  const template = readFileSync(
    fileURLToPath(new URL('../../test/support/templates/qwen3-xml-tool-calls.jinja', import.meta.url)),
    'utf8',
  )
  const tokenizer = Tokenizer.fromFiles({ ...qwen3TokenizerFiles(), chatTemplate: template })
  const vocabularySize = tokenizer.vocabularySize
  const prompt = tokenizer.encodeChat([{ role: 'user', content: 'Weather?' }], {
    tools: tools.map((tool) => ({ type: 'function', function: tool })),
  })
  const ajv = new Ajv2020({ formats: { date: /^\d{4}-\d{2}-\d{2}$/ } })

  it('is the syntax the template teaches; Qwen3-style templates keep the JSON one', () => {
    expect(toolCallSyntaxOf(template)).toBe('xml')
    expect(toolCallSyntaxOf(qwen3Tokenizer().chatTemplate)).toBe('json')
    expect(toolCallSyntaxOf(undefined)).toBe('json')
  })

  it('auto: text, then a call the mask completes; the text holds no markup', async () => {
    const open = tokenizer.tokenToId('<tool_call>')!
    const script = [...tokenizer.encode('Let me check.\n', { addSpecialTokens: false }), open]
    const session = createTestSession({
      vocabularySize,
      favor: (tokens) => script[tokens.length - prompt.length],
    })
    const finish = await generateText(session, tokenizer, {
      promptTokenIds: prompt,
      sampling: { temperature: 1, seed: 5 },
      maxTokens: 160,
      constraint: { tools, toolChoice: 'auto', parallelToolCalls: false },
    })
    expect(finish.text).toBe('Let me check.')
    expect(finish.finishReason).toBe('tool-calls')
    expect(finish.toolCalls).toHaveLength(1)
    const call = finish.toolCalls![0]!
    const validate = ajv.compile(tools.find((tool) => tool.name === call.name)!.parameters as object)
    expect(validate(JSON.parse(call.arguments))).toBe(true)
  })

  it('forced calls: valid arguments, stream fragments that add up, the same after a handoff at any token', async () => {
    for (const [seed, constraint] of [
      [1, { tools, toolChoice: 'required' as const }],
      [2, { tools, toolChoice: { name: 'search' } }],
      [3, { tools, toolChoice: { name: 'search' }, parallelToolCalls: true }],
    ] as const) {
      const request = {
        promptTokenIds: prompt,
        sampling: { temperature: 1, seed },
        maxTokens: 120,
        constraint,
      }
      const parts: GenerationPart[] = []
      for await (const part of generate(createTestSession({ vocabularySize }), tokenizer, request))
        parts.push(part)
      const finish = parts.at(-1)
      if (finish?.type !== 'finish') throw new Error('no finish part')
      expect(finish.finishReason, `seed ${seed}`).toBe('tool-calls')
      expect(finish.text).toBe('')
      const decoded = tokenizer.decode(finish.tokenIds)
      expect(decoded).toMatch(/^<tool_call>\n<function=(get_weather|search)>\n/)
      for (const call of finish.toolCalls ?? []) {
        const validate = ajv.compile(tools.find((tool) => tool.name === call.name)!.parameters as object)
        expect(validate(JSON.parse(call.arguments)), `${decoded}: ${JSON.stringify(validate.errors)}`).toBe(
          true,
        )
        if (typeof constraint.toolChoice === 'object') expect(call.name).toBe('search')
      }
      // What a stream sends: each call's progress only grows, and ends as the call's arguments.
      const last = new Map<number, string>()
      for (const part of parts) {
        if (part.type !== 'text-delta' || part.toolCall === undefined) continue
        const before = last.get(part.toolCall.index) ?? ''
        expect(part.toolCall.arguments.startsWith(before)).toBe(true)
        last.set(part.toolCall.index, part.toolCall.arguments)
      }
      expect([...last.values()]).toEqual(finish.toolCalls!.map((call) => call.arguments))
      // A handoff inside the call (the edge continues the device's tokens) ends the same.
      for (const k of [2, Math.floor(finish.tokenIds.length / 2), finish.tokenIds.length - 2]) {
        const continued = await generateText(createTestSession({ vocabularySize }), tokenizer, {
          ...request,
          maxTokens: request.maxTokens - k,
          continuation: { tokenIds: finish.tokenIds.slice(0, k), step: k },
        })
        expect([...finish.tokenIds.slice(0, k), ...continued.tokenIds], `seed ${seed}, cut ${k}`).toEqual(
          finish.tokenIds,
        )
        expect(continued.toolCalls).toEqual(finish.toolCalls)
      }
    }
  }, 60_000)
})
