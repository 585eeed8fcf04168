// This machine's memory read bandwidth, measured with memcmp (Buffer.compare of two equal
// buffers much larger than the caches: native code that streams both), on one thread and on every
// core at once (worker threads started together). The ceiling a bandwidth-bound decode can reach.
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'

export interface Bandwidth {
  /** Bytes per second read by one thread (best of the repetitions). */
  readonly singleThread: number
  /** Bytes per second read by `threads` threads together (best of the repetitions). */
  readonly allCores: number
  readonly threads: number
  readonly bufferBytes: number
}

const workerSource = `
const { parentPort, workerData } = require('node:worker_threads')
const a = Buffer.alloc(workerData.bytes, 7)
const b = Buffer.alloc(workerData.bytes, 7)
Buffer.compare(a, b)
parentPort.on('message', (shared) => {
  const flag = new Int32Array(shared)
  Atomics.wait(flag, 0, 0)
  const started = performance.now()
  for (let pass = 0; pass < workerData.passes; pass++) Buffer.compare(a, b)
  parentPort.postMessage(performance.now() - started)
})
parentPort.postMessage('ready')
`

async function parallelRead(threads: number, bytes: number, passes: number): Promise<number> {
  const workers = Array.from(
    { length: threads },
    () => new Worker(workerSource, { eval: true, workerData: { bytes, passes } }),
  )
  try {
    await Promise.all(workers.map((worker) => new Promise((resolve) => worker.once('message', resolve))))
    const shared = new SharedArrayBuffer(4)
    const done = workers.map((worker) => new Promise<number>((resolve) => worker.once('message', resolve)))
    for (const worker of workers) worker.postMessage(shared)
    const flag = new Int32Array(shared)
    Atomics.store(flag, 0, 1)
    Atomics.notify(flag, 0)
    const times = await Promise.all(done)
    return (threads * 2 * bytes * passes) / (Math.max(...times) / 1000)
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()))
  }
}

export async function measureReadBandwidth(
  options: { bufferBytes?: number; repetitions?: number } = {},
): Promise<Bandwidth> {
  const bufferBytes = options.bufferBytes ?? 128 * 1024 * 1024
  const repetitions = options.repetitions ?? 5
  const a = Buffer.alloc(bufferBytes, 7)
  const b = Buffer.alloc(bufferBytes, 7)
  Buffer.compare(a, b)
  let singleThread = 0
  for (let repetition = 0; repetition < repetitions; repetition++) {
    const started = performance.now()
    Buffer.compare(a, b)
    singleThread = Math.max(singleThread, (2 * bufferBytes) / ((performance.now() - started) / 1000))
  }
  const threads = availableParallelism()
  let allCores = 0
  for (let repetition = 0; repetition < Math.max(2, repetitions >> 1); repetition++) {
    allCores = Math.max(allCores, await parallelRead(threads, bufferBytes >> 1, 2))
  }
  return { singleThread, allCores, threads, bufferBytes }
}
