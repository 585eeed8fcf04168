import { describe, expect, it } from 'vitest'
import type { ChatMessage } from '../chat-template.ts'
import { fromWireMessages, toWireMessages } from './messages.ts'

describe('messages', () => {
  it('carry every field the chat template reads, both ways', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Weather?' },
      {
        role: 'assistant',
        content: '',
        reasoningContent: 'call the tool',
        toolCalls: [{ id: 'c1', type: 'function', function: { name: 'weather', arguments: '{}' } }],
      },
      { role: 'tool', content: 'sunny', toolCallId: 'c1', name: 'weather' },
    ]
    const wire = toWireMessages(messages)
    expect(wire[2]).toEqual({
      role: 'assistant',
      content: '',
      reasoning_content: 'call the tool',
      tool_calls: messages[2]!.toolCalls,
    })
    expect(wire[3]).toEqual({ role: 'tool', content: 'sunny', tool_call_id: 'c1', name: 'weather' })
    expect(fromWireMessages(JSON.parse(JSON.stringify(wire)))).toEqual(messages)
  })

  it("read OpenAI's variants: developer is system, text parts join, null content is empty", () => {
    expect(
      fromWireMessages([
        { role: 'developer', content: 'Rules.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'a' },
            { type: 'text', text: 'b' },
          ],
        },
        { role: 'assistant', content: null },
      ]),
    ).toEqual([
      { role: 'system', content: 'Rules.' },
      { role: 'user', content: 'ab' },
      { role: 'assistant', content: '' },
    ])
  })
})
