// The page test/browser/worker-recovery.test.ts drives in Firefox and Chromium: a chat through
// createClient as an app writes it (device only, the SDK's model worker behind
// createBrowserDeviceHost), with the SDK's own model worker or one whose engine helper `new Worker`
// blocks for good (blocking-model-worker.ts); and many loads in fresh model workers, to count how
// often the real block happens and what the SDK does then.
import {
  createBrowserDeviceHost,
  createClient,
  type StreamPart,
  type WorkerDeviceHost,
} from '../../../sdk/index.ts'

export interface RecoveryChatRequest {
  /** The package's URL prefix. */
  readonly model: string
  readonly dtype: string
  readonly numThreads?: number
  readonly prompt: string
  readonly maxTokens: number
  /** The model worker blocks inside each engine helper's `new Worker(...)`. */
  readonly blockHelpers: boolean
}

export interface RecoveryChatResult {
  readonly route: string
  readonly text: string
  readonly tokenIds: readonly number[]
  readonly backend: string | undefined
  /** null (not undefined: results travel as JSON) where there was none. */
  readonly error: { readonly name: string; readonly code: string; readonly message: string } | null
  readonly ready: { readonly backend: string; readonly warnings: readonly string[] } | null
  readonly loadError: string | null
  /** Model workers the host started (a restart makes a second). */
  readonly modelWorkers: number
  /** From createClient until the answer's finish. */
  readonly milliseconds: number
}

function modelWorkerFactory(blockHelpers: boolean, counter: { started: number }): () => Worker {
  return () => {
    counter.started++
    return blockHelpers
      ? new Worker(new URL('./blocking-model-worker.ts', import.meta.url), {
          type: 'module',
          name: 'ondevice-model',
        })
      : new Worker(new URL('../../../sdk/device-worker.ts', import.meta.url), {
          type: 'module',
          name: 'ondevice-model',
        })
  }
}

/** createClient as an app writes it (device only: no edge), one greedy chat streamed. */
async function chat(request: RecoveryChatRequest): Promise<RecoveryChatResult> {
  const began = performance.now()
  const counter = { started: 0 }
  const host: WorkerDeviceHost = await createBrowserDeviceHost({
    worker: modelWorkerFactory(request.blockHelpers, counter),
  })
  const client = createClient(
    {
      model: request.model,
      backend: 'wasm',
      dtype: request.dtype,
      policy: 'device-only',
      ...(request.numThreads === undefined ? {} : { numThreads: request.numThreads }),
      // A shared 2-core machine decodes slowly; speed is not what this page checks.
      thresholds: { minDeviceTokensPerSecond: 0.01 },
    },
    { deviceHost: host },
  )
  let ready: RecoveryChatResult['ready'] = null
  let loadError: string | null = null
  client.on('ready', (event) => (ready = { backend: event.backend, warnings: event.warnings }))
  client.on('load-error', ({ error }) => (loadError = `${error.name} ${error.code}: ${error.message}`))
  let route = ''
  let text = ''
  let tokenIds: readonly number[] = []
  let backend: string | undefined
  let error: RecoveryChatResult['error'] = null
  try {
    const parts: AsyncIterable<StreamPart> = client.stream({
      messages: [{ role: 'user', content: request.prompt }],
      maxTokens: request.maxTokens,
      temperature: 0,
    })
    for await (const part of parts) {
      if (part.type === 'route') route = part.route
      else if (part.type === 'text-delta') text += part.text
      else if (part.type === 'finish')
        ({
          tokenIds,
          usage: { backend },
        } = part)
      else if (part.type === 'error')
        error = { name: part.error.name, code: part.error.code, message: part.error.message }
    }
  } catch (thrown) {
    const failure = thrown as { name?: string; code?: string; message?: string }
    error = {
      name: failure.name ?? 'thrown',
      code: failure.code ?? 'thrown',
      message: failure.message ?? String(thrown),
    }
  } finally {
    await client.dispose()
    host.close()
  }
  const milliseconds = Math.round(performance.now() - began)
  return {
    route,
    text,
    tokenIds,
    backend,
    error,
    ready,
    loadError,
    modelWorkers: counter.started,
    milliseconds,
  }
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
        const worker =
          request.provoke === true && modelWorkers === 1
            ? new Worker(new URL('./provoking-model-worker.ts', import.meta.url), {
                type: 'module',
                name: 'ondevice-model',
              })
            : new Worker(new URL('../../../sdk/device-worker.ts', import.meta.url), {
                type: 'module',
                name: 'ondevice-model',
              })
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
