// A helper thread takes a pass only when the generation moved, never on a wake-up alone. The
// calling thread publishes a pass (the count of helpers still working, then the generation) and
// notifies right after; a helper that saw the new generation while spinning may have finished the
// pass and gone back to sleep before that notify lands (the caller descheduled between the two, as
// on a loaded machine). Found in Firefox 153 (test/browser/other-browsers.test.ts): the helper
// took the late notify as a new pass, ran the last shares again and counted itself done twice, so
// the caller saw -1 helpers working and stopped at its stall bound with "did not finish its share".
// Here the product's helperLoop runs on a real worker_threads thread over shared memory; the test
// is the calling thread and delivers the notify late on purpose. The kernel counts its calls.
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it } from 'vitest'
import { controlWords, parallelKernels } from './thread-pool.ts'

// The control block's layout (thread-pool.ts): words 0 generation, 1 job count, 2 shares,
// 3 helpers still working; job records from word 5 (op, argument count, float mask, total, align).
const GENERATION = 0
const JOBS = 1
const SHARES = 2
const PENDING = 3
const JOB = 5
/** Past the control block: the stand-in kernel's call count. */
const CALLS = controlWords

const helperSource = (threadPool: string) => `
  import { workerData, parentPort } from 'node:worker_threads'
  import { helperLoop } from ${JSON.stringify(threadPool)}
  const { memory } = workerData
  const calls = new Int32Array(memory.buffer)
  parentPort.postMessage('ready')
  helperLoop({ silu_mul: () => Atomics.add(calls, ${CALLS}, 1) }, memory, 0, 1)
`

let worker: Worker | undefined

afterEach(async () => {
  await worker?.terminate()
  worker = undefined
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function until(what: string, check: () => boolean, withinMs = 10_000): Promise<void> {
  for (let waited = 0; !check(); waited += 5) {
    if (waited > withinMs) throw new Error(`${what} did not happen within ${withinMs} ms`)
    await sleep(5)
  }
}

describe("the engine's helper thread", () => {
  it('a notify that arrives after the helper finished the pass starts no second run of it', async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true })
    const words = new Int32Array(memory.buffer)
    const threadPool = new URL('./thread-pool.ts', import.meta.url).href
    worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(helperSource(threadPool))}`), {
      workerData: { memory },
    })
    await new Promise((resolve, reject) => {
      worker?.once('message', resolve)
      worker?.once('error', reject)
    })
    // One job, silu_mul over 64 elements in two shares: the helper's share is [32, 64).
    words[JOB] = parallelKernels.indexOf('silu_mul')
    words[JOB + 1] = 0
    words[JOB + 2] = 0
    words[JOB + 3] = 64
    words[JOB + 4] = 1
    words[JOBS] = 1
    words[SHARES] = 2
    Atomics.store(words, PENDING, 1)
    Atomics.add(words, GENERATION, 1)
    // ...and the caller's notify is late: the helper takes the pass from its spin. A helper that
    // a loaded machine kept off the CPU until its spin ended sleeps in Atomics.wait instead: wake
    // it (a clean CI run at c803b79 waited 10 s for it), and the notify below is still late.
    await until(
      'the helper finishing its share (from its spin)',
      () => Atomics.load(words, PENDING) === 0,
      2_000,
    ).catch(() => Atomics.notify(words, GENERATION))
    await until('the helper finishing its share', () => Atomics.load(words, PENDING) === 0)
    expect(Atomics.load(words, CALLS)).toBe(1)
    // The helper is asleep in Atomics.wait again by now; the late notify arrives.
    await sleep(100)
    Atomics.notify(words, GENERATION)
    await sleep(200)
    expect(Atomics.load(words, CALLS), 'kernel calls').toBe(1)
    expect(Atomics.load(words, PENDING), 'helpers still working').toBe(0)
    // The next real pass still runs.
    Atomics.store(words, PENDING, 1)
    Atomics.add(words, GENERATION, 1)
    Atomics.notify(words, GENERATION)
    await until('the helper finishing the next pass', () => Atomics.load(words, PENDING) === 0)
    expect(Atomics.load(words, CALLS)).toBe(2)
  })
})
