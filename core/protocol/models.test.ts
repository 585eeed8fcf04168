import { describe, expect, it } from 'vitest'
import { firstModelId, toModelEntry, toModelList } from './models.ts'

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
