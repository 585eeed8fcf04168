// The OpenAI chat-completion shapes as they travel, with our extensions: vLLM's sampling names
// (top_k, min_p, repetition_penalty), chat_template_kwargs, ondevice_continuation (handoff in) and
// ondevice (tokens and next step out), token_ids on chunk deltas, and timing fields in usage.
// Types only; the worker writes and the SDK reads them through this folder's other files.
import type { ChatRole, ChatToolCall } from '../chat-template.ts'
import type { WireSampling } from './sampling.ts'

export interface ChatCompletionContentPart {
  readonly type: 'text'
  readonly text: string
}

export interface ChatCompletionMessage {
  /** 'developer' is OpenAI's newer name for 'system'; it is rendered as system. */
  readonly role: ChatRole | 'developer'
  readonly content: string | readonly ChatCompletionContentPart[] | null
  readonly name?: string
  readonly tool_calls?: readonly ChatToolCall[]
  readonly tool_call_id?: string
  /** An assistant turn's reasoning, as vLLM / DeepSeek clients send it. */
  readonly reasoning_content?: string
}

export interface ChatCompletionTool {
  readonly type: 'function'
  readonly function: {
    readonly name: string
    readonly description?: string
    readonly parameters?: Readonly<Record<string, unknown>>
  }
}

export type ChatCompletionToolChoice =
  | 'none'
  | 'auto'
  | 'required'
  | { readonly type: 'function'; readonly function: { readonly name: string } }

/** What the answer must look like: text, any JSON object, or JSON following a schema. */
export type ChatCompletionResponseFormat =
  | { readonly type: 'text' }
  | { readonly type: 'json_object' }
  | {
      readonly type: 'json_schema'
      readonly json_schema: {
        readonly name?: string
        readonly description?: string
        readonly schema: unknown
        readonly strict?: boolean | null
      }
    }

/** A tool call in a response (OpenAI's shape; arguments as JSON text). */
export interface ChatCompletionToolCall {
  readonly id: string
  readonly type: 'function'
  readonly function: { readonly name: string; readonly arguments: string }
}

/** The handoff extension: the device's tokens so far and the sampler step to resume at. */
export interface OndeviceContinuation {
  readonly token_ids: readonly number[]
  readonly step: number
}

/**
 * The weight format and the backend an answer should run in (our extension). A handoff names the
 * device's, so the edge continues in the same quantized model on the same engine: only then are
 * the logits, and so the tokens, the same. An edge that holds the format answers in it; one that
 * does not refuses (400 `unsupported`) unless `fallback` is true, in which case it answers in its
 * own format and says so (`ondevice.format_fallback`, the `x-ondevice-format-fallback` header;
 * usage's `dtype` and `backend` always say what ran).
 */
export interface OndeviceFormat {
  /** 'q4', 'q8', 'fp32', ... (core/weight-format.ts lists them). */
  readonly dtype?: string
  /** 'wasm' (ondevice's engine), 'ort-wasm', 'native' (onnxruntime-node) or 'webgpu'. */
  readonly backend?: string
  /** Answer in another format rather than refuse. Default false. */
  readonly fallback?: boolean
}

/**
 * A chat-completion request. The sampling fields (temperature, top_p, presence_penalty,
 * frequency_penalty, logit_bias, seed, and the extensions top_k, min_p, repetition_penalty) come
 * from the one table in sampling.ts.
 */
export interface ChatCompletionRequest extends WireSampling {
  readonly model: string
  readonly messages: readonly ChatCompletionMessage[]
  readonly stream?: boolean
  readonly stream_options?: { readonly include_usage?: boolean } | null
  readonly max_tokens?: number | null
  readonly max_completion_tokens?: number | null
  readonly stop?: string | readonly string[] | null
  readonly n?: number | null
  readonly tools?: readonly ChatCompletionTool[]
  readonly tool_choice?: ChatCompletionToolChoice
  readonly parallel_tool_calls?: boolean | null
  readonly response_format?: ChatCompletionResponseFormat
  readonly user?: string
  /**
   * OpenAI's reasoning switch: 'none' / 'minimal' turn a thinking model's thinking off (its
   * template's enable_thinking false), 'low' / 'medium' / 'high' / 'xhigh' on. No effect on a
   * template without the switch.
   */
  readonly reasoning_effort?: ReasoningEffort | null
  // Extension (vLLM's name).
  /** Variables for the chat template, e.g. { enable_thinking: false } for Qwen3. */
  readonly chat_template_kwargs?: Readonly<Record<string, unknown>>
  // Our extension.
  readonly ondevice_continuation?: OndeviceContinuation
  readonly ondevice_format?: OndeviceFormat
}

export type ReasoningEffort = 'none' | 'minimal' | 'low' | 'medium' | 'high' | 'xhigh'

export type ChatCompletionFinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter'

/** OpenAI's usage plus our timing and placement fields (flat, all optional for other servers). */
export interface ChatCompletionUsage {
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly total_tokens: number
  /** Our extension: continuation tokens this server prefilled (in total_tokens, not in the other two). */
  readonly continuation_tokens?: number
  /** OpenAI's: `cached_tokens` of the prompt were reused from the server's cache, not fed to the model. */
  readonly prompt_tokens_details?: { readonly cached_tokens: number }
  /**
   * OpenAI's: `reasoning_tokens` of completion_tokens are a thinking model's think block, its
   * `<think>` and `</think>` tags included (vLLM counts the same span without the two tags); 0
   * for an answer without reasoning. This server's own tokens only (not a continuation's).
   */
  readonly completion_tokens_details?: { readonly reasoning_tokens: number }
  readonly time_to_first_token_ms?: number
  readonly prefill_tokens_per_second?: number
  readonly decode_tokens_per_second?: number
  readonly backend?: string
  readonly dtype?: string
  readonly route?: string
  readonly route_reason?: string
}

/** Our extension on a response and on the final chunk: every generated token and the next sampler step. */
export interface OndeviceResult {
  readonly token_ids: readonly number[]
  readonly next_step: number
  readonly seed?: number
  /** With response_format / tools: the answer stopped (max_tokens, abort) before its JSON was complete. */
  readonly partial?: boolean
  /**
   * Set when the request's `ondevice_format` was not honoured and `fallback` let the server answer
   * in its own format: what was asked, what ran and why (usage's dtype and backend say what ran).
   */
  readonly format_fallback?: string
}

export interface ChatCompletionResponse {
  readonly id: string
  readonly object: 'chat.completion'
  readonly created: number
  readonly model: string
  readonly system_fingerprint?: string
  readonly choices: readonly {
    readonly index: number
    readonly message: {
      readonly role: 'assistant'
      readonly content: string | null
      /** A thinking model's reasoning apart from the content (vLLM's, SGLang's field); absent when none. */
      readonly reasoning_content?: string
      readonly refusal: null
      readonly tool_calls?: readonly ChatCompletionToolCall[]
    }
    readonly logprobs: null
    readonly finish_reason: ChatCompletionFinishReason
  }[]
  readonly usage: ChatCompletionUsage
  readonly ondevice?: OndeviceResult
}

export interface ChatCompletionChunkDelta {
  readonly role?: 'assistant'
  /** null only on the role chunk of an answer that is a forced call (OpenAI's shape). */
  readonly content?: string | null
  /** A thinking model's reasoning, streamed apart from `content` (vLLM's, SGLang's field). */
  readonly reasoning_content?: string
  /** Our extension: the token ids behind this delta (a delta may carry ids and no text yet). */
  readonly token_ids?: readonly number[]
  /** Tool calls, streamed as OpenAI does: index, then id / type / name / arguments. */
  readonly tool_calls?: readonly {
    readonly index: number
    readonly id?: string
    readonly type?: 'function'
    readonly function?: { readonly name?: string; readonly arguments?: string }
  }[]
}

export interface ChatCompletionChunk {
  readonly id: string
  readonly object: 'chat.completion.chunk'
  readonly created: number
  readonly model: string
  readonly system_fingerprint?: string
  readonly choices: readonly {
    readonly index: number
    readonly delta: ChatCompletionChunkDelta
    readonly logprobs: null
    readonly finish_reason: ChatCompletionFinishReason | null
  }[]
  readonly usage?: ChatCompletionUsage | null
  readonly ondevice?: OndeviceResult
}

export interface OpenAIErrorBody {
  readonly error: {
    readonly message: string
    readonly type: string
    readonly param: string | null
    /** One of our ErrorCodes when we wrote it; other servers put their own codes, or null. */
    readonly code: string | null
  }
}

export interface ModelListResponse {
  readonly object: 'list'
  readonly data: readonly {
    readonly id: string
    readonly object: 'model'
    readonly created: number
    readonly owned_by: string
    /** ondevice's limits for answers from this server (absent from edges older than the field). */
    readonly ondevice?: {
      /** Most tokens one answer may have, a handoff's continuation included (MAX_TOKENS). */
      readonly max_tokens: number
    }
  }[]
}
