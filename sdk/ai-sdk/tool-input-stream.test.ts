// A tool call's input streamed through the provider to the real `ai` package (streamText), as
// the AI SDK's OpenAI provider streams one: tool-input-start once the name is known, a
// tool-input-delta per fragment the model writes, tool-input-end, then the tool-call. On the
// device (core's test session, real Qwen3 tokenizer), on the real edge app over HTTP, and across
// a handoff in the middle of a call's arguments. The provider used to send the whole input as one
// delta at the very end.
import type { LanguageModelV3, LanguageModelV3StreamPart } from '@ai-sdk/provider'
import { generateText, jsonSchema, streamText, tool, wrapLanguageModel } from 'ai'
import { describe, expect, it } from 'vitest'
import type { StreamPart } from '../../core/stream-parts.ts'
import { startOpenAICompatibleEdge } from '../../test/sdk/openai-compatible-edge.ts'
import { createTestDeviceHost } from '../../test/sdk/test-device-host.ts'
import { startTestEdge } from '../../test/sdk/test-edge.ts'
import { qwen3Tokenizer } from '../../test/support/qwen3-tokenizer.ts'
import { thinkingScript } from '../../test/support/thinking-script.ts'
import { createClient } from '../client.ts'
import { createOndevice } from './index.ts'

const weatherParameters = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 24 }, days: { type: 'integer', minimum: 1, maximum: 9 } },
  required: ['city', 'days'],
  additionalProperties: false,
} as const
const tools = {
  weather: tool({
    description: 'The weather of a city for some days',
    inputSchema: jsonSchema<{ city: string; days: number }>({
      ...weatherParameters,
      required: ['city', 'days'],
    }),
  }),
}
const firstInput = '{"city":"Paris, France","days":3}'
const secondInput = '{"city":"Rome","days":2}'
const call = (input: string) => `<tool_call>\n{"name":"weather","arguments":${input}}\n</tool_call>`
/** What the scripted model answers: reasoning, a sentence, then two calls (Qwen3's syntax). */
const answer = `<think>\nThe weather, twice.\n</think>\n\nLet me look.\n${call(firstInput)}\n${call(secondInput)}`
const script = thinkingScript(answer)

const tokenizer = qwen3Tokenizer()
const answerTokens = tokenizer.encode(answer, { addSpecialTokens: false })
/** The answer's token count once `text` is written (the first prefix that decodes to hold it). */
const tokensUpTo = (text: string): number => {
  for (let count = 1; count <= answerTokens.length; count++) {
    if (tokenizer.decode(answerTokens.slice(0, count)).includes(text)) return count
  }
  throw new Error(`${text} is not in the scripted answer`)
}

/** The model's stream as the provider gave it to the AI SDK (streamText reads it as ever). */
function recorded(model: LanguageModelV3): { model: LanguageModelV3; parts: LanguageModelV3StreamPart[] } {
  const parts: LanguageModelV3StreamPart[] = []
  const wrapped = wrapLanguageModel({
    model,
    middleware: {
      specificationVersion: 'v3',
      wrapStream: async ({ doStream }) => {
        const result = await doStream()
        const tee = new TransformStream<LanguageModelV3StreamPart, LanguageModelV3StreamPart>({
          transform(part, controller) {
            parts.push(part)
            controller.enqueue(part)
          },
        })
        return { ...result, stream: result.stream.pipeThrough(tee) }
      },
    },
  })
  return { model: wrapped, parts }
}

interface StreamedInput {
  readonly id: string
  readonly toolName: string
  readonly deltas: string[]
  ended: boolean
  /** The tool-call's input (undefined: none came). */
  input?: string
}

/**
 * Each tool input the stream carried, checked for the order the AI SDK expects: start, deltas,
 * end, then the call (same id throughout, once each), and no text or reasoning inside a call.
 */
function toolInputs(parts: readonly LanguageModelV3StreamPart[]): StreamedInput[] {
  const inputs = new Map<string, StreamedInput>()
  let textOpen = false
  let reasoningOpen = false
  for (const part of parts) {
    if (part.type === 'text-start') textOpen = true
    else if (part.type === 'text-end') textOpen = false
    else if (part.type === 'reasoning-start') reasoningOpen = true
    else if (part.type === 'reasoning-end') reasoningOpen = false
    else if (part.type === 'tool-input-start') {
      expect(inputs.has(part.id), `a second tool-input-start for ${part.id}`).toBe(false)
      // The text and reasoning before a call have ended when it starts.
      expect({ textOpen, reasoningOpen }).toEqual({ textOpen: false, reasoningOpen: false })
      inputs.set(part.id, { id: part.id, toolName: part.toolName, deltas: [], ended: false })
    } else if (part.type === 'tool-input-delta') {
      const input = inputs.get(part.id)
      expect(input?.ended, `a tool-input-delta for ${part.id} outside its input`).toBe(false)
      expect(part.delta).not.toBe('')
      input?.deltas.push(part.delta)
    } else if (part.type === 'tool-input-end') {
      const input = inputs.get(part.id)
      expect(input?.ended, `a tool-input-end for ${part.id} outside its input`).toBe(false)
      if (input) input.ended = true
    } else if (part.type === 'tool-call') {
      const input = inputs.get(part.toolCallId)
      expect(input?.ended, `the tool-call ${part.toolCallId} before its input ended`).toBe(true)
      expect(input?.input, `a second tool-call ${part.toolCallId}`).toBeUndefined()
      expect(part.toolName).toBe(input?.toolName)
      if (input) input.input = part.input
    }
  }
  return [...inputs.values()]
}

/** The AI SDK's own view: its fullStream's tool parts, by kind. */
async function fullStreamKinds(result: { fullStream: AsyncIterable<{ type: string }> }): Promise<string[]> {
  const kinds: string[] = []
  for await (const part of result.fullStream) kinds.push(part.type)
  return kinds
}

describe('a tool call streams its input as the model writes it', () => {
  it('device, auto: reasoning and text end, then each call streams in several deltas that add up to its tool-call input', async () => {
    const ondevice = createOndevice(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost({ session: { favor: script } }) },
    )
    const { model, parts } = recorded(ondevice())
    const result = streamText({ model, prompt: 'Weather in Paris and Rome?', tools, maxOutputTokens: 120 })
    const kinds = await fullStreamKinds(result)
    expect(await result.reasoningText).toBe('\nThe weather, twice.\n')
    expect(await result.text).toBe('Let me look.')
    const inputs = toolInputs(parts)
    expect(inputs.map((input) => input.input)).toEqual([firstInput, secondInput])
    for (const input of inputs) {
      expect(input.toolName).toBe('weather')
      // Streamed as written: the old provider sent one delta, the whole input, at the very end.
      expect(input.deltas.length).toBeGreaterThan(3)
      expect(input.deltas.join('')).toBe(input.input)
    }
    // The first call's input streamed before the second call started, and both before the calls.
    const order = parts.flatMap((part) =>
      part.type === 'tool-input-start' || part.type === 'tool-call'
        ? [`${part.type}:${inputs.findIndex((i) => i.id === ('id' in part ? part.id : part.toolCallId))}`]
        : [],
    )
    expect(order).toEqual(['tool-input-start:0', 'tool-input-start:1', 'tool-call:0', 'tool-call:1'])
    const firstDeltaOfSecond = parts.findIndex(
      (part) => part.type === 'tool-input-delta' && part.id === inputs[1]?.id,
    )
    const lastDeltaOfFirst = parts.findLastIndex(
      (part) => part.type === 'tool-input-delta' && part.id === inputs[0]?.id,
    )
    expect(lastDeltaOfFirst).toBeLessThan(firstDeltaOfSecond)
    // The AI SDK saw deltas before the call ended, and the calls with their ids.
    expect(kinds.indexOf('tool-input-delta')).toBeLessThan(kinds.indexOf('tool-input-end'))
    expect(kinds.filter((kind) => kind === 'tool-input-delta').length).toBe(
      inputs[0]!.deltas.length + inputs[1]!.deltas.length,
    )
    expect((await result.toolCalls).map((toolCall) => [toolCall.toolCallId, toolCall.input])).toEqual(
      inputs.map((input) => [input.id, JSON.parse(input.input ?? '')]),
    )
    expect(await result.finishReason).toBe('tool-calls')
    await ondevice.client.dispose()
  })

  it("toolChoice 'required' and a named tool (random logits, the mask alone shapes the call): several deltas per call, adding up to it", async () => {
    const ondevice = createOndevice({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    for (const toolChoice of ['required', { type: 'tool', toolName: 'weather' }] as const) {
      for (const seed of [1, 3, 5]) {
        const { model, parts } = recorded(ondevice())
        const result = streamText({
          model,
          prompt: 'Weather?',
          tools,
          toolChoice,
          maxOutputTokens: 120,
          seed,
          temperature: 1,
        })
        await result.consumeStream()
        const inputs = toolInputs(parts)
        const calls = await result.toolCalls
        expect(calls.length).toBeGreaterThan(0)
        expect(inputs.filter((input) => input.input !== undefined).map((input) => input.id)).toEqual(
          calls.map((toolCall) => toolCall.toolCallId),
        )
        for (const input of inputs) {
          if (input.input === undefined) continue
          expect(input.deltas.length).toBeGreaterThan(1)
          expect(input.deltas.join('')).toBe(input.input)
        }
      }
    }
    await ondevice.client.dispose()
  })

  it("edge-only: the wire's tool_calls deltas stream as the device's do, with the same ids and inputs", async () => {
    const edge = await startTestEdge({ session: { favor: script } })
    const device = createOndevice(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost({ session: { favor: script } }) },
    )
    const ondevice = createOndevice({ policy: 'edge-only', edge: { url: edge.url } })
    try {
      const fromDevice = recorded(device())
      await streamText({
        model: fromDevice.model,
        prompt: 'Weather in Paris and Rome?',
        tools,
        maxOutputTokens: 120,
      }).consumeStream()
      const fromEdge = recorded(ondevice())
      const result = streamText({
        model: fromEdge.model,
        prompt: 'Weather in Paris and Rome?',
        tools,
        maxOutputTokens: 120,
      })
      await result.consumeStream()
      expect((await result.providerMetadata)?.['ondevice']).toMatchObject({ route: 'edge' })
      const inputs = toolInputs(fromEdge.parts)
      expect(inputs.map((input) => [input.id, input.input])).toEqual(
        toolInputs(fromDevice.parts).map((input) => [input.id, input.input]),
      )
      for (const input of inputs) {
        expect(input.deltas.length).toBeGreaterThan(3)
        expect(input.deltas.join('')).toBe(input.input)
      }
    } finally {
      await device.client.dispose()
      await ondevice.client.dispose()
      await edge.close()
    }
  })

  it('a handoff anywhere in a call (its name, its arguments, between calls): no fragment lost or repeated, the ids kept', async () => {
    const edge = await startTestEdge({ session: { favor: script } })
    try {
      const reference = recorded(
        createOndevice(
          { policy: 'device-only' },
          { deviceHost: createTestDeviceHost({ session: { favor: script } }) },
        )(),
      )
      await streamText({
        model: reference.model,
        prompt: 'Weather in Paris and Rome?',
        tools,
        maxOutputTokens: 120,
      }).consumeStream()
      const expected = toolInputs(reference.parts).map((input) => [input.id, input.input])
      expect(expected.map(([, input]) => input)).toEqual([firstInput, secondInput])
      const points = {
        'in the name': tokensUpTo('"name":"wea'),
        'in the arguments': tokensUpTo('"city":"Par'),
        'just before the arguments end': tokensUpTo('"days":3'),
        'between the calls': tokensUpTo(`${call(firstInput)}\n`),
        'in the second call': tokensUpTo('"Rom'),
      }
      for (const [where, failAtToken] of Object.entries(points)) {
        const ondevice = createOndevice(
          { edge: { url: edge.url } },
          { deviceHost: createTestDeviceHost({ failAtToken, session: { favor: script } }) },
        )
        const { model, parts } = recorded(ondevice())
        const result = streamText({
          model,
          prompt: 'Weather in Paris and Rome?',
          tools,
          maxOutputTokens: 120,
          includeRawChunks: true,
        })
        await result.consumeStream()
        expect((await result.providerMetadata)?.['ondevice'], where).toMatchObject({
          route: 'device+edge',
          handoff: { completedTokens: failAtToken },
        })
        const inputs = toolInputs(parts)
        expect(
          inputs.map((input) => [input.id, input.input]),
          where,
        ).toEqual(expected)
        for (const input of inputs) expect(input.deltas.join(''), where).toBe(input.input)
        // Deltas came from both sides of the handoff (the raw parts are the client's own).
        const handoffAt = parts.findIndex(
          (part) => part.type === 'raw' && (part.rawValue as StreamPart).type === 'handoff',
        )
        expect(handoffAt, where).toBeGreaterThan(0)
        const deltaAt = parts.flatMap((part, at) => (part.type === 'tool-input-delta' ? [at] : []))
        expect(deltaAt[deltaAt.length - 1], where).toBeGreaterThan(handoffAt)
        if (where !== 'in the name') expect(deltaAt[0], where).toBeLessThan(handoffAt)
        await ondevice.client.dispose()
      }
    } finally {
      await edge.close()
    }
  })

  it('a call cut by maxOutputTokens: its input starts, streams and ends, but no tool-call (its input is not a call); the complete one before it is called', async () => {
    const ondevice = createOndevice(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost({ session: { favor: script } }) },
    )
    const { model, parts } = recorded(ondevice())
    const result = streamText({
      model,
      prompt: 'Weather in Paris and Rome?',
      tools,
      maxOutputTokens: tokensUpTo('"Rom'),
    })
    const kinds = await fullStreamKinds(result)
    expect(await result.finishReason).toBe('length')
    const inputs = toolInputs(parts)
    expect(inputs).toHaveLength(2)
    expect(inputs[0]?.input).toBe(firstInput)
    expect(inputs[1]?.ended).toBe(true)
    expect(inputs[1]?.input).toBeUndefined()
    const cut = inputs[1]?.deltas.join('') ?? ''
    expect(cut.startsWith('{"city":"Rom') && secondInput.startsWith(cut) && cut !== secondInput).toBe(true)
    // The AI SDK has one call, and no invalid one (a tool-call with a cut input is a tool-error).
    expect((await result.toolCalls).map((toolCall) => toolCall.input)).toEqual([JSON.parse(firstInput)])
    expect(kinds).not.toContain('tool-error')
    expect(kinds.filter((kind) => kind === 'tool-input-start')).toHaveLength(2)
    // generateText says the same.
    const generated = await generateText({
      model: ondevice(),
      prompt: 'Weather in Paris and Rome?',
      tools,
      maxOutputTokens: tokensUpTo('"Rom'),
    })
    expect(generated.toolCalls.map((toolCall) => toolCall.input)).toEqual([JSON.parse(firstInput)])
    await ondevice.client.dispose()
  })

  it('an abort in the middle of a call: the AI SDK reports the abort, and no tool-call', async () => {
    const ondevice = createOndevice(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost({ session: { favor: script, delayMs: 5 } }) },
    )
    const { model, parts } = recorded(ondevice())
    const controller = new AbortController()
    let aborted = false
    const result = streamText({
      model,
      prompt: 'Weather in Paris and Rome?',
      tools,
      maxOutputTokens: 120,
      abortSignal: controller.signal,
      onAbort: () => {
        aborted = true
      },
    })
    const kinds: string[] = []
    let deltas = 0
    for await (const part of result.fullStream) {
      kinds.push(part.type)
      if (part.type === 'tool-input-delta' && ++deltas === 2) controller.abort()
    }
    expect(aborted).toBe(true)
    expect(kinds).toContain('abort')
    expect(kinds).not.toContain('tool-call')
    expect(parts.some((part) => part.type === 'tool-call')).toBe(false)
    await ondevice.client.dispose()
  })

  it('another OpenAI-compatible edge (no token ids): its tool_calls fragments stream as they come', async () => {
    // OpenAI's shape: the first delta has the id and name, the rest argument fragments.
    const fragments = ['{"city"', ':"Os', 'lo","days"', ':4}']
    const toolCall = (fields: object) => ({ tool_calls: [{ index: 0, ...fields }] })
    const edge = await startOpenAICompatibleEdge(
      'other-model',
      (chunk) =>
        chunk({ role: 'assistant', content: null }, null) +
        chunk(
          toolCall({ id: 'call_abc', type: 'function', function: { name: 'weather', arguments: '' } }),
          null,
        ) +
        fragments.map((part) => chunk(toolCall({ function: { arguments: part } }), null)).join('') +
        chunk({}, 'tool_calls'),
    )
    const ondevice = createOndevice({ policy: 'edge-only', edge: { url: edge.url } })
    try {
      const { model, parts } = recorded(ondevice())
      const result = streamText({ model, prompt: 'Weather in Oslo?', tools, toolChoice: 'required' })
      await result.consumeStream()
      const inputs = toolInputs(parts)
      expect(inputs).toEqual([
        { id: 'call_abc', toolName: 'weather', deltas: fragments, ended: true, input: fragments.join('') },
      ])
      expect((await result.toolCalls).map((toolCall) => toolCall.input)).toEqual([{ city: 'Oslo', days: 4 }])
    } finally {
      await ondevice.client.dispose()
      await edge.close()
    }
  })
})

describe("the client's stream() carries a call's progress", () => {
  it('a delta each time the call grows, every token id once, and the progress a prefix of the finished call', async () => {
    const client = createClient(
      { policy: 'device-only' },
      { deviceHost: createTestDeviceHost({ session: { favor: script } }) },
    )
    const parts: StreamPart[] = []
    for await (const part of client.stream({
      messages: [{ role: 'user', content: 'Weather in Paris and Rome?' }],
      tools: [{ name: 'weather', parameters: weatherParameters }],
      maxTokens: 120,
    }))
      parts.push(part)
    const finish = parts.at(-1)
    if (finish?.type !== 'finish') throw new Error('no finish')
    expect(finish.toolCalls?.map((toolCall) => toolCall.arguments)).toEqual([firstInput, secondInput])
    const progress = parts.flatMap((part) =>
      part.type === 'text-delta' && part.toolCall ? [part.toolCall] : [],
    )
    expect(progress.length).toBeGreaterThan(6)
    for (const [at, step] of progress.entries()) {
      const finished = finish.toolCalls?.[step.index]
      expect(step.id).toBe(finished?.id)
      expect(finished?.arguments.startsWith(step.arguments)).toBe(true)
      // Each one grew the call (a token that added nothing rides with the next delta).
      const before = progress[at - 1]
      if (before?.index === step.index) expect(step.arguments.length).toBeGreaterThan(before.arguments.length)
    }
    const ids = parts.flatMap((part) =>
      part.type === 'text-delta' || part.type === 'reasoning-delta' ? part.tokenIds : [],
    )
    // Every token once, in order, up to the last that grew the call (the call's end and EOS,
    // which show nothing, only in the finish's list).
    expect(ids).toEqual(finish.tokenIds.slice(0, ids.length))
    expect(tokenizer.decode(finish.tokenIds.slice(ids.length))).toMatch(/^\}?\n?<\/tool_call><\|im_end\|>$/)
    await client.dispose()
  })
})
