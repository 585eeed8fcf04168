// The one engine interface of the device side (WebLLM's idea: one interface, served as-is). The
// SDK's client needs only these few operations; the runtime implements them in this thread
// (createRuntimeDeviceHost, Node or an app's own worker), and a Web Worker serves that same
// implementation to the page through a proxy that is itself a DeviceHost (web-worker/). Messages
// go in, stream parts come out: one crossing each way when a worker sits in between.

import type { ChatMessage } from '../../core/chat-template.ts'
import type { SamplingOptions } from '../../core/sampling/index.ts'
import type { GenerationPart } from '../../core/stream-parts.ts'
import type { ModelToolCallSyntax } from '../../core/structured/call-syntax.ts'
import type { ConstraintOptions } from '../../core/structured/constraint.ts'
import type { Backend } from '../dtype.ts'
import type { PackageInfo } from '../inspect.ts'
import type { DeviceCapabilities } from '../probe.ts'
import type { DownloadProgress } from '../store/types.ts'

export interface DeviceLoadOptions {
  readonly backend?: Backend
  readonly dtype?: string
  /** Browsers: the absolute URL folder where the app serves onnxruntime-web's files (default: the host's, '/ort/'). */
  readonly wasmBaseUrl?: string
  /** WASM threads (see loadModel's numThreads). */
  readonly numThreads?: number
  readonly onProgress?: (progress: DownloadProgress) => void
  readonly signal?: AbortSignal
}

/** A chat for the device: the same fields the edge takes, so either side can answer it. */
export interface DeviceGenerateRequest {
  readonly messages: readonly ChatMessage[]
  readonly sampling?: SamplingOptions
  readonly maxTokens?: number
  readonly stop?: readonly string[]
  readonly signal?: AbortSignal
  /** responseFormat / tools: rendered into the prompt and enforced token by token, as on the edge. */
  readonly constraint?: ConstraintOptions
  /** The template's thinking switch (`enable_thinking`); omitted: the template's default. */
  readonly enableThinking?: boolean
}

/**
 * The first part of a device answer: how many tokens the chat prompt came to (core's
 * encodeChatTurns, exactly as the edge builds it). A caller that stops reading early (abort,
 * stall, failure) still knows the prompt's size for the usage it reports.
 */
export interface PromptPart {
  readonly type: 'prompt'
  readonly promptTokens: number
}

/** What a device answer yields: a prompt part, then core's text deltas and one finish. */
export type DevicePart = PromptPart | GenerationPart

/** A model loaded on the device, ready to answer. */
export interface DeviceModel {
  readonly modelId: string
  readonly backend: string
  readonly dtype: string
  /**
   * What a person should know that did not stop the load (the runtime's LoadedModel.warnings: a
   * package without manifest.json, numThreads this page cannot give, a backend fallback). The
   * client hands them to the app (the `ready` event, status().loadWarnings). Unset: none.
   */
  readonly warnings?: readonly string[]
  /**
   * How the package's model writes tool calls (its template's syntax, or 'none' without the
   * `<tool_call>` tokens): the client checks a request's tools against it before the answer starts
   * (validateConstraintForModel). Unset: not known (the check then comes with the answer).
   */
  readonly toolCallSyntax?: ModelToolCallSyntax
  /**
   * The package's fingerprint for the weights it runs (core's packageFingerprint): a handoff
   * continues only on an edge that runs the same bytes. Unset: a package without a manifest.
   */
  readonly packageFingerprint?: string
  /**
   * The id core/model-id.ts gives where the package was loaded from (its folder's or URL's last
   * segment, a Hugging Face URL's repository), set where it is not modelId: a manifest with a name
   * of its own. An edge serving the package names it so by default (it does not read the
   * manifest's name), so a handoff asks the edge for this id when it cannot read the edge's model
   * list. Unset: modelId.
   */
  readonly sourceModelId?: string
  /**
   * Answers a chat with the shared generation loop: the prompt is encoded with its turn
   * boundaries (a later turn resumes from the cache), then text deltas (with their token ids)
   * and a finish. Stopping the iteration, or the signal, stops the model within a token.
   */
  generate(request: DeviceGenerateRequest): AsyncIterable<DevicePart>
  /** The speed probe (measureDecodeSpeed): decode tokens per second of the generation loop. */
  probe(signal?: AbortSignal): Promise<number>
  dispose(): Promise<void>
}

/** What inspect() is asked with: the load's backend and dtype, and how long it may wait. */
export interface DeviceInspectOptions extends Pick<DeviceLoadOptions, 'backend' | 'dtype'> {
  /**
   * false: a URL package's manifest.json, when none is stored yet, is asked for once, not with
   * the store's retries: the router asks so while the edge could answer, rather than hold the
   * request through the pauses (the load itself retries). Default true.
   */
  readonly retryManifest?: boolean
  /**
   * Stops the look at the package, a wait through manifest.json's retries included (their
   * pauses last seconds to a minute): the router passes the request's signal.
   */
  readonly signal?: AbortSignal
}

/** Where device models come from, and what the device can do. */
export interface DeviceHost {
  /** WebGPU, memory, cores, storage, network state: no model needed (probeTokensPerSecond unset). */
  capabilities(): Promise<DeviceCapabilities>
  /** What running `model` here takes and whether it is cached, without downloading anything. */
  inspect(model: string | undefined, options: DeviceInspectOptions): Promise<PackageInfo>
  /** Downloads (with progress), verifies and loads the package. */
  load(model: string | undefined, options: DeviceLoadOptions): Promise<DeviceModel>
}
