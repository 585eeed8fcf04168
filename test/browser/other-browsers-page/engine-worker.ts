// A module Web Worker that runs one engine case for the page (as engine-threads-page/worker.ts
// does), saying first that its script runs: a run that never answers then tells whether the
// worker did not start or the run inside it did not end.
import { runEngineCase } from '../engine-threads-page/engine-case.ts'

const scope = globalThis as unknown as {
  onmessage: ((event: { readonly data: Parameters<typeof runEngineCase>[0] }) => void) | null
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
scope.postMessage({ started: true })
