// A worker_threads entry that serves the runtime's DeviceHost on the Node runtime host, so the
// protocol is tested across a real thread boundary (structured clone, transfer of a port).
import type { MessagePort } from 'node:worker_threads'
import { workerData } from 'node:worker_threads'
import { createRuntimeDeviceHost } from '../../client-runtime/device-host/runtime-host.ts'
import { nodeHost } from '../../client-runtime/node-host.ts'
import { createNodeStore } from '../../client-runtime/store/node-store.ts'
import type { MessageEndpoint } from '../../client-runtime/web-worker/protocol.ts'
import { serveDeviceHost } from '../../client-runtime/web-worker/serve.ts'

const { port, downloadRetryDelayMs } = workerData as { port: MessagePort; downloadRetryDelayMs?: number }
serveDeviceHost(
  port as unknown as MessageEndpoint,
  createRuntimeDeviceHost({
    host: nodeHost,
    probeTokens: 4,
    // A test of an abort during a retry pause makes the pause long, so that a pause the abort
    // does not end stands far apart from one it ends however busy the machine.
    ...(downloadRetryDelayMs === undefined ? {} : { store: createNodeStore({ downloadRetryDelayMs }) }),
  }),
)
port.start()
