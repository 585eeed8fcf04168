// The engine threads page: runs an engine case here (the page's main thread, which may not block
// in Atomics.wait, so the pool spins there) or in a module Web Worker, for the browser tests.
import { type EngineCaseRequest, type EngineCaseResult, runEngineCase } from './engine-case.ts'

function runEngineCaseInWorker(request: EngineCaseRequest): Promise<EngineCaseResult> {
  const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'engine-case' })
  return new Promise<EngineCaseResult>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<{ result?: EngineCaseResult; error?: string }>) => {
      if (event.data.result) resolve(event.data.result)
      else reject(new Error(event.data.error ?? 'the worker failed'))
    }
    worker.onerror = (event) => reject(new Error(event.message || 'the worker failed to load'))
    worker.postMessage(request)
  }).finally(() => worker.terminate())
}

const page = window as unknown as {
  runEngineCase: typeof runEngineCase
  runEngineCaseInWorker: typeof runEngineCaseInWorker
}
page.runEngineCase = runEngineCase
page.runEngineCaseInWorker = runEngineCaseInWorker
document.body.dataset['ready'] = 'true'
