import { describe, expect, it } from 'vitest'
import { fromFinishReason, toFinishReason } from './finish-reason.ts'
import { fromUsage, toUsage } from './usage.ts'

describe('usage', () => {
  const usage = {
    promptTokens: 10,
    completionTokens: 5,
    cachedTokens: 6,
    reasoningTokens: 3,
    timeToFirstTokenMs: 12,
    prefillTokensPerSecond: 800,
    decodeTokensPerSecond: 40,
    backend: 'wasm',
    dtype: 'q8',
    route: 'edge' as const,
    routeReason: 'no WebGPU',
  }

  it('maps core usage to the wire and back', () => {
    const wire = toUsage(usage)
    expect(wire).toMatchObject({
      prompt_tokens: 10,
      completion_tokens: 5,
      total_tokens: 15,
      prompt_tokens_details: { cached_tokens: 6 },
      completion_tokens_details: { reasoning_tokens: 3 },
      route_reason: 'no WebGPU',
    })
    expect(fromUsage(JSON.parse(JSON.stringify(wire)))).toEqual(usage)
  })

  it("reads another server's usage: only the fields present and well-formed", () => {
    expect(fromUsage({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 })).toEqual({
      promptTokens: 3,
      completionTokens: 4,
    })
    expect(
      fromUsage({ prompt_tokens: '3', completion_tokens: Number.NaN, backend: 7, route: 'moon' }),
    ).toEqual({})
    expect(fromUsage({ prompt_tokens_details: { cached_tokens: -1 } })).toEqual({})
    expect(fromUsage({ prompt_tokens_details: { cached_tokens: 0 } })).toEqual({ cachedTokens: 0 })
    expect(fromUsage({ completion_tokens_details: { reasoning_tokens: 0 } })).toEqual({ reasoningTokens: 0 })
    expect(fromUsage({ completion_tokens_details: { reasoning_tokens: 1.5 } })).toEqual({})
    expect(fromUsage({ completion_tokens_details: null })).toEqual({})
    // More reasoning than completion tokens is not a reading of this answer.
    expect(fromUsage({ completion_tokens: 2, completion_tokens_details: { reasoning_tokens: 3 } })).toEqual({
      completionTokens: 2,
    })
    expect(fromUsage(null)).toEqual({})
    expect(fromUsage('usage')).toEqual({})
  })
})

describe('finish reasons', () => {
  it('map both ways; ours without an OpenAI name travel as stop', () => {
    expect(toFinishReason('length')).toBe('length')
    expect(toFinishReason('stop')).toBe('stop')
    expect(toFinishReason('abort')).toBe('stop')
    expect(toFinishReason('error')).toBe('stop')
    expect(fromFinishReason('length')).toBe('length')
    expect(fromFinishReason('stop')).toBe('stop')
    expect(fromFinishReason('content_filter')).toBe('stop')
    expect(fromFinishReason(null)).toBe('stop')
  })
})
