// The worker side: serves a DeviceHost, as it is, to the page's proxy (proxy.ts). Start it in a
// dedicated worker with `serveDeviceHost(self, createRuntimeDeviceHost())`. Models it loaded are
// kept by handle; generations on one model take turns inside the model itself (createDeviceModel).
import { BackendError, InvalidArgumentError, serializeError } from '../../core/errors.ts'
import type { DeviceHost, DeviceModel } from '../device-host/types.ts'
import type { MessageEndpoint, WorkerRequest, WorkerResponse, WorkerResults } from './protocol.ts'

export interface DeviceHostServer {
  /** Stops listening, stops what runs and frees every model it loaded. */
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

/** How often a load says its thread runs (the 'alive' message). */
const aliveIntervalMs = 1000

export function serveDeviceHost(endpoint: MessageEndpoint, host: DeviceHost): DeviceHostServer {
  const models = new Map<number, DeviceModel>()
  /** The disposes under way, by handle. */
  const disposing = new Map<number, Promise<void>>()
  // Handles differ between workers: after the page replaced a blocked worker with a fresh one
  // (proxy.ts, restart), a model of the old one names nothing here ("load it again").
  let nextHandle = Math.floor(Math.random() * 2 ** 40) + 1
  const controllers = new Map<number, AbortController>()

  const send = (message: WorkerResponse) => endpoint.postMessage(message)
  const modelOf = (handle: number): DeviceModel => {
    const model = models.get(handle)
    if (!model)
      throw new BackendError(
        'backend_unavailable',
        'This model is not loaded in the worker (it was disposed, or the worker was started again): load it again.',
      )
    return model
  }

  async function handle(
    request: WorkerRequest,
    signal: AbortSignal,
  ): Promise<WorkerResults[keyof WorkerResults]> {
    switch (request.type) {
      case 'capabilities':
        return host.capabilities()
      case 'inspect':
        return host.inspect(request.model, { ...request.options, signal })
      case 'load': {
        // The page's proxy takes a load it hears nothing of for long for a blocked thread.
        const alive = setInterval(() => send({ type: 'alive', id: request.id }), aliveIntervalMs)
        const model = await host
          .load(request.model, {
            ...request.options,
            signal,
            onProgress: (progress) => send({ type: 'progress', id: request.id, progress }),
          })
          .finally(() => clearInterval(alive))
        const handle = nextHandle++
        models.set(handle, model)
        return {
          handle,
          modelId: model.modelId,
          backend: model.backend,
          dtype: model.dtype,
          warnings: [...(model.warnings ?? [])],
          ...(model.toolCallSyntax === undefined ? {} : { toolCallSyntax: model.toolCallSyntax }),
          ...(model.packageFingerprint === undefined ? {} : { packageFingerprint: model.packageFingerprint }),
          ...(model.sourceModelId === undefined ? {} : { sourceModelId: model.sourceModelId }),
        }
      }
      case 'generate': {
        for await (const part of modelOf(request.handle).generate({ ...request.request, signal })) {
          send({ type: 'part', id: request.id, part })
          // Let the abort message in: with a backend whose run settles through promises only
          // (onnxruntime-web on WASM), the loop would otherwise never leave the microtask
          // queue, and the abort would be read after the last token.
          if (part.type === 'text-delta' || part.type === 'reasoning-delta') await nextMacrotask()
        }
        return null
      }
      case 'probe':
        return modelOf(request.handle).probe(signal)
      case 'dispose': {
        // Forgotten at once (a call on it now is refused), but a second dispose() waits for the
        // first, which waits for a running answer to end: it answered at once, and its caller went
        // on with the model still loaded here.
        const model = models.get(request.handle)
        models.delete(request.handle)
        if (model) disposing.set(request.handle, model.dispose())
        try {
          await disposing.get(request.handle)
        } finally {
          disposing.delete(request.handle)
        }
        return null
      }
      case 'abort':
        controllers.get(request.target)?.abort()
        return null
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
    const controller = new AbortController()
    if (request.type !== 'abort') controllers.set(request.id, controller)
    handle(request, controller.signal)
      .then(
        (value) => send({ type: 'result', id: request.id, value }),
        (error: unknown) => send({ type: 'error', id: request.id, error: serializeError(error) }),
      )
      .finally(() => controllers.delete(request.id))
  }
  endpoint.addEventListener('message', listener)
  // A page cannot tell a worker whose script never loaded (offline without the app's build at
  // hand, a server's HTML page for it) from a slow one, except by this message.
  send({ type: 'started' })
  return {
    close: async () => {
      endpoint.removeEventListener('message', listener)
      for (const controller of controllers.values()) controller.abort()
      const loaded = [...models.values()]
      models.clear()
      await Promise.all(loaded.map((model) => model.dispose().catch(() => {})))
    },
  }
}
