// Per package, where the Worker answers (EDGE_RUNTIME): "isolate" here, "container" in a
// container, "auto" by what the isolate would hold for the package (choose-runtime.ts: the
// Worker, the tokenizer, the model and its load against the isolate's 128 MB), decided once per
// isolate from the package's manifest.json. "auto" in a Worker without a container (no binding,
// no CONTAINER_URLS) answers what fits in the isolate and refuses the rest with a 503 that says
// why and what to do, before loading anything: in production such a load would end in "Worker
// exceeded memory limit" (wrangler dev does not enforce it). The result plugs into createApp's
// `forwardChatCompletion` and `forwardedHealth` (/healthz then reports the containers).
import type { Context } from 'hono'
import { OndeviceError } from '../../core/errors.ts'
import type { AppEnv } from '../app-env.ts'
import {
  chooseRuntime,
  type RuntimeChoice,
  type RuntimeManifest,
  type WeightStreaming,
} from './choose-runtime.ts'
import type { ChatForwarder } from './forward.ts'
import { containerHealthBody, type InstanceHealth } from './health.ts'
import type { EdgeRuntime } from './settings.ts'

export interface RuntimeRouterOptions {
  readonly runtime: EdgeRuntime
  /** The isolate's memory (ISOLATE_MEMORY_BYTES). */
  readonly isolateMemoryBytes: number
  /** MODEL_CONTEXT_LENGTH, which bounds the cache the isolate would hold. */
  readonly contextLength?: number | undefined
  /** Reads the package's manifest.json (auto only); undefined when there is none. */
  readonly readManifest: () => Promise<RuntimeManifest | undefined>
  /** The weight formats the isolate would load, given the manifest: the default first. */
  readonly dtypesFor: (manifest: RuntimeManifest | undefined) => readonly string[]
  /** The isolate's backends (MODEL_BACKEND without 'native'); default ['wasm']. */
  readonly backends?: readonly string[]
  /** How the package source hands weights to the engine (by MODEL_SOURCE); default 'whole'. */
  readonly streaming?: WeightStreaming
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
        options.dtypesFor(manifest),
        options.isolateMemoryBytes,
        options.contextLength,
        options.backends,
        options.streaming,
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
  const refusal = (choice: RuntimeChoice): OndeviceError =>
    new OndeviceError(
      'edge_unavailable',
      options.runtime === 'auto'
        ? `This package does not fit a Worker isolate: ${choice.reason}. Loading it here would exceed the isolate's memory ("Worker exceeded memory limit" in production; wrangler dev does not enforce it). Add a container (the [[containers]] entry and the ONDEVICE_CONTAINER Durable Object binding, docs/worker.md, or CONTAINER_URLS), or serve a smaller weight format (MODEL_DTYPE) or context (MODEL_CONTEXT_LENGTH). EDGE_RUNTIME = "isolate" loads it anyway.`
        : `This Worker must answer in a container (${choice.reason}) but has none: add the [[containers]] entry and the ONDEVICE_CONTAINER Durable Object binding (docs/worker.md), or set CONTAINER_URLS.`,
    )
  return {
    async forward(c) {
      const choice = await decide()
      if (choice.runtime === 'isolate') return undefined
      if (!options.forward) throw refusal(choice)
      return options.forward(c)
    },
    async health() {
      const choice = await decide()
      if (choice.runtime === 'isolate') return undefined
      if (!options.forward && options.runtime === 'auto') {
        // Nothing can answer: say so, and why, instead of reporting a model that would load.
        return {
          status: 503 as const,
          body: {
            status: 'error',
            runtime: 'isolate',
            loaded: false,
            state: 'failed',
            error: refusal(choice).message,
          },
        }
      }
      // No container to ask: no instance, so /healthz says the chats cannot be answered.
      return containerHealthBody(options.instancesHealth ? await options.instancesHealth() : [])
    },
  }
}
