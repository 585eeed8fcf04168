import { describe, expect, it } from 'vitest'
import { qwen3Tokenizer } from '../test/support/qwen3-tokenizer.ts'
import { createTestSession } from '../test/support/test-session.ts'
import { BackendError } from './errors.ts'
import { type GenerateRequest, generate } from './generate.ts'
import type { ModelSession } from './model-session.ts'
import { ReasoningSplitter, type ReasoningStart, reasoningStartOf } from './reasoning.ts'
import type { FinishPart, GenerationPart } from './stream-parts.ts'

/** The splitter fed `pieces`, then flushed: what each side got in all. */
function split(start: ReasoningStart, pieces: readonly string[]) {
  const splitter = new ReasoningSplitter(start)
  let reasoning = ''
  let text = ''
  for (const piece of [...pieces.map((piece) => splitter.push(piece)), splitter.flush()]) {
    reasoning += piece.reasoning
    text += piece.text
  }
  return { reasoning, text }
}

describe('ReasoningSplitter', () => {
  const cases: [ReasoningStart, string, { reasoning: string; text: string }][] = [
    ['detect', '<think>\nHmm.\n</think>\n\nHello.', { reasoning: '\nHmm.\n', text: 'Hello.' }],
    ['detect', ' \n<think>a</think>b', { reasoning: 'a', text: 'b' }],
    ['detect', 'Hello <think>a</think>', { reasoning: '', text: 'Hello <think>a</think>' }],
    ['detect', '<thin', { reasoning: '', text: '<thin' }],
    ['detect', '  ', { reasoning: '', text: '  ' }],
    ['detect', '<think>cut </thi', { reasoning: 'cut </thi', text: '' }],
    ['detect', '<think>a</think>  \n', { reasoning: 'a', text: '' }],
    ['detect', '<think>a</think>b </think> <think>c', { reasoning: 'a', text: 'b </think> <think>c' }],
    ['reasoning', 'a < b </think>\n\nc', { reasoning: 'a < b ', text: 'c' }],
    ['off', '<think>a</think>b', { reasoning: '', text: '<think>a</think>b' }],
  ]
  it('splits the same whatever the pieces: every cut of the text into two and into characters', () => {
    for (const [start, whole, expected] of cases) {
      expect(split(start, [whole]), whole).toEqual(expected)
      expect(split(start, [...whole]), whole).toEqual(expected)
      for (let cut = 0; cut <= whole.length; cut++) {
        expect(split(start, [whole.slice(0, cut), whole.slice(cut)]), `${whole} at ${cut}`).toEqual(expected)
      }
    }
  })

  it('reads where the prompt leaves the answer', () => {
    expect(reasoningStartOf('<|im_start|>assistant\n<think>\n')).toBe('reasoning')
    expect(reasoningStartOf('<|im_start|>assistant\n<think>\n\n</think>\n\n')).toBe('off')
    expect(reasoningStartOf('<|im_start|>assistant\n')).toBe('detect')
  })
})

const tokenizer = qwen3Tokenizer()
const vocabularySize = tokenizer.vocabularySize
const eos = tokenizer.tokenToId('<|im_end|>')!
const messages = [{ role: 'user' as const, content: 'What is 6 times 7?' }]
const thinkingOn = tokenizer.encodeChat(messages, { enableThinking: true })
const thinkingOff = tokenizer.encodeChat(messages, { enableThinking: false })
// A template that writes `<think>\n` into the generation prompt (Qwen3 2507 thinking models).
const openThink = [...thinkingOn, ...tokenizer.encode('<think>\n', { addSpecialTokens: false })]

async function collect(session: ModelSession, request: GenerateRequest) {
  const parts: GenerationPart[] = []
  let error: unknown
  try {
    for await (const part of generate(session, tokenizer, request)) parts.push(part)
  } catch (caught) {
    error = caught
  }
  const finish = parts.find((part): part is FinishPart => part.type === 'finish')
  const deltas = parts.filter((part) => part.type !== 'finish')
  const join = (type: string) =>
    deltas
      .filter((part) => part.type === type)
      .map((part) => part.text)
      .join('')
  return {
    deltas,
    error,
    finish,
    text: join('text-delta'),
    reasoning: join('reasoning-delta'),
    tokenIds: deltas.flatMap((part) => part.tokenIds),
  }
}

/** A session scripted to answer `ids` after `prompt`, then EOS. */
function scripted(prompt: readonly number[], ids: readonly number[], failAtToken?: number) {
  const script = [...ids, eos]
  return createTestSession({
    vocabularySize,
    favor: (tokens) => script[tokens.length - prompt.length],
    ...(failAtToken === undefined ? {} : { failAtToken }),
  })
}
const encode = (text: string) => tokenizer.encode(text, { addSpecialTokens: false })
const request = (prompt: readonly number[], extra: Partial<GenerateRequest> = {}): GenerateRequest => ({
  promptTokenIds: prompt,
  sampling: { temperature: 0 },
  maxTokens: 80,
  ...extra,
})

describe('generate() with a thinking model', () => {
  const answer = '<think>\nSix sevens: 42.\n</think>\n\nThe answer is 42.'
  const ids = encode(answer)

  it('yields the <think> block as reasoning deltas, the reply as text, each token once', async () => {
    // `<think>` and `</think>` are single tokens in Qwen3's vocabulary.
    expect(ids[0]).toBe(tokenizer.tokenToId('<think>'))
    expect(ids).toContain(tokenizer.tokenToId('</think>'))
    const result = await collect(scripted(thinkingOn, ids), request(thinkingOn))
    expect(result.error).toBeUndefined()
    expect(result.reasoning).toBe('\nSix sevens: 42.\n')
    expect(result.text).toBe('The answer is 42.')
    expect(result.finish).toMatchObject({
      finishReason: 'stop',
      text: 'The answer is 42.',
      reasoning: '\nSix sevens: 42.\n',
    })
    expect(result.tokenIds).toEqual([...ids, eos])
    expect(result.finish!.tokenIds).toEqual([...ids, eos])
    // Reasoning first, then text; no part shows markup.
    const types = result.deltas.filter((part) => part.text !== '').map((part) => part.type)
    expect(types.lastIndexOf('reasoning-delta')).toBeLessThan(types.indexOf('text-delta'))
    for (const part of result.deltas) expect(part.text).not.toMatch(/<\/?think>/)
  })

  it('starts in reasoning where the prompt ends inside <think>', async () => {
    const body = encode('Six sevens: 42.\n</think>\n\nThe answer is 42.')
    const result = await collect(scripted(openThink, body), request(openThink))
    expect(result.reasoning).toBe('Six sevens: 42.\n')
    expect(result.text).toBe('The answer is 42.')
    expect(result.tokenIds).toEqual([...body, eos])
  })

  it('changes nothing with thinking off, and a <think> after the start is text', async () => {
    const off = await collect(scripted(thinkingOff, ids), request(thinkingOff))
    expect(off.text).toBe(answer)
    expect(off.finish!.reasoning).toBeUndefined()
    expect(off.deltas.every((part) => part.type === 'text-delta')).toBe(true)
    const later = 'Sure. <think>not reasoning</think> done'
    const result = await collect(scripted(thinkingOn, encode(later)), request(thinkingOn))
    expect(result.text).toBe(later)
    expect(result.finish!.reasoning).toBeUndefined()
  })

  it('splits the same when the tags arrive spelled out in several tokens', async () => {
    // The model wrote the tags as ordinary text pieces ('<', 'think', '>'), not as the added tokens.
    const pieces = ['<', 'th', 'ink', '>', 'Hmm', '.', '</', 'th', 'ink', '>\n\n', 'Yes', '.']
    const spelled = pieces.flatMap((piece) => encode(piece))
    expect(spelled).not.toContain(tokenizer.tokenToId('<think>'))
    const result = await collect(scripted(thinkingOn, spelled), request(thinkingOn))
    expect(result.reasoning).toBe('Hmm.')
    expect(result.text).toBe('Yes.')
    expect(result.tokenIds).toEqual([...spelled, eos])
  })

  it('applies stop strings to the reply only: the reasoning and its tags are not content (as vLLM skips them)', async () => {
    const result = await collect(scripted(thinkingOn, ids), request(thinkingOn, { stop: ['sevens', '\n'] }))
    expect(result.finish).toMatchObject({
      finishReason: 'stop',
      text: 'The answer is 42.',
      reasoning: '\nSix sevens: 42.\n',
    })
    const tag = await collect(scripted(thinkingOn, ids), request(thinkingOn, { stop: ['</think>', 'is'] }))
    expect(tag.finish).toMatchObject({ text: 'The answer ', reasoning: '\nSix sevens: 42.\n' })
  })

  it('a length cut inside the reasoning keeps it reasoning', async () => {
    const result = await collect(scripted(thinkingOn, ids), request(thinkingOn, { maxTokens: 4 }))
    expect(result.finish!.finishReason).toBe('length')
    expect(result.text).toBe('')
    expect(result.reasoning).toBe(tokenizer.decode(ids.slice(1, 4)))
  })

  it('a handoff at every token, inside and around the reasoning, gives the same parts as uninterrupted', async () => {
    const stop = ['ZZ</think', '42.\n<b']
    for (const prompt of [thinkingOn, openThink]) {
      const body = prompt === openThink ? ids.slice(1) : ids
      const whole = await collect(scripted(prompt, body), request(prompt, { stop }))
      // After the prompt's `<think>`, the answer is the same tokens less the tag.
      expect(whole.reasoning).toBe('\nSix sevens: 42.\n')
      expect(whole.text).toBe('The answer is 42.')
      for (let k = 1; k <= body.length; k++) {
        const device = await collect(scripted(prompt, body, k), request(prompt, { stop }))
        expect(device.error, `k=${k}`).toBeInstanceOf(BackendError)
        const edge = await collect(
          scripted(prompt, body),
          request(prompt, { stop, maxTokens: 80 - k, continuation: { tokenIds: device.tokenIds, step: k } }),
        )
        expect([...device.deltas, ...edge.deltas], `k=${k}`).toEqual(whole.deltas)
        expect(device.reasoning + (edge.finish!.reasoning ?? ''), `k=${k}`).toBe(whole.finish!.reasoning)
        expect(device.text + edge.finish!.text, `k=${k}`).toBe(whole.finish!.text)
      }
    }
  })
})

describe('generate() with a thinking model and tools', () => {
  const tools = [
    {
      name: 'get_weather',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 6 } },
        required: ['city'],
        additionalProperties: false,
      },
    },
  ]
  // The model thinks, then calls (the mask writes the call itself after `<tool_call>`).
  const script = [...encode('<think>\nNeed the weather.\n</think>\n\n'), tokenizer.tokenToId('<tool_call>')!]
  const session = (failAtToken?: number) =>
    createTestSession({
      vocabularySize,
      favor: (tokens) => script[tokens.length - thinkingOn.length],
      ...(failAtToken === undefined ? {} : { failAtToken }),
    })
  const withTools = request(thinkingOn, {
    constraint: { tools, toolChoice: 'auto', parallelToolCalls: false },
  })

  it('reasoning, then the call: no text, the same across a handoff at every token', async () => {
    const whole = await collect(session(), withTools)
    expect(whole.finish).toMatchObject({
      finishReason: 'tool-calls',
      text: '',
      reasoning: '\nNeed the weather.\n',
    })
    expect(whole.finish!.toolCalls).toHaveLength(1)
    expect(whole.tokenIds).toEqual(whole.finish!.tokenIds)
    for (let k = 1; k < whole.tokenIds.length; k++) {
      const device = await collect(session(k), withTools)
      const edge = await collect(session(), {
        ...withTools,
        maxTokens: 80 - k,
        continuation: { tokenIds: device.tokenIds, step: k },
      })
      expect([...device.deltas, ...edge.deltas], `k=${k}`).toEqual(whole.deltas)
      expect(edge.finish!.toolCalls, `k=${k}`).toEqual(whole.finish!.toolCalls)
    }
  })

  it('a structured answer is never reasoning, even where the prompt ends inside <think>', async () => {
    const result = await collect(
      createTestSession({ vocabularySize }),
      request(openThink, { maxTokens: 12, constraint: { responseFormat: { type: 'json_object' } } }),
    )
    expect(result.finish!.reasoning).toBeUndefined()
    expect(result.deltas.every((part) => part.type === 'text-delta')).toBe(true)
    expect(result.text.trimStart().startsWith('{')).toBe(true)
  })
})
