// The proxy's watch on a load (proxy.ts, loadSilenceMs and nestedWorkerSilenceMs), across real
// threads: a worker whose thread blocks for good during a load (as Firefox's does inside a nested
// `new Worker`) used to leave the load, and the app's device, waiting for ever, then failed it
// after 90 s; given a way to restart the worker, the proxy now loads again in a fresh one on one
// thread. A load that takes long with its thread free, or busy after a nested Worker returned,
// must not be taken for a blocked one.
import { MessageChannel, Worker } from 'node:worker_threads'
import { afterEach, expect, it, vi } from 'vitest'
import type { MessageEndpoint } from './protocol.ts'
import { createWorkerDeviceHost, type WorkerDeviceHost, type WorkerDeviceHostOptions } from './proxy.ts'

const workers: Worker[] = []
let host: WorkerDeviceHost | undefined

interface Options extends WorkerDeviceHostOptions {
  readonly slowMs?: number
  readonly busyMs?: number
  /** Passes the proxy a restart that starts a fresh test worker (as createBrowserDeviceHost does). */
  readonly restartable?: boolean
}

/** A fresh worker serving the test host; resolves with its endpoint once it runs. */
async function startWorker(slowMs: number, busyMs: number): Promise<MessageEndpoint> {
  const { port1, port2 } = new MessageChannel()
  const worker = new Worker(new URL('../../test/client-runtime/blocking-load-worker.ts', import.meta.url), {
    workerData: { port: port2, slowMs, busyMs },
    transferList: [port2],
  })
  workers.push(worker)
  await new Promise<void>((resolve) => {
    const onStarted = (data: { type?: string }) => {
      if (data?.type !== 'started') return
      port1.off('message', onStarted)
      resolve()
    }
    port1.on('message', onStarted)
  })
  return port1 as unknown as MessageEndpoint
}

const restarts: { terminated: Worker }[] = []

async function start(options: Options): Promise<WorkerDeviceHost> {
  const { slowMs = 0, busyMs = 0, restartable = false, ...hostOptions } = options
  const endpoint = await startWorker(slowMs, busyMs)
  host = createWorkerDeviceHost(endpoint, {
    ...hostOptions,
    ...(restartable
      ? {
          restart: async () => {
            const blocked = workers.at(-1) as Worker
            await blocked.terminate()
            restarts.push({ terminated: blocked })
            return startWorker(slowMs, busyMs)
          },
        }
      : {}),
  })
  return host
}

afterEach(async () => {
  host?.close()
  host = undefined
  restarts.length = 0
  await Promise.all(workers.splice(0).map((worker) => worker.terminate()))
})

it('a load whose worker thread blocks fails with a BackendError after the silence bound, and so does every later call', async () => {
  const proxy = await start({ loadSilenceMs: 1500 })
  const started = performance.now()
  const failure = await proxy.load('blocks', {}).catch((error: unknown) => error)
  expect(failure).toMatchObject({
    name: 'BackendError',
    code: 'backend_failed',
    isRetryable: false,
    message: expect.stringMatching(
      /model worker said nothing for 1\.5 s while it loaded the model.*numThreads: 1/,
    ),
  })
  // The bound, then 3 s for words a page frozen meanwhile had not read yet.
  expect(performance.now() - started).toBeGreaterThanOrEqual(1400 + 2900)
  // The thread stays blocked: a later call fails at once with the same error instead of waiting.
  await expect(proxy.load('again', {})).rejects.toBe(failure)
  await expect(proxy.capabilities()).rejects.toBe(failure)
})

it('a load that takes several times the bound with its thread free loads (it says it runs every second)', async () => {
  const proxy = await start({ slowMs: 7000, loadSilenceMs: 3000 })
  const model = await proxy.load('slow', {})
  expect(model.modelId).toBe('slow')
})

it("a worker blocked inside a nested new Worker fails the load at the shorter bound, naming it, when it can't be restarted", async () => {
  // The load's own bound is far out of reach: only the nested Worker's can end the wait.
  const proxy = await start({ nestedWorkerSilenceMs: 1000, loadSilenceMs: 600_000 })
  const failure = await proxy.load('blocks in new Worker', {}).catch((error: unknown) => error)
  expect(failure).toMatchObject({
    name: 'BackendError',
    code: 'backend_failed',
    message: expect.stringMatching(
      /said nothing for 1 s after it began making a Worker of its own.*blocked inside that `new Worker\(\.\.\.\)`.*numThreads: 1/,
    ),
  })
  await expect(proxy.capabilities()).rejects.toBe(failure)
}, 30_000)

it('with a restart: the blocked worker is stopped and the load runs again in a fresh one on one thread, saying so; models of the old worker are gone, the new one answers', async () => {
  const proxy = await start({ nestedWorkerSilenceMs: 1000, loadSilenceMs: 600_000, restartable: true })
  // A model loaded before the block, in the worker that then blocks.
  const earlier = await proxy.load('fine', { numThreads: 2 })
  expect(await earlier.probe()).toBe(42)
  const model = await proxy.load('blocks in new Worker', { numThreads: 2 })
  expect(restarts).toHaveLength(1)
  // The blocked thread was stopped (terminate() ends a thread blocked in Atomics.wait).
  expect(restarts[0]?.terminated.threadId).toBe(-1)
  expect(model.modelId).toBe('blocks in new Worker')
  expect(model.warnings).toEqual([
    expect.stringMatching(
      /said nothing for 1 s after it began making a Worker of its own.*It was stopped, and the model loaded in a fresh worker on one thread \(numThreads: 1\)/,
    ),
    // The second load asked the fresh worker for one thread.
    'numThreads 1',
  ])
  expect(await model.probe()).toBe(42)
  await expect(earlier.probe()).rejects.toMatchObject({
    name: 'BackendError',
    code: 'backend_unavailable',
    // Its handle names nothing in the fresh worker (handles differ between workers).
    message: expect.stringMatching(/not loaded in the worker .*was started again\): load it again/),
  })
  await earlier.dispose()
  // Later loads go to the new worker.
  expect((await proxy.load('fine again', {})).warnings).toEqual(['numThreads unset'])
}, 30_000)

it('with a restart: a second block in the same load fails it, saying the worker was started again', async () => {
  const proxy = await start({ loadSilenceMs: 1000, restartable: true })
  const failure = await proxy.load('blocks', {}).catch((error: unknown) => error)
  expect(failure).toMatchObject({
    name: 'BackendError',
    code: 'backend_failed',
    message: expect.stringMatching(
      /said nothing for 1 s while it loaded the model.*in a worker started again on one thread after the first one blocked/,
    ),
  })
  // The second blocked worker is replaced too, for the calls that come later.
  await vi.waitFor(() => expect(restarts).toHaveLength(2))
  expect((await proxy.load('fine', {})).modelId).toBe('fine')
}, 30_000)

it('a worker busy long after its nested new Worker returned is not taken for blocked (only the load bound applies then)', async () => {
  // Busy four times the nested bound, with no word, right after the nested Worker's 'made'.
  const proxy = await start({
    nestedWorkerSilenceMs: 1000,
    loadSilenceMs: 600_000,
    busyMs: 8000,
    restartable: true,
  })
  const model = await proxy.load('makes a Worker, then works', { numThreads: 2 })
  expect(model.warnings).toEqual(['numThreads 2'])
  expect(restarts).toHaveLength(0)
}, 30_000)

/** Settles with what `promise` settled with, or 'still waiting' after `ms`. */
const within = (promise: Promise<unknown>, ms: number): Promise<unknown> =>
  Promise.race([
    promise.then(
      (value) => ({ resolved: value }),
      (error: unknown) => error,
    ),
    new Promise((resolve) => setTimeout(() => resolve('still waiting'), ms)),
  ])

it('close() while a blocked worker is being replaced fails the load with AbortedError at once, whether the restart never ends or ends after it', async () => {
  // createBrowserDeviceHost's close() terminates the worker its restart is starting: that
  // worker never says 'started', so its restart never settles. The load waited on it for ever,
  // and a restart that did end after close() sent the load to the old, stopped worker, where it
  // waited out the load bound (here out of reach) before failing as blocked.
  for (const restartEnds of [false, true]) {
    const { port1, port2 } = new MessageChannel()
    let restartAsked!: () => void
    const asked = new Promise<void>((resolve) => {
      restartAsked = resolve
    })
    let endRestart!: (endpoint: MessageEndpoint) => void
    const proxy = await start({
      nestedWorkerSilenceMs: 500,
      loadSilenceMs: 600_000,
      restart: () => {
        restartAsked()
        return new Promise<MessageEndpoint>((resolve) => {
          endRestart = resolve
        })
      },
    })
    const load = proxy.load('blocks in new Worker', { numThreads: 2 })
    load.catch(() => undefined)
    await asked
    proxy.close()
    if (restartEnds) endRestart(port1 as unknown as MessageEndpoint)
    expect(await within(load, 10_000)).toMatchObject({ name: 'AbortedError' })
    // Later calls fail the same way rather than wait on a worker nobody listens to.
    expect(await within(proxy.capabilities(), 10_000)).toMatchObject({ name: 'AbortedError' })
    port1.close()
    port2.close()
  }
}, 60_000)

it('calls made after close() fail with AbortedError instead of waiting for an answer nobody reads', async () => {
  const proxy = await start({})
  proxy.close()
  expect(await within(proxy.load('fine', {}), 10_000)).toMatchObject({ name: 'AbortedError' })
  expect(await within(proxy.capabilities(), 10_000)).toMatchObject({ name: 'AbortedError' })
})

it('with a restart: two loads blocked in the same worker both load again in one fresh worker', async () => {
  const proxy = await start({ nestedWorkerSilenceMs: 1000, loadSilenceMs: 600_000, restartable: true })
  const [a, b] = await Promise.all([
    proxy.load('blocks in new Worker', { numThreads: 2 }),
    proxy.load('fine', { numThreads: 2 }),
  ])
  expect(restarts).toHaveLength(1)
  expect(a.warnings?.at(-1)).toBe('numThreads 1')
  expect(b.warnings?.at(-1)).toBe('numThreads 1')
  expect(await a.probe()).toBe(42)
  expect(await b.probe()).toBe(42)
}, 30_000)

it('with a restart: a load aborted while its worker is blocked fails with AbortedError once the block is seen, and the worker is still replaced', async () => {
  const proxy = await start({ nestedWorkerSilenceMs: 1000, loadSilenceMs: 600_000, restartable: true })
  const controller = new AbortController()
  const load = proxy.load('blocks in new Worker', { numThreads: 2, signal: controller.signal })
  load.catch(() => undefined)
  setTimeout(() => controller.abort(), 200)
  await expect(load).rejects.toMatchObject({ name: 'AbortedError' })
  expect(restarts).toHaveLength(1)
  expect((await proxy.load('fine', {})).modelId).toBe('fine')
}, 30_000)
