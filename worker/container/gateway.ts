// How the Worker reaches its containers. One interface, two ways: on Cloudflare a Durable Object
// per instance starts and addresses the container (durable-object-gateway.ts, with
// @cloudflare/containers); on this machine containers started by hand are reached by URL
// (`ondevice edge --runtime container`, the tests), because `wrangler dev` runs Cloudflare's
// containers only with registry access for its sidecar image.
import { type InstanceHealth, instanceHealthFromBody } from './health.ts'

export interface ContainerGateway {
  /** A name for instance `index`, for logs and the `x-ondevice-instance` response header. */
  name(index: number): string
  /**
   * Resolves once instance `index` is up (starting it when the platform can), or rejects after
   * `timeoutMs`: a cold start the caller bounds.
   */
  ready(index: number, timeoutMs: number, signal?: AbortSignal): Promise<void>
  /** Sends a request to instance `index`. `signal` aborts it (the client went away). */
  fetch(index: number, request: Request, signal?: AbortSignal): Promise<Response>
  /** Instance `index` failed a request: check it again before the next one. */
  forget(index: number): void
  /** Instance `index`'s state for /healthz, without starting it or keeping it awake. */
  health(index: number): Promise<InstanceHealth>
}

/** How long /healthz waits for one instance's answer. */
const healthTimeoutMs = 2000

const pollIntervalMs = 200

function sleep(milliseconds: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, milliseconds)
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer)
        reject(signal.reason)
      },
      { once: true },
    )
  })
}

/**
 * Containers already running at these URLs (one per instance), e.g. `ondevice serve` in Docker
 * on 127.0.0.1. A stopped one is not started here: whoever runs it restarts it (Docker's restart
 * policy under `ondevice edge`); until then requests wait for its /healthz up to the bound.
 */
export function urlGateway(
  urls: readonly string[],
  fetchImplementation: typeof fetch = fetch,
): ContainerGateway {
  if (urls.length === 0) throw new TypeError('urlGateway: pass at least one container URL.')
  const bases = urls.map((url) => url.replace(/\/+$/, ''))
  const up = new Set<number>()
  const base = (index: number): string => bases[index % bases.length] as string
  return {
    name: (index) => `instance-${index % bases.length}`,
    async ready(index, timeoutMs, signal) {
      if (up.has(index)) return
      const deadline = Date.now() + timeoutMs
      for (;;) {
        try {
          const response = await fetchImplementation(`${base(index)}/healthz`, {
            signal: AbortSignal.timeout(Math.max(1, Math.min(2000, deadline - Date.now()))),
          })
          await response.body?.cancel()
          if (response.ok) {
            up.add(index)
            return
          }
        } catch {
          // Not listening yet.
        }
        if (signal?.aborted) throw signal.reason
        if (Date.now() + pollIntervalMs > deadline) {
          throw new Error(`${base(index)} did not answer /healthz within ${timeoutMs} ms`)
        }
        await sleep(pollIntervalMs, signal)
      }
    },
    fetch(index, request, signal) {
      const url = new URL(request.url)
      return fetchImplementation(
        new Request(`${base(index)}${url.pathname}${url.search}`, request),
        signal ? { signal } : {},
      )
    },
    forget(index) {
      up.delete(index)
    },
    async health(index) {
      const name = `instance-${index % bases.length}`
      try {
        const response = await fetchImplementation(`${base(index)}/healthz`, {
          signal: AbortSignal.timeout(healthTimeoutMs),
        })
        return instanceHealthFromBody(name, await response.json())
      } catch {
        // Not listening (stopped, restarting), or not an `ondevice serve` answer.
        return { name, state: 'unreachable' }
      }
    },
  }
}
