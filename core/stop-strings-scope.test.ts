// Where stop strings apply: to the answer's content text only. Apps send `stop: ["\n"]` or
// `["}"]` with every request; a tool call's markup, a response_format document and a thinking
// model's reasoning are not content, so a stop string never cuts them (a call's JSON or XML, a
// schema's document, a `<think>` block all contain newlines and braces). The rule is a function of
// the tokens alone, so a handoff at any token continues the same answer.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { qwen3Tokenizer, qwen3TokenizerFiles } from '../test/support/qwen3-tokenizer.ts'
import { createTestSession } from '../test/support/test-session.ts'
import { BackendError, InvalidArgumentError } from './errors.ts'
import { type GenerateRequest, generate } from './generate.ts'
import type { FinishPart, GenerationPart } from './stream-parts.ts'
import type { ToolDefinition } from './structured/constraint.ts'
import { Tokenizer } from './tokenizer.ts'

const tools: ToolDefinition[] = [
  {
    name: 'get_weather',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', maxLength: 8 },
        days: { type: 'integer', minimum: 1, maximum: 7 },
      },
      required: ['city', 'days'],
      additionalProperties: false,
    },
  },
]
const jsonTokenizer = qwen3Tokenizer()
const xmlTokenizer = Tokenizer.fromFiles({
  ...qwen3TokenizerFiles(),
  chatTemplate: readFileSync(
    fileURLToPath(new URL('../test/support/templates/qwen3-xml-tool-calls.jinja', import.meta.url)),
    'utf8',
  ),
})
const vocabularySize = jsonTokenizer.vocabularySize
const eos = jsonTokenizer.tokenToId('<|im_end|>')!
const open = jsonTokenizer.tokenToId('<tool_call>')!
const close = jsonTokenizer.tokenToId('</tool_call>')!
const encode = (text: string) => jsonTokenizer.encode(text, { addSpecialTokens: false })
const messages = [{ role: 'user' as const, content: 'Weather in Paris for 2 days?' }]

async function collect(
  tokenizer: Tokenizer,
  session: ReturnType<typeof createTestSession>,
  request: GenerateRequest,
) {
  const parts: GenerationPart[] = []
  let error: unknown
  try {
    for await (const part of generate(session, tokenizer, request)) parts.push(part)
  } catch (caught) {
    error = caught
  }
  const finish = parts.find((part): part is FinishPart => part.type === 'finish')
  const deltas = parts.filter((part) => part.type !== 'finish')
  return { deltas, error, finish, tokenIds: deltas.flatMap((part) => part.tokenIds) }
}

/** A session scripted to answer `script` after a prompt of `promptLength` tokens, then EOS. */
function scripted(promptLength: number, script: readonly number[], failAtToken?: number) {
  const all = [...script, eos]
  return createTestSession({
    vocabularySize,
    favor: (tokens) => all[tokens.length - promptLength],
    ...(failAtToken === undefined ? {} : { failAtToken }),
  })
}

/** The whole answer, then a handoff after every token: the joined parts equal it. */
async function expectSameAcrossHandoffs(
  tokenizer: Tokenizer,
  session: (failAtToken?: number) => ReturnType<typeof createTestSession>,
  request: GenerateRequest,
) {
  const whole = await collect(tokenizer, session(), request)
  for (let k = 1; k < whole.tokenIds.length; k++) {
    const device = await collect(tokenizer, session(k), request)
    expect(device.error, `k=${k}`).toBeInstanceOf(BackendError)
    const edge = await collect(tokenizer, session(), {
      ...request,
      maxTokens: (request.maxTokens ?? 200) - k,
      continuation: { tokenIds: device.tokenIds, step: k },
    })
    expect([...device.deltas, ...edge.deltas], `k=${k}`).toEqual(whole.deltas)
    expect(edge.finish, `k=${k}`).toMatchObject({
      finishReason: whole.finish!.finishReason,
      ...(whole.finish!.toolCalls ? { toolCalls: whole.finish!.toolCalls } : {}),
    })
  }
  return whole
}

describe('stop strings and tool calls', () => {
  for (const [syntax, tokenizer, body] of [
    ['JSON', jsonTokenizer, '\n{"name":"get_weather","arguments":{"city":"Paris","days":2}}\n'],
    [
      'XML',
      xmlTokenizer,
      '\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n2\n</parameter>\n</function>\n',
    ],
  ] as const) {
    const prompt = tokenizer.encodeChat(messages, {
      tools: tools.map((tool) => ({ type: 'function', function: tool })),
    })
    const call = [open, ...encode(body), close]
    const base: GenerateRequest = {
      promptTokenIds: prompt,
      sampling: { temperature: 0 },
      maxTokens: 200,
      constraint: { tools, toolChoice: 'required', parallelToolCalls: false },
    }
    const expected = { name: 'get_weather', arguments: '{"city":"Paris","days":2}' }

    it(`${syntax}: a forced call is never cut by a stop string its markup contains`, async () => {
      for (const stop of [['\n'], ['}'], ['>'], ['"', 'Paris', '</', ':']]) {
        const result = await collect(tokenizer, scripted(prompt.length, call), { ...base, stop })
        expect(result.error, JSON.stringify(stop)).toBeUndefined()
        expect(result.finish, JSON.stringify(stop)).toMatchObject({ finishReason: 'tool-calls', text: '' })
        expect(result.finish!.partial, JSON.stringify(stop)).toBeUndefined()
        expect(result.finish!.toolCalls, JSON.stringify(stop)).toMatchObject([expected])
      }
    })

    it(`${syntax}: auto: the stop string still ends the text before a call; the separator before it is not text`, async () => {
      const auto: GenerateRequest = {
        ...base,
        constraint: { tools, toolChoice: 'auto', parallelToolCalls: false },
      }
      // "Let me check.\n" then the call: the newline is the call's separator, not content.
      const afterText = [...encode('Let me check.\n'), ...call]
      const result = await collect(tokenizer, scripted(prompt.length, afterText), { ...auto, stop: ['\n'] })
      expect(result.finish).toMatchObject({ finishReason: 'tool-calls', text: 'Let me check.' })
      expect(result.finish!.toolCalls).toMatchObject([expected])
      // A stop string inside the text ends the answer there, as without tools.
      const cut = await collect(tokenizer, scripted(prompt.length, [...encode('One.\nTwo.\n'), ...call]), {
        ...auto,
        stop: ['\n'],
      })
      expect(cut.finish).toMatchObject({ finishReason: 'stop', text: 'One.' })
      expect(cut.finish!.toolCalls).toBeUndefined()
      const whole = await expectSameAcrossHandoffs(tokenizer, (k) => scripted(prompt.length, afterText, k), {
        ...auto,
        stop: ['}', '\n', 'check'],
      })
      expect(whole.finish).toMatchObject({ finishReason: 'stop', text: 'Let me ' })
      const spared = await expectSameAcrossHandoffs(tokenizer, (k) => scripted(prompt.length, afterText, k), {
        ...auto,
        stop: ['}', '\n', '>'],
      })
      expect(spared.finish).toMatchObject({ finishReason: 'tool-calls', text: 'Let me check.' })
      expect(spared.finish!.toolCalls).toMatchObject([expected])
    })
  }
})

describe('stop strings and response_format', () => {
  const prompt = jsonTokenizer.encodeChat(messages)
  const document = encode('{"city":"Paris","days":2}')
  const request: GenerateRequest = {
    promptTokenIds: prompt,
    sampling: { temperature: 0 },
    maxTokens: 60,
    constraint: {
      responseFormat: {
        type: 'json_schema',
        schema: tools[0]!.parameters,
      },
    },
  }

  it('a stop list next to a JSON document is refused: it could only cut the document, so it would do nothing', async () => {
    for (const stop of [['}'], ['"'], [','], ['Paris']]) {
      const result = await collect(jsonTokenizer, scripted(prompt.length, document), { ...request, stop })
      expect(result.error, JSON.stringify(stop)).toBeInstanceOf(InvalidArgumentError)
      expect(result.error, JSON.stringify(stop)).toMatchObject({ param: 'stop' })
      expect(String((result.error as Error).message)).toMatch(/one JSON document.*Leave stop out/)
    }
    // Without a stop list the same request answers the whole document.
    const whole = await collect(jsonTokenizer, scripted(prompt.length, document), request)
    expect(whole.finish).toMatchObject({ finishReason: 'stop', text: '{"city":"Paris","days":2}' })
  })
})

describe('stop strings and a thinking model', () => {
  const prompt = jsonTokenizer.encodeChat(messages, { enableThinking: true })
  const answer = encode('<think>\nParis.\nTwo days.\n</think>\n\nSunny.\nWarm.')

  it('reasoning is not content: a stop string cuts the reply, never the <think> block', async () => {
    const result = await expectSameAcrossHandoffs(jsonTokenizer, (k) => scripted(prompt.length, answer, k), {
      promptTokenIds: prompt,
      sampling: { temperature: 0 },
      maxTokens: 80,
      stop: ['\n'],
    })
    expect(result.finish).toMatchObject({
      finishReason: 'stop',
      reasoning: '\nParis.\nTwo days.\n',
      text: 'Sunny.',
    })
    const tag = await collect(jsonTokenizer, scripted(prompt.length, answer), {
      promptTokenIds: prompt,
      sampling: { temperature: 0 },
      maxTokens: 80,
      stop: ['</think>', 'days'],
    })
    expect(tag.finish).toMatchObject({ finishReason: 'stop', text: 'Sunny.\nWarm.' })
  })
})
