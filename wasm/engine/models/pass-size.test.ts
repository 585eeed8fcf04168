// How many tokens each prefill pass takes: in a worker 128 while a pass's measured time says a
// 128-token pass holds the thread at most WORKER_PASS_BUDGET_MS, on a thread with other work 64
// until it says a 128-token pass holds it at most PASS_BUDGET_MS.
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import {
  BASE_PASS_TOKENS,
  MAX_PASS_TOKENS,
  PASS_BUDGET_MS,
  PassPlan,
  runsInWorker,
  WORKER_PASS_BUDGET_MS,
} from './pass-size.ts'

/** The passes a plan cuts `total` tokens into, each taking `msPerToken` of the plan's clock. */
function passes(
  plan: PassPlan,
  total: number,
  clock: { ms: number },
  msPerToken: (pass: number) => number,
): number[] {
  const sizes: number[] = []
  for (let from = 0; from < total; ) {
    const count = plan.next(total - from)
    clock.ms += count * msPerToken(sizes.length)
    plan.done(count)
    sizes.push(count)
    from += count
  }
  return sizes
}

describe('PassPlan', () => {
  it('takes 128 tokens a pass in a worker while a pass fits the worker budget', () => {
    const clock = { ms: 0 }
    const fits = WORKER_PASS_BUDGET_MS / MAX_PASS_TOKENS
    expect(passes(new PassPlan(true, () => clock.ms), 300, clock, () => fits)).toEqual([128, 128, 44])
  })

  it('in a worker, goes down to 64 where a 128-token pass would keep a stop waiting too long', () => {
    // A slow phone: 128 tokens take twice the budget; the stop waits half as long from the second pass.
    const clock = { ms: 0 }
    const slow = (2 * WORKER_PASS_BUDGET_MS) / MAX_PASS_TOKENS
    expect(passes(new PassPlan(true, () => clock.ms), 300, clock, () => slow)).toEqual([128, 64, 64, 44])
  })

  it('on a thread with other work, starts at 64 and grows to 128 where a pass is fast enough', () => {
    const clock = { ms: 0 }
    const fast = PASS_BUDGET_MS / MAX_PASS_TOKENS
    expect(passes(new PassPlan(false, () => clock.ms), 300, clock, () => fast)).toEqual([64, 128, 108])
  })

  it('on a thread with other work, stays at 64 where a 128-token pass would hold it too long, and follows the last pass', () => {
    const clock = { ms: 0 }
    const slow = (2 * PASS_BUDGET_MS) / MAX_PASS_TOKENS
    expect(passes(new PassPlan(false, () => clock.ms), 300, clock, () => slow)).toEqual([64, 64, 64, 64, 44])
    // A slow second pass (the machine got busy) brings the third back to 64.
    const fast = PASS_BUDGET_MS / MAX_PASS_TOKENS / 2
    expect(
      passes(new PassPlan(false, () => clock.ms), 400, clock, (pass) => (pass === 1 ? slow : fast)),
    ).toEqual([64, 128, 64, 128, 16])
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
