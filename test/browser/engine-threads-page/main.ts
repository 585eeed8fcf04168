// The engine threads page: runs an engine case here (the page's main thread, which may not block
// in Atomics.wait, so the pool spins there) or in a module Web Worker, for the browser tests.
import {
  type EngineCaseRequest,
  type EngineCaseResult,
  type HelperDeathResult,
  runEngineCase,
  runHelperDeathCase,
} from './engine-case.ts'
import type { WorkerCase } from './worker.ts'

function inWorker<Result>(kind: WorkerCase['kind'], request: EngineCaseRequest): Promise<Result> {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'engine-case' })
  return new Promise<Result>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<{ result?: Result; error?: string }>) => {
      if (event.data.result) resolve(event.data.result)
      else reject(new Error(event.data.error ?? 'the worker failed'))
    }
    worker.onerror = (event) => reject(new Error(event.message || 'the worker failed to load'))
    worker.postMessage({ kind, request } satisfies WorkerCase)
  }).finally(() => worker.terminate())
}

const runEngineCaseInWorker = (request: EngineCaseRequest) => inWorker<EngineCaseResult>('digest', request)
const runHelperDeathCaseInWorker = (request: EngineCaseRequest) =>
  inWorker<HelperDeathResult>('helper-death', request)

const page = window as unknown as {
  runEngineCase: typeof runEngineCase
  runEngineCaseInWorker: typeof runEngineCaseInWorker
  runHelperDeathCase: typeof runHelperDeathCase
  runHelperDeathCaseInWorker: typeof runHelperDeathCaseInWorker
}
page.runEngineCase = runEngineCase
page.runEngineCaseInWorker = runEngineCaseInWorker
page.runHelperDeathCase = runHelperDeathCase
page.runHelperDeathCaseInWorker = runHelperDeathCaseInWorker
document.body.dataset['ready'] = 'true'
