// A tool result must answer a call: a `tool` message follows an assistant message with tool calls
// (other results between) and repeats one of their ids, as OpenAI's API requires. One that did
// not was rendered into the prompt as the result of nothing (a 200 from the edge, an answer on
// the device): an app's tool loop that lost or misspelt an id got no word of it. Refused alike by
// the edge (a 400 over real HTTP, read by the official openai client) and by the SDK on the
// device and edge routes, naming the field.
import OpenAI from 'openai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../core/errors.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import { startTestEdge, type TestEdge } from '../test/sdk/test-edge.ts'
import { createClient } from './client.ts'
import type { ChatRequest } from './options.ts'

let edge: TestEdge
beforeAll(async () => {
  edge = await startTestEdge()
})
afterAll(async () => {
  await edge.close()
})

const user = { role: 'user' as const, content: 'Weather in Paris and Nice?' }
const call = (id: string, city: string) => ({
  id,
  type: 'function' as const,
  function: { name: 'get_weather', arguments: JSON.stringify({ city }) },
})
const called = {
  role: 'assistant' as const,
  content: null,
  tool_calls: [call('call_a', 'Paris'), call('call_b', 'Nice')],
}
const result = (id: string) => ({ role: 'tool' as const, tool_call_id: id, content: '{"celsius":21}' })

/** Wire messages as the SDK takes them (camelCase). */
function forSdk(messages: readonly Record<string, unknown>[]): ChatRequest['messages'] {
  return messages.map(({ tool_calls, tool_call_id, ...rest }) => ({
    ...rest,
    ...(tool_calls === undefined ? {} : { toolCalls: tool_calls }),
    ...(tool_call_id === undefined ? {} : { toolCallId: tool_call_id }),
  })) as unknown as ChatRequest['messages']
}

const orphans: [string, Record<string, unknown>[], number, RegExp][] = [
  ['a result with no call before it', [user, result('call_a')], 1, /no assistant message with tool_?calls/i],
  [
    'a result whose id is none of the calls',
    [user, called, result('call_a'), result('call_x')],
    3,
    /"call_x".*not the id of a call in messages\.1\.tool_?calls \("call_a", "call_b"\)/i,
  ],
  [
    'a result after the assistant answered in text (the call was answered before it)',
    [
      user,
      called,
      result('call_a'),
      result('call_b'),
      { role: 'assistant', content: 'Sunny.' },
      result('call_b'),
    ],
    5,
    /no assistant message with tool_?calls/i,
  ],
]

describe('a tool result that answers no call', () => {
  it.each(orphans)(
    '%s: the edge answers 400 naming messages.N.tool_call_id',
    async (_label, messages, index, why) => {
      const client = new OpenAI({ baseURL: `${edge.url}/v1`, apiKey: 'none', maxRetries: 0 })
      for (const stream of [false, true]) {
        const error = await client.chat.completions
          .create({
            model: edge.modelId,
            messages: messages as unknown as OpenAI.ChatCompletionMessageParam[],
            max_tokens: 4,
            stream,
          })
          .then(
            () => undefined,
            (caught: unknown) => caught,
          )
        expect(error, `stream ${stream}`).toBeInstanceOf(OpenAI.BadRequestError)
        const { param, message } = error as InstanceType<typeof OpenAI.BadRequestError>
        expect(param).toBe(`messages.${index}.tool_call_id`)
        expect(message).toMatch(why)
      }
    },
  )

  it.each(orphans)(
    '%s: the SDK refuses it on the device and the edge routes, naming messages.N.toolCallId',
    async (_label, messages, index, why) => {
      const device = createClient({ policy: 'device-only' }, { deviceHost: createTestDeviceHost() })
      const edgeOnly = createClient({ policy: 'edge-only', edge: { url: edge.url } })
      try {
        for (const client of [device, edgeOnly]) {
          const error = await client.chat({ messages: forSdk(messages), maxTokens: 4 }).then(
            () => undefined,
            (caught: unknown) => caught,
          )
          expect(error).toBeInstanceOf(InvalidArgumentError)
          expect((error as InvalidArgumentError).param).toBe(`messages.${index}.toolCallId`)
          expect((error as Error).message).toMatch(why)
        }
      } finally {
        await device.dispose()
        await edgeOnly.dispose()
      }
    },
  )

  it('results in any order, each answering one of the calls before them, are taken on every side', async () => {
    const messages = [user, called, result('call_b'), result('call_a')]
    const client = new OpenAI({ baseURL: `${edge.url}/v1`, apiKey: 'none', maxRetries: 0 })
    const answer = await client.chat.completions.create({
      model: edge.modelId,
      messages: messages as unknown as OpenAI.ChatCompletionMessageParam[],
      max_tokens: 4,
      seed: 1,
    })
    for (const [policy, options] of [
      ['device-only', {}],
      ['edge-only', { edge: { url: edge.url } }],
    ] as const) {
      const sdk = createClient({ policy, ...options }, { deviceHost: createTestDeviceHost() })
      const onSdk = await sdk.chat({ messages: forSdk(messages), maxTokens: 4, seed: 1 })
      await sdk.dispose()
      expect(onSdk.text, policy).toBe(answer.choices[0]?.message.content)
    }
  })
})
