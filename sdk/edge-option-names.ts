// The edge names a field of the request as the wire spells it (`response_format`,
// `messages.2.tool_calls.0.function.arguments`, `top_p`); the device names the same field as the
// SDK's request spells it (`responseFormat`, `messages.2.toolCalls.0.function.arguments`, `topP`).
// This file maps the first to the second, so that one mistake is one error (class, code, param,
// isRetryable) for an app, whichever side caught it. It is the inverse of what the edge client
// sends (core/protocol/request.ts: toChatCompletionRequest); a field the SDK has no option for
// (`stream_options`, the handoff's `ondevice_continuation` and `ondevice_format`) keeps its wire name.
import {
  ContextLengthError,
  EdgeError,
  type ErrorCode,
  InvalidArgumentError,
  OndeviceError,
  TemplateError,
} from '../core/errors.ts'
import { samplingFields } from '../core/protocol/sampling.ts'

/** [wire path pattern, the SDK's path]; the first that matches wins. */
const renames: readonly (readonly [RegExp, string])[] = [
  // responseFormat: { type, schema, name?, strict? } on the wire is { type, json_schema: { ... } }.
  [/^response_format\.json_schema(?=\.|$)/, 'responseFormat'],
  [/^response_format(?=\.|$)/, 'responseFormat'],
  // A tool: { name, description?, parameters } on the wire is { type, function: { ... } }.
  [/^tools\.(\d+)\.function(?=\.|$)/, 'tools.$1'],
  [/^tools\.(\d+)\.type$/, 'tools.$1'],
  // toolChoice { name } on the wire is { type: 'function', function: { name } }.
  [/^tool_choice\.function(?=\.|$)/, 'toolChoice'],
  [/^tool_choice\.type$/, 'toolChoice'],
  [/^tool_choice(?=\.|$)/, 'toolChoice'],
  [/^parallel_tool_calls$/, 'parallelToolCalls'],
  // Messages keep OpenAI's call shape ({ id, type, function: { name, arguments } }) under toolCalls.
  [/^messages\.(\d+)\.tool_calls(?=\.|$)/, 'messages.$1.toolCalls'],
  [/^messages\.(\d+)\.tool_call_id$/, 'messages.$1.toolCallId'],
  [/^messages\.(\d+)\.reasoning_content$/, 'messages.$1.reasoningContent'],
  [/^(max_tokens|max_completion_tokens)$/, 'maxTokens'],
  [/^chat_template_kwargs(\.enable_thinking)?$/, 'enableThinking'],
  // The edge's model id is the client's edge.model option (or the first id the edge lists).
  [/^model$/, 'edge.model'],
  // Sampling, from the one table of option and wire names.
  ...Object.entries(samplingFields).map(
    ([option, field]) => [new RegExp(`^${field.wire}(?=\\.|$)`), option] as const,
  ),
]

/** The SDK's request path for a path of the wire request (unchanged when it has none). */
export function requestOptionPath(wirePath: string): string {
  for (const [pattern, name] of renames) {
    if (pattern.test(wirePath)) return wirePath.replace(pattern, name)
  }
  return wirePath
}

/**
 * The message with its quotes of the wire path renamed: only where the path stands as a path of its
 * own (or starts a longer one, `messages.1.tool_calls.0`), never inside a word, a URL or a model id
 * (`model` in `/v1/models` or `my-model`), which would garble what the message says.
 */
function renameInMessage(message: string, wirePath: string, path: string): string {
  const escaped = wirePath.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  return message.replace(new RegExp(`(?<![\\w./-])${escaped}(?![\\w/-])`, 'g'), () => path)
}

/**
 * Codes of a refusal of the request itself, which the device raises too (with these classes): the
 * edge's error is rebuilt as the device's, so `instanceof` tells the same on both routes.
 */
const requestCodes: ReadonlySet<ErrorCode> = new Set([
  'invalid_argument',
  'unsupported',
  'context_length_exceeded',
  'template_failed',
])

/** The fields of the SDK's request (chat() / stream()) an edge error may point into. */
const requestFields: ReadonlySet<string> = new Set([
  'messages',
  'maxTokens',
  'stop',
  'responseFormat',
  'tools',
  'toolChoice',
  'parallelToolCalls',
  'enableThinking',
  ...Object.keys(samplingFields),
])

/**
 * An error the edge answered with (an error body, an error event mid-stream), its `param` (and
 * that path where its message quotes it) in the SDK's names. A refusal of a field of the request
 * is rebuilt as the device raises it: InvalidArgumentError, ContextLengthError, TemplateError, or
 * an OndeviceError for `unsupported` (the edge client reads an EdgeError); the code, isRetryable
 * and Retry-After stay the edge's. Another EdgeError with a wire name (`model_not_found`:
 * `edge.model`) stays one, renamed. Anything else comes back as it is.
 */
export function withRequestOptionNames(error: unknown): unknown {
  if (!(error instanceof OndeviceError) || error.param === undefined) return error
  const param = requestOptionPath(error.param)
  const ofTheRequest = requestCodes.has(error.code) && requestFields.has(param.split('.')[0] ?? '')
  if (param === error.param && !ofTheRequest) return error
  const message = renameInMessage(error.message, error.param, param)
  const options = {
    isRetryable: error.isRetryable,
    ...(error.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: error.retryAfterSeconds }),
    ...(error.attempts.length === 0 ? {} : { attempts: error.attempts }),
    cause: error,
  }
  if (!ofTheRequest) {
    return error instanceof EdgeError ? new EdgeError(error.code, message, { ...options, param }) : error
  }
  if (error.code === 'invalid_argument') return new InvalidArgumentError(param, message, options)
  if (error.code === 'context_length_exceeded') return new ContextLengthError(message, { ...options, param })
  if (error.code === 'template_failed') return new TemplateError(message, { ...options, param })
  return new OndeviceError(error.code, message, { ...options, param })
}
