import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  maximumStopStringLength,
  maximumStopStrings,
  StopStringMatcher,
  validateStopStrings,
} from './stop-strings.ts'

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

  it('bounds the list: at most 4 strings of at most 256 characters, each refusal naming the field', () => {
    expect(maximumStopStrings).toBe(4)
    expect(() => validateStopStrings(['a', 'b', 'c', 'd', 'e'])).toThrow(/stop has 5 strings; send at most 4/)
    expect(() => validateStopStrings(['ok', 'x'.repeat(maximumStopStringLength + 1)])).toThrow(
      expect.objectContaining({ param: 'stop.1', message: expect.stringMatching(/257 characters long/) }),
    )
    expect(validateStopStrings(['x'.repeat(maximumStopStringLength)])).toHaveLength(1)
    // A sparse array's hole is no stop string (the matcher crashed on it).
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    expect(() => validateStopStrings(['a', , 'b'])).toThrow(/stop\.1 must be a non-empty string/)
  })

  it('agrees with the naive definition (earliest stop, longest held prefix) on random pieces', () => {
    // The reference: the former quadratic matcher (search the held text plus the piece, hold the
    // longest suffix that starts some stop string), whose results must not change.
    const naive = (stops: string[], pieces: string[]): { text: string; stopped: boolean } => {
      let pending = ''
      let text = ''
      for (const piece of pieces) {
        const all = pending + piece
        let earliest = -1
        for (const stop of stops) {
          const index = all.indexOf(stop)
          if (index !== -1 && (earliest === -1 || index < earliest)) earliest = index
        }
        if (earliest !== -1) return { text: text + all.slice(0, earliest), stopped: true }
        let hold = 0
        for (const stop of stops)
          for (let length = Math.min(stop.length - 1, all.length); length > hold; length--)
            if (all.endsWith(stop.slice(0, length))) {
              hold = length
              break
            }
        text += all.slice(0, all.length - hold)
        pending = all.slice(all.length - hold)
      }
      return { text: text + pending, stopped: false }
    }
    const alphabet = fc.constantFrom('a', 'b', 'ab', 'aab', '\n')
    fc.assert(
      fc.property(
        fc.array(
          fc.array(alphabet, { minLength: 1, maxLength: 6 }).map((parts) => parts.join('')),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        fc.array(
          fc.array(alphabet, { maxLength: 4 }).map((parts) => parts.join('')),
          { maxLength: 12 },
        ),
        (stops, pieces) => {
          const result = run(stops, pieces)
          const expected = naive(stops, pieces)
          expect(result.stopped).toBe(expected.stopped)
          expect(result.text).toBe(expected.text)
          // Nothing is shown that could still become a stop string.
          if (!result.stopped) {
            const matcher = new StopStringMatcher(stops)
            let shown = ''
            for (const piece of pieces) {
              shown += matcher.push(piece).text
              for (const stop of stops) expect(shown.includes(stop)).toBe(false)
            }
          }
        },
      ),
      { seed: 2101, numRuns: 2000 },
    )
  })

  it('matches long stop strings over long pieces in linear time (the adversarial case)', () => {
    // Each stop is all spaces but one letter in the middle, fed 128 spaces at a time: the old
    // suffix search compared ~stop²/2 characters per stop per piece (seconds for this input).
    const stops = Array.from(
      { length: maximumStopStrings },
      (_, index) => `${' '.repeat(127)}${'abcd'[index]}${' '.repeat(128)}`,
    )
    const matcher = new StopStringMatcher(stops)
    let shown = ''
    for (let piece = 0; piece < 20_000; piece++) shown += matcher.push(' '.repeat(128)).text
    shown += matcher.flush()
    expect(shown.length).toBe(20_000 * 128)
  })
})
