// Per package, where the Worker answers (EDGE_RUNTIME): "isolate" here, "container" in a
// container, "auto" by the package's size (choose-runtime.ts), decided once per isolate from the
// package's manifest.json; "auto" in a Worker without a container (no binding, no
// CONTAINER_URLS) answers in the isolate whatever the size. The result plugs into createApp's
// `forwardChatCompletion` and `forwardedHealth` (/healthz then reports the containers).
import type { Context } from 'hono'
import { OndeviceError } from '../../core/errors.ts'
import type { AppEnv } from '../app-env.ts'
import { chooseRuntime, type RuntimeChoice, type RuntimeManifest } from './choose-runtime.ts'
import type { ChatForwarder } from './forward.ts'
import { containerHealthBody, type InstanceHealth } from './health.ts'
import type { EdgeRuntime } from './settings.ts'

export interface RuntimeRouterOptions {
  readonly runtime: EdgeRuntime
  readonly isolateBudgetBytes: number
  /** Reads the package's manifest.json (auto only); undefined when there is none. */
  readonly readManifest: () => Promise<RuntimeManifest | undefined>
  /** The weight format the isolate would load, given the manifest. */
  readonly dtypeFor: (manifest: RuntimeManifest | undefined) => string
  /** The forwarder; undefined when this Worker has no container (no binding, no CONTAINER_URLS). */
  readonly forward: ChatForwarder | undefined
  /** Every instance's state (the gateway's `health`); undefined without a container. */
  readonly instancesHealth?: () => Promise<readonly InstanceHealth[]>
  readonly log?: (line: Record<string, unknown>) => void
}

export interface RuntimeRouter {
  /** Answers a chat in a container, or resolves undefined for the isolate to answer. */
  readonly forward: (c: Context<AppEnv>) => Promise<Response | undefined>
  /** /healthz for a Worker whose chats go to containers; undefined when the isolate answers. */
  readonly health: () => Promise<ReturnType<typeof containerHealthBody> | undefined>
}

export function createRuntimeRouter(options: RuntimeRouterOptions): RuntimeRouter {
  let decided: Promise<RuntimeChoice> | undefined
  const log = options.log ?? ((line) => console.log(JSON.stringify(line)))
  const decide = (): Promise<RuntimeChoice> => {
    decided ??= (async () => {
      const manifest = options.runtime === 'auto' ? await options.readManifest() : undefined
      const choice = chooseRuntime(
        options.runtime,
        manifest,
        options.dtypeFor(manifest),
        options.isolateBudgetBytes,
      )
      log({ level: 'info', message: 'edge runtime', runtime: choice.runtime, reason: choice.reason })
      return choice
    })().catch((error: unknown) => {
      // A transient read failure (R2, the network) is not remembered: the next request decides again.
      decided = undefined
      throw error
    })
    return decided
  }
  if (options.runtime === 'auto' && !options.forward) {
    // No container configured: the isolate answers whatever the size, as before containers.
    return { forward: async () => undefined, health: async () => undefined }
  }
  return {
    async forward(c) {
      const choice = await decide()
      if (choice.runtime === 'isolate') return undefined
      if (!options.forward) {
        throw new OndeviceError(
          'edge_unavailable',
          `This Worker must answer in a container (${choice.reason}) but has none: add the [[containers]] entry and the ONDEVICE_CONTAINER Durable Object binding (docs/worker.md), or set CONTAINER_URLS.`,
        )
      }
      return options.forward(c)
    },
    async health() {
      const choice = await decide()
      if (choice.runtime === 'isolate') return undefined
      // No container to ask: no instance, so /healthz says the chats cannot be answered.
      return containerHealthBody(options.instancesHealth ? await options.instancesHealth() : [])
    },
  }
}
