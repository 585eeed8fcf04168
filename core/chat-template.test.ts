import { describe, expect, it } from 'vitest'
import { qwen3Tokenizer } from '../test/support/qwen3-tokenizer.ts'
import { type ChatMessage, renderChatTemplate } from './chat-template.ts'
import { InvalidArgumentError, TemplateError } from './errors.ts'

describe('chat template (Qwen3 template from tokenizer_config.json)', () => {
  const tokenizer = qwen3Tokenizer()
  const messages: ChatMessage[] = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Hi!' },
  ]

  it('writes the empty think block exactly when thinking is off', () => {
    expect(tokenizer.applyChatTemplate(messages, { enableThinking: false })).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    )
  })

  it('leaves the think block to the model when thinking is on or unset', () => {
    const expected =
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n'
    expect(tokenizer.applyChatTemplate(messages, { enableThinking: true })).toBe(expected)
    expect(tokenizer.applyChatTemplate(messages)).toBe(expected)
    expect(tokenizer.applyChatTemplate(messages, { addGenerationPrompt: false })).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n',
    )
  })

  it('renders earlier assistant turns without their reasoning and passes tools through', () => {
    const text = tokenizer.applyChatTemplate(
      [
        { role: 'user', content: 'a' },
        { role: 'assistant', content: '<think>\nhmm\n</think>\n\nb' },
        { role: 'user', content: 'c' },
      ],
      { tools: [{ type: 'function', function: { name: 'get_time', parameters: {} } }] },
    )
    expect(text).toContain('<|im_start|>assistant\nb<|im_end|>\n')
    expect(text).toContain(
      '<tools>\n{"type": "function", "function": {"name": "get_time", "parameters": {}}}\n</tools>',
    )
  })

  it('encodes a chat without adding special tokens twice', () => {
    const ids = tokenizer.encodeChat([{ role: 'user', content: 'Hi!' }], { enableThinking: false })
    expect(ids[0]).toBe(151644)
    expect(tokenizer.decode(ids)).toBe(
      '<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    )
  })

  it('rejects bad messages and templates with precise errors', () => {
    expect(() => tokenizer.applyChatTemplate([])).toThrow(/messages is empty/)
    expect(() =>
      tokenizer.applyChatTemplate([{ role: 'robot', content: 'x' } as unknown as ChatMessage]),
    ).toThrow(expect.objectContaining({ param: 'messages.0.role' }))
    expect(() =>
      tokenizer.applyChatTemplate([{ role: 'user', content: 5 } as unknown as ChatMessage]),
    ).toThrow(InvalidArgumentError)
    // OpenAI's shapes, which the template cannot take (transformers.js fails inside the template
    // on both): the error says what to pass instead.
    const parts = [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }] as unknown as ChatMessage[]
    expect(() => tokenizer.applyChatTemplate(parts)).toThrow(
      expect.objectContaining({
        param: 'messages.0.content',
        message: expect.stringMatching(/join the text of its parts/),
      }),
    )
    const toolCallOnly = [
      { role: 'user', content: 'q' },
      { role: 'assistant', content: null, toolCalls: [{ function: { name: 'f', arguments: '{}' } }] },
    ] as unknown as ChatMessage[]
    expect(() => tokenizer.encodeChat(toolCallOnly)).toThrow(
      /messages\.1\.content must be a string \(got null\): use ''/,
    )
    expect(() => renderChatTemplate('{% for %}', { messages })).toThrow(TemplateError)
    expect(() => renderChatTemplate("{{ raise_exception('only user turns') }}", { messages })).toThrow(
      /only user turns/,
    )
    expect(() => renderChatTemplate('', { messages })).toThrow(/no chat template/)
  })
})
