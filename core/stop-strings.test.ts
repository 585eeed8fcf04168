import { describe, expect, it } from 'vitest'
import { StopStringMatcher } from './stop-strings.ts'

function run(stops: string[], pieces: string[]) {
  const matcher = new StopStringMatcher(stops)
  const shown: string[] = []
  let stopped = false
  for (const piece of pieces) {
    const result = matcher.push(piece)
    shown.push(result.text)
    if (result.stopped) {
      stopped = true
      break
    }
  }
  if (!stopped) shown.push(matcher.flush())
  return { shown, stopped, text: shown.join('') }
}

describe('StopStringMatcher', () => {
  it('finds a stop string split over many pieces and shows nothing of it', () => {
    const { shown, stopped, text } = run(['</answer>'], ['42', '</', 'ans', 'wer', '> trailing'])
    expect(stopped).toBe(true)
    expect(text).toBe('42')
    expect(shown).toEqual(['42', '', '', '', ''])
  })

  it('releases held text once it stops matching, and at the end', () => {
    expect(run(['STOP'], ['a S', 'T', 'x', ' b']).text).toBe('a STx b')
    expect(run(['STOP'], ['a S', 'TO']).shown).toEqual(['a ', '', 'STO'])
  })

  it('stops at the earliest of several stop strings, even inside one piece', () => {
    expect(run(['cd', 'b'], ['abcd']).text).toBe('a')
    expect(run(['\n\n'], ['one\n', '\ntwo']).text).toBe('one')
  })

  it('passes everything through without stop strings and rejects empty ones', () => {
    expect(run([], ['a', 'b']).text).toBe('ab')
    expect(() => new StopStringMatcher([''])).toThrow(/stop\.0 must be a non-empty string/)
  })
})
