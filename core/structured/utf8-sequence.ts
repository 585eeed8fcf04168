// A string's bytes as UTF-8, one at a time: what a JSON string (frames.ts, StringFrame) and an XML
// call's raw text (raw-string-frame.ts) both follow. A frame inside a multi-byte character keeps a
// substate `utf8Base + 8 · bytes still needed + range` (the range the next byte must fall in) and
// the code point's bits so far; these functions step it, allocating nothing (the mask's hot path).
import type { AutomatonState } from './regex.ts'

export const utf8Base = 16
// [low, high] of the next continuation byte: any, after E0, after ED, after F0, after F4.
const utf8Ranges: readonly (readonly [number, number])[] = [
  [0x80, 0xbf],
  [0xa0, 0xbf],
  [0x80, 0x9f],
  [0x90, 0xbf],
  [0x80, 0x8f],
]

/** The substate after a lead byte of a multi-byte character, or -1 when `byte` leads none. */
export function leadSubstate(byte: number): number {
  if (byte >= 0xc2 && byte <= 0xdf) return utf8Base + 8
  if (byte >= 0xe0 && byte <= 0xef) return utf8Base + 16 + (byte === 0xe0 ? 1 : byte === 0xed ? 2 : 0)
  if (byte >= 0xf0 && byte <= 0xf4) return utf8Base + 24 + (byte === 0xf0 ? 3 : byte === 0xf4 ? 4 : 0)
  return -1
}

/** The code point bits a lead byte carries. */
export function leadBits(byte: number): number {
  return byte <= 0xdf ? byte & 0x1f : byte <= 0xef ? byte & 0x0f : byte & 0x07
}

/** Continuation bytes still needed in `substate` (≥ 1), or -1 when `byte` cannot be the next one. */
export function continuationNeeded(substate: number, byte: number): number {
  const [low, high] = utf8Ranges[(substate - utf8Base) & 7]!
  return byte < low || byte > high ? -1 : (substate - utf8Base) >> 3
}

/** The substate after one more continuation byte when `needed` (> 1) were still needed. */
export function continuedSubstate(needed: number): number {
  return utf8Base + 8 * (needed - 1)
}

/**
 * The fewest characters the automaton still needs after the character being written in
 * `substate`, exactly: the code points that sequence can still become (the next byte within its
 * range, the ones after it any continuation byte).
 */
export function cheapestAfterSequence(state: AutomatonState, substate: number, partial: number): number {
  const left = (substate - utf8Base) >> 3
  const [lowByte, highByte] = utf8Ranges[(substate - utf8Base) & 7]!
  const shift = 6 * (left - 1)
  const base = partial * 2 ** (6 * left)
  const low = base + (lowByte & 0x3f) * 2 ** shift
  const high = base + (highByte & 0x3f) * 2 ** shift + (2 ** shift - 1)
  return state.automaton.cheapest(state, low, Math.min(high, 0x10ffff))
}
