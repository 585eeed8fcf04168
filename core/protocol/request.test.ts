import { describe, expect, it } from 'vitest'
import { qwen3Tokenizer } from '../../test/support/qwen3-tokenizer.ts'
import { encodeChatPrompt, toChatCompletionRequest, toGenerateRequest } from './request.ts'
import { validateChatCompletionRequest } from './validate.ts'

describe('encoding (the SDK)', () => {
  it('sends the OpenAI body with our extensions and every field the chat template reads', () => {
    const body = toChatCompletionRequest({
      model: 'm',
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'ok', reasoningContent: 'thinking' },
      ],
      sampling: {
        temperature: 0.5,
        topK: 3,
        minP: 0.1,
        repetitionPenalty: 1.1,
        seed: 9,
        logitBias: { 5: -100 },
      },
      maxTokens: 7,
      stop: ['\n\n'],
      continuation: { tokenIds: [1, 2], step: 2 },
      format: { dtype: 'q8', backend: 'wasm', fallback: true },
    })
    expect(body).toEqual({
      model: 'm',
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'ok', reasoning_content: 'thinking' },
      ],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 7,
      temperature: 0.5,
      top_k: 3,
      min_p: 0.1,
      repetition_penalty: 1.1,
      logit_bias: { 5: -100 },
      seed: 9,
      stop: ['\n\n'],
      ondevice_continuation: { token_ids: [1, 2], step: 2 },
      ondevice_format: { dtype: 'q8', backend: 'wasm', fallback: true },
    })
    // What the encoder writes, the validator accepts.
    expect(validateChatCompletionRequest(body)).toEqual(body)
    expect(toChatCompletionRequest({ model: 'm', messages: [], stop: [] })).toEqual({
      model: 'm',
      messages: [],
      stream: true,
      stream_options: { include_usage: true },
    })
  })

  it('what the SDK writes, the worker reads back as the same generation request', () => {
    const sampling = {
      temperature: 0.7,
      topP: 0.9,
      topK: 40,
      minP: 0.02,
      repetitionPenalty: 1.05,
      presencePenalty: 0.3,
      frequencyPenalty: -0.2,
      logitBias: { 12: 3, 7: -100 },
      seed: 42,
    }
    const wire = JSON.parse(
      JSON.stringify(
        toChatCompletionRequest({
          model: 'm',
          messages: [{ role: 'user', content: 'hi' }],
          sampling,
          maxTokens: 5,
          stop: ['END'],
          continuation: { tokenIds: [3, 4], step: 2 },
        }),
      ),
    )
    const request = validateChatCompletionRequest(wire)
    // The worker resolves max_tokens against its cap and the context (chat-completions.ts).
    expect(request.max_tokens).toBe(5)
    expect(
      toGenerateRequest(request, { promptTokenIds: [1], maxTokens: request.max_tokens as number }),
    ).toEqual({
      promptTokenIds: [1],
      sampling,
      maxTokens: 5,
      stop: ['END'],
      continuation: { tokenIds: [3, 4], step: 2 },
    })
  })
})

describe('decoding (the worker)', () => {
  it('encodes the prompt with the model template and kwargs, and maps sampling fields', () => {
    const request = validateChatCompletionRequest({
      model: 'm',
      messages: [
        { role: 'developer', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'Hi' }] },
      ],
      chat_template_kwargs: { enable_thinking: false },
      temperature: 0.5,
      top_k: 10,
      logit_bias: { '7': -100 },
      stop: 'END',
      max_tokens: 9,
      ondevice_continuation: { token_ids: [5, 6], step: 2 },
    })
    const tokenizer = qwen3Tokenizer()
    const { tokenIds: ids, turnBoundaries } = encodeChatPrompt(tokenizer, request)
    expect(tokenizer.decode(ids)).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    )
    // Cut where the answer starts; the short system turn joins the user's (chat-turns.test.ts).
    expect(turnBoundaries.map((end) => tokenizer.decode(ids.slice(0, end)))).toEqual([
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n',
    ])
    expect(
      toGenerateRequest(request, { promptTokenIds: ids, promptBoundaries: turnBoundaries, maxTokens: 9 }),
    ).toEqual({
      promptTokenIds: ids,
      promptBoundaries: turnBoundaries,
      sampling: { temperature: 0.5, topK: 10, logitBias: { 7: -100 } },
      maxTokens: 9,
      stop: ['END'],
      continuation: { tokenIds: [5, 6], step: 2 },
    })
    expect(toGenerateRequest(request, { promptTokenIds: ids, maxTokens: 3 }).maxTokens).toBe(3)
  })

  it('names the wire fields for errors raised mid-answer, as validation compiled the constraint', () => {
    const request = validateChatCompletionRequest({
      model: 'm',
      messages: [{ role: 'user', content: 'Hi' }],
      response_format: { type: 'json_object' },
    })
    const generateRequest = toGenerateRequest(request, { promptTokenIds: [1], maxTokens: 3 })
    expect(generateRequest.constraint).toEqual({ responseFormat: { type: 'json_object' } })
    expect(generateRequest.constraintFieldNames).toEqual({
      responseFormat: 'response_format',
      tools: 'tools',
      toolChoice: 'tool_choice',
    })
  })
})
