// The page side: a DeviceHost whose calls run in the worker that serves one (serve.ts). It is the
// same interface the runtime implements in this thread, so the SDK drives both alike. Requests
// are promises, generation is an async iterable of the model's parts, and errors come back as
// the same OndeviceError classes with the same codes they had in the worker.
import { AbortedError, BackendError, deserializeError } from '../../core/errors.ts'
import type { FinishPart } from '../../core/stream-parts.ts'
import type {
  DeviceGenerateRequest,
  DeviceHost,
  DeviceLoadOptions,
  DeviceModel,
  DevicePart,
} from '../device-host/types.ts'
import { withCurrentNetwork } from '../probe.ts'
import type { DownloadProgress } from '../store/types.ts'
import type {
  LoadedModelInfo,
  MessageEndpoint,
  WorkerLoadOptions,
  WorkerRequest,
  WorkerResponse,
  WorkerResults,
} from './protocol.ts'

type RequestBody = WorkerRequest extends infer Request
  ? Request extends { id: number }
    ? Omit<Request, 'id'>
    : never
  : never

interface Pending {
  resolve(value: unknown): void
  reject(error: unknown): void
  onProgress?: (progress: DownloadProgress) => void
  onPart?: (part: DevicePart) => void
  /** Any word from the worker about this call (a load's watch on its thread). */
  onWord?: () => void
}

/** A DeviceHost in another thread; `close()` stops listening (pending calls fail with AbortedError). */
export interface WorkerDeviceHost extends DeviceHost {
  close(): void
}

export interface WorkerDeviceHostOptions {
  /**
   * Browsers: the absolute URL folder where the app serves onnxruntime-web's files, sent with
   * every load (a worker resolves relative URLs against its own script, not the page).
   */
  readonly wasmBaseUrl?: string
  /**
   * How long a load may go without a word from the worker (it says it runs every second, and
   * reports download progress) before the proxy takes its thread for blocked: the load fails with
   * a BackendError, and so does every later call, since nothing can unblock it. Firefox 153 ESR
   * sometimes blocks a worker for good inside the `new Worker(...)` of the engine's helper threads
   * (docs/wasm-engine.md, Threads), and a load used to wait for ever. Default 90 s: above the
   * longest stretch a load runs without yielding (onnxruntime-web building a large model's
   * session on a slow phone).
   */
  readonly loadSilenceMs?: number
}

const defaultLoadSilenceMs = 90_000
/** How long past loadSilenceMs a word from the worker may still arrive (see load). */
const lastWordGraceMs = 3000

/** Only what can cross a thread: an app may pass options objects that carry more. */
function loadOptionsOf(options: DeviceLoadOptions): WorkerLoadOptions {
  return {
    ...(options.backend === undefined ? {} : { backend: options.backend }),
    ...(options.dtype === undefined ? {} : { dtype: options.dtype }),
    ...(options.wasmBaseUrl === undefined ? {} : { wasmBaseUrl: options.wasmBaseUrl }),
    ...(options.numThreads === undefined ? {} : { numThreads: options.numThreads }),
  }
}

export function createWorkerDeviceHost(
  endpoint: MessageEndpoint,
  hostOptions: WorkerDeviceHostOptions = {},
): WorkerDeviceHost {
  let nextId = 1
  const pending = new Map<number, Pending>()
  const loadSilenceMs = hostOptions.loadSilenceMs ?? defaultLoadSilenceMs
  /** Set once a load found the worker's thread blocked: every call fails with it from then on. */
  let blocked: BackendError | undefined

  const listener = (event: { readonly data: unknown }): void => {
    const message = event.data as WorkerResponse
    const entry =
      typeof message === 'object' && message !== null && message.type !== 'started'
        ? pending.get(message.id)
        : undefined
    if (!entry) return
    entry.onWord?.()
    switch (message.type) {
      case 'started':
      case 'alive':
        break
      case 'progress':
        entry.onProgress?.(message.progress)
        break
      case 'part':
        entry.onPart?.(message.part)
        break
      case 'result':
        pending.delete(message.id)
        entry.resolve(message.value)
        break
      case 'error':
        pending.delete(message.id)
        entry.reject(deserializeError(message.error))
        break
    }
  }
  endpoint.addEventListener('message', listener)

  const abortRequest = (target: number) =>
    endpoint.postMessage({ type: 'abort', id: nextId++, target } satisfies WorkerRequest)

  function call<K extends keyof WorkerResults>(
    body: RequestBody & { type: K },
    hooks: Omit<Pending, 'resolve' | 'reject'> = {},
    signal?: AbortSignal,
  ): Promise<WorkerResults[K]> {
    const id = nextId++
    return new Promise<WorkerResults[K]>((resolve, reject) => {
      if (blocked) {
        reject(blocked)
        return
      }
      if (signal?.aborted) {
        reject(new AbortedError())
        return
      }
      const onAbort = () => abortRequest(id)
      const settle =
        <T>(then: (value: T) => void) =>
        (value: T) => {
          signal?.removeEventListener('abort', onAbort)
          then(value)
        }
      pending.set(id, {
        resolve: settle(resolve as (value: unknown) => void),
        reject: settle(reject),
        ...hooks,
      })
      signal?.addEventListener('abort', onAbort, { once: true })
      endpoint.postMessage({ ...body, id } as WorkerRequest)
    })
  }

  // Parts arrive as messages and are buffered, so the worker may run ahead of the reader. An
  // abort (the signal, or the reader leaving the loop: return()/throw()) posts the abort message
  // at once; the reader then gets core's ending: a finish 'abort' holding exactly the tokens it
  // was handed (not the ones the worker produced past them), so a handoff continues from there.
  function generateIterator(handle: number, request: DeviceGenerateRequest): AsyncIterator<DevicePart> {
    const { signal, ...body } = request
    const buffered: DevicePart[] = []
    let wake: (() => void) | undefined
    let settled = false
    let failure: unknown
    let workerFinish: FinishPart | undefined
    let aborted = false
    let done = false
    const deliveredTokenIds: number[] = []
    let deliveredText = ''
    let deliveredReasoning = ''
    let deliveredReasoningTokens = 0
    const notify = () => {
      const resolve = wake
      wake = undefined
      resolve?.()
    }
    const id = nextId++
    const abort = () => {
      if (aborted) return
      aborted = true
      if (!settled) abortRequest(id)
      notify()
    }
    if (signal?.aborted) {
      aborted = true
      settled = true
      failure = new AbortedError()
    } else {
      signal?.addEventListener('abort', abort, { once: true })
      new Promise<unknown>((resolve, reject) => {
        pending.set(id, {
          resolve,
          reject,
          onPart: (part) => {
            if (part.type === 'finish') workerFinish = part
            else buffered.push(part)
            notify()
          },
        })
        endpoint.postMessage({ type: 'generate', id, handle, request: body } satisfies WorkerRequest)
      }).then(
        () => {
          settled = true
          notify()
        },
        (error: unknown) => {
          failure = error
          settled = true
          notify()
        },
      )
    }
    const release = () => {
      done = true
      buffered.length = 0
      signal?.removeEventListener('abort', abort)
    }
    // Core's abort ending, trimmed to what this reader saw.
    const abortFinish = (finish: FinishPart): FinishPart => {
      const unseen = finish.tokenIds.length - deliveredTokenIds.length
      // The worker's reasoning may hold text of tokens this reader never saw: only the delivered counts.
      const { reasoning, ...rest } = finish
      return {
        ...rest,
        finishReason: 'abort',
        tokenIds: deliveredTokenIds,
        text: deliveredText,
        ...(deliveredReasoning === '' ? {} : { reasoning: deliveredReasoning }),
        nextStep: finish.nextStep - Math.max(0, unseen),
        usage: {
          ...finish.usage,
          completionTokens: deliveredTokenIds.length,
          reasoningTokens: deliveredReasoningTokens,
        },
      }
    }
    return {
      async next(): Promise<IteratorResult<DevicePart>> {
        for (;;) {
          if (done) return { value: undefined, done: true }
          if (!aborted) {
            const part = buffered.shift()
            if (part) {
              // A thinking model's reasoning deltas carry tokens too (each token is in one delta).
              if (part.type === 'text-delta' || part.type === 'reasoning-delta') {
                for (const id of part.tokenIds) deliveredTokenIds.push(id)
                if (part.type === 'text-delta') deliveredText += part.text
                else {
                  deliveredReasoning += part.text
                  deliveredReasoningTokens += part.tokenIds.length
                }
              }
              return { value: part, done: false }
            }
          }
          if (settled) {
            release()
            if (failure !== undefined) throw failure
            if (workerFinish === undefined) return { value: undefined, done: true }
            return { value: aborted ? abortFinish(workerFinish) : workerFinish, done: false }
          }
          await new Promise<void>((resolve) => {
            wake = resolve
          })
        }
      },
      async return(): Promise<IteratorResult<DevicePart>> {
        // The reader left (break in for-await): stop the worker now; its late parts are dropped.
        abort()
        release()
        return { value: undefined, done: true }
      },
      async throw(error: unknown): Promise<IteratorResult<DevicePart>> {
        abort()
        release()
        throw error
      },
    }
  }

  const modelOf = (info: LoadedModelInfo): DeviceModel => ({
    modelId: info.modelId,
    backend: info.backend,
    dtype: info.dtype,
    warnings: info.warnings,
    ...(info.toolCallSyntax === undefined ? {} : { toolCallSyntax: info.toolCallSyntax }),
    generate: (request) => ({ [Symbol.asyncIterator]: () => generateIterator(info.handle, request) }),
    probe: (signal) => call({ type: 'probe', handle: info.handle }, {}, signal),
    dispose: async () => {
      await call({ type: 'dispose', handle: info.handle })
    },
  })

  /** A load heard nothing for loadSilenceMs: the worker's thread is blocked, and stays so. */
  const workerBlocked = () => {
    blocked = new BackendError(
      'backend_failed',
      `ondevice's model worker said nothing for ${loadSilenceMs / 1000} s while it loaded the model: its thread is blocked (Firefox sometimes blocks a worker for good when it starts the engine's helper threads). Load the page again, or pass numThreads: 1 to load on one thread.`,
      { isRetryable: false },
    )
    for (const entry of pending.values()) entry.reject(blocked)
    pending.clear()
  }

  return {
    // The page sees network changes first: its own navigator's state, read at each call.
    capabilities: async () => withCurrentNetwork(await call({ type: 'capabilities' })),
    inspect: (model, options) =>
      call(
        {
          type: 'inspect',
          model,
          options: {
            ...loadOptionsOf(options),
            ...(options.retryManifest === false ? { retryManifest: false } : {}),
          },
        },
        {},
        // Crosses as the abort message, as a load's does.
        options.signal,
      ),
    load: async (model, options) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      // The bound runs out in two steps: a page frozen in the background or a laptop asleep
      // mid-load may run its overdue timer before the worker's queued words, which get a few
      // seconds more to arrive.
      const watch = () => {
        clearTimeout(timer)
        timer = setTimeout(() => {
          timer = setTimeout(workerBlocked, lastWordGraceMs)
        }, loadSilenceMs)
      }
      watch()
      try {
        return modelOf(
          await call(
            { type: 'load', model, options: loadOptionsOf({ ...hostOptions, ...options }) },
            { ...(options.onProgress ? { onProgress: options.onProgress } : {}), onWord: watch },
            options.signal,
          ),
        )
      } finally {
        clearTimeout(timer)
      }
    },
    close: () => {
      endpoint.removeEventListener('message', listener)
      for (const entry of pending.values())
        entry.reject(new AbortedError('The worker device host proxy was closed.'))
      pending.clear()
    },
  }
}
