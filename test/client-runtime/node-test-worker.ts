// A worker_threads entry that runs the model worker host on the Node runtime host, so the
// protocol is tested across a real thread boundary (structured clone, transfer of a port).
import type { MessagePort } from 'node:worker_threads'
import { workerData } from 'node:worker_threads'
import { nodeHost } from '../../client-runtime/node-host.ts'
import { startWorkerHost } from '../../client-runtime/web-worker/host.ts'
import type { MessageEndpoint } from '../../client-runtime/web-worker/protocol.ts'

const port = (workerData as { port: MessagePort }).port
startWorkerHost(port as unknown as MessageEndpoint, { host: nodeHost })
port.start()
