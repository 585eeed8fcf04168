// The page test/browser/other-browsers.test.ts drives in Firefox and WebKit: what the browser
// offers the engine (SIMD, relaxed SIMD, shared memory, OPFS), an engine run's logit digest on the
// page or in a module Web Worker (the same code as the Chromium threads test), and a chat through
// the SDK as an app writes it (createClient: the model worker, the package in the browser's store).
import { type ClientChatRequest, type ClientChatResult, chatThroughClient } from '../client-chat-page.ts'
import type {
  EngineCaseOutcome,
  EngineCaseRequest,
  EngineCaseResult,
} from '../engine-threads-page/engine-case.ts'
import { runEngineCase } from '../engine-threads-page/engine-case.ts'

/** The smallest module using a v128 (a function returning v128.const 0): validates where wasm SIMD exists. */
const simdProbe = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11,
])

export interface BrowserFacts {
  readonly userAgent: string
  readonly simd: boolean
  readonly crossOriginIsolated: boolean
  readonly sharedArrayBuffer: boolean
  readonly opfs: boolean
  readonly cores: number
}

function facts(): BrowserFacts {
  return {
    userAgent: navigator.userAgent,
    simd: WebAssembly.validate(simdProbe),
    crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
    sharedArrayBuffer: typeof SharedArrayBuffer === 'function',
    opfs: typeof (navigator.storage as { getDirectory?: unknown } | undefined)?.getDirectory === 'function',
    cores: navigator.hardwareConcurrency,
  }
}

/**
 * How long a worker run may go without a word (its script starting, a load's next phase) before
 * the page gives up on it and says where it was.
 */
const workerRunTimeoutMs = 50_000

/** One engine case in a fresh module Web Worker. */
async function runEngineCaseInWorker(request: EngineCaseRequest): Promise<EngineCaseResult> {
  return (await runEngineCasesInWorker([request])).outcomes[0] as EngineCaseResult
}

/** What a worker's engine cases gave, and the engine's helper Workers created and terminated there. */
export interface WorkerRun {
  readonly outcomes: readonly EngineCaseOutcome[]
  readonly helperWorkers: { readonly created: number; readonly terminated: number }
}

/** Engine cases one after the other in one fresh module Web Worker (load, run, dispose each). */
function runEngineCasesInWorker(requests: readonly EngineCaseRequest[]): Promise<WorkerRun> {
  const worker = new Worker(new URL('./engine-worker.ts', import.meta.url), {
    type: 'module',
    name: 'engine-case',
  })
  // The last few words: a load's phase, then any finer mark after it.
  const marks: string[] = []
  let last = ''
  let timer: ReturnType<typeof setTimeout> | undefined
  return new Promise<WorkerRun>((resolve, reject) => {
    const watch = () => {
      clearTimeout(timer)
      timer = setTimeout(
        () =>
          reject(
            new Error(
              last
                ? `the engine run in the worker gave no word in ${workerRunTimeoutMs / 1000} s after "${last}"`
                : `the worker's script did not start in ${workerRunTimeoutMs / 1000} s`,
            ),
          ),
        workerRunTimeoutMs,
      )
    }
    watch()
    worker.onmessage = (
      event: MessageEvent<{ started?: true; mark?: string; run?: WorkerRun; error?: string }>,
    ) => {
      if (event.data.started || event.data.mark !== undefined) {
        marks.push(event.data.mark ?? 'the script started')
        last = marks.slice(-3).join('", "')
        watch()
        return
      }
      clearTimeout(timer)
      if (event.data.run) resolve(event.data.run)
      else reject(new Error(`${event.data.error ?? 'the worker failed'} (after "${last}")`))
    }
    worker.onerror = (event) => {
      clearTimeout(timer)
      reject(new Error(event.message || 'the worker failed to load'))
    }
    worker.postMessage(requests)
  }).finally(() => {
    clearTimeout(timer)
    worker.terminate()
  })
}

/** The page's chat: createClient as an app writes it, the SDK's own model worker (client-chat-page.ts). */
const chat = (request: ClientChatRequest): Promise<ClientChatResult> => chatThroughClient(request)

Object.assign(window, {
  otherBrowsers: { facts, runEngineCase, runEngineCaseInWorker, runEngineCasesInWorker, chat },
})
document.body.dataset['ready'] = 'true'
