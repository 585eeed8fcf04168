// A module Web Worker that runs engine cases for the page (as engine-threads-page/worker.ts
// does), one after the other, as the SDK's model worker loads one model after another. It says
// first that its script runs, then where each load is: a run that never answers then tells
// whether the worker did not start or where the run inside it stopped. It counts the engine's
// helper Workers created and terminated here (a load may take those an earlier one left).
import { type EngineCaseRequest, runEngineCases } from '../engine-threads-page/engine-case.ts'

const scope = globalThis as unknown as {
  onmessage: ((event: { readonly data: readonly EngineCaseRequest[] }) => void) | null
  postMessage(message: unknown): void
  Worker: typeof Worker
}

const helperWorkers = { created: 0, terminated: 0 }
const Original = scope.Worker
scope.Worker = class extends Original {
  constructor(url: string | URL, options?: WorkerOptions) {
    const helper = options?.name?.startsWith('ondevice-engine-thread') === true
    // The mark just before a helper's `new Worker(...)`: where Firefox's worker may block for good.
    if (helper) scope.postMessage({ mark: 'making an engine helper Worker' })
    super(url, options)
    if (!helper) return
    scope.postMessage({ mark: 'made an engine helper Worker' })
    helperWorkers.created++
    const terminate = this.terminate.bind(this)
    this.terminate = () => {
      helperWorkers.terminated++
      terminate()
    }
  }
}

scope.onmessage = (event) => {
  runEngineCases(event.data, (mark) => scope.postMessage({ mark })).then(
    (outcomes) => scope.postMessage({ run: { outcomes, helperWorkers } }),
    (error: unknown) =>
      scope.postMessage({
        error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      }),
  )
}
scope.postMessage({ started: true })
