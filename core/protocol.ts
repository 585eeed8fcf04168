// The wire protocol the edge worker serves and the SDK speaks: OpenAI's chat-completion shapes,
// plus a few extensions (top_k, min_p, repetition_penalty, chat_template_kwargs, and
// ondevice_continuation for handoff). One validator turns an untrusted JSON body into a typed
// request or an InvalidArgumentError that names the field, the reason and the fix.
import type { ChatMessage, ChatRole, ChatTool, ChatToolCall } from './chat-template.ts'
import { type ChatEncoder, type ChatPrompt, encodeChatTurns } from './chat-turns.ts'
import { InvalidArgumentError, OndeviceError } from './errors.ts'
import type { GenerateRequest } from './generate.ts'
import type { SamplingOptions } from './sampling/index.ts'
import type { FinishReason, Usage } from './stream-parts.ts'
import type { ApplyChatTemplateOptions } from './tokenizer.ts'

// ---------------------------------------------------------------------------------------------
// Request

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

/** The handoff extension: the device's tokens so far and the sampler step to resume at. */
export interface OndeviceContinuation {
  readonly token_ids: readonly number[]
  readonly step: number
}

export interface ChatCompletionRequest {
  readonly model: string
  readonly messages: readonly ChatCompletionMessage[]
  readonly stream?: boolean
  readonly stream_options?: { readonly include_usage?: boolean } | null
  readonly max_tokens?: number | null
  readonly max_completion_tokens?: number | null
  readonly temperature?: number | null
  readonly top_p?: number | null
  readonly presence_penalty?: number | null
  readonly frequency_penalty?: number | null
  readonly logit_bias?: Readonly<Record<string, number>> | null
  readonly seed?: number | null
  readonly stop?: string | readonly string[] | null
  readonly n?: number | null
  readonly tools?: readonly ChatCompletionTool[]
  readonly tool_choice?:
    | 'none'
    | 'auto'
    | 'required'
    | { readonly type: 'function'; readonly function: { readonly name: string } }
  readonly response_format?: { readonly type: 'text' }
  readonly user?: string
  // Extensions (vLLM's names).
  readonly top_k?: number | null
  readonly min_p?: number | null
  readonly repetition_penalty?: number | null
  /** Variables for the chat template, e.g. { enable_thinking: false } for Qwen3. */
  readonly chat_template_kwargs?: Readonly<Record<string, unknown>>
  // Our extension.
  readonly ondevice_continuation?: OndeviceContinuation
}

// ---------------------------------------------------------------------------------------------
// Response, chunk, usage, error

export type ChatCompletionFinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter'

/** OpenAI's usage plus our timing and placement fields (flat, all optional for other servers). */
export interface ChatCompletionUsage {
  readonly prompt_tokens: number
  readonly completion_tokens: number
  readonly total_tokens: number
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
}

export interface ChatCompletionResponse {
  readonly id: string
  readonly object: 'chat.completion'
  readonly created: number
  readonly model: string
  readonly system_fingerprint?: string
  readonly choices: readonly {
    readonly index: number
    readonly message: { readonly role: 'assistant'; readonly content: string | null; readonly refusal: null }
    readonly logprobs: null
    readonly finish_reason: ChatCompletionFinishReason
  }[]
  readonly usage: ChatCompletionUsage
  readonly ondevice?: OndeviceResult
}

export interface ChatCompletionChunkDelta {
  readonly role?: 'assistant'
  readonly content?: string
  /** Our extension: the token ids behind this delta (a delta may carry ids and no text yet). */
  readonly token_ids?: readonly number[]
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
  }[]
}

// ---------------------------------------------------------------------------------------------
// Validation

type JsonObject = Record<string, unknown>

const requestFields: ReadonlySet<string> = new Set([
  'model',
  'messages',
  'stream',
  'stream_options',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'seed',
  'stop',
  'n',
  'tools',
  'tool_choice',
  'response_format',
  'user',
  'top_k',
  'min_p',
  'repetition_penalty',
  'chat_template_kwargs',
  'ondevice_continuation',
  'logprobs',
  'top_logprobs',
])

// OpenAI fields that change nothing about how a local model answers; clients (the AI SDK, the
// openai package) send some of them by default, so they are accepted and ignored.
const ignoredFields: ReadonlySet<string> = new Set([
  'store',
  'metadata',
  'service_tier',
  'parallel_tool_calls',
  'reasoning_effort',
  'prompt_cache_key',
  'safety_identifier',
  'verbosity',
])

// Common misspellings get a pointer to the real name.
const suggestions: Readonly<Record<string, string>> = {
  topP: 'top_p',
  topK: 'top_k',
  minP: 'min_p',
  maxTokens: 'max_tokens',
  max_new_tokens: 'max_tokens',
  repetitionPenalty: 'repetition_penalty',
  presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty',
  logitBias: 'logit_bias',
  stop_sequences: 'stop',
  prompt: 'messages',
}

const maximumStopStrings = 16

function fail(param: string, message: string): never {
  throw new InvalidArgumentError(param, message)
}

function optionalNumber(body: JsonObject, field: string, check: (value: number) => string | undefined): void {
  const value = body[field]
  if (value === undefined || value === null) return
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    fail(field, `${field} must be a finite number (got ${JSON.stringify(value) ?? String(value)}).`)
  }
  const problem = check(value)
  if (problem !== undefined) fail(field, `${field} is ${value}: ${problem}`)
}

const range = (minimum: number, maximum: number, note = ''): ((value: number) => string | undefined) => {
  return (value) =>
    value < minimum || value > maximum ? `use a value in [${minimum}, ${maximum}]${note}.` : undefined
}

const wholeAtLeast = (minimum: number, note = ''): ((value: number) => string | undefined) => {
  return (value) =>
    !Number.isInteger(value) || value < minimum ? `use a whole number ≥ ${minimum}${note}.` : undefined
}

function validateContent(value: unknown, param: string, role: string): void {
  if (typeof value === 'string') return
  if (value === null || value === undefined) {
    if (role === 'assistant') return
    fail(param, `${param} is missing: every ${role} message needs text content.`)
  }
  if (!Array.isArray(value))
    fail(param, `${param} must be a string or an array of { type: 'text', text } parts.`)
  value.forEach((part: unknown, index) => {
    const at = `${param}.${index}`
    if (typeof part !== 'object' || part === null)
      fail(at, `${at} must be an object like { type: 'text', text: '...' }.`)
    const { type, text } = part as JsonObject
    if (type !== 'text') {
      fail(
        `${at}.type`,
        `${at}.type is ${JSON.stringify(type)}: this server runs a text-only model; send only { type: 'text', text } parts.`,
      )
    }
    if (typeof text !== 'string') fail(`${at}.text`, `${at}.text must be a string.`)
  })
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
        `${at}.role is ${JSON.stringify(role)}; use 'system', 'developer', 'user', 'assistant' or 'tool'.`,
      )
    }
    validateContent(content, `${at}.content`, role)
    if (name !== undefined && typeof name !== 'string') fail(`${at}.name`, `${at}.name must be a string.`)
    if (toolCalls !== undefined && toolCalls !== null) {
      if (role !== 'assistant')
        fail(`${at}.tool_calls`, `${at}.tool_calls is only allowed on assistant messages.`)
      if (!Array.isArray(toolCalls)) fail(`${at}.tool_calls`, `${at}.tool_calls must be an array.`)
      toolCalls.forEach((call: unknown, callIndex) => {
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
      })
    }
    if (role === 'tool' && typeof toolCallId !== 'string') {
      fail(
        `${at}.tool_call_id`,
        `${at}.tool_call_id is required on tool messages: the id of the call this result answers.`,
      )
    }
  })
}

function validateContinuation(value: unknown): void {
  const param = 'ondevice_continuation'
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(param, `${param} must be { token_ids: number[], step: number }.`)
  }
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

/**
 * Checks an untrusted chat-completion body and returns it typed. Throws InvalidArgumentError with
 * `param` set to the dotted path of the first bad field and a message saying how to fix it.
 */
export function validateChatCompletionRequest(body: unknown): ChatCompletionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    fail('body', 'The request body must be a JSON object like { "model": "...", "messages": [...] }.')
  }
  const request = body as JsonObject
  for (const key of Object.keys(request)) {
    if (requestFields.has(key) || ignoredFields.has(key)) continue
    const hint = suggestions[key]
    fail(
      key,
      hint
        ? `Unknown field "${key}": did you mean "${hint}"?`
        : `Unknown field "${key}": remove it (see the OpenAI chat-completions reference for the fields).`,
    )
  }
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
    const includeUsage = (streamOptions as JsonObject)['include_usage']
    if (includeUsage !== undefined && typeof includeUsage !== 'boolean') {
      fail('stream_options.include_usage', 'stream_options.include_usage must be true or false.')
    }
  }
  optionalNumber(request, 'max_tokens', wholeAtLeast(1))
  optionalNumber(request, 'max_completion_tokens', wholeAtLeast(1))
  optionalNumber(request, 'temperature', range(0, 2, ' (0 = greedy)'))
  optionalNumber(request, 'top_p', (value) =>
    value > 0 && value <= 1 ? undefined : 'use a value in (0, 1] (1 = off).',
  )
  optionalNumber(request, 'top_k', wholeAtLeast(0, ' (0 = off)'))
  optionalNumber(request, 'min_p', range(0, 1, ' (0 = off)'))
  optionalNumber(request, 'repetition_penalty', (value) =>
    value > 0 ? undefined : 'use a value > 0 (1 = off).',
  )
  optionalNumber(request, 'presence_penalty', range(-2, 2))
  optionalNumber(request, 'frequency_penalty', range(-2, 2))
  optionalNumber(request, 'seed', (value) =>
    Number.isSafeInteger(value) ? undefined : 'use a whole number.',
  )
  optionalNumber(request, 'n', (value) =>
    value === 1 ? undefined : 'this server returns one choice per request; send n: 1 or leave it out.',
  )
  const logitBias = request['logit_bias']
  if (logitBias !== undefined && logitBias !== null) {
    if (typeof logitBias !== 'object' || Array.isArray(logitBias))
      fail('logit_bias', 'logit_bias must map token ids to numbers, e.g. { "42": -100 }.')
    for (const [key, value] of Object.entries(logitBias as JsonObject)) {
      if (!/^(0|[1-9][0-9]*)$/.test(key))
        fail(`logit_bias.${key}`, `logit_bias keys must be token ids; "${key}" is not one.`)
      if (typeof value !== 'number' || !Number.isFinite(value) || value < -100 || value > 100) {
        fail(`logit_bias.${key}`, `logit_bias.${key} must be a number in [-100, 100].`)
      }
    }
  }
  const stop = request['stop']
  if (stop !== undefined && stop !== null) {
    const list = typeof stop === 'string' ? [stop] : stop
    if (!Array.isArray(list)) fail('stop', 'stop must be a string or an array of strings.')
    if (list.length > maximumStopStrings)
      fail('stop', `stop has ${list.length} strings; send at most ${maximumStopStrings}.`)
    list.forEach((value: unknown, index) => {
      if (typeof value !== 'string' || value.length === 0)
        fail(`stop.${index}`, `stop.${index} must be a non-empty string.`)
    })
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
  const tools = request['tools']
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools))
      fail('tools', 'tools must be an array of { type: "function", function: { name, parameters } }.')
    tools.forEach((tool: unknown, index) => {
      const function_ =
        typeof tool === 'object' && tool !== null ? (tool as JsonObject)['function'] : undefined
      if (
        (tool as JsonObject | null)?.['type'] !== 'function' ||
        typeof function_ !== 'object' ||
        function_ === null
      ) {
        fail(`tools.${index}`, `tools.${index} must be { type: "function", function: { name, parameters } }.`)
      }
      if (typeof (function_ as JsonObject)['name'] !== 'string')
        fail(`tools.${index}.function.name`, `tools.${index}.function.name must be a string.`)
    })
  }
  const responseFormat = request['response_format']
  if (responseFormat !== undefined && responseFormat !== null) {
    const type = typeof responseFormat === 'object' ? (responseFormat as JsonObject)['type'] : undefined
    if (type !== 'text') {
      throw new OndeviceError(
        'unsupported',
        `response_format ${JSON.stringify(type)} is not supported: only { type: "text" }. Ask for JSON in the prompt instead.`,
        {
          param: 'response_format.type',
        },
      )
    }
  }
  const kwargs = request['chat_template_kwargs']
  if (kwargs !== undefined && (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs))) {
    fail('chat_template_kwargs', 'chat_template_kwargs must be an object, e.g. { "enable_thinking": false }.')
  }
  if (kwargs !== undefined) {
    const thinking = (kwargs as JsonObject)['enable_thinking']
    if (thinking !== undefined && typeof thinking !== 'boolean')
      fail('chat_template_kwargs.enable_thinking', 'enable_thinking must be true or false.')
  }
  if (request['ondevice_continuation'] !== undefined) validateContinuation(request['ondevice_continuation'])
  if (request['user'] !== undefined && typeof request['user'] !== 'string')
    fail('user', 'user must be a string.')
  return request as unknown as ChatCompletionRequest
}

// ---------------------------------------------------------------------------------------------
// Conversions between the wire and core

function contentText(content: ChatCompletionMessage['content']): string {
  if (content === null || content === undefined) return ''
  if (typeof content === 'string') return content
  return content.map((part) => part.text).join('')
}

/** The request's messages as core ChatMessages ('developer' becomes 'system'; text parts joined). */
export function toChatMessages(request: ChatCompletionRequest): ChatMessage[] {
  return request.messages.map((message) => ({
    role: message.role === 'developer' ? 'system' : message.role,
    content: contentText(message.content),
    ...(message.reasoning_content === undefined ? {} : { reasoningContent: message.reasoning_content }),
    ...(message.tool_calls === undefined || message.tool_calls === null
      ? {}
      : { toolCalls: message.tool_calls }),
    ...(message.tool_call_id === undefined ? {} : { toolCallId: message.tool_call_id }),
    ...(message.name === undefined ? {} : { name: message.name }),
  }))
}

/** Template options from the request: tools, and chat_template_kwargs (enable_thinking and the rest). */
export function toTemplateOptions(request: ChatCompletionRequest): ApplyChatTemplateOptions {
  const kwargs = { ...request.chat_template_kwargs }
  const thinking = kwargs['enable_thinking']
  delete kwargs['enable_thinking']
  const tools = request.tool_choice === 'none' ? undefined : request.tools
  return {
    addGenerationPrompt: true,
    ...(typeof thinking === 'boolean' ? { enableThinking: thinking } : {}),
    ...(tools !== undefined && tools.length > 0 ? { tools: tools as unknown as readonly ChatTool[] } : {}),
    ...(Object.keys(kwargs).length > 0 ? { extraVariables: kwargs } : {}),
  }
}

/**
 * The prompt for a request (template rendered, special tokens not added twice) with its turn
 * boundaries, computed as the device computes them so that both prefill in the same chunks.
 */
export function encodeChatPrompt(tokenizer: ChatEncoder, request: ChatCompletionRequest): ChatPrompt {
  return encodeChatTurns(tokenizer, toChatMessages(request), toTemplateOptions(request))
}

/** Sampling options from the request's OpenAI fields and extensions. */
export function toSamplingOptions(request: ChatCompletionRequest): SamplingOptions {
  const options: Record<string, unknown> = {}
  const set = (key: keyof SamplingOptions, value: unknown): void => {
    if (value !== undefined && value !== null) options[key] = value
  }
  set('temperature', request.temperature)
  set('topP', request.top_p)
  set('topK', request.top_k)
  set('minP', request.min_p)
  set('repetitionPenalty', request.repetition_penalty)
  set('presencePenalty', request.presence_penalty)
  set('frequencyPenalty', request.frequency_penalty)
  set('seed', request.seed)
  if (request.logit_bias !== undefined && request.logit_bias !== null) {
    const bias: Record<number, number> = {}
    for (const [key, value] of Object.entries(request.logit_bias)) bias[Number(key)] = value
    options['logitBias'] = bias
  }
  return options as SamplingOptions
}

/** The stop list as an array (OpenAI allows one string). */
export function toStopStrings(request: ChatCompletionRequest): readonly string[] {
  const stop = request.stop
  if (stop === undefined || stop === null) return []
  return typeof stop === 'string' ? [stop] : stop
}

/** A core GenerateRequest (without a signal) for a validated request and its encoded prompt. */
export function toGenerateRequest(
  request: ChatCompletionRequest,
  prepared: {
    readonly promptTokenIds: readonly number[]
    readonly promptBoundaries?: readonly number[]
    readonly maxTokens?: number
  },
): GenerateRequest {
  const maxTokens = prepared.maxTokens ?? request.max_completion_tokens ?? request.max_tokens ?? undefined
  const stop = toStopStrings(request)
  const continuation = request.ondevice_continuation
  return {
    promptTokenIds: prepared.promptTokenIds,
    ...(prepared.promptBoundaries === undefined ? {} : { promptBoundaries: prepared.promptBoundaries }),
    sampling: toSamplingOptions(request),
    ...(maxTokens === undefined || maxTokens === null ? {} : { maxTokens }),
    ...(stop.length > 0 ? { stop } : {}),
    ...(continuation === undefined
      ? {}
      : { continuation: { tokenIds: continuation.token_ids, step: continuation.step } }),
  }
}

/** OpenAI's finish reason for ours ('abort' and 'error' have no OpenAI name: they read as 'stop'). */
export function toFinishReason(reason: FinishReason): ChatCompletionFinishReason {
  return reason === 'length' ? 'length' : 'stop'
}

/** Ours for OpenAI's. */
export function fromFinishReason(reason: string | null | undefined): FinishReason {
  return reason === 'length' ? 'length' : 'stop'
}

/** Core usage in the wire shape (OpenAI's three counts plus our timing fields). */
export function toUsage(usage: Usage): ChatCompletionUsage {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    time_to_first_token_ms: usage.timeToFirstTokenMs,
    prefill_tokens_per_second: usage.prefillTokensPerSecond,
    decode_tokens_per_second: usage.decodeTokensPerSecond,
    ...(usage.backend === undefined ? {} : { backend: usage.backend }),
    ...(usage.dtype === undefined ? {} : { dtype: usage.dtype }),
    ...(usage.route === undefined ? {} : { route: usage.route }),
    ...(usage.routeReason === undefined ? {} : { route_reason: usage.routeReason }),
  }
}

/** Wire usage back to core's (missing timing fields read as 0). */
export function fromUsage(usage: ChatCompletionUsage): Usage {
  const route = usage.route
  return {
    promptTokens: usage.prompt_tokens,
    completionTokens: usage.completion_tokens,
    timeToFirstTokenMs: usage.time_to_first_token_ms ?? 0,
    prefillTokensPerSecond: usage.prefill_tokens_per_second ?? 0,
    decodeTokensPerSecond: usage.decode_tokens_per_second ?? 0,
    ...(usage.backend === undefined ? {} : { backend: usage.backend }),
    ...(usage.dtype === undefined ? {} : { dtype: usage.dtype }),
    ...(route === 'device' || route === 'edge' || route === 'device+edge' ? { route } : {}),
    ...(usage.route_reason === undefined ? {} : { routeReason: usage.route_reason }),
  }
}
