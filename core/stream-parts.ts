// What a generation yields, as a typed union (the Vercel AI SDK's stream-part shape). The core
// loop produces reasoning-delta, text-delta and finish; the SDK adds route, handoff and error
// around them.
import type { SerializedError } from './errors.ts'

/** 'tool-calls': the answer ends with tool calls (FinishPart.toolCalls) for the caller to run. */
export type FinishReason = 'stop' | 'length' | 'abort' | 'error' | 'tool-calls'

/** A call the model made to one of the request's tools. */
export interface ToolCall {
  /** `call_` + a hash of the prompt, the answer up to the call, and the call's index. */
  readonly id: string
  readonly name: string
  /** The arguments as JSON text (valid against the tool's parameters schema). */
  readonly arguments: string
}

/** A call as far as the answer has written it (core's generate() streams it on text deltas). */
export interface ToolCallProgress {
  /** The call's place in the answer (0 for the first). */
  readonly index: number
  /** The finished call's id (known from the call's first token). */
  readonly id: string
  readonly name: string
  /** The arguments' JSON text so far: always a prefix of the finished call's `arguments`. */
  readonly arguments: string
}

export type Route = 'device' | 'edge' | 'device+edge'

export interface Usage {
  /** The prompt's tokens (0 where `promptTokensCounted` is false). */
  readonly promptTokens: number
  /**
   * false when the prompt was never tokenized, so `promptTokens` (0) is not its size: an answer
   * stopped before it was counted (aborted while the device's model loaded, or on the edge before
   * the edge said its count), or an OpenAI-compatible edge that sent no usage. Absent when
   * `promptTokens` is the count.
   */
  readonly promptTokensCounted?: boolean
  readonly completionTokens: number
  /**
   * Of `completionTokens`, those the model generated inside its think block, both tags included
   * (`<think>`, the reasoning, `</think>`): the tokens the reasoning deltas carry. Not the
   * whitespace after `</think>` nor the reply. 0 for an answer without reasoning. Counted where
   * each token was generated, so a handoff's joined usage adds the device's and the edge's.
   * OpenAI's `completion_tokens_details.reasoning_tokens` on the wire. Absent only where a server
   * other than ondevice's did not say it.
   */
  readonly reasoningTokens?: number
  /**
   * Tokens of an answer begun elsewhere that this side prefilled before generating (a handoff's
   * `continuation`); neither prompt nor completion here, but work this side did.
   */
  readonly continuationTokens?: number
  /**
   * Prompt tokens taken from the session's cache instead of being fed to the model (the previous
   * turn of a chat on the same session: its KV cache, or a Qwen3.5 state checkpoint). The model
   * ran on `promptTokens - cachedTokens` of the prompt. OpenAI's `prompt_tokens_details.cached_tokens`.
   */
  readonly cachedTokens?: number
  /** Milliseconds from the request to the first generated token. */
  readonly timeToFirstTokenMs: number
  readonly prefillTokensPerSecond: number
  readonly decodeTokensPerSecond: number
  /** Where it ran: 'wasm' | 'webgpu' | 'native' | ... (ModelSessionInfo.backend). */
  readonly backend?: string
  /** Weight format used (ModelSessionInfo.dtype). */
  readonly dtype?: string
  readonly route?: Route
  /** Why it ran there, in words a person can read. */
  readonly routeReason?: string
}

export interface TextDeltaPart {
  readonly type: 'text-delta'
  /**
   * Complete UTF-8 characters only; never a half character, never a stop string, never tool-call
   * markup. core's generate() yields one delta per token, so its text may be '' (held back, EOS,
   * a call's tokens); the SDK's stream() yields only deltas with text, or with a `toolCall`
   * that grew.
   */
  readonly text: string
  /**
   * The token ids this delta came from: from generate(), the token just drawn (or none when held
   * text is released at the end); from the SDK's stream(), every token since the previous delta
   * (those that showed no text ride with the next one that does). The finish part lists them all.
   */
  readonly tokenIds: readonly number[]
  /**
   * Inside a tool call (whose markup is never text): the call so far, once its name is written,
   * so a server or the AI SDK provider can stream it as OpenAI does (id and name, then argument
   * fragments). From generate() on each of the call's tokens; from the SDK's stream() (device,
   * edge, handoff alike) each time the call grew, with text ''. The finish part's `toolCalls` is what counts: a call cut before its end is no call.
   */
  readonly toolCall?: ToolCallProgress
  /**
   * A token of the answer's tool calls (from the first call's `<tool_call>` on), also before a
   * call's name is written (no `toolCall` yet): an answer stopped after one was shown cut a call,
   * whatever `toolChoice` let the model write (FinishPart.partial on an aborted finish).
   */
  readonly inToolCall?: true
}

/**
 * A thinking model's reasoning (Qwen3's `<think>` block), apart from the answer's text: never the
 * tags, never part of a text delta or of FinishPart.text (core/reasoning.ts says where it starts
 * and ends). Token ids as on a text delta: across reasoning and text deltas every generated token
 * appears exactly once, so a handoff continues from them whichever side the answer was on.
 */
export interface ReasoningDeltaPart {
  readonly type: 'reasoning-delta'
  readonly text: string
  readonly tokenIds: readonly number[]
}

export interface FinishPart {
  readonly type: 'finish'
  readonly finishReason: FinishReason
  /** Every generated token id, in order (for continuation/handoff). */
  readonly tokenIds: readonly number[]
  /**
   * The full generated text, after stop-string trimming (the text deltas joined; a thinking
   * model's reasoning is in `reasoning`, not here). With tools, only
   * what came before the first call, without the whitespace before it: never the call's markup,
   * also when the call was cut (`partial`).
   */
  readonly text: string
  /** The reasoning deltas joined (a thinking model's `<think>` block, without the tags); absent when none. */
  readonly reasoning?: string
  /** Index of the next sampler draw: resuming generation elsewhere starts at this step. */
  readonly nextStep: number
  /** The sampler seed used (a random one when none was given): a continuation elsewhere needs it. */
  readonly seed?: number
  readonly usage: Usage
  /** The complete tool calls of the answer (with `tools`); the text holds what came before them. */
  readonly toolCalls?: readonly ToolCall[]
  /**
   * With a constraint (responseFormat / tools): true when the answer stopped before its document
   * or call was complete (the token limit, an abort, a stop string), so `text` is not valid JSON.
   */
  readonly partial?: boolean
}

export interface RoutePart {
  readonly type: 'route'
  readonly route: Route
  readonly reason: string
}

export interface HandoffPart {
  readonly type: 'handoff'
  readonly reason: string
  /** Tokens already produced on the device when the edge took over. */
  readonly completedTokens: number
}

export interface ErrorPart {
  readonly type: 'error'
  readonly error: SerializedError
}

/** A complete tool call, streamed by the SDK just before the finish part that also lists it. */
export interface ToolCallPart {
  readonly type: 'tool-call'
  readonly toolCall: ToolCall
}

/** What core's `generate()` yields. */
export type GenerationPart = ReasoningDeltaPart | TextDeltaPart | FinishPart

/** What the SDK's `stream()` yields. */
export type StreamPart = GenerationPart | RoutePart | HandoffPart | ErrorPart | ToolCallPart
