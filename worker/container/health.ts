// What the Worker's /healthz says when its chats are answered by containers: the state of each
// instance, read from the container (its own /healthz, or the Container Durable Object's state on
// Cloudflare), never the isolate's model, which a container-mode Worker never loads.

/**
 * One instance: 'ready' (its model answers), 'loading' (started, its model not loaded yet), 'failed' (its
 * model failed to load, or the container exited with an error), 'asleep' (stopped after
 * `sleepAfter`, or never started: the next request starts it), 'unreachable' (no answer).
 */
export type InstanceState = 'ready' | 'loading' | 'failed' | 'asleep' | 'unreachable'

export interface InstanceHealth {
  readonly name: string
  readonly state: InstanceState
  readonly backend?: string
  readonly dtype?: string
  readonly contextLength?: number
  readonly loadMs?: number
  readonly generations?: { readonly active: number; readonly queued: number; readonly maxConcurrent: number }
  /** The container's exit code when it stopped with one (Cloudflare). */
  readonly exitCode?: number
}

const count = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined

/** Reads an `ondevice serve` /healthz body (untrusted JSON) into an instance's health. */
export function instanceHealthFromBody(name: string, body: unknown): InstanceHealth {
  if (typeof body !== 'object' || body === null) return { name, state: 'unreachable' }
  const wire = body as Readonly<Record<string, unknown>>
  const state: InstanceState =
    wire['state'] === 'ready' ? 'ready' : wire['state'] === 'failed' ? 'failed' : 'loading'
  const generations = wire['generations'] as Readonly<Record<string, unknown>> | undefined
  const active = count(generations?.['active'])
  const queued = count(generations?.['queued'])
  const maxConcurrent = count(generations?.['max_concurrent'])
  const contextLength = count(wire['context_length'])
  const loadMs = count(wire['load_ms'])
  return {
    name,
    state,
    ...(typeof wire['backend'] === 'string' ? { backend: wire['backend'] } : {}),
    ...(typeof wire['dtype'] === 'string' ? { dtype: wire['dtype'] } : {}),
    ...(contextLength === undefined ? {} : { contextLength }),
    ...(loadMs === undefined ? {} : { loadMs }),
    ...(active !== undefined && queued !== undefined && maxConcurrent !== undefined
      ? { generations: { active, queued, maxConcurrent } }
      : {}),
  }
}

/**
 * The /healthz body of a Worker whose chats go to containers, and its status code: 200 while some
 * instance answers, is starting or sleeps (it starts on the next request); 503 when none can
 * (every instance failed or is unreachable, or there is none).
 */
export function containerHealthBody(instances: readonly InstanceHealth[]): {
  readonly body: Record<string, unknown>
  readonly status: 200 | 503
} {
  const ready = instances.find((instance) => instance.state === 'ready')
  const has = (state: InstanceState) => instances.some((instance) => instance.state === state)
  const state = ready ? 'ready' : has('loading') ? 'loading' : has('asleep') ? 'idle' : 'failed'
  const counted = instances.flatMap((instance) => (instance.generations ? [instance.generations] : []))
  return {
    status: state === 'failed' ? 503 : 200,
    body: {
      status: state === 'failed' ? 'error' : 'ok',
      runtime: 'container',
      loaded: ready !== undefined,
      state,
      ...(ready?.backend === undefined ? {} : { backend: ready.backend }),
      ...(ready?.dtype === undefined ? {} : { dtype: ready.dtype }),
      ...(ready?.contextLength === undefined ? {} : { context_length: ready.contextLength }),
      // Summed over the instances that said (a sleeping one runs nothing).
      generations: {
        active: counted.reduce((sum, entry) => sum + entry.active, 0),
        queued: counted.reduce((sum, entry) => sum + entry.queued, 0),
        max_concurrent: counted.reduce((sum, entry) => sum + entry.maxConcurrent, 0),
      },
      instances: instances.map((instance) => ({
        name: instance.name,
        state: instance.state,
        ...(instance.backend === undefined ? {} : { backend: instance.backend }),
        ...(instance.dtype === undefined ? {} : { dtype: instance.dtype }),
        ...(instance.loadMs === undefined ? {} : { load_ms: instance.loadMs }),
        ...(instance.generations === undefined
          ? {}
          : {
              generations: {
                active: instance.generations.active,
                queued: instance.generations.queued,
                max_concurrent: instance.generations.maxConcurrent,
              },
            }),
        ...(instance.exitCode === undefined ? {} : { exit_code: instance.exitCode }),
      })),
    },
  }
}
