// A module Web Worker running the engine, as the SDK's model worker does: its helper threads are
// then workers started from a worker.
import { type EngineCaseRequest, runEngineCase } from './engine-case.ts'

const scope = globalThis as unknown as {
  onmessage: ((event: { readonly data: EngineCaseRequest }) => void) | null
  postMessage(message: unknown): void
}
scope.onmessage = (event) => {
  runEngineCase(event.data).then(
    (result) => scope.postMessage({ result }),
    (error: unknown) =>
      scope.postMessage({
        error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      }),
  )
}
