// A worker_threads entry serving a DeviceHost whose load either blocks this thread for good (as
// Firefox's worker blocks inside a nested `new Worker`: no timer, no message gets out) or takes a
// while with the thread free ('slow'), for the proxy's watch on a load (web-worker/proxy.ts).
import type { MessagePort } from 'node:worker_threads'
import { workerData } from 'node:worker_threads'
import type { DeviceHost, DeviceModel } from '../../client-runtime/device-host/types.ts'
import type { MessageEndpoint } from '../../client-runtime/web-worker/protocol.ts'
import { serveDeviceHost } from '../../client-runtime/web-worker/serve.ts'
import { BackendError } from '../../core/errors.ts'

const { port, slowMs } = workerData as { port: MessagePort; slowMs: number }

const unused = (): never => {
  throw new BackendError('backend_unavailable', 'not served by this test worker')
}

const host = {
  capabilities: unused,
  inspect: unused,
  load: async (model: string): Promise<DeviceModel> => {
    if (model === 'blocks') {
      // Blocks the thread: Atomics.wait with no timeout on a word nobody changes.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
    }
    await new Promise((resolve) => setTimeout(resolve, slowMs))
    return {
      modelId: model,
      backend: 'wasm',
      dtype: 'q4',
      warnings: [],
      generate: unused,
      probe: unused,
      dispose: async () => undefined,
    } as unknown as DeviceModel
  },
} as unknown as DeviceHost

serveDeviceHost(port as unknown as MessageEndpoint, host)
port.start()
