// The SDK's model worker (sdk/device-worker-host.ts, as it ships) in a worker where each engine
// helper's `new Worker(...)` comes right after another Worker of the same script was made and
// terminated: the pattern under which Firefox 153 ESR's worker blocked for good in the second
// `new Worker(...)` in 2 of 7 loads (docs/wasm-engine.md, Threads). Firefox's own block, not a
// simulated one, made frequent, for measuring what the SDK does then.
const scope = globalThis as unknown as { Worker: typeof Worker }
const Original = scope.Worker
scope.Worker = class extends Original {
  constructor(url: string | URL, options?: WorkerOptions) {
    if (options?.name?.startsWith('ondevice-engine-thread') === true) new Original(url, options).terminate()
    super(url, options)
  }
}
await import('../../../sdk/device-worker-host.ts')
