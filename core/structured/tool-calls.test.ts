// Reading calls back out of an answer: arguments exactly as the model wrote them, ids from what
// precedes each call.
import { describe, expect, it } from 'vitest'
import { readToolCalls, toolCallId } from './tool-calls.ts'

describe('readToolCalls', () => {
  const call = (json: string) => `<tool_call>\n${json}\n</tool_call>`

  it("keeps the arguments' text as written (parsing and printing again changed numbers and escapes)", () => {
    const text = `Sure.\n${call('{"name":"f","arguments":{"x":0.10,"y":123456789012345.123456789012345,"s":"\\u00e9\\/"}}')}`
    const { content, toolCalls } = readToolCalls(text, [1, 2, 3])
    expect(content).toBe('Sure.')
    expect(toolCalls).toHaveLength(1)
    // It was {"x":0.1,"y":123456789012345.12,"s":"é/"}.
    expect(toolCalls[0]?.arguments).toBe('{"x":0.10,"y":123456789012345.123456789012345,"s":"\\u00e9\\/"}')
    expect(JSON.parse(toolCalls[0]!.arguments)).toEqual({ x: 0.1, y: 123456789012345.12, s: 'é/' })
  })

  it('names each call by idOf(index); a cut call is no call', () => {
    const text = `${call('{"name":"a","arguments":{}}')}\n${call('{"name":"b","arguments":{"k":[1,2]}}')}\n<tool_call>\n{"name":"a","argu`
    const { toolCalls } = readToolCalls(text, [], (index) => `id-${index}`)
    expect(toolCalls).toEqual([
      { id: 'id-0', name: 'a', arguments: '{}' },
      { id: 'id-1', name: 'b', arguments: '{"k":[1,2]}' },
    ])
  })

  it('toolCallId depends on every preceding token and the index', () => {
    expect(toolCallId([1, 2, 3], 0)).toBe(toolCallId([1, 2, 3], 0))
    expect(toolCallId([1, 2, 3], 0)).not.toBe(toolCallId([1, 2, 4], 0))
    expect(toolCallId([1, 2, 3], 0)).not.toBe(toolCallId([1, 2, 3], 1))
    expect(toolCallId([7], 0)).toMatch(/^call_[0-9a-z]+0$/)
  })
})
