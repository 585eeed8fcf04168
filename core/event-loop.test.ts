// createTimeSlice on the clocks hosts really have. workerd's performance.now() reads in whole
// milliseconds here (wrangler dev) and stands still while code runs when deployed (it moves at
// I/O); Firefox and Safari round to a millisecond. A loop whose iterations are shorter than that
// (a continuation replayed through the text machinery: microseconds a token) read the same time
// at most calls, and the slice yielded at every such call: under wrangler dev each yield is a
// setTimeout(0) of about a millisecond, so a 400-token continuation paid for 400 of them.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createTimeSlice } from './event-loop.ts'

const realNow = performance.now.bind(performance)

/** Busy work of about `ms` on the real clock (a model step, or a token's text machinery). */
function work(ms: number): void {
  const start = realNow()
  while (realNow() - start < ms) {
    // spin
  }
}

/** Runs `calls` iterations of `iterationMs` each through one slice; how many of them yielded. */
async function countYields(calls: number, iterationMs: number): Promise<number> {
  const slice = createTimeSlice()
  let yields = 0
  for (let index = 0; index < calls; index++) {
    work(iterationMs)
    const pause = slice.maybeYield()
    if (pause) {
      yields++
      await pause
    }
  }
  return yields
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('createTimeSlice', () => {
  it('on a clock with whole milliseconds, a loop of short iterations yields about once a slice, not at every call', async () => {
    vi.spyOn(performance, 'now').mockImplementation(() => Math.floor(realNow()))
    // 2,000 calls of 20 µs: about 40 ms of work, 4 slices of 10 ms. Before: a yield at nearly
    // every call (1,950: each read the same millisecond as the call before). Node's turn takes
    // microseconds, so most yields here span no tick and teach the slice nothing (40-100 of
    // them); in workerd each takes about a millisecond and the budget grows at once.
    const yields = await countYields(2000, 0.02)
    expect(yields).toBeGreaterThanOrEqual(1)
    expect(yields).toBeLessThan(400)
  })

  it('on a clock that stands still while code runs (a deployed Worker), a loop of short iterations still yields, but not at every call', async () => {
    // The clock moves only when the loop gives the event loop a turn (as a Worker's does at I/O).
    let frozenAt = realNow()
    let running = true
    const tick = () => {
      frozenAt = realNow()
      if (running) setImmediate(tick)
    }
    setImmediate(tick)
    vi.spyOn(performance, 'now').mockImplementation(() => frozenAt)
    try {
      const yields = await countYields(2000, 0.02)
      // It must yield (else the isolate is held to the loop's end) ...
      expect(yields).toBeGreaterThanOrEqual(2)
      // ... but a yield costs about a millisecond in workerd: not one per 20 µs token.
      expect(yields).toBeLessThan(200)
    } finally {
      running = false
    }
  })

  it('on a clock that stands still while code runs, a loop of slow iterations (model steps) yields after each', async () => {
    let frozenAt = realNow()
    let running = true
    const tick = () => {
      frozenAt = realNow()
      if (running) setImmediate(tick)
    }
    setImmediate(tick)
    vi.spyOn(performance, 'now').mockImplementation(() => frozenAt)
    try {
      expect(await countYields(6, 12)).toBe(6)
    } finally {
      running = false
    }
  })

  it('on a clock that never moves, even across a yield, the slice learns nothing and yields at every call', async () => {
    // No reading says how long the calls took: growing the budget on that would let a loop of
    // model steps run unyielding.
    vi.spyOn(performance, 'now').mockImplementation(() => 1_000)
    expect(await countYields(50, 0.02)).toBe(50)
  })
})
