import { describe, expect, it } from 'vitest'
import { firstModelId, listedMaxTokens, toModelEntry, toModelList } from './models.ts'

describe('model list', () => {
  it('lists the ids as OpenAI does, and the SDK reads the first back', () => {
    const list = toModelList(new Set(['a', 'b']))
    expect(list).toEqual({ object: 'list', data: [toModelEntry('a'), toModelEntry('b')] })
    expect(toModelEntry('a')).toEqual({ id: 'a', object: 'model', created: 0, owned_by: 'ondevice' })
    expect(firstModelId(JSON.parse(JSON.stringify(list)))).toBe('a')
  })

  it('reads no id from an empty or malformed list', () => {
    for (const body of [{ data: [] }, { data: [{ id: 5 }] }, {}, null, 'x', { data: {} }]) {
      expect(firstModelId(body)).toBeUndefined()
    }
  })
})

describe('the limit a model list carries', () => {
  it('the worker writes ondevice.max_tokens with each id; the SDK reads it back, and nothing from an older or malformed list', () => {
    const list = JSON.parse(JSON.stringify(toModelList(['a'], { maxTokens: 2048 })))
    expect(list.data[0]).toEqual({ ...toModelEntry('a'), ondevice: { max_tokens: 2048 } })
    expect(listedMaxTokens(list)).toBe(2048)
    for (const body of [
      toModelList(['a']),
      { data: [{ id: 'a', ondevice: { max_tokens: 0 } }] },
      { data: [{ id: 'a', ondevice: { max_tokens: '2048' } }] },
      { data: [{ id: 'a', ondevice: null }] },
      null,
    ]) {
      expect(listedMaxTokens(body)).toBeUndefined()
    }
  })
})
