import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { qwen3Tokenizer, qwen3TokenizerFiles } from '../test/support/qwen3-tokenizer.ts'
import { type ChatMessage, readsArgumentsAsMapping, renderChatTemplate } from './chat-template.ts'
import { InvalidArgumentError, TemplateError } from './errors.ts'
import { encodeChatPrompt } from './protocol/request.ts'
import { Tokenizer } from './tokenizer.ts'

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
    // A key the template never reads is refused at its path: dropped, the image or the misspelt
    // content it carried was silently no part of the prompt.
    for (const [key, words] of [
      ['images', /images are not supported/],
      ['tool_calls', /did you mean "toolCalls"/],
      ['contnet', /a message has role and content/],
    ] as const) {
      const extra = [{ role: 'user', content: 'Hi', [key]: ['x'] }] as unknown as ChatMessage[]
      expect(() => tokenizer.encodeChat(extra), key).toThrow(
        expect.objectContaining({ param: `messages.0.${key}`, message: expect.stringMatching(words) }),
      )
    }
    expect(tokenizer.encodeChat([{ role: 'user', content: 'Hi', images: undefined } as ChatMessage])).toEqual(
      tokenizer.encodeChat([{ role: 'user', content: 'Hi' }]),
    )
    expect(() => renderChatTemplate('{% for %}', { messages })).toThrow(TemplateError)
    expect(() => renderChatTemplate("{{ raise_exception('only user turns') }}", { messages })).toThrow(
      /only user turns/,
    )
    expect(() => renderChatTemplate('', { messages })).toThrow(/no chat template/)
  })
})

describe('chat template of the Qwen3-Coder XML tool-call dialect (Qwen3.5)', () => {
  const template = readFileSync(
    fileURLToPath(new URL('../test/support/templates/qwen3-xml-tool-calls.jinja', import.meta.url)),
    'utf8',
  )
  const tools = [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } } },
      },
    },
  ]
  // An OpenAI client's second turn: the call's arguments as JSON text, as the wire sends them.
  const conversation = (args: string): ChatMessage[] => [
    { role: 'user', content: 'Weather in Paris?' },
    {
      role: 'assistant',
      content: '',
      toolCalls: [
        { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: args } },
        { id: 'call_2', type: 'function', function: { name: 'get_weather', arguments: { city: 'Nice' } } },
      ],
    },
    { role: 'tool', toolCallId: 'call_1', content: '{"celsius":21}' },
    { role: 'tool', toolCallId: 'call_2', content: '{"celsius":25}' },
  ]

  it('arguments nested deeper than 64 levels are refused with advice this template can take', () => {
    // The refusal told the client to send the arguments as JSON text; this template parses that
    // text and prints what it holds, so the same text was refused again: only flatter arguments do.
    const deep = `${'{"a":'.repeat(70)}1${'}'.repeat(70)}`
    let caught: unknown
    try {
      renderChatTemplate(template, { messages: conversation(deep), tools })
    } catch (error) {
      caught = error
    }
    expect(caught).toBeInstanceOf(InvalidArgumentError)
    expect((caught as InvalidArgumentError).param).toBe('messages.1.toolCalls.0.function.arguments')
    expect((caught as InvalidArgumentError).message).toMatch(/nests deeper than 64 levels/)
    expect((caught as InvalidArgumentError).message).not.toMatch(/as the call gave them \(JSON text\)/)
    expect((caught as InvalidArgumentError).message).toMatch(/flatter/)
  })

  it('is detected from the template text; Qwen3-style templates are not', () => {
    expect(readsArgumentsAsMapping(template)).toBe(true)
    expect(readsArgumentsAsMapping(qwen3Tokenizer().chatTemplate as string)).toBe(false)
  })

  it('renders a two-turn tool loop with the arguments given as JSON text, each as a <parameter>', () => {
    const text = renderChatTemplate(template, {
      messages: conversation('{"city":"Paris","days":2}'),
      tools,
    })
    expect(text).toContain('You have access to the following functions:\n\n<tools>\n{"type": "function"')
    expect(text).toContain('<function=example_function_name>')
    expect(text).toContain(
      '<|im_start|>assistant\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n2\n</parameter>\n</function>\n</tool_call>' +
        '\n<tool_call>\n<function=get_weather>\n<parameter=city>\nNice\n</parameter>\n</function>\n</tool_call><|im_end|>\n',
    )
    expect(text).toContain(
      '<|im_start|>user\n<tool_response>\n{"celsius":21}\n</tool_response>\n<tool_response>\n{"celsius":25}\n</tool_response><|im_end|>\n<|im_start|>assistant\n',
    )
  })

  it('names the arguments that are not a JSON object', () => {
    for (const bad of ['{"city":', '[1]', '"Paris"', 'null'])
      expect(() => renderChatTemplate(template, { messages: conversation(bad), tools })).toThrow(
        expect.objectContaining({
          name: 'InvalidArgumentError',
          param: 'messages.1.toolCalls.0.function.arguments',
        }),
      )
  })

  it("names the wire's field on the server path (messages.N.tool_calls.M.function.arguments)", () => {
    const tokenizer = Tokenizer.fromFiles({ ...qwen3TokenizerFiles(), chatTemplate: template })
    const request = (args: string) => ({
      model: 'm',
      messages: [
        { role: 'user' as const, content: 'Weather?' },
        {
          role: 'assistant' as const,
          content: null,
          tool_calls: [
            { id: 'c', type: 'function' as const, function: { name: 'get_weather', arguments: args } },
          ],
        },
        { role: 'tool' as const, tool_call_id: 'c', content: 'sunny' },
      ],
    })
    expect(() => encodeChatPrompt(tokenizer, request('{"city"'))).toThrow(
      expect.objectContaining({
        param: 'messages.1.tool_calls.0.function.arguments',
        message: expect.stringMatching(/^messages\.1\.tool_calls\.0\.function\.arguments is not JSON/),
      }),
    )
    const prompt = tokenizer.decode(encodeChatPrompt(tokenizer, request('{"city":"Paris"}')).tokenIds)
    expect(prompt).toContain(
      '<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n</tool_call>',
    )
  })

  it('leaves Qwen3-style templates the arguments as written', () => {
    const text = qwen3Tokenizer().applyChatTemplate(conversation('{"city":"Paris",  "days":2}'), { tools })
    expect(text).toContain(
      '<tool_call>\n{"name": "get_weather", "arguments": {"city":"Paris",  "days":2}}\n</tool_call>',
    )
  })
})
