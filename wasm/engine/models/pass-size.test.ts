// How many tokens each prefill pass takes and where it gives the event loop a turn: 128 tokens on
// every thread, with a turn between two layers once TURN_SLICE_MS have passed since the last one,
// and 64 where the longest stretch between two turns says a 128-token pass would hold the thread
// longer than the budget (WORKER_PASS_BUDGET_MS in a worker, PASS_BUDGET_MS elsewhere).
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import {
  BASE_PASS_TOKENS,
  MAX_PASS_TOKENS,
  PASS_BUDGET_MS,
  PassPlan,
  runsInWorker,
  TURN_SLICE_MS,
  WORKER_PASS_BUDGET_MS,
} from './pass-size.ts'

interface Run {
  /** Each pass's tokens. */
  readonly sizes: number[]
  /** The turns taken inside each pass. */
  readonly turns: number[]
}

/**
 * What a plan does with `total` tokens through a model of `layers` layers, each layer taking
 * `msPerToken(pass)` per token of the plan's clock, a turn `turnMs` (other work's time).
 */
function passes(
  plan: PassPlan,
  total: number,
  clock: { ms: number },
  msPerToken: (pass: number) => number,
  layers = 1,
  turnMs = 0,
): Run {
  const run: Run = { sizes: [], turns: [] }
  for (let from = 0; from < total; ) {
    const count = plan.next(total - from)
    let turns = 0
    for (let layer = 0; layer < layers; layer++) {
      if (layer > 0 && plan.turnDue()) {
        const before = plan.now()
        clock.ms += turnMs
        plan.turned(before)
        turns++
      }
      clock.ms += (count * msPerToken(run.sizes.length)) / layers
    }
    plan.done(count)
    run.sizes.push(count)
    run.turns.push(turns)
    from += count
  }
  return run
}

describe('PassPlan', () => {
  for (const inWorker of [false, true])
    it(`takes 128 tokens a pass from the first on ${inWorker ? 'a worker' : 'a thread with other work'} where a pass fits the budget`, () => {
      const clock = { ms: 0 }
      const budget = inWorker ? WORKER_PASS_BUDGET_MS : PASS_BUDGET_MS
      const plan = new PassPlan(inWorker, { now: () => clock.ms })
      expect(passes(plan, 300, clock, () => budget / MAX_PASS_TOKENS).sizes).toEqual([128, 128, 44])
    })

  it('goes down to 64 where a pass without turns would hold the thread longer than the budget, and follows the last pass', () => {
    const clock = { ms: 0 }
    const slow = (2 * PASS_BUDGET_MS) / MAX_PASS_TOKENS
    const plan = () => new PassPlan(false, { now: () => clock.ms })
    expect(passes(plan(), 300, clock, () => slow).sizes).toEqual([128, 64, 64, 44])
    // A slow second pass (the machine got busy) brings the third to 64, a fast one back to 128.
    const fast = PASS_BUDGET_MS / MAX_PASS_TOKENS / 2
    expect(passes(plan(), 400, clock, (pass) => (pass === 1 ? slow : fast)).sizes).toEqual([128, 128, 64, 80])
    // In a worker, against the worker's budget: a slow phone.
    const slowWorker = (2 * WORKER_PASS_BUDGET_MS) / MAX_PASS_TOKENS
    const worker = new PassPlan(true, { now: () => clock.ms })
    expect(passes(worker, 300, clock, () => slowWorker).sizes).toEqual([128, 64, 64, 44])
  })

  it('gives the event loop a turn between two layers once the slice has passed, and judges the pass by its longest stretch', () => {
    // 24 layers, a 128-token pass twice the budget in all: a layer (1/24 of it) fits the budget.
    const clock = { ms: 0 }
    const pass = 2 * PASS_BUDGET_MS
    const plan = new PassPlan(false, { now: () => clock.ms })
    const run = passes(plan, 300, clock, () => pass / MAX_PASS_TOKENS, 24, 1_000)
    expect(run.sizes).toEqual([128, 128, 44])
    // A layer of a 128-token pass is ~42 ms here, under the 50 ms slice: a turn every second layer.
    expect(pass / 24).toBeLessThan(TURN_SLICE_MS)
    expect(run.turns.slice(0, 2)).toEqual([11, 11])
    // The turns' own time (other work's, 1 s each here) is not the pass's: else every pass after
    // the first would be judged far over the budget.
  })

  it('with a slice of 0, takes a turn at every layer boundary', () => {
    const clock = { ms: 0 }
    const plan = new PassPlan(false, { now: () => clock.ms, sliceMs: 0 })
    expect(passes(plan, 300, clock, () => 0.01, 5).turns).toEqual([4, 4, 4])
  })

  it('where no clock moves (a deployed Workers isolate), takes no turn inside a pass', () => {
    const plan = new PassPlan(false, { now: () => 0, first: BASE_PASS_TOKENS })
    const run = passes(plan, 300, { ms: 0 }, () => 1, 24)
    expect(run.turns.every((turns) => turns === 0)).toBe(true)
    expect(run.sizes[0]).toBe(BASE_PASS_TOKENS)
  })

  it('never runs a pass longer than the tokens left', () => {
    expect(new PassPlan(false).next(5)).toBe(5)
    expect(new PassPlan(true).next(BASE_PASS_TOKENS + 1)).toBe(BASE_PASS_TOKENS + 1)
  })
})

describe('runsInWorker', () => {
  it('is false on the main thread', () => {
    expect(runsInWorker()).toBe(false)
  })

  it('is true in a Node worker_thread', async () => {
    const url = pathToFileURL(new URL('./pass-size.ts', import.meta.url).pathname).href
    const worker = new Worker(
      `import(${JSON.stringify(url)}).then((m) => require('node:worker_threads').parentPort.postMessage(m.runsInWorker()))`,
      { eval: true },
    )
    try {
      const answer = await new Promise((resolve, reject) => {
        worker.once('message', resolve)
        worker.once('error', reject)
      })
      expect(answer).toBe(true)
    } finally {
      await worker.terminate()
    }
  })
})
