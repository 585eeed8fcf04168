// A helper thread of the engine's ThreadPool in Node (worker_threads): instantiates the shared-
// memory engine over the main thread's memory and runs its share of each split kernel, on its
// own shadow stack (every instance starts with the same __stack_pointer, so each helper moves
// its own to a region the main thread reserved for it).
import { parentPort, workerData } from 'node:worker_threads'
import { helperLoop } from './thread-pool.ts'

const { module, memory, control, index, stackTop } = workerData as {
  module: WebAssembly.Module
  memory: WebAssembly.Memory
  control: number
  index: number
  stackTop: number
}
const instance = await WebAssembly.instantiate(module, { env: { memory } })
;(instance.exports.__stack_pointer as WebAssembly.Global).value = stackTop
parentPort?.postMessage('ready')
helperLoop(instance.exports as Record<string, unknown>, memory, control, index)
