// A helper thread of the engine's ThreadPool in a browser (a module Web Worker, started by
// ./threads-browser.ts from a page or from the SDK's model worker): instantiates the shared-memory
// engine over the model's memory on its own shadow stack, says 'ready', then runs its share of
// each split kernel until the pool stops (Atomics.wait is allowed in workers), then says 'left'
// and may be started again over another memory.
import { helperLoop } from './thread-pool.ts'

export interface BrowserHelperStart {
  readonly module: WebAssembly.Module
  readonly memory: WebAssembly.Memory
  readonly control: number
  readonly index: number
  readonly stackTop: number
}

interface WorkerScope {
  onmessage: ((event: { readonly data: BrowserHelperStart }) => void) | null
  postMessage(message: unknown): void
}

const scope = globalThis as unknown as WorkerScope

/**
 * Instantiates the engine over the memory it was sent and runs the helper loop. When the pool
 * stops it (its model unloaded), it says 'left' and waits for another start: the host keeps it
 * for its next load rather than terminating it and creating another (./threads-browser.ts).
 */
function start(event: { readonly data: BrowserHelperStart }): void {
  scope.onmessage = null
  const { module, memory, control, index, stackTop } = event.data
  WebAssembly.instantiate(module, { env: { memory } }).then(
    (instance) => {
      // Every instance starts with the same __stack_pointer: move this one to its own region.
      ;(instance.exports.__stack_pointer as WebAssembly.Global).value = stackTop
      scope.postMessage('ready')
      helperLoop(instance.exports as Record<string, unknown>, memory, control, index)
      scope.onmessage = start
      scope.postMessage('left')
    },
    (error: unknown) => scope.postMessage({ error: error instanceof Error ? error.message : String(error) }),
  )
}

scope.onmessage = start
