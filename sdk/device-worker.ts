// The entry of the dedicated Web Worker that holds the on-device model in a browser: the
// runtime's worker host, answering the page's proxy (see browser-device.ts).
import type { MessageEndpoint } from '../client-runtime/web-worker/index.ts'
import { startWorkerHost } from '../client-runtime/web-worker/index.ts'

startWorkerHost(globalThis as unknown as MessageEndpoint)
