// The SDK's model worker (sdk/device-worker-host.ts, as it ships) in a worker whose every
// `new Worker(...)` for an engine helper thread blocks the thread for good inside the constructor,
// as Firefox 153 ESR's does now and then (docs/wasm-engine.md, Threads): Atomics.wait with no
// timeout on a word nobody changes, so no timer and no message of this worker runs again. Only a
// load with one thread (no helper) gets through.
const scope = globalThis as unknown as { Worker: typeof Worker }
const Original = scope.Worker
scope.Worker = class extends Original {
  constructor(url: string | URL, options?: WorkerOptions) {
    if (options?.name?.startsWith('ondevice-engine-thread') === true)
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
    super(url, options)
  }
}
// After the Worker above is in place: the model worker's body wraps it (markNestedWorkers).
await import('../../../sdk/device-worker-host.ts')
