// The one message protocol between a page and the dedicated worker that runs the model. Every
// request carries an id; the worker answers with progress / part messages for that id and ends
// with exactly one `result` or `error`. Errors travel as core's SerializedError and come back as
// the same class with the same code.

import type { ChatMessage } from '../../core/chat-template.ts'
import type { ChatPrompt } from '../../core/chat-turns.ts'
import type { SerializedError } from '../../core/errors.ts'
import type { GenerateRequest } from '../../core/generate.ts'
import type { GenerationPart } from '../../core/stream-parts.ts'
import type { ApplyChatTemplateOptions } from '../../core/tokenizer.ts'
import type { Backend } from '../dtype.ts'
import type { PackageSummary } from '../inspect.ts'
import type { Capabilities, DecodeSpeed } from '../probe.ts'
import type { DownloadProgress } from '../store/types.ts'

/** loadModel's options that can cross a thread boundary (no store object, no callbacks). */
export interface WorkerLoadOptions {
  readonly model: string
  readonly backend?: Backend
  readonly dtype?: string
  readonly contextLength?: number
  readonly wasmBaseUrl?: string
  readonly numThreads?: number
}

/** GenerateRequest without the AbortSignal (abort is its own message). */
export type WorkerGenerateRequest = Omit<GenerateRequest, 'signal'>

export interface LoadedModelInfo {
  readonly modelId: string
  readonly backend: Backend
  readonly dtype: string
  readonly vocabularySize: number
  readonly contextLength: number
  readonly eosTokenIds: readonly number[]
  readonly hasChatTemplate: boolean
  readonly warnings: readonly string[]
  readonly backendSetup: Readonly<Record<string, unknown>> | undefined
}

export type WorkerRequest =
  | { readonly type: 'load'; readonly id: number; readonly options: WorkerLoadOptions }
  | { readonly type: 'generate'; readonly id: number; readonly request: WorkerGenerateRequest }
  | { readonly type: 'abort'; readonly id: number; readonly target: number }
  | {
      readonly type: 'encode-chat'
      readonly id: number
      readonly messages: readonly ChatMessage[]
      readonly options?: ApplyChatTemplateOptions
    }
  | {
      readonly type: 'encode-chat-turns'
      readonly id: number
      readonly messages: readonly ChatMessage[]
      readonly options?: ApplyChatTemplateOptions
    }
  | {
      readonly type: 'encode'
      readonly id: number
      readonly text: string
      readonly addSpecialTokens?: boolean
    }
  | {
      readonly type: 'decode'
      readonly id: number
      readonly tokenIds: readonly number[]
      readonly skipSpecialTokens?: boolean
    }
  | { readonly type: 'measure-speed'; readonly id: number; readonly tokens?: number }
  | { readonly type: 'capabilities'; readonly id: number }
  | {
      readonly type: 'inspect'
      readonly id: number
      readonly model: string
      readonly backend: Backend
      readonly dtype?: string
    }
  | { readonly type: 'unload'; readonly id: number }

/** What each request resolves to. */
export interface WorkerResults {
  readonly load: LoadedModelInfo
  readonly generate: null
  readonly abort: null
  readonly 'encode-chat': number[]
  readonly 'encode-chat-turns': ChatPrompt
  readonly encode: number[]
  readonly decode: string
  readonly 'measure-speed': DecodeSpeed
  readonly capabilities: Capabilities
  readonly inspect: PackageSummary
  readonly unload: null
}

export type WorkerResponse =
  | { readonly type: 'progress'; readonly id: number; readonly progress: DownloadProgress }
  | { readonly type: 'part'; readonly id: number; readonly part: GenerationPart }
  | { readonly type: 'result'; readonly id: number; readonly value: WorkerResults[keyof WorkerResults] }
  | { readonly type: 'error'; readonly id: number; readonly error: SerializedError }

/** The part of a Worker / MessagePort / DedicatedWorkerGlobalScope both ends use. */
export interface MessageEndpoint {
  postMessage(message: unknown): void
  addEventListener(type: 'message', listener: (event: { readonly data: unknown }) => void): void
  removeEventListener(type: 'message', listener: (event: { readonly data: unknown }) => void): void
}
