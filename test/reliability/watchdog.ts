// An event-loop watchdog from outside: a worker thread asks GET /healthz every `intervalMs` and
// records how long each answer took. A server whose event loop is held (a synchronous loop over
// client-sized input) answers late; the suites require every answer within a second while their
// requests run. A thread, not a timer in the test's own loop: the server under test may share
// that loop (an in-process app), and a blocked loop cannot time itself.
import { Worker } from 'node:worker_threads'

export interface WatchdogReport {
  readonly probes: number
  /** Slowest /healthz answer, in milliseconds. */
  readonly worstMs: number
  /** Probes that failed (network error or a status other than 200/503). */
  readonly failures: number
  /** Probes slower than 500 ms: when they were sent (Date.now()) and how long they took. */
  readonly slow: readonly { readonly at: number; readonly ms: number }[]
}

export interface HealthWatchdog {
  stop(): Promise<WatchdogReport>
}

const source = `
const { parentPort, workerData } = require('node:worker_threads')
let stopping = false
let probes = 0, worstMs = 0, failures = 0
const slow = []
parentPort.on('message', () => { stopping = true })
;(async () => {
  while (!stopping) {
    const started = performance.now()
    const at = Date.now()
    try {
      const response = await fetch(workerData.url, { signal: AbortSignal.timeout(60000) })
      await response.arrayBuffer()
      if (response.status !== 200 && response.status !== 503) failures++
    } catch {
      failures++
    }
    const ms = performance.now() - started
    worstMs = Math.max(worstMs, ms)
    if (ms > 500 && slow.length < 50) slow.push({ at, ms: Math.round(ms) })
    probes++
    await new Promise((resolve) => setTimeout(resolve, workerData.intervalMs))
  }
  parentPort.postMessage({ probes, worstMs: Math.round(worstMs), failures, slow })
})()
`

/** Starts probing `${baseUrl}/healthz`; `stop()` ends it after the probe in flight and reports. */
export function startHealthWatchdog(baseUrl: string, intervalMs = 100): HealthWatchdog {
  const worker = new Worker(source, { eval: true, workerData: { url: `${baseUrl}/healthz`, intervalMs } })
  const report = new Promise<WatchdogReport>((resolve, reject) => {
    worker.once('message', (message: WatchdogReport) => resolve(message))
    worker.once('error', reject)
  })
  return {
    async stop() {
      worker.postMessage('stop')
      const result = await report
      await worker.terminate()
      return result
    },
  }
}
