// `ondevice`'s createWorkerDeviceHost and serveDeviceHost load the proxy and the server on first
// use (worker-device-on-demand.ts, so a page's esbuild bundle does not load them up front): what
// they give must be what the runtime's own (ondevice/runtime) give, across a real MessageChannel;
// a request that reaches the server before its chunk is answered, not dropped; a proxy closed
// before its first call fails its calls as the runtime's does after close().
import { MessageChannel, type MessagePort } from 'node:worker_threads'
import { afterEach, describe, expect, it } from 'vitest'
import type { DevicePart } from '../client-runtime/device-host/types.ts'
import * as runtime from '../client-runtime/web-worker/index.ts'
import type { MessageEndpoint, WorkerResponse } from '../client-runtime/web-worker/protocol.ts'
import { AbortedError } from '../core/errors.ts'
import { createTestDeviceHost } from '../test/sdk/test-device-host.ts'
import * as sdk from './index.ts'

const messages = [{ role: 'user' as const, content: 'Hi' }]
const ports: MessagePort[] = []
afterEach(() => {
  for (const port of ports.splice(0)) port.close()
})

/** A proxy and a server made by `api` on the two ends of a MessageChannel. */
function pair(api: Pick<typeof runtime, 'createWorkerDeviceHost' | 'serveDeviceHost'>) {
  const { port1, port2 } = new MessageChannel()
  ports.push(port1, port2)
  const server = api.serveDeviceHost(
    port2 as unknown as MessageEndpoint,
    createTestDeviceHost({ loadWarnings: ['a warning the load gave'] }),
  )
  port2.start()
  port1.start()
  return { host: api.createWorkerDeviceHost(port1 as unknown as MessageEndpoint), server }
}

/** What a host gives for the same calls: capabilities, a load's model and answer, a refusal. */
async function session(api: Pick<typeof runtime, 'createWorkerDeviceHost' | 'serveDeviceHost'>) {
  const { host, server } = pair(api)
  try {
    const capabilities = await host.capabilities()
    const model = await host.load('/models/test/', {})
    const parts: unknown[] = []
    for await (const part of model.generate({ messages, maxTokens: 6, sampling: { temperature: 0 } }))
      parts.push(withoutTimings(part))
    await model.dispose()
    // A disposed model names nothing in the worker: its refusal crosses back with class and code.
    const refusal = await (async () => {
      for await (const _ of model.generate({ messages, maxTokens: 1 }));
    })().catch((error: unknown) => error)
    return {
      capabilities,
      model: { modelId: model.modelId, backend: model.backend, dtype: model.dtype, warnings: model.warnings },
      parts,
      refusal: describe_(refusal),
    }
  } finally {
    host.close()
    await server.close()
  }
}

function withoutTimings(part: DevicePart): unknown {
  if (part.type !== 'finish') return part
  const { promptTokens, completionTokens } = part.usage
  return { type: 'finish', finishReason: part.finishReason, promptTokens, completionTokens }
}

const describe_ = (error: unknown) =>
  error instanceof Error
    ? { name: error.name, code: (error as { code?: unknown }).code, message: error.message }
    : { thrown: error }

describe("ondevice's createWorkerDeviceHost and serveDeviceHost", () => {
  it("answer as the runtime's own: capabilities, the load's model, its answer, a refusal", async () => {
    const own = await session(runtime)
    expect(own.parts.at(-1)).toMatchObject({ type: 'finish', completionTokens: 6 })
    expect(own.model.warnings).toEqual(['a warning the load gave'])
    expect(own.refusal).toMatchObject({ name: 'BackendError', code: 'backend_unavailable' })
    expect(await session(sdk)).toEqual(own)
    // And each with the other's half.
    expect(
      await session({
        createWorkerDeviceHost: sdk.createWorkerDeviceHost,
        serveDeviceHost: runtime.serveDeviceHost,
      }),
    ).toEqual(own)
    expect(
      await session({
        createWorkerDeviceHost: runtime.createWorkerDeviceHost,
        serveDeviceHost: sdk.serveDeviceHost,
      }),
    ).toEqual(own)
  })

  it('the server answers a request that came before its chunk, after saying it runs', async () => {
    // A worker's `self`, to which a request is delivered at once: before serveDeviceHost returns
    // to the event loop, so before anything it loads with import() can be there.
    const self = new EventTarget()
    const sent: WorkerResponse[] = []
    let answered!: () => void
    const answer = new Promise<void>((resolve) => {
      answered = resolve
    })
    const endpoint: MessageEndpoint = {
      postMessage: (message) => {
        sent.push(message as WorkerResponse)
        if ((message as WorkerResponse).type === 'result') answered()
      },
      addEventListener: (type, listener) => self.addEventListener(type, listener as unknown as EventListener),
      removeEventListener: (type, listener) =>
        self.removeEventListener(type, listener as unknown as EventListener),
    }
    const server = sdk.serveDeviceHost(endpoint, createTestDeviceHost())
    self.dispatchEvent(new MessageEvent('message', { data: { type: 'capabilities', id: 7 } }))
    expect(sent).toEqual([])
    await answer
    await server.close()
    expect(sent.map((message) => message.type)).toEqual(['started', 'result'])
    expect(sent[1]).toMatchObject({
      type: 'result',
      id: 7,
      value: await createTestDeviceHost().capabilities(),
    })
  })

  it('a proxy closed before its first call fails every call as the runtime proxy does after close()', async () => {
    const closedOwn = pair(runtime)
    closedOwn.host.close()
    const own = await closedOwn.host.capabilities().catch((error: unknown) => error)
    expect(own).toBeInstanceOf(AbortedError)
    const closedOnDemand = pair(sdk)
    closedOnDemand.host.close()
    for (const call of [
      () => closedOnDemand.host.capabilities(),
      () => closedOnDemand.host.load('/models/test/', {}),
    ]) {
      const error = await call().catch((thrown: unknown) => thrown)
      expect(error).toBeInstanceOf(AbortedError)
      expect(describe_(error)).toEqual(describe_(own))
    }
    await Promise.all([closedOwn.server.close(), closedOnDemand.server.close()])
  })
})
