// The page test/browser/worker-recovery.test.ts drives in Firefox and Chromium: a chat through
// createClient as an app writes it (device only, the SDK's model worker behind
// createBrowserDeviceHost), with the SDK's own model worker or one whose engine helper `new Worker`
// blocks for good (blocking-model-worker.ts); and many loads in fresh model workers, to count how
// often the real block happens and what the SDK does then.
import { createBrowserDeviceHost, type WorkerDeviceHost } from '../../../sdk/index.ts'
import { type ClientChatRequest, type ClientChatResult, chatThroughClient } from '../client-chat-page.ts'

export interface RecoveryChatRequest extends ClientChatRequest {
  /** The model worker blocks inside each engine helper's `new Worker(...)`. */
  readonly blockHelpers: boolean
}

export interface RecoveryChatResult extends ClientChatResult {
  /** Model workers the host started (a restart makes a second). */
  readonly modelWorkers: number
  /** From createClient until the answer's finish. */
  readonly milliseconds: number
}

/**
 * A model worker: the SDK's own, or its body in a worker whose engine helpers' `new Worker` blocks
 * for good (blocking-model-worker.ts) or comes right after one made and terminated
 * (provoking-model-worker.ts). Each `new Worker(new URL(...))` written out, for Vite to bundle it.
 */
function modelWorker(kind: 'sdk' | 'blocking' | 'provoking'): Worker {
  // Literal options: Vite reads them from the source.
  if (kind === 'blocking')
    return new Worker(new URL('./blocking-model-worker.ts', import.meta.url), {
      type: 'module',
      name: 'ondevice-model',
    })
  if (kind === 'provoking')
    return new Worker(new URL('./provoking-model-worker.ts', import.meta.url), {
      type: 'module',
      name: 'ondevice-model',
    })
  return new Worker(new URL('../../../sdk/device-worker.ts', import.meta.url), {
    type: 'module',
    name: 'ondevice-model',
  })
}

/** The page's chat (client-chat-page.ts) with a device host of its own, the model workers counted. */
async function chat(request: RecoveryChatRequest): Promise<RecoveryChatResult> {
  const began = performance.now()
  const counter = { started: 0 }
  const host: WorkerDeviceHost = await createBrowserDeviceHost({
    worker: () => {
      counter.started++
      return modelWorker(request.blockHelpers ? 'blocking' : 'sdk')
    },
  })
  let result: ClientChatResult
  try {
    result = await chatThroughClient(request, { deviceHost: host })
  } finally {
    host.close()
  }
  const milliseconds = Math.round(performance.now() - began)
  return { ...result, modelWorkers: counter.started, milliseconds }
}

export interface LoadsRequest {
  readonly model: string
  readonly dtype: string
  readonly numThreads: number
  readonly prompt: string
  readonly maxTokens: number
  readonly count: number
  /** Each helper's `new Worker` right after one made and terminated (provoking-model-worker.ts). */
  readonly provoke?: boolean
}

export interface LoadOutcome {
  /** Model workers started for the load (2: the first blocked and was replaced). */
  readonly modelWorkers: number
  readonly warnings: readonly string[]
  readonly tokenIds: readonly number[]
  /** The longest time between a nested Worker's 'making' and 'made' (the worker's marks). */
  readonly longestNestedWorkerMs: number
  readonly milliseconds: number
  readonly error: string | null
}

/**
 * `count` loads, each in a fresh SDK model worker (createBrowserDeviceHost as it ships): load,
 * one greedy answer, close. What each took, whether its worker was replaced, and how long each
 * nested `new Worker(...)` took by the worker's own marks.
 */
async function loads(request: LoadsRequest): Promise<LoadOutcome[]> {
  const outcomes: LoadOutcome[] = []
  for (let index = 0; index < request.count; index++) {
    const began = performance.now()
    let modelWorkers = 0
    let making: number | undefined
    let longestNestedWorkerMs = 0
    const host = await createBrowserDeviceHost({
      worker: () => {
        modelWorkers++
        // Only the first worker of a load provokes; a restarted one loads on one thread anyway.
        const worker = modelWorker(request.provoke === true && modelWorkers === 1 ? 'provoking' : 'sdk')
        worker.addEventListener('message', (event: MessageEvent<{ type?: string; phase?: string }>) => {
          if (event.data?.type !== 'nested-worker') return
          if (event.data.phase === 'making') making = performance.now()
          else if (making !== undefined)
            longestNestedWorkerMs = Math.max(longestNestedWorkerMs, performance.now() - making)
        })
        return worker
      },
    })
    let warnings: readonly string[] = []
    let tokenIds: readonly number[] = []
    let error: string | null = null
    try {
      const model = await host.load(request.model, {
        backend: 'wasm',
        dtype: request.dtype,
        numThreads: request.numThreads,
      })
      warnings = model.warnings ?? []
      for await (const part of model.generate({
        messages: [{ role: 'user', content: request.prompt }],
        sampling: { temperature: 0 },
        maxTokens: request.maxTokens,
      }))
        if (part.type === 'finish') tokenIds = part.tokenIds
      await model.dispose()
    } catch (thrown) {
      error = thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown)
    } finally {
      host.close()
    }
    outcomes.push({
      modelWorkers,
      warnings,
      tokenIds,
      longestNestedWorkerMs: Math.round(longestNestedWorkerMs),
      milliseconds: Math.round(performance.now() - began),
      error,
    })
  }
  return outcomes
}

Object.assign(window, { workerRecovery: { chat, loads } })
document.body.dataset['ready'] = 'true'
