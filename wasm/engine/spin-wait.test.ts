import { describe, expect, it } from 'vitest'
import { SpinWait, spinMs } from './spin-wait.ts'

/** A clock that moves by `step` ms each time it is read, counting the reads. */
function steppingClock(step: number) {
  const clock = { reads: 0, now: () => clock.reads++ * step }
  return clock
}

describe('SpinWait', () => {
  it('returns true at once when the word already differs, without reading the clock twice', () => {
    const clock = steppingClock(1)
    const words = new Int32Array(new SharedArrayBuffer(8))
    words[1] = 5
    expect(new SpinWait(clock.now).spin(words, 1, 4)).toBe(true)
    expect(clock.reads).toBe(1)
  })

  it('runs out after spinMs, then sleeps through 1, 3, 7 ... waits without spinning, and a success halves that', () => {
    // Each clock read moves past the spin's end, so a spin runs out at its first look at the clock.
    const clock = steppingClock(spinMs * 2)
    const words = new Int32Array(new SharedArrayBuffer(8))
    const wait = new SpinWait(clock.now)
    /** How many calls in a row return false without reading the clock. */
    const skipped = () => {
      let count = 0
      for (;;) {
        const reads = clock.reads
        expect(wait.spin(words, 0, 0)).toBe(false)
        if (clock.reads !== reads) return count
        count++
      }
    }
    expect(wait.spin(words, 0, 0)).toBe(false)
    expect(skipped()).toBe(1)
    expect(skipped()).toBe(3)
    expect(skipped()).toBe(7)
    // The backoff is now 15: sleep through it, then a spin that sees the change halves it to 7.
    for (let i = 0; i < 15; i++) wait.spin(words, 0, 0)
    words[0] = 1
    expect(wait.spin(words, 0, 0)).toBe(true)
    words[0] = 0
    expect(wait.spin(words, 0, 0)).toBe(false)
    expect(skipped()).toBe(15)
  })

  it('stops growing at 255 skipped waits', () => {
    const clock = steppingClock(spinMs * 2)
    const words = new Int32Array(new SharedArrayBuffer(8))
    const wait = new SpinWait(clock.now)
    let runs = 0
    for (let i = 0; i < 5000; i++) {
      const reads = clock.reads
      wait.spin(words, 0, 0)
      if (clock.reads !== reads) runs++
    }
    // Spins at calls 0, 2, 6, 14, 30, 62, 126, 254, 510, then every 256th.
    expect(runs).toBe(9 + Math.floor((4999 - 510) / 256))
  })
})
