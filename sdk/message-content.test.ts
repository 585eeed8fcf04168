// OpenAI's message shapes through chat() / stream(), as the edge takes them: content as text parts
// (joined by the edge's rule), an assistant's null content, the 'developer' role; the same prompt
// on the device, on the edge and across a handoff; parts the model cannot read refused alike
// everywhere. Device and edge are core's test session with the real Qwen3 tokenizer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { OndeviceError } from '../core/errors.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import { startTestEdge, type TestEdge } from '../test/sdk/test-edge.ts'
import { createClient } from './client.ts'
import type { ChatRequestMessage } from './options.ts'

const relaxed = { minDeviceTokensPerSecond: 1 }
let edge: TestEdge
beforeAll(async () => {
  edge = await startTestEdge()
})
afterAll(async () => {
  await edge.close()
})

// What an app ported from OpenAI sends, and the same conversation as core's strings.
const openAIStyle: ChatRequestMessage[] = [
  { role: 'developer', content: [{ type: 'text', text: 'Answer briefly.' }] },
  {
    role: 'user',
    content: [
      { type: 'text', text: 'Weather in ' },
      { type: 'text', text: 'Paris?' },
    ],
  },
  {
    role: 'assistant',
    content: null,
    toolCalls: [
      { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
    ],
  },
  { role: 'tool', toolCallId: 'call_1', content: [{ type: 'text', text: 'sunny' }] },
  { role: 'user', content: [] },
]
const asStrings: ChatRequestMessage[] = [
  { role: 'system', content: 'Answer briefly.' },
  { role: 'user', content: 'Weather in Paris?' },
  {
    role: 'assistant',
    content: '',
    toolCalls: [
      { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
    ],
  },
  { role: 'tool', toolCallId: 'call_1', content: 'sunny' },
  { role: 'user', content: '' },
]
const sampling = { temperature: 1, seed: 7, maxTokens: 12 }

describe("OpenAI's message shapes in chat() and stream()", () => {
  it('text parts, a null assistant content and developer give the prompt of the joined strings on the device, the edge and across a handoff', async () => {
    const device = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const reference = await device.chat({ messages: asStrings, ...sampling })
    const parts = await device.chat({ messages: openAIStyle, ...sampling })
    await device.dispose()
    expect(parts.usage.promptTokens).toBe(reference.usage.promptTokens)
    expect(parts.tokenIds).toEqual(reference.tokenIds)

    const edgeOnly = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    const before = edge.chatBodies.length
    const fromEdge = await edgeOnly.chat({ messages: openAIStyle, ...sampling })
    await edgeOnly.dispose()
    expect(fromEdge.route).toBe('edge')
    expect(fromEdge.usage.promptTokens).toBe(reference.usage.promptTokens)
    expect(fromEdge.tokenIds).toEqual(reference.tokenIds)
    // The edge is sent the conversation as the device rendered it: one form, joined once.
    expect(edge.chatBodies[before]?.['messages']).toEqual([
      { role: 'system', content: 'Answer briefly.' },
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant',
        content: '',
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Paris"}' } },
        ],
      },
      { role: 'tool', content: 'sunny', tool_call_id: 'call_1' },
      { role: 'user', content: '' },
    ])

    // A handoff continues the same prompt: the joined answer is the device's own.
    for (const k of [1, 5]) {
      const client = createClient(
        { edge: { url: edge.url }, thresholds: relaxed },
        { deviceHost: createTestDeviceHost({ failAtToken: k }) },
      )
      const joined = await client.chat({ messages: openAIStyle, ...sampling })
      await client.dispose()
      expect(joined.route, `k=${k}`).toBe('device+edge')
      expect(joined.tokenIds, `k=${k}`).toEqual(reference.tokenIds)
    }
  })

  it("the app's parts are read at the call: changing them afterwards changes nothing", async () => {
    const device = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const reference = await device.chat({ messages: asStrings, ...sampling })
    const text = [{ type: 'text' as const, text: 'Weather in Paris?' }]
    const messages: ChatRequestMessage[] = [
      ...asStrings.slice(0, 1),
      { role: 'user', content: text },
      ...asStrings.slice(2),
    ]
    const stream = device.stream({ messages, ...sampling })
    text[0] = { type: 'text', text: 'Something else entirely' }
    let tokenIds: readonly number[] = []
    for await (const part of stream) if (part.type === 'finish') tokenIds = part.tokenIds
    await device.dispose()
    expect(tokenIds).toEqual(reference.tokenIds)
  })

  it('a part the model cannot read is refused at its path, with the same error on every route and on the wire', async () => {
    const cases: [ChatRequestMessage['content'] | number, string, RegExp][] = [
      [
        [
          { type: 'text', text: 'What is this?' },
          { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } } as never,
        ],
        'messages.0.content.1.type',
        /"image_url": images are not supported by this model/,
      ],
      [
        [{ type: 'input_audio', input_audio: { data: '', format: 'wav' } } as never],
        'messages.0.content.0.type',
        /audio is not supported by this model/,
      ],
      [[{ type: 'file', file: {} } as never], 'messages.0.content.0.type', /files are not supported/],
      [[{ type: 'text', text: 5 } as never], 'messages.0.content.0.text', /must be a string/],
      [[['text'] as never], 'messages.0.content.0', /must be an object like/],
      [null, 'messages.0.content', /every user message needs text content/],
      [5, 'messages.0.content', /a string or an array of \{ type: 'text', text \} parts/],
    ]
    const clients = [
      createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() }),
      createClient({ policy: 'edge-only', edge: { url: edge.url } }),
      createClient({ edge: { url: edge.url } }, { deviceHost: createTestDeviceHost() }),
    ]
    const before = edge.chatBodies.length
    for (const [content, param, message] of cases) {
      const messages = [{ role: 'user', content }] as ChatRequestMessage[]
      const errors: unknown[] = []
      for (const client of clients) {
        errors.push(await client.chat({ messages }).catch((error: unknown) => error))
        // stream() refuses before anything runs, as chat() does.
        try {
          client.stream({ messages })
          errors.push(undefined)
        } catch (error) {
          errors.push(error)
        }
      }
      for (const error of errors) {
        expect(error, param).toMatchObject({ name: 'InvalidArgumentError', code: 'invalid_argument', param })
        expect((error as OndeviceError).message, param).toMatch(message)
      }
      // The wire refuses the same content with the same param and words.
      const wire = await fetch(`${edge.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: edge.modelId, messages }),
      })
      expect(wire.status, param).toBe(400)
      const body = (await wire.json()) as { error: { param: string; message: string } }
      expect(body.error.param, param).toBe(param)
      expect(body.error.message, param).toBe((errors[0] as OndeviceError).message)
    }
    // Nothing reached the edge's model: every refusal came before the request.
    expect(edge.chatBodies.length - before).toBe(cases.length)
    for (const client of clients) await client.dispose()
  })

  it("OpenAI's snake_case message fields are refused naming the SDK's names, never dropped from the prompt", async () => {
    // A history kept in OpenAI's wire shape (tool_calls, tool_call_id, reasoning_content) passed
    // to chat(): the assistant's tool_calls were left out of the prompt without a word (the model
    // saw an empty assistant turn), and a tool result failed only for a missing toolCallId.
    const client = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const call = {
      id: 'call_1',
      type: 'function',
      function: { name: 'weather', arguments: '{"city":"Paris"}' },
    }
    const cases: [Record<string, unknown>, string, string][] = [
      [{ role: 'assistant', content: null, tool_calls: [call] }, 'tool_calls', 'toolCalls'],
      [{ role: 'tool', tool_call_id: 'call_1', content: 'sunny' }, 'tool_call_id', 'toolCallId'],
      [
        { role: 'assistant', content: 'Hi', reasoning_content: 'Greet.' },
        'reasoning_content',
        'reasoningContent',
      ],
    ]
    for (const [message, wireName, sdkName] of cases) {
      const messages = [
        { role: 'user', content: 'Weather in Paris?' },
        message,
        { role: 'user', content: 'And?' },
      ]
      const request = { messages: messages as unknown as ChatRequestMessage[], maxTokens: 2 }
      const error = (await client.chat(request).catch((thrown: unknown) => thrown)) as OndeviceError
      expect(error, wireName).toMatchObject({ name: 'InvalidArgumentError', param: `messages.1.${wireName}` })
      expect(error.message).toContain(sdkName)
    }
    await client.dispose()
  })

  it('a snake_case message field that is null carries nothing: answered as without it, as on the wire', async () => {
    // An OpenAI-compatible server's response message sent back as it came holds tool_calls: null
    // and reasoning_content: null. They were refused as wire names to rename, and the camelCase
    // field takes no null: no way through but deleting a field that carried nothing.
    const client = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const plain = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: 'Sunny.' },
      { role: 'user', content: 'And?' },
    ]
    const expected = await client.chat({ messages: plain as ChatRequestMessage[], maxTokens: 4, seed: 3 })
    const sentBack = plain.map((message) =>
      message.role === 'assistant'
        ? { ...message, tool_calls: null, reasoning_content: null, tool_call_id: null }
        : message,
    )
    const result = await client.chat({
      messages: sentBack as unknown as ChatRequestMessage[],
      maxTokens: 4,
      seed: 3,
    })
    expect(result.text).toBe(expected.text)
    expect(result.usage.promptTokens).toBe(expected.usage.promptTokens)
    await client.dispose()
  })

  it('a message key the SDK does not take is refused at its path, as the edge refuses it, on every route and before any work', async () => {
    // chat() dropped them (an Ollama-style images list, a misspelt content, audio) and answered
    // without them, while the edge refused the same request with a 400 naming the key.
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [
        { role: 'user', content: 'What is this?', images: ['aGk='] },
        'images',
        /images are not supported by this model/,
      ],
      [{ role: 'user', content: 'Hi', contnet: 'Hi' }, 'contnet', /role and content.*toolCalls.*toolCallId/],
      // Without content beside it, the misspelling is still what is named (it was "messages.0.content
      // is missing", on the device and on the wire).
      [{ role: 'user', contnet: 'Hi' }, 'contnet', /role and content.*toolCalls.*toolCallId/],
      [{ role: 'assistant', content: 'Hi', audio: { id: 'audio_1' } }, 'audio', /audio is not supported/],
      [
        { role: 'assistant', content: '', function_call: { name: 'f', arguments: '{}' } },
        'function_call',
        /deprecated form of a tool call: send toolCalls/,
      ],
      [{ role: 'assistant', content: 'Hi', reasoning: 'Greet.' }, 'reasoning', /goes in "reasoningContent"/],
      [{ role: 'assistant', content: 'Hi', refusal: 5 }, 'refusal', /must be a string/],
    ]
    const device = createTestDeviceHost()
    const clients = [
      createClient({ policy: 'device-only' }, { deviceHost: device }),
      createClient({ policy: 'edge-only', edge: { url: edge.url } }),
      createClient({ edge: { url: edge.url } }, { deviceHost: device }),
    ]
    const before = edge.chatBodies.length
    for (const [message, key, words] of cases) {
      const messages = [message, { role: 'user', content: 'And?' }] as unknown as ChatRequestMessage[]
      const param = `messages.0.${key}`
      const errors: unknown[] = []
      for (const client of clients) {
        errors.push(await client.chat({ messages, maxTokens: 2 }).catch((error: unknown) => error))
        try {
          client.stream({ messages, maxTokens: 2 })
          errors.push(undefined)
        } catch (error) {
          errors.push(error)
        }
      }
      for (const error of errors) {
        expect(error, key).toMatchObject({ name: 'InvalidArgumentError', code: 'invalid_argument', param })
        expect((error as OndeviceError).message, key).toMatch(words)
      }
      // The wire refuses the same key at the same path; where its words name no field, the same words.
      const wire = await fetch(`${edge.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: edge.modelId, messages }),
      })
      expect(wire.status, key).toBe(400)
      const body = (await wire.json()) as { error: { param: string; message: string } }
      expect(body.error.param, key).toBe(param)
      if (key === 'images' || key === 'audio' || key === 'refusal')
        expect(body.error.message, key).toBe((errors[0] as OndeviceError).message)
    }
    // Nothing ran: no model was loaded, and only the wire requests above reached the edge.
    expect(edge.chatBodies.length - before).toBe(cases.length)
    const [deviceOnly] = clients
    expect((await deviceOnly?.status())?.loaded).toBe(false)
    for (const client of clients) await client.dispose()
  })

  it("what OpenAI's response message carries, sent back as it came, is taken on every route and on the wire", async () => {
    // refusal, annotations, and audio / function_call / tool_calls as null: an app that appends
    // the response's message to its history sends them back; they carry nothing for the prompt.
    const plain = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: 'Sunny.' },
      { role: 'user', content: 'And?' },
    ]
    const sentBack = plain.map((message) =>
      message.role === 'assistant'
        ? { ...message, refusal: null, annotations: [], audio: null, function_call: null, tool_calls: null }
        : message,
    )
    const request = { maxTokens: 4, seed: 3 }
    const device = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const edgeOnly = createClient({ policy: 'edge-only', edge: { url: edge.url } })
    for (const client of [device, edgeOnly]) {
      const expected = await client.chat({ messages: plain as ChatRequestMessage[], ...request })
      const result = await client.chat({ messages: sentBack as unknown as ChatRequestMessage[], ...request })
      expect(result.tokenIds).toEqual(expected.tokenIds)
      expect(result.usage.promptTokens).toBe(expected.usage.promptTokens)
    }
    // A refusal's text is no part of the prompt, on the edge either (it renders role and content).
    const withRefusal = plain.map((message) =>
      message.role === 'assistant' ? { ...message, refusal: 'I cannot help with that.' } : message,
    )
    const expected = await device.chat({ messages: plain as ChatRequestMessage[], ...request })
    const refused = await device.chat({
      messages: withRefusal as unknown as ChatRequestMessage[],
      ...request,
    })
    expect(refused.tokenIds).toEqual(expected.tokenIds)
    await device.dispose()
    await edgeOnly.dispose()
    const wire = await fetch(`${edge.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: edge.modelId, messages: sentBack, max_tokens: 2 }),
    })
    expect(wire.status).toBe(200)
  })

  it("a role the SDK does not take is refused with the roles it does, 'developer' included, in the wire's words", async () => {
    const client = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
    const messages = [{ role: 'Developer', content: 'Be brief.' }] as unknown as ChatRequestMessage[]
    const error = (await client.chat({ messages }).catch((thrown: unknown) => thrown)) as OndeviceError
    await client.dispose()
    expect(error).toMatchObject({ name: 'InvalidArgumentError', param: 'messages.0.role' })
    const wire = await fetch(`${edge.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: edge.modelId, messages }),
    })
    const body = (await wire.json()) as { error: { param: string; message: string } }
    expect(body.error.param).toBe('messages.0.role')
    expect(error.message).toBe(body.error.message)
    expect(error.message).toMatch(/'developer'/)
  })
})
