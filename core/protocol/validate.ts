// The one validator for an untrusted chat-completion body: returns it typed, or throws an
// InvalidArgumentError (or `unsupported`) whose `param` is the dotted path of the first bad field
// and whose message says how to fix it. The worker runs it on every request.
import { checkToolResults } from '../chat-messages.ts'
import { OndeviceError } from '../errors.ts'
import { refuseStopWithDocument, validateStopStrings } from '../stop-strings.ts'
import {
  clip,
  fail,
  type JsonObject,
  optionalNumber,
  quote,
  refuseUnknownKeys,
  wholeAtLeast,
} from './checks.ts'
import { validateConstraint } from './constraint-check.ts'
import { validateMessageContent } from './content.ts'
import { validateFormat } from './format.ts'
import { thinkingOfEffort } from './reasoning-effort.ts'
import { validateResponseFormat } from './response-format.ts'
import { numericSamplingFields, samplingFields, validateLogitBias } from './sampling.ts'
import { validateTools } from './tools.ts'
import type { ChatCompletionRequest } from './types.ts'

const requestFields: ReadonlySet<string> = new Set([
  ...Object.values(samplingFields).map((field) => field.wire),
  'model',
  'messages',
  'stream',
  'stream_options',
  'max_tokens',
  'max_completion_tokens',
  'stop',
  'n',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'user',
  'chat_template_kwargs',
  'reasoning_effort',
  'ondevice_continuation',
  'ondevice_format',
  'logprobs',
  'top_logprobs',
])

// OpenAI fields that change nothing about how a local model answers; clients (the AI SDK, the
// openai package) send some of them by default, so they are accepted and ignored.
const ignoredFields: ReadonlySet<string> = new Set([
  'store',
  'metadata',
  'service_tier',
  'prompt_cache_key',
  'safety_identifier',
  'verbosity',
])

// Common misspellings get a pointer to the real name: the SDK's camelCase sampling names (from
// the one table), and names other APIs use.
const suggestions: Readonly<Record<string, string>> = {
  ...Object.fromEntries(Object.entries(samplingFields).map(([option, field]) => [option, field.wire])),
  maxTokens: 'max_tokens',
  maxCompletionTokens: 'max_completion_tokens',
  toolChoice: 'tool_choice',
  parallelToolCalls: 'parallel_tool_calls',
  responseFormat: 'response_format',
  streamOptions: 'stream_options',
  functions: 'tools',
  function_call: 'tool_choice',
  max_new_tokens: 'max_tokens',
  stop_sequences: 'stop',
  prompt: 'messages',
}

/**
 * OpenAI's message fields. `refusal` and `annotations` come back with an app that sends a
 * response's message as it came; they, and `audio` and `function_call` when null, change nothing.
 */
const messageKeys: ReadonlySet<string> = new Set([
  'role',
  'content',
  'name',
  'tool_calls',
  'tool_call_id',
  'reasoning_content',
  'refusal',
  'annotations',
  'audio',
  'function_call',
])

/** Where a message key other APIs (Ollama's, the SDK's camelCase) use goes here, or why it cannot. */
const messageKeyHints: Readonly<Record<string, string>> = {
  images: 'images are not supported by this model (a text-only model); send the text alone.',
  toolCalls: 'did you mean "tool_calls"?',
  toolCallId: 'did you mean "tool_call_id"?',
  reasoningContent: 'did you mean "reasoning_content"?',
  reasoning: 'an assistant turn\'s reasoning goes in "reasoning_content".',
  thinking: 'an assistant turn\'s reasoning goes in "reasoning_content".',
  text: 'the message\'s text goes in "content".',
}

function validateMessages(value: unknown): void {
  if (!Array.isArray(value)) fail('messages', 'messages must be an array of { role, content } objects.')
  if (value.length === 0)
    fail('messages', "messages is empty: send at least one message, e.g. { role: 'user', content: 'Hi' }.")
  value.forEach((message: unknown, index) => {
    const at = `messages.${index}`
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      fail(at, `${at} must be an object like { role: 'user', content: '...' }.`)
    }
    const { role, content, tool_calls: toolCalls, tool_call_id: toolCallId, name } = message as JsonObject
    if (
      role !== 'system' &&
      role !== 'developer' &&
      role !== 'user' &&
      role !== 'assistant' &&
      role !== 'tool'
    ) {
      fail(
        `${at}.role`,
        `${at}.role is ${quote(role)}; use 'system', 'developer', 'user', 'assistant' or 'tool'.`,
      )
    }
    // Unknown keys first: a misspelt content (`contnet`) is named, not reported as content missing.
    refuseUnknownKeys(
      message as JsonObject,
      messageKeys,
      at,
      'a message has role and content, and where its role takes them name, tool_calls and reasoning_content (assistant), tool_call_id (tool).',
      messageKeyHints,
    )
    validateMessageContent(content, `${at}.content`, role)
    const { function_call: functionCall, audio, refusal } = message as JsonObject
    if (functionCall !== undefined && functionCall !== null)
      fail(
        `${at}.function_call`,
        `${at}.function_call is the deprecated form of a tool call: send tool_calls: [{ id, type: "function", function: { name, arguments } }], and the result as a role "tool" message with its tool_call_id.`,
      )
    if (audio !== undefined && audio !== null)
      fail(
        `${at}.audio`,
        `${at}.audio: audio is not supported by this model (a text-only model); leave it out.`,
      )
    if (refusal !== undefined && refusal !== null && typeof refusal !== 'string')
      fail(`${at}.refusal`, `${at}.refusal must be a string.`)
    if (name !== undefined && typeof name !== 'string') fail(`${at}.name`, `${at}.name must be a string.`)
    const reasoning = (message as JsonObject)['reasoning_content']
    if (reasoning !== undefined && reasoning !== null && typeof reasoning !== 'string')
      fail(`${at}.reasoning_content`, `${at}.reasoning_content must be a string.`)
    if (toolCalls !== undefined && toolCalls !== null) {
      if (role !== 'assistant')
        fail(`${at}.tool_calls`, `${at}.tool_calls is only allowed on assistant messages.`)
      if (!Array.isArray(toolCalls)) fail(`${at}.tool_calls`, `${at}.tool_calls must be an array.`)
      toolCalls.forEach((call: unknown, callIndex) => {
        const { id, type } = (typeof call === 'object' && call !== null ? call : {}) as JsonObject
        if (type !== undefined && type !== 'function')
          fail(
            `${at}.tool_calls.${callIndex}.type`,
            `${at}.tool_calls.${callIndex}.type is ${quote(type)}; this server has function tools only: "function".`,
          )
        if (id !== undefined && typeof id !== 'string')
          fail(
            `${at}.tool_calls.${callIndex}.id`,
            `${at}.tool_calls.${callIndex}.id must be a string (the call's id, which its tool message's tool_call_id repeats).`,
          )
        const function_ =
          typeof call === 'object' && call !== null ? (call as JsonObject)['function'] : undefined
        if (
          typeof function_ !== 'object' ||
          function_ === null ||
          typeof (function_ as JsonObject)['name'] !== 'string'
        ) {
          fail(
            `${at}.tool_calls.${callIndex}.function`,
            `${at}.tool_calls.${callIndex}.function must be { name, arguments }.`,
          )
        }
        const args = (function_ as JsonObject)['arguments']
        if (typeof args !== 'string' && (typeof args !== 'object' || args === null || Array.isArray(args))) {
          fail(
            `${at}.tool_calls.${callIndex}.function.arguments`,
            `${at}.tool_calls.${callIndex}.function.arguments must be the arguments' JSON text.`,
          )
        }
      })
    }
    if (role === 'tool' && typeof toolCallId !== 'string') {
      fail(
        `${at}.tool_call_id`,
        `${at}.tool_call_id is required on tool messages: the id of the call this result answers.`,
      )
    }
  })
  checkToolResults(
    (value as JsonObject[]).map((message) => {
      const calls = message['tool_calls']
      return {
        role: message['role'],
        callIds: Array.isArray(calls)
          ? calls.map((call) => {
              const id = (call as JsonObject)['id']
              return typeof id === 'string' ? id : undefined
            })
          : undefined,
        resultId: message['tool_call_id'],
      }
    }),
    { idField: 'tool_call_id', callsField: 'tool_calls' },
  )
}

const continuationKeys: ReadonlySet<string> = new Set(['token_ids', 'step'])

/** OpenAI's stream options; `include_obfuscation` (padding against side channels) has nothing to pad here. */
const streamOptionKeys: ReadonlySet<string> = new Set(['include_usage', 'include_obfuscation'])

function validateContinuation(value: unknown): void {
  const param = 'ondevice_continuation'
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(param, `${param} must be { token_ids: number[], step: number }.`)
  }
  refuseUnknownKeys(value as JsonObject, continuationKeys, param, `${param} is { token_ids, step }.`)
  const { token_ids: tokenIds, step } = value as JsonObject
  if (!Array.isArray(tokenIds))
    fail(`${param}.token_ids`, `${param}.token_ids must be an array of token ids.`)
  tokenIds.forEach((id: unknown, index) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      fail(
        `${param}.token_ids.${index}`,
        `${param}.token_ids.${index} is ${JSON.stringify(id)}; token ids are whole numbers ≥ 0.`,
      )
    }
  })
  if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0) {
    fail(
      `${param}.step`,
      `${param}.step must be a whole number ≥ 0 (the sampler step to resume at, usually token_ids.length).`,
    )
  }
}

function validateReasoningEffort(effort: unknown, kwargs: JsonObject | undefined): void {
  if (effort === undefined || effort === null) return
  const thinking = thinkingOfEffort(effort)
  if (thinking === undefined)
    fail(
      'reasoning_effort',
      `reasoning_effort must be one of "none", "minimal", "low", "medium", "high", "xhigh"; got ${JSON.stringify(effort)?.slice(0, 40)}.`,
    )
  const explicit = kwargs?.['enable_thinking']
  if (typeof explicit === 'boolean' && explicit !== thinking)
    fail(
      'reasoning_effort',
      `reasoning_effort "${String(effort)}" turns thinking ${thinking ? 'on' : 'off'} but chat_template_kwargs.enable_thinking is ${explicit}: send one of them, or make them agree.`,
    )
}

/** The chat_template_kwargs a client may set. */
const chatTemplateVariables: ReadonlySet<string> = new Set(['enable_thinking'])

/**
 * Checks an untrusted chat-completion body and returns it typed (a copy without its null fields).
 * Throws InvalidArgumentError with `param` set to the dotted path of the first bad field and a
 * message saying how to fix it.
 */

export function validateChatCompletionRequest(body: unknown): ChatCompletionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    fail('body', 'The request body must be a JSON object like { "model": "...", "messages": [...] }.')
  }
  for (const key of Object.keys(body)) {
    if (requestFields.has(key) || ignoredFields.has(key)) continue
    // Own properties only: `__proto__` or `constructor` must not find Object.prototype's.
    const hint = Object.hasOwn(suggestions, key) ? suggestions[key] : undefined
    fail(
      clip(key),
      hint
        ? `Unknown field "${key}": did you mean "${hint}"?`
        : `Unknown field ${quote(key)}: remove it (see the OpenAI chat-completions reference for the fields).`,
    )
  }
  // An optional field sent as null means "not given" (OpenAI's clients send `tools: null` and the
  // like): dropped here, so nothing past validation meets a null where it expects a value. (Every
  // key is a known field by now, so none is `__proto__`.)
  const request: JsonObject = {}
  for (const [key, value] of Object.entries(body as JsonObject))
    if (value !== null || key === 'model' || key === 'messages') request[key] = value
  if (typeof request['model'] !== 'string' || request['model'].length === 0) {
    fail('model', 'model is required: the id of a served model (GET /v1/models lists them).')
  }
  validateMessages(request['messages'])
  for (const field of ['stream'] as const) {
    if (request[field] !== undefined && request[field] !== null && typeof request[field] !== 'boolean') {
      fail(field, `${field} must be true or false.`)
    }
  }
  const streamOptions = request['stream_options']
  if (streamOptions !== undefined && streamOptions !== null) {
    if (typeof streamOptions !== 'object' || Array.isArray(streamOptions))
      fail('stream_options', 'stream_options must be an object like { include_usage: true }.')
    refuseUnknownKeys(
      streamOptions as JsonObject,
      streamOptionKeys,
      'stream_options',
      'stream_options takes include_usage (true: the last chunk carries usage).',
      { includeUsage: 'did you mean "include_usage"?' },
    )
    for (const key of streamOptionKeys) {
      const flag = (streamOptions as JsonObject)[key]
      if (flag !== undefined && flag !== null && typeof flag !== 'boolean')
        fail(`stream_options.${key}`, `stream_options.${key} must be true or false.`)
    }
  }
  optionalNumber(request, 'max_tokens', wholeAtLeast(1))
  optionalNumber(request, 'max_completion_tokens', wholeAtLeast(1))
  for (const field of numericSamplingFields) optionalNumber(request, field.wire, field.check)
  optionalNumber(request, 'n', (value) =>
    value === 1 ? undefined : 'this server returns one choice per request; send n: 1 or leave it out.',
  )
  validateLogitBias(request[samplingFields.logitBias.wire])
  const stop = request['stop']
  if (stop !== undefined && stop !== null) {
    const list = typeof stop === 'string' ? [stop] : stop
    if (!Array.isArray(list)) fail('stop', 'stop must be a string or an array of strings.')
    // Core's bounds (4 strings of at most 256 characters, as OpenAI), which the device applies too.
    validateStopStrings(list)
  }
  if (
    request['logprobs'] === true ||
    (request['top_logprobs'] !== undefined && request['top_logprobs'] !== null)
  ) {
    throw new OndeviceError(
      'unsupported',
      'logprobs are not supported by this server; leave logprobs and top_logprobs out.',
      {
        param: request['logprobs'] === true ? 'logprobs' : 'top_logprobs',
      },
    )
  }
  validateTools(request['tools'])
  validateResponseFormat(request['response_format'])
  if (stop !== undefined && stop !== null) {
    const format = request['response_format'] as JsonObject | null | undefined
    refuseStopWithDocument(
      typeof stop === 'string' ? [stop] : (stop as string[]),
      format?.['type'],
      'response_format.type',
    )
  }
  const kwargs = request['chat_template_kwargs']
  if (kwargs !== undefined && (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs))) {
    fail('chat_template_kwargs', 'chat_template_kwargs must be an object, e.g. { "enable_thinking": false }.')
  }
  if (kwargs !== undefined) {
    // Only documented variables reach the template: anything else could carry markup the template
    // prints as is, or undo a decision made here (`tools` would bypass their validation and
    // tool_choice "none").
    for (const key of Object.keys(kwargs as JsonObject)) {
      if (!chatTemplateVariables.has(key)) {
        fail(
          `chat_template_kwargs.${key.slice(0, 64)}`,
          `chat_template_kwargs.${key.slice(0, 64)} is not accepted: this server passes only ${[...chatTemplateVariables].join(', ')} to the chat template${key === 'tools' ? ' (send tools in the top-level `tools` field)' : ''}.`,
        )
      }
    }
    const thinking = (kwargs as JsonObject)['enable_thinking']
    if (thinking !== undefined && typeof thinking !== 'boolean')
      fail('chat_template_kwargs.enable_thinking', 'enable_thinking must be true or false.')
  }
  validateReasoningEffort(request['reasoning_effort'], kwargs as JsonObject | undefined)
  if (request['ondevice_continuation'] !== undefined) validateContinuation(request['ondevice_continuation'])
  if (request['ondevice_format'] !== undefined) validateFormat(request['ondevice_format'])
  if (request['user'] !== undefined && typeof request['user'] !== 'string')
    fail('user', 'user must be a string.')
  // Last: the shapes above are checked, so the schemas can be compiled (a 400 naming the keyword).
  validateConstraint(request as unknown as ChatCompletionRequest)
  return request as unknown as ChatCompletionRequest
}
