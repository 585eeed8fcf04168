// A module Web Worker running the engine, as the SDK's model worker does: its helper threads are
// then workers started from a worker.
import { type EngineCaseRequest, runEngineCase, runHelperDeathCase } from './engine-case.ts'

/** What the page asks of this worker: an engine run's digest, or a helper thread stopped mid-run. */
export interface WorkerCase {
  readonly kind: 'digest' | 'helper-death'
  readonly request: EngineCaseRequest
}

const scope = globalThis as unknown as {
  onmessage: ((event: { readonly data: WorkerCase }) => void) | null
  postMessage(message: unknown): void
}
scope.onmessage = (event) => {
  const { kind, request } = event.data
  ;(kind === 'digest' ? runEngineCase(request) : runHelperDeathCase(request)).then(
    (result) => scope.postMessage({ result }),
    (error: unknown) =>
      scope.postMessage({
        error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      }),
  )
}
