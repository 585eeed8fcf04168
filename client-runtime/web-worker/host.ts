// The worker side: owns the loaded model and answers the page's requests (protocol.ts). Start it
// in a dedicated worker with `startWorkerHost(self)`. Generations run one at a time because they
// share the model's cache; an abort message stops the one it names.

import { encodeChatTurns } from '../../core/chat-turns.ts'
import { AbortedError, BackendError, InvalidArgumentError, serializeError } from '../../core/errors.ts'
import { generate } from '../../core/generate.ts'
import { inspectPackage } from '../inspect.ts'
import { type LoadedModel, loadModelWith, type RuntimeHost } from '../load-model.ts'
import { measureDecodeSpeed, probeCapabilities } from '../probe.ts'
import type {
  LoadedModelInfo,
  MessageEndpoint,
  WorkerRequest,
  WorkerResponse,
  WorkerResults,
} from './protocol.ts'

export interface WorkerHostOptions {
  /** The runtime host (default: the browser host). */
  readonly host?: RuntimeHost
}

export interface WorkerHost {
  /** Stops listening and frees the model. */
  close(): Promise<void>
}

// A macrotask turn without setTimeout's 4 ms clamp: a message to ourselves on a fresh channel.
function nextMacrotask(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel()
    channel.port1.onmessage = () => {
      channel.port1.close()
      resolve()
    }
    channel.port2.postMessage(null)
  })
}

export function startWorkerHost(endpoint: MessageEndpoint, options: WorkerHostOptions = {}): WorkerHost {
  let runtimeHost: Promise<RuntimeHost> | undefined
  const getHost = () =>
    (runtimeHost ??= options.host
      ? Promise.resolve(options.host)
      : import('../browser-host.ts').then((module) => module.browserHost))
  let model: LoadedModel | undefined
  let loading: Promise<unknown> = Promise.resolve()
  let generating: Promise<unknown> = Promise.resolve()
  const controllers = new Map<number, AbortController>()

  const send = (message: WorkerResponse) => endpoint.postMessage(message)
  const requireModel = (): LoadedModel => {
    if (!model)
      throw new BackendError(
        'backend_unavailable',
        "No model is loaded in the worker yet: send 'load' first.",
      )
    return model
  }

  async function handle(request: WorkerRequest): Promise<WorkerResults[keyof WorkerResults]> {
    switch (request.type) {
      case 'load': {
        const controller = new AbortController()
        controllers.set(request.id, controller)
        const host = await getHost()
        const previous = model
        model = undefined
        await previous?.dispose()
        const next = loadModelWith(host, {
          ...request.options,
          signal: controller.signal,
          onProgress: (progress) => send({ type: 'progress', id: request.id, progress }),
        })
        loading = next.catch(() => undefined)
        model = await next
        const info: LoadedModelInfo = {
          modelId: model.session.info.modelId,
          backend: model.backend,
          dtype: model.dtype,
          vocabularySize: model.session.info.vocabularySize,
          contextLength: model.session.info.contextLength,
          eosTokenIds: model.tokenizer.eosTokenIds,
          hasChatTemplate: model.tokenizer.chatTemplate !== undefined,
          warnings: model.warnings,
          backendSetup: model.backendSetup,
        }
        return info
      }
      case 'generate': {
        const controller = new AbortController()
        controllers.set(request.id, controller)
        const run = generating.then(async () => {
          await loading
          const { session, tokenizer } = requireModel()
          if (controller.signal.aborted) throw new AbortedError()
          for await (const part of generate(session, tokenizer, {
            ...request.request,
            signal: controller.signal,
          })) {
            send({ type: 'part', id: request.id, part })
            // Let the abort message in: with a backend whose run settles through promises only
            // (onnxruntime-web on WASM), the loop would otherwise never leave the microtask
            // queue, and the abort would be read after the last token.
            if (part.type === 'text-delta') await nextMacrotask()
          }
          return null
        })
        generating = run.catch(() => undefined)
        return run
      }
      case 'abort':
        controllers.get(request.target)?.abort()
        return null
      case 'encode-chat':
        return requireModel().tokenizer.encodeChat(
          request.messages,
          request.options ?? { addGenerationPrompt: true },
        )
      case 'encode-chat-turns':
        return encodeChatTurns(
          requireModel().tokenizer,
          request.messages,
          request.options ?? { addGenerationPrompt: true },
        )
      case 'encode':
        return requireModel().tokenizer.encode(
          request.text,
          request.addSpecialTokens === undefined ? {} : { addSpecialTokens: request.addSpecialTokens },
        )
      case 'decode':
        return requireModel().tokenizer.decode(
          request.tokenIds,
          request.skipSpecialTokens === undefined ? {} : { skipSpecialTokens: request.skipSpecialTokens },
        )
      case 'measure-speed': {
        const { session } = requireModel()
        const run = generating.then(() =>
          measureDecodeSpeed(session, request.tokens === undefined ? {} : { tokens: request.tokens }),
        )
        generating = run.catch(() => undefined)
        return run
      }
      case 'capabilities':
        return probeCapabilities({ estimate: async () => (await getHost()).defaultStore().estimate() })
      case 'inspect':
        return inspectPackage({
          model: request.model,
          backend: request.backend,
          ...(request.dtype === undefined ? {} : { dtype: request.dtype }),
          store: (await getHost()).defaultStore(),
        })
      case 'unload': {
        const previous = model
        model = undefined
        await previous?.dispose()
        return null
      }
      default:
        throw new InvalidArgumentError(
          'type',
          `Unknown worker request type ${JSON.stringify((request as { type?: unknown }).type)}.`,
        )
    }
  }

  const listener = (event: { readonly data: unknown }): void => {
    const request = event.data as WorkerRequest
    if (typeof request !== 'object' || request === null || typeof request.id !== 'number') return
    handle(request)
      .then(
        (value) => send({ type: 'result', id: request.id, value }),
        (error: unknown) => send({ type: 'error', id: request.id, error: serializeError(error) }),
      )
      .finally(() => controllers.delete(request.id))
  }
  endpoint.addEventListener('message', listener)
  return {
    close: async () => {
      endpoint.removeEventListener('message', listener)
      for (const controller of controllers.values()) controller.abort()
      await model?.dispose()
      model = undefined
    },
  }
}
