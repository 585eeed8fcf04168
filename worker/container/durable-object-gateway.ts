// The gateway on Cloudflare: instance N is the Container Durable Object named `instance-N`
// (@cloudflare/containers). `ready` starts its container and waits for the port (the container
// runs `ondevice serve --bind-after-load`, so an open port means a loaded model); `fetch` goes
// through the Durable Object, which keeps the container awake for `sleepAfter` after each request.
import { getContainer } from '@cloudflare/containers'
import type { ContainerGateway } from './gateway.ts'
import type { InstanceHealth } from './health.ts'

/**
 * The Durable Object namespace binding of OndeviceContainer (wrangler.toml: ONDEVICE_CONTAINER).
 * getContainer's own parameter, not `getContainer<OndeviceContainer>`'s: that type argument is
 * checked against `Container<Cloudflare.Env>`, and in an app whose `wrangler types` gives
 * Cloudflare.Env required vars, OndeviceContainer's env (every var optional) fails the check, so
 * the app's `tsc` failed inside these declarations. Only the stub's Container methods are used.
 */
export type ContainerNamespace = Parameters<typeof getContainer>[0]

export function durableObjectGateway(namespace: ContainerNamespace): ContainerGateway {
  const stub = (index: number) => getContainer(namespace, `instance-${index}`)
  return {
    name: (index) => `instance-${index}`,
    // Asks the Durable Object each time rather than remembering "up" in this isolate: an instance
    // sleeps after sleepAfter, and a request that found it healthy a minute ago would skip the
    // bounded start and get the library's own unbounded start inside fetch (a 500 when it fails;
    // the Durable Object test saw it under load). getState is one cheap call to the object.
    // An AbortSignal cannot cross into the Durable Object (RPC): the wait is bounded by time only.
    async ready(index, timeoutMs) {
      const instance = stub(index)
      if ((await instance.getState()).status === 'healthy') return
      await instance.startAndWaitForPorts({
        cancellationOptions: { instanceGetTimeoutMS: timeoutMs, portReadyTimeoutMS: timeoutMs },
      })
    },
    // The request's own signal does not cross into the Durable Object; cancelling the response
    // body (the client went away) closes the container's connection, which stops its generation.
    fetch: (index, request) => stub(index).fetch(request),
    // Nothing remembered here (ready asks the Durable Object).
    forget() {},
    // The Durable Object's record of its container, not a request to it: a request would start a
    // sleeping container and renew its sleepAfter, so an uptime check would keep every instance
    // awake (and billed). 'healthy' is what startAndWaitForPorts sets once the port answers, and
    // `ondevice serve --bind-after-load` listens only after its model loaded.
    async health(index) {
      const name = `instance-${index}`
      try {
        const state = await stub(index).getState()
        switch (state.status) {
          case 'healthy':
            return { name, state: 'ready' }
          case 'running':
            return { name, state: 'loading' }
          case 'stopped_with_code':
            return {
              name,
              state: state.exitCode === undefined || state.exitCode === 0 ? 'asleep' : 'failed',
              ...(state.exitCode === undefined ? {} : { exitCode: state.exitCode }),
            } satisfies InstanceHealth
          default:
            return { name, state: 'asleep' }
        }
      } catch {
        return { name, state: 'unreachable' }
      }
    },
  }
}
