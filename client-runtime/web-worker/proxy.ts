// The page side: a DeviceHost whose calls run in the worker that serves one (serve.ts). It is the
// same interface the runtime implements in this thread, so the SDK drives both alike. Requests
// are promises, generation is an async iterable of the model's parts, and errors come back as
// the same OndeviceError classes with the same codes they had in the worker.
import { AbortedError, BackendError, deserializeError } from '../../core/errors.ts'
import type { FinishPart } from '../../core/stream-parts.ts'
import { withCurrentNetwork } from '../current-network.ts'
import type {
  DeviceGenerateRequest,
  DeviceHost,
  DeviceLoadOptions,
  DeviceModel,
  DevicePart,
} from '../device-host/types.ts'
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

/**
 * A DeviceHost in another thread; `close()` stops listening (pending calls, a load waiting for a
 * fresh worker and every later call fail with AbortedError).
 * Given `restart`, a load whose worker blocked for good goes on in a fresh worker on one thread.
 */
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
  /**
   * How long a load may go without a word from the worker once it said it is making a Worker of
   * its own ('nested-worker' 'making', markNestedWorkers) and before it said it made it. Nothing
   * but the constructor runs in between, and one that returns takes milliseconds (Firefox 153 ESR
   * at load averages of 8-20: at most 459 ms in 1,060 loads), so a silence there is
   * Firefox's block, not work: the load gets the same treatment as past loadSilenceMs, sooner.
   * A load's long synchronous steps (repacking weights) run outside, under loadSilenceMs.
   * Default 10 s.
   */
  readonly nestedWorkerSilenceMs?: number
  /**
   * Stops the blocked worker and starts a fresh one serving the same host, resolving with its
   * endpoint once it runs (createBrowserDeviceHost passes one). Given, a load whose worker blocked
   * is not failed: the worker is replaced and the load runs again there with `numThreads: 1` (no
   * nested Worker, so nothing to block in), and its model's warnings say so. Models loaded in the
   * old worker are gone with it (their calls fail with a BackendError saying to load them again).
   * A restart that fails, or a second block in the same load, fails the load as without it.
   */
  readonly restart?: () => Promise<MessageEndpoint>
}

const defaultLoadSilenceMs = 90_000
const defaultNestedWorkerSilenceMs = 10_000
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

/** What the proxy says when a load's worker went silent, and where it was. */
interface Block {
  readonly silenceMs: number
  /** The worker's last word was that it was making a Worker (markNestedWorkers). */
  readonly inNestedWorker: boolean
}

/** What happened, for the load's error or, after a restart, its warning. */
const describeBlock = (block: Block) =>
  `ondevice's model worker said nothing for ${block.silenceMs / 1000} s ${
    block.inNestedWorker
      ? "after it began making a Worker of its own (the engine's helper threads): its thread blocked inside that `new Worker(...)`, which Firefox does now and then"
      : "while it loaded the model: its thread blocked (Firefox sometimes blocks a worker for good when it starts the engine's helper threads)"
  }`

export function createWorkerDeviceHost(
  firstEndpoint: MessageEndpoint,
  hostOptions: WorkerDeviceHostOptions = {},
): WorkerDeviceHost {
  let endpoint = firstEndpoint
  let nextId = 1
  const pending = new Map<number, Pending>()
  const loadSilenceMs = hostOptions.loadSilenceMs ?? defaultLoadSilenceMs
  const nestedWorkerSilenceMs = hostOptions.nestedWorkerSilenceMs ?? defaultNestedWorkerSilenceMs
  /** Set once a load found the worker's thread blocked and it cannot be replaced: every call fails with it. */
  let blocked: unknown
  /** The worker's latest word about a Worker of its own was 'making' (markNestedWorkers). */
  let makingWorker = false
  /** The running loads' watches: a word about a nested Worker changes their bound. */
  const watches = new Set<() => void>()
  /** Set while a blocked worker is being replaced: calls wait for the new one. */
  let replacing: Promise<void> | undefined
  /** Each block's failure: where, and the replacement of its worker (when `restart` was given). */
  const blocks = new WeakMap<object, { block: Block; replaced?: Promise<void> }>()
  let closed = false
  const closedError = () => new AbortedError('The worker device host proxy was closed.')
  // Rejects at close(): a replacement still starting then is given up on. createBrowserDeviceHost's
  // close() terminates the worker its restart starts, which then never says it runs, so a load
  // waiting for it waited for ever.
  let rejectAtClose!: (error: unknown) => void
  const atClose = new Promise<never>((_, reject) => {
    rejectAtClose = reject
  })
  atClose.catch(() => undefined)

  const listener = (event: { readonly data: unknown }): void => {
    const message = event.data as WorkerResponse
    if (typeof message !== 'object' || message === null) return
    if (message.type === 'nested-worker') {
      makingWorker = message.phase === 'making'
      for (const watch of watches) watch()
      return
    }
    const entry = message.type !== 'started' ? pending.get(message.id) : undefined
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
    // A call made while the blocked worker is replaced goes to the new one (or fails as it did).
    if (replacing) {
      const next = () => call(body, hooks, signal)
      return replacing.then(next, next)
    }
    const id = nextId++
    return new Promise<WorkerResults[K]>((resolve, reject) => {
      // Nobody listens to the worker any more: an answer would never be read.
      if (closed) {
        reject(closedError())
        return
      }
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
    } else if (closed) {
      settled = true
      failure = closedError()
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

  // A model of a worker that blocked and was replaced names nothing in the new one (serve.ts's
  // handles differ between workers): its calls fail there with backend_unavailable, load it again.
  const modelOf = (info: LoadedModelInfo, warnings = info.warnings): DeviceModel => ({
    modelId: info.modelId,
    backend: info.backend,
    dtype: info.dtype,
    warnings,
    ...(info.toolCallSyntax === undefined ? {} : { toolCallSyntax: info.toolCallSyntax }),
    ...(info.packageFingerprint === undefined ? {} : { packageFingerprint: info.packageFingerprint }),
    ...(info.sourceModelId === undefined ? {} : { sourceModelId: info.sourceModelId }),
    generate: (request) => ({ [Symbol.asyncIterator]: () => generateIterator(info.handle, request) }),
    probe: (signal) => call({ type: 'probe', handle: info.handle }, {}, signal),
    dispose: async () => {
      await call({ type: 'dispose', handle: info.handle })
    },
  })

  /** Stops listening to the blocked worker and asks for a fresh one (hostOptions.restart). */
  const replaceWorker = (restart: () => Promise<MessageEndpoint>): Promise<void> => {
    endpoint.removeEventListener('message', listener)
    makingWorker = false
    const replaced = Promise.race([restart(), atClose]).then(
      (next) => {
        replacing = undefined
        if (closed) return
        endpoint = next
        next.addEventListener('message', listener)
      },
      (error: unknown) => {
        replacing = undefined
        blocked = error
        throw error
      },
    )
    replacing = replaced.catch(() => {})
    return replaced
  }

  /**
   * A load heard nothing for the bound: the worker's thread is blocked, and stays so. Every call
   * waiting in it fails; the worker is replaced when it can be (the loads then run again in the
   * new one), else every later call fails too.
   */
  const workerBlocked = (block: Block) => {
    const failure = new BackendError(
      'backend_failed',
      `${describeBlock(block)}. Load the page again, or pass numThreads: 1 to load on one thread.`,
      { isRetryable: false },
    )
    const entries = [...pending.values()]
    pending.clear()
    if (hostOptions.restart && !closed)
      blocks.set(failure, { block, replaced: replaceWorker(hostOptions.restart) })
    else {
      blocked = failure
      blocks.set(failure, { block })
    }
    for (const entry of entries) entry.reject(failure)
  }

  /** One load in the current worker, failed (workerBlocked) when the worker stays silent too long. */
  const watchedLoad = async (
    model: string | undefined,
    options: DeviceLoadOptions,
    workerOptions: WorkerLoadOptions,
  ): Promise<LoadedModelInfo> => {
    let timer: ReturnType<typeof setTimeout> | undefined
    // The bound runs out in two steps: a page frozen in the background or a laptop asleep
    // mid-load may run its overdue timer before the worker's queued words, which get a few
    // seconds more to arrive.
    const watch = () => {
      clearTimeout(timer)
      const block: Block = makingWorker
        ? { silenceMs: nestedWorkerSilenceMs, inNestedWorker: true }
        : { silenceMs: loadSilenceMs, inNestedWorker: false }
      timer = setTimeout(() => {
        timer = setTimeout(() => workerBlocked(block), lastWordGraceMs)
      }, block.silenceMs)
    }
    watches.add(watch)
    watch()
    try {
      return await call(
        { type: 'load', model, options: workerOptions },
        { ...(options.onProgress ? { onProgress: options.onProgress } : {}), onWord: watch },
        options.signal,
      )
    } finally {
      clearTimeout(timer)
      watches.delete(watch)
    }
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
      const workerOptions = loadOptionsOf({ ...hostOptions, ...options })
      try {
        return modelOf(await watchedLoad(model, options, workerOptions))
      } catch (error) {
        const first = blocks.get(error as object)
        if (!first?.replaced) throw error
        // The worker blocked and is being replaced: the load runs again in the new one, on one
        // thread (no nested Worker to block in). A restart that failed fails the load with its error.
        await first.replaced
        const info = await watchedLoad(model, options, { ...workerOptions, numThreads: 1 }).catch(
          (again: unknown) => {
            const second = blocks.get(again as object)
            throw second
              ? new BackendError(
                  'backend_failed',
                  `${describeBlock(second.block)}, in a worker started again on one thread after the first one blocked. Load the page again.`,
                  { isRetryable: false },
                )
              : again
          },
        )
        const note = `${describeBlock(first.block)}. It was stopped, and the model loaded in a fresh worker on one thread (numThreads: 1): answers come slower than with the engine's helper threads, which the page loaded again usually gets back.`
        return modelOf(info, [note, ...info.warnings])
      }
    },
    close: () => {
      closed = true
      endpoint.removeEventListener('message', listener)
      for (const entry of pending.values()) entry.reject(closedError())
      pending.clear()
      rejectAtClose(closedError())
    },
  }
}
