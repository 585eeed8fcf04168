// The page side: a typed client for the model worker (host.ts). Requests are promises, generation
// is an async iterable of core's GenerationParts, and errors come back as the same OndeviceError
// classes with the same codes they had in the worker.

import type { ChatMessage } from '../../core/chat-template.ts'
import type { ChatPrompt } from '../../core/chat-turns.ts'
import { AbortedError, deserializeError } from '../../core/errors.ts'
import type { FinishPart, GenerationPart } from '../../core/stream-parts.ts'
import type { ApplyChatTemplateOptions } from '../../core/tokenizer.ts'
import type { Backend } from '../dtype.ts'
import type { PackageSummary } from '../inspect.ts'
import type { Capabilities, DecodeSpeed } from '../probe.ts'
import type { DownloadProgress } from '../store/types.ts'
import type {
  LoadedModelInfo,
  MessageEndpoint,
  WorkerGenerateRequest,
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
  onPart?: (part: GenerationPart) => void
}

export interface ModelWorkerProxy {
  load(
    options: WorkerLoadOptions,
    extra?: { onProgress?: (progress: DownloadProgress) => void; signal?: AbortSignal },
  ): Promise<LoadedModelInfo>
  generate(request: WorkerGenerateRequest, extra?: { signal?: AbortSignal }): AsyncIterable<GenerationPart>
  encodeChat(messages: readonly ChatMessage[], options?: ApplyChatTemplateOptions): Promise<number[]>
  /** The prompt with its turn boundaries (core's encodeChatTurns), for generate's promptBoundaries. */
  encodeChatTurns(messages: readonly ChatMessage[], options?: ApplyChatTemplateOptions): Promise<ChatPrompt>
  encode(text: string, options?: { addSpecialTokens?: boolean }): Promise<number[]>
  decode(tokenIds: readonly number[], options?: { skipSpecialTokens?: boolean }): Promise<string>
  measureDecodeSpeed(tokens?: number): Promise<DecodeSpeed>
  capabilities(): Promise<Capabilities>
  inspect(model: string, backend: Backend, dtype?: string): Promise<PackageSummary>
  unload(): Promise<void>
  /** Stops listening; pending requests fail with an AbortedError. */
  close(): void
}

export function createModelWorkerProxy(endpoint: MessageEndpoint): ModelWorkerProxy {
  let nextId = 1
  const pending = new Map<number, Pending>()

  const listener = (event: { readonly data: unknown }): void => {
    const message = event.data as WorkerResponse
    const entry = typeof message === 'object' && message !== null ? pending.get(message.id) : undefined
    if (!entry) return
    switch (message.type) {
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

  function call<K extends keyof WorkerResults>(
    body: RequestBody & { type: K },
    hooks: Omit<Pending, 'resolve' | 'reject'> = {},
    signal?: AbortSignal,
  ): Promise<WorkerResults[K]> {
    const id = nextId++
    return new Promise<WorkerResults[K]>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new AbortedError())
        return
      }
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject, ...hooks })
      signal?.addEventListener(
        'abort',
        () => endpoint.postMessage({ type: 'abort', id: nextId++, target: id } satisfies WorkerRequest),
        { once: true },
      )
      endpoint.postMessage({ ...body, id } as WorkerRequest)
    })
  }

  // Parts arrive as messages and are buffered, so the worker may run ahead of the reader. An
  // abort (the signal, or the reader leaving the loop: return()/throw()) posts the abort message
  // at once; the reader then gets core's ending: a finish 'abort' holding exactly the tokens it
  // was handed (not the ones the worker produced past them), so a handoff continues from there.
  function generateIterator(
    request: WorkerGenerateRequest,
    signal: AbortSignal | undefined,
  ): AsyncIterator<GenerationPart> {
    const buffered: GenerationPart[] = []
    let wake: (() => void) | undefined
    let settled = false
    let failure: unknown
    let workerFinish: FinishPart | undefined
    let aborted = false
    let done = false
    const deliveredTokenIds: number[] = []
    let deliveredText = ''
    const notify = () => {
      const resolve = wake
      wake = undefined
      resolve?.()
    }
    const id = nextId++
    const abort = () => {
      if (aborted) return
      aborted = true
      if (!settled) endpoint.postMessage({ type: 'abort', id: nextId++, target: id } satisfies WorkerRequest)
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
        endpoint.postMessage({ type: 'generate', id, request } satisfies WorkerRequest)
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
      return {
        ...finish,
        finishReason: 'abort',
        tokenIds: deliveredTokenIds,
        text: deliveredText,
        nextStep: finish.nextStep - Math.max(0, unseen),
        usage: { ...finish.usage, completionTokens: deliveredTokenIds.length },
      }
    }
    return {
      async next(): Promise<IteratorResult<GenerationPart>> {
        for (;;) {
          if (done) return { value: undefined, done: true }
          if (!aborted) {
            const part = buffered.shift()
            if (part) {
              if (part.type === 'text-delta') {
                deliveredTokenIds.push(...part.tokenIds)
                deliveredText += part.text
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
      async return(): Promise<IteratorResult<GenerationPart>> {
        // The reader left (break in for-await): stop the worker now; its late parts are dropped.
        abort()
        release()
        return { value: undefined, done: true }
      },
      async throw(error: unknown): Promise<IteratorResult<GenerationPart>> {
        abort()
        release()
        throw error
      },
    }
  }

  return {
    load: (options, extra = {}) =>
      call({ type: 'load', options }, extra.onProgress ? { onProgress: extra.onProgress } : {}, extra.signal),
    generate: (request, extra = {}) => ({
      [Symbol.asyncIterator]: () => generateIterator(request, extra.signal),
    }),
    encodeChat: (messages, options) =>
      call({ type: 'encode-chat', messages, ...(options ? { options } : {}) }),
    encodeChatTurns: (messages, options) =>
      call({ type: 'encode-chat-turns', messages, ...(options ? { options } : {}) }),
    encode: (text, options = {}) =>
      call({
        type: 'encode',
        text,
        ...(options.addSpecialTokens === undefined ? {} : { addSpecialTokens: options.addSpecialTokens }),
      }),
    decode: (tokenIds, options = {}) =>
      call({
        type: 'decode',
        tokenIds,
        ...(options.skipSpecialTokens === undefined ? {} : { skipSpecialTokens: options.skipSpecialTokens }),
      }),
    measureDecodeSpeed: (tokens) =>
      call({ type: 'measure-speed', ...(tokens === undefined ? {} : { tokens }) }),
    capabilities: () => call({ type: 'capabilities' }),
    inspect: (model, backend, dtype) =>
      call({ type: 'inspect', model, backend, ...(dtype === undefined ? {} : { dtype }) }),
    unload: async () => {
      await call({ type: 'unload' })
    },
    close: () => {
      endpoint.removeEventListener('message', listener)
      for (const entry of pending.values())
        entry.reject(new AbortedError('The model worker proxy was closed.'))
      pending.clear()
    },
  }
}
