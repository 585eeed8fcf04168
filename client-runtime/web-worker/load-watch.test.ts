// The proxy's watch on a load (proxy.ts, loadSilenceMs), across a real thread: a worker whose
// thread blocks for good during a load (as Firefox's does inside a nested `new Worker`) used to
// leave the load, and the app's device, waiting for ever; a load that takes long with its thread
// free must not be taken for one.
import { MessageChannel, Worker } from 'node:worker_threads'
import { afterEach, expect, it } from 'vitest'
import type { MessageEndpoint } from './protocol.ts'
import { createWorkerDeviceHost, type WorkerDeviceHost } from './proxy.ts'

let worker: Worker | undefined
let host: WorkerDeviceHost | undefined

function start(slowMs: number, loadSilenceMs: number): WorkerDeviceHost {
  const { port1, port2 } = new MessageChannel()
  worker = new Worker(new URL('../../test/client-runtime/blocking-load-worker.ts', import.meta.url), {
    workerData: { port: port2, slowMs },
    transferList: [port2],
  })
  port1.start()
  host = createWorkerDeviceHost(port1 as unknown as MessageEndpoint, { loadSilenceMs })
  return host
}

afterEach(async () => {
  host?.close()
  await worker?.terminate()
})

it('a load whose worker thread blocks fails with a BackendError after the silence bound, and so does every later call', async () => {
  const proxy = start(0, 1500)
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
  const proxy = start(7000, 3000)
  const model = await proxy.load('slow', {})
  expect(model.modelId).toBe('slow')
})
