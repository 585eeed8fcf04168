// The engine's helper threads in Node: worker_threads that instantiate engine-threads.wasm over
// the model's shared memory and take their share of each matrix product and of attention.
import { Worker } from 'node:worker_threads'
import type { Kernels } from './kernels.ts'
import { controlWords, ThreadPool } from './thread-pool.ts'

/** Each helper's shadow stack (the split kernels use little or none of it). */
const helperStackBytes = 64 * 1024

/**
 * Starts threads - 1 helpers for `kernels` (created over shared memory) and attaches the pool.
 * `script` is the path of thread-worker.js (node.ts finds it beside the engine's .wasm).
 */
export async function startNodeThreads(
  kernels: Kernels,
  module: WebAssembly.Module,
  threads: number,
  script: string,
): Promise<void> {
  if (threads <= 1) return
  const control = kernels.alloc(controlWords * 4, 64)
  const workers: Worker[] = []
  try {
    for (let index = 1; index < threads; index++) {
      const stackTop = kernels.alloc(helperStackBytes, 16) + helperStackBytes
      const worker = new Worker(script, {
        workerData: { module, memory: kernels.memory, control, index, stackTop },
      })
      workers.push(worker)
      await new Promise<void>((resolve, reject) => {
        worker.once('message', () => resolve())
        worker.once('error', reject)
        worker.once('exit', (code) =>
          reject(new Error(`engine thread ${index} exited (${code}) before it started`)),
        )
      })
      worker.unref()
    }
  } catch (error) {
    await Promise.all(workers.map((worker) => worker.terminate()))
    throw error
  }
  const pool = new ThreadPool(
    kernels.k as unknown as Record<string, unknown>,
    kernels.memory,
    control,
    threads,
    {
      helpers: workers,
      async stop() {
        await Promise.all(workers.map((worker) => worker.terminate()))
      },
    },
  )
  // A helper that stops (an exception, terminate(), out of memory) fails the pool. These events
  // arrive between passes (a pass holds the calling thread); one under way notices through the
  // control block or its stall bound. Listening also keeps a helper's exception from becoming
  // the process's uncaught exception.
  workers.forEach((worker, position) => {
    const thread = position + 1
    worker.on('error', (error: Error) => pool.helperFailed(thread, `failed: ${error.name}: ${error.message}`))
    worker.on('exit', (code) => pool.helperFailed(thread, `exited (code ${code})`))
  })
  kernels.pool = pool
}
