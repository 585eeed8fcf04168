import { describe, expect, it } from 'vitest'
import { EdgeError, InvalidArgumentError } from '../errors.ts'
import type { FinishPart } from '../stream-parts.ts'
import { createChunkWriter, readChunk } from './chunk.ts'
import { toChatCompletionResponse } from './response.ts'

const header = { id: 'chatcmpl-1', created: 1700000000, model: 'm', systemFingerprint: 'fp' }
const finish: FinishPart = {
  type: 'finish',
  finishReason: 'length',
  tokenIds: [4, 5, 6],
  text: 'abc',
  nextStep: 9,
  seed: 77,
  usage: {
    promptTokens: 2,
    completionTokens: 3,
    timeToFirstTokenMs: 5,
    prefillTokensPerSecond: 100,
    decodeTokensPerSecond: 20,
    backend: 'cpu',
    dtype: 'q8',
  },
}
const roundTrip = (value: unknown) => readChunk(JSON.stringify(value))

describe('chunks', () => {
  it('the worker writes the OpenAI chunk sequence with our extensions', () => {
    const writer = createChunkWriter(header, true)
    expect(writer.start()).toEqual({
      id: 'chatcmpl-1',
      object: 'chat.completion.chunk',
      created: 1700000000,
      model: 'm',
      system_fingerprint: 'fp',
      choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
      usage: null,
    })
    expect(writer.delta({ type: 'text-delta', text: '', tokenIds: [] })).toBeUndefined()
    // Held-back text (half a character), a call's markup or EOS still sends its ids, without an empty content.
    expect(writer.delta({ type: 'text-delta', text: '', tokenIds: [8] })?.choices[0]?.delta).toEqual({
      token_ids: [8],
    })
    expect(writer.delta({ type: 'text-delta', text: 'Hi', tokenIds: [9] })?.choices[0]?.delta).toEqual({
      content: 'Hi',
      token_ids: [9],
    })
    const last = writer.finish(finish)
    expect(last.choices[0]?.finish_reason).toBe('length')
    expect(last.ondevice).toEqual({ token_ids: [4, 5, 6], next_step: 9, seed: 77 })
    const usage = writer.usage(finish)
    expect(usage.choices).toEqual([])
    expect(usage.usage).toMatchObject({ prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 })
    // Without include_usage, chunks carry no usage field at all.
    expect('usage' in createChunkWriter(header, false).start()).toBe(false)
  })

  it("a call's tokens say so on the wire (in_tool_call), also the <tool_call> token that releases held text, and read back", () => {
    // An abort after the <tool_call> token cut a call (FinishPart.partial): the edge client can
    // tell only from the chunk. The opening token may release held-back text (half a character)
    // with it, and that chunk lacked the mark.
    const writer = createChunkWriter(header, true)
    const opening = writer.delta({ type: 'text-delta', text: 'é', tokenIds: [151657], inToolCall: true })
    expect(opening?.choices[0]?.delta).toEqual({ content: 'é', token_ids: [151657], in_tool_call: true })
    expect(roundTrip(opening)).toMatchObject({ text: 'é', tokenIds: [151657], inToolCall: true })
    const markup = writer.delta({ type: 'text-delta', text: '', tokenIds: [198], inToolCall: true })
    expect(markup?.choices[0]?.delta).toEqual({ token_ids: [198], in_tool_call: true })
    expect(roundTrip(markup)).toMatchObject({ inToolCall: true })
    // Text outside a call has no mark.
    expect(roundTrip(writer.delta({ type: 'text-delta', text: 'Hi', tokenIds: [9] }))).not.toHaveProperty(
      'inToolCall',
    )
  })

  it('the SDK reads back what the worker wrote', () => {
    const writer = createChunkWriter(header, true)
    expect(roundTrip(writer.start())).toEqual({
      id: 'chatcmpl-1',
      model: 'm',
      systemFingerprint: 'fp',
      text: '',
      tokenIds: [],
    })
    expect(roundTrip(writer.delta({ type: 'text-delta', text: 'hé', tokenIds: [1, 2] }))).toMatchObject({
      text: 'hé',
      tokenIds: [1, 2],
    })
    expect(roundTrip(writer.finish(finish))).toMatchObject({
      finishReason: 'length',
      ondevice: { tokenIds: [4, 5, 6], nextStep: 9 },
    })
    const { usage } = roundTrip(writer.usage(finish))
    expect(usage).toEqual(finish.usage)
  })

  it("reads other servers' chunks (no token ids, no extension) and ignores malformed extras", () => {
    expect(
      roundTrip({ choices: [{ index: 0, delta: { content: 'x' }, finish_reason: 'stop' }], usage: null }),
    ).toEqual({ text: 'x', tokenIds: [], finishReason: 'stop' })
    expect(
      roundTrip({
        choices: [{ delta: { content: 7, token_ids: [1.5] } }],
        ondevice: { token_ids: 'no', next_step: 1.5 },
      }),
    ).toEqual({ text: '', tokenIds: [], ondevice: { tokenIds: [] } })
  })

  it("reasoning: written as reasoning_content with its ids, read back; Ollama's `reasoning` read too", () => {
    const writer = createChunkWriter(header, false)
    const written = writer.reasoning({ type: 'reasoning-delta', text: 'Hmm', tokenIds: [3] })
    expect(written?.choices[0]?.delta).toEqual({ reasoning_content: 'Hmm', token_ids: [3] })
    expect(roundTrip(written)).toMatchObject({ text: '', reasoning: 'Hmm', tokenIds: [3] })
    // The `<think>` token itself shows nothing: its id still travels, as reasoning (an empty
    // reasoning_content, never an empty content), and reads back as a reasoning token.
    const tag = writer.reasoning({ type: 'reasoning-delta', text: '', tokenIds: [4] })
    expect(tag?.choices[0]?.delta).toEqual({ reasoning_content: '', token_ids: [4] })
    expect(roundTrip(tag)).toMatchObject({ text: '', reasoning: '', tokenIds: [4] })
    expect(writer.reasoning({ type: 'reasoning-delta', text: '', tokenIds: [] })).toBeUndefined()
    expect(roundTrip({ choices: [{ index: 0, delta: { reasoning: 'Ok' } }] })).toMatchObject({
      reasoning: 'Ok',
    })
    expect('reasoning' in roundTrip({ choices: [{ index: 0, delta: { reasoning_content: 5 } }] })).toBe(false)
    const response = toChatCompletionResponse(header, { ...finish, reasoning: 'Why' })
    expect(response.choices[0]?.message).toMatchObject({ content: 'abc', reasoning_content: 'Why' })
    expect('reasoning_content' in (toChatCompletionResponse(header, finish).choices[0]?.message ?? {})).toBe(
      false,
    )
  })

  it('throws error events as the library class, and refuses what is not a JSON object', () => {
    expect(() =>
      roundTrip({ error: { message: 'bad temperature', param: 'temperature', code: 'invalid_argument' } }),
    ).toThrow(InvalidArgumentError)
    expect(() => readChunk('{not json')).toThrow(/not JSON/)
    expect(() => readChunk('42')).toThrow(EdgeError)
    expect(() => readChunk('null')).toThrow(/not a JSON object/)
  })
})

describe('the non-streamed response', () => {
  it('carries the text, the OpenAI finish reason, usage and our extension', () => {
    expect(toChatCompletionResponse(header, finish)).toEqual({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1700000000,
      model: 'm',
      system_fingerprint: 'fp',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'abc', refusal: null },
          logprobs: null,
          finish_reason: 'length',
        },
      ],
      usage: {
        prompt_tokens: 2,
        completion_tokens: 3,
        total_tokens: 5,
        time_to_first_token_ms: 5,
        prefill_tokens_per_second: 100,
        decode_tokens_per_second: 20,
        backend: 'cpu',
        dtype: 'q8',
      },
      ondevice: { token_ids: [4, 5, 6], next_step: 9, seed: 77 },
    })
  })

  it('content is null only when there is no text beside calls (an answer with calls, or a call cut before any text)', () => {
    const message = (part: Partial<FinishPart>) =>
      toChatCompletionResponse(header, { ...finish, ...part }).choices[0]?.message
    const call = { id: 'call_1', name: 'f', arguments: '{}' }
    expect(message({ text: '', toolCalls: [call], finishReason: 'tool-calls' })).toMatchObject({
      content: null,
      tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }],
    })
    expect(message({ text: 'Checking.', toolCalls: [call] })?.content).toBe('Checking.')
    expect(message({ text: '', partial: true })).toEqual({ role: 'assistant', content: null, refusal: null })
    expect(message({ text: '' })?.content).toBe('')
  })
})

describe('streamed tool calls', () => {
  it("one delta per call's start (index, id, type, name), then only new argument text; the finish sends what is left", () => {
    const writer = createChunkWriter(header, false)
    const progress = (index: number, args: string) => ({
      type: 'text-delta' as const,
      text: '',
      tokenIds: [index],
      toolCall: { index, id: `call_${index}`, name: 'f', arguments: args },
    })
    const calls = (chunk: ReturnType<typeof writer.delta>) => chunk?.choices[0]?.delta.tool_calls
    expect(calls(writer.delta(progress(0, '')))).toEqual([
      { index: 0, id: 'call_0', type: 'function', function: { name: 'f', arguments: '' } },
    ])
    expect(calls(writer.delta(progress(0, '{"a"')))).toEqual([{ index: 0, function: { arguments: '{"a"' } }])
    // Nothing new: the token's ids go alone.
    expect(writer.delta(progress(0, '{"a"'))?.choices[0]?.delta).toEqual({ token_ids: [0] })
    expect(calls(writer.delta(progress(0, '{"a":1')))).toEqual([{ index: 0, function: { arguments: ':1' } }])
    expect(calls(writer.delta(progress(1, '{')))).toEqual([
      { index: 1, id: 'call_1', type: 'function', function: { name: 'f', arguments: '{' } },
    ])
    const toolCalls = [
      { id: 'call_0', name: 'f', arguments: '{"a":1}' },
      { id: 'call_1', name: 'f', arguments: '{}' },
      { id: 'call_2', name: 'f', arguments: '{"b":2}' },
    ]
    expect(calls(writer.toolCalls({ ...finish, toolCalls }))).toEqual([
      { index: 0, function: { arguments: '}' } },
      { index: 1, function: { arguments: '}' } },
      { index: 2, id: 'call_2', type: 'function', function: { name: 'f', arguments: '{"b":2}' } },
    ])
    expect(writer.toolCalls({ ...finish, toolCalls })).toBeUndefined()
  })
})
