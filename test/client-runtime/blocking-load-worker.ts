// A worker_threads entry serving a DeviceHost whose load either blocks this thread for good (as
// Firefox's worker blocks inside a nested `new Worker`: no timer, no message gets out) or takes a
// while with the thread free ('slow'), for the proxy's watch on a load (web-worker/proxy.ts).
// 'blocks in new Worker' makes a Worker through the product's markNestedWorkers (as the SDK's
// model worker does for the engine's helper threads) whose constructor blocks the thread, unless
// the load asks for one thread; 'makes a Worker, then works' makes one that returns at once and
// then keeps the thread busy (no word) for `busyMs`. A loaded model's warnings name the load's
// numThreads, and its probe answers 42.
import type { MessagePort } from 'node:worker_threads'
import { workerData } from 'node:worker_threads'
import type { DeviceHost, DeviceLoadOptions, DeviceModel } from '../../client-runtime/device-host/types.ts'
import { markNestedWorkers } from '../../client-runtime/web-worker/nested-workers.ts'
import type { MessageEndpoint } from '../../client-runtime/web-worker/protocol.ts'
import { serveDeviceHost } from '../../client-runtime/web-worker/serve.ts'
import { BackendError } from '../../core/errors.ts'

const { port, slowMs, busyMs } = workerData as { port: MessagePort; slowMs: number; busyMs?: number }
const endpoint = port as unknown as MessageEndpoint

const unused = (): never => {
  throw new BackendError('backend_unavailable', 'not served by this test worker')
}

/** Blocks the thread: Atomics.wait with no timeout on a word nobody changes. */
const blockForGood = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)

// Node has no Web Worker: a stand-in scope whose Worker blocks in its constructor, or returns.
const blockingScope = {
  Worker: class {
    constructor() {
      blockForGood()
    }
  } as unknown as typeof Worker,
}
const quickScope = { Worker: class {} as unknown as typeof Worker }
markNestedWorkers(blockingScope, endpoint)
markNestedWorkers(quickScope, endpoint)

const host = {
  capabilities: unused,
  inspect: unused,
  load: async (model: string, options: DeviceLoadOptions): Promise<DeviceModel> => {
    if (model === 'blocks') blockForGood()
    if (model === 'blocks in new Worker' && options.numThreads !== 1) new blockingScope.Worker('helper.js')
    if (model === 'makes a Worker, then works') {
      new quickScope.Worker('helper.js')
      const until = Date.now() + (busyMs ?? 0)
      while (Date.now() < until) {
        // Busy, as a long synchronous step of a load (no timer runs, no word goes out).
      }
    }
    await new Promise((resolve) => setTimeout(resolve, slowMs))
    return {
      modelId: model,
      backend: 'wasm',
      dtype: 'q4',
      warnings: [`numThreads ${options.numThreads ?? 'unset'}`],
      generate: unused,
      probe: async () => 42,
      dispose: async () => undefined,
    } as unknown as DeviceModel
  },
} as unknown as DeviceHost

serveDeviceHost(endpoint, host)
port.start()
