// The SDK's view of the on-device side. The client only needs these few operations, so the
// same routing and handoff code drives the runtime directly (Node), the runtime's Web Worker
// proxy (browser), or core's deterministic test session (tests): each is a DeviceHost.
import type { ChatMessage } from '../core/chat-template.ts'
import type { ChatPrompt } from '../core/chat-turns.ts'
import type { SamplingOptions } from '../core/sampling/index.ts'
import type { GenerationPart } from '../core/stream-parts.ts'
import type { DeviceCapabilities, PackageInfo } from './route.ts'

export interface DownloadProgress {
  /** Bytes stored so far (all files of the package). */
  readonly loadedBytes: number
  /** Bytes the package needs in all (0 when unknown). */
  readonly totalBytes: number
  /** The file being fetched, when known. */
  readonly file?: string
}

export interface DeviceLoadOptions {
  readonly backend?: 'webgpu' | 'wasm' | 'native'
  readonly dtype?: string
  readonly onProgress?: (progress: DownloadProgress) => void
  readonly signal?: AbortSignal
}

export interface DeviceGenerateRequest {
  /** The chat prompt as token ids (from `encodeChat`). */
  readonly promptTokenIds: readonly number[]
  /** Its turn boundaries (from `encodeChat`): the loop prefills in those chunks and resumes there next turn. */
  readonly promptBoundaries?: readonly number[]
  readonly sampling?: SamplingOptions
  readonly maxTokens?: number
  readonly stop?: readonly string[]
  readonly signal?: AbortSignal
}

/** A model loaded on the device, ready to answer. */
export interface DeviceModel {
  readonly modelId: string
  readonly backend: string
  readonly dtype: string
  /** The prompt for a chat with its turn boundaries, exactly as the edge builds them (core's encodeChatTurns). */
  encodeChat(messages: readonly ChatMessage[]): Promise<ChatPrompt>
  /** Runs the shared generation loop on the device: text deltas (with their token ids) then a finish. */
  generate(request: DeviceGenerateRequest): AsyncIterable<GenerationPart>
  /** Measures real decode speed with a short run (tokens per second). */
  probe(signal?: AbortSignal): Promise<number>
  dispose(): Promise<void>
}

/** Where device models come from, and what the device can do. */
export interface DeviceHost {
  /** WebGPU, memory, cores, storage, network state: no model needed (probeTokensPerSecond unset). */
  capabilities(): Promise<DeviceCapabilities>
  /** What running `model` here takes and whether it is cached, without downloading anything. */
  inspect(
    model: string | undefined,
    options: Pick<DeviceLoadOptions, 'backend' | 'dtype'>,
  ): Promise<PackageInfo>
  /** Downloads (with progress), verifies and loads the package. */
  load(model: string | undefined, options: DeviceLoadOptions): Promise<DeviceModel>
}
