// `ondevice/ai-sdk`: a Vercel AI SDK provider. It implements the language-model specification
// of the installed @ai-sdk/provider (LanguageModelV3, used by `ai` 6: generateText, streamText),
// so an app written against the AI SDK runs its model on the device, with the edge behind it.
//
//   import { createOndevice } from 'ondevice/ai-sdk'
//   const ondevice = createOndevice({ model: '/models/qwen3', edge: { url } })
//   const { textStream } = streamText({ model: ondevice(), prompt: 'Hi' })
//
// Where an answer ran (device, edge or device+edge) and why comes back in providerMetadata.ondevice.
// generateObject / streamObject (responseFormat json, with or without a schema) and tools (the
// `ai` package's tool loop: calls out, results back in) are enforced token by token by core.
import type {
  JSONObject,
  LanguageModelV3,
  LanguageModelV3CallOptions,
  LanguageModelV3Content,
  LanguageModelV3FinishReason,
  LanguageModelV3GenerateResult,
  LanguageModelV3Prompt,
  LanguageModelV3StreamPart,
  LanguageModelV3StreamResult,
  LanguageModelV3ToolResultOutput,
  LanguageModelV3Usage,
  SharedV3ProviderMetadata,
  SharedV3Warning,
} from '@ai-sdk/provider'
import type { ChatMessage, ChatToolCall } from '../../core/chat-template.ts'
import { deserializeError, InvalidArgumentError, refuseUnknownNames } from '../../core/errors.ts'
import type { FinishPart, FinishReason, HandoffPart, RoutePart } from '../../core/stream-parts.ts'
import type { ResponseFormat, ToolChoice, ToolDefinition } from '../../core/structured/constraint.ts'
import { AnswerSoFar } from '../answer-parts.ts'
import { type ClientInternals, createClient, type OndeviceClient } from '../client.ts'
import {
  type ChatRequest,
  type ClientOptions,
  checkConstraint,
  clientOptionNames,
  validateSampling,
} from '../options.ts'

export interface OndeviceProviderSettings extends ClientOptions {
  /** Use this client instead of creating one from the options. */
  readonly client?: OndeviceClient
}

/** Per-call settings, as `providerOptions: { ondevice: { ... } }`. */
export interface OndeviceCallOptions {
  readonly minP?: number
  readonly repetitionPenalty?: number
  /** false: at most one tool call per answer (the AI SDK has no setting of its own for it). Default true. */
  readonly parallelToolCalls?: boolean
  /** A thinking model's switch (the template's enable_thinking); omitted: the template's default. */
  readonly enableThinking?: boolean
}

const callOptionNames: readonly (keyof OndeviceCallOptions)[] = [
  'minP',
  'repetitionPenalty',
  'parallelToolCalls',
  'enableThinking',
]

/** The AI SDK's own call settings, by the names the SDK's requests give them. */
const aiSdkSettings: Readonly<Record<string, string>> = {
  temperature: 'temperature',
  topK: 'topK',
  topP: 'topP',
  seed: 'seed',
  presencePenalty: 'presencePenalty',
  frequencyPenalty: 'frequencyPenalty',
  maxTokens: 'maxOutputTokens',
  maxOutputTokens: 'maxOutputTokens',
  stop: 'stopSequences',
  stopSequences: 'stopSequences',
  responseFormat: "generateObject's schema (or output)",
  tools: 'tools',
  toolChoice: 'toolChoice',
}

/**
 * providerOptions.ondevice, checked: a name this provider does not know is a mistake to say, not
 * to drop, and a value is named at the path the app wrote (`providerOptions.ondevice.minP`).
 */
function callOptionsOf(options: LanguageModelV3CallOptions): OndeviceCallOptions {
  const given = options.providerOptions?.['ondevice'] ?? {}
  for (const key of Object.keys(given)) {
    // A setting the AI SDK has itself: set there, it is the one the provider reads.
    if (Object.hasOwn(aiSdkSettings, key))
      throw new InvalidArgumentError(
        `providerOptions.ondevice.${key}`,
        `providerOptions.ondevice.${key} is the AI SDK's own setting: pass ${aiSdkSettings[key]} to generateText / streamText (the call's settings) instead. providerOptions.ondevice takes ${callOptionNames.join(', ')}.`,
      )
  }
  refuseUnknownNames(
    given,
    callOptionNames,
    'providerOptions.ondevice setting',
    (name) => `providerOptions.ondevice.${name}`,
  )
  for (const name of ['parallelToolCalls', 'enableThinking'] as const) {
    if (given[name] !== undefined && typeof given[name] !== 'boolean') {
      throw new InvalidArgumentError(
        `providerOptions.ondevice.${name}`,
        `providerOptions.ondevice.${name} must be true or false.`,
      )
    }
  }
  // The sampler's own checks, at this path (they named `minP`, which the app never wrote).
  validateSampling(
    {
      ...(given['minP'] === undefined ? {} : { minP: given['minP'] as number }),
      ...(given['repetitionPenalty'] === undefined
        ? {}
        : { repetitionPenalty: given['repetitionPenalty'] as number }),
    },
    'providerOptions.ondevice.',
  )
  return given as OndeviceCallOptions
}

export interface OndeviceProvider {
  (modelId?: string): LanguageModelV3
  languageModel(modelId?: string): LanguageModelV3
  /** The client behind the provider (status(), prepare(), events). */
  readonly client: OndeviceClient
}

interface Converted {
  readonly messages: ChatMessage[]
  readonly warnings: SharedV3Warning[]
}

/** The AI SDK's prompt as chat messages; what the model can't take becomes a warning or an error. */
export function convertPrompt(prompt: LanguageModelV3Prompt): Converted {
  const messages: ChatMessage[] = []
  const warnings: SharedV3Warning[] = []
  for (const message of prompt) {
    switch (message.role) {
      case 'system':
        messages.push({ role: 'system', content: message.content })
        break
      case 'user': {
        const texts: string[] = []
        for (const part of message.content) {
          if (part.type === 'text') texts.push(part.text)
          else {
            throw new InvalidArgumentError(
              'prompt',
              `This model reads text only: a user message holds a ${part.mediaType} file. Remove the file or describe it in text.`,
            )
          }
        }
        messages.push({ role: 'user', content: texts.join('') })
        break
      }
      case 'assistant': {
        const texts: string[] = []
        let reasoning = ''
        const toolCalls: ChatToolCall[] = []
        for (const part of message.content) {
          if (part.type === 'text') texts.push(part.text)
          else if (part.type === 'reasoning') reasoning += part.text
          else if (part.type === 'tool-call') {
            toolCalls.push({
              id: part.toolCallId,
              type: 'function',
              function: {
                name: part.toolName,
                arguments: typeof part.input === 'string' ? part.input : JSON.stringify(part.input),
              },
            })
          } else
            warnings.push({
              type: 'other',
              message: `An assistant ${part.type} part was dropped: the model takes text and tool calls.`,
            })
        }
        messages.push({
          role: 'assistant',
          content: texts.join(''),
          ...(reasoning ? { reasoningContent: reasoning } : {}),
          ...(toolCalls.length > 0 ? { toolCalls } : {}),
        })
        break
      }
      case 'tool':
        // Each result is a `tool` message the chat template renders (Qwen3: <tool_response>).
        for (const part of message.content) {
          if (part.type !== 'tool-result') continue
          messages.push({
            role: 'tool',
            content: toolOutputText(part.output),
            toolCallId: part.toolCallId,
            name: part.toolName,
          })
        }
        break
    }
  }
  return { messages, warnings }
}

/** A tool result as the text the model reads. */
function toolOutputText(output: LanguageModelV3ToolResultOutput): string {
  switch (output.type) {
    case 'text':
    case 'error-text':
      return output.value
    case 'json':
    case 'error-json':
      return JSON.stringify(output.value)
    case 'execution-denied':
      return `The call was not run${output.reason ? `: ${output.reason}` : '.'}`
    case 'content':
      // A tool's multi-part result (MCP tools return these): its text parts, in order.
      return output.value
        .map((part) => {
          if (part.type === 'text') return part.text
          throw new InvalidArgumentError(
            'prompt',
            `This model reads text only: a tool result holds a ${part.type} part${'mediaType' in part && part.mediaType ? ` (${part.mediaType})` : ''}. Return text or JSON from the tool instead.`,
          )
        })
        .join('')
    default:
      return JSON.stringify(output)
  }
}

function finishReasonOf(reason: FinishReason): LanguageModelV3FinishReason {
  if (reason === 'length') return { unified: 'length', raw: 'length' }
  if (reason === 'tool-calls') return { unified: 'tool-calls', raw: 'tool_calls' }
  if (reason === 'error') return { unified: 'error', raw: 'error' }
  if (reason === 'abort') return { unified: 'other', raw: 'abort' }
  return { unified: 'stop', raw: 'stop' }
}

/**
 * The AI SDK's usage. outputTokens.reasoning is the SDK's usage.reasoningTokens, the same number
 * chat() and the wire's completion_tokens_details.reasoning_tokens give (the think block, its tags
 * included, device and edge joined across a handoff); the rest of the output is text. A prompt
 * never counted (`promptTokensCounted: false`: stopped before it was, or an edge that sends no
 * usage) is unknown, undefined as the AI SDK's usage has it: its promptTokens 0 was reported as a
 * prompt of 0 tokens.
 */
function usageOf(finish: FinishPart | undefined): LanguageModelV3Usage {
  const usage = finish?.usage
  const total = usage?.completionTokens
  const reasoning =
    total === undefined || usage?.reasoningTokens === undefined
      ? undefined
      : Math.min(usage.reasoningTokens, total)
  const input = usage?.promptTokensCounted === false ? undefined : usage?.promptTokens
  const cached = input === undefined ? undefined : usage?.cachedTokens
  return {
    inputTokens: {
      total: input,
      noCache: input === undefined || cached === undefined ? input : input - cached,
      cacheRead: cached,
      cacheWrite: undefined,
    },
    outputTokens: {
      total,
      text: total === undefined || reasoning === undefined ? total : total - reasoning,
      reasoning,
    },
    ...(usage ? { raw: JSON.parse(JSON.stringify(usage)) as JSONObject } : {}),
  }
}

function metadataOf(
  route: RoutePart | undefined,
  handoff: HandoffPart | undefined,
  finish: FinishPart | undefined,
): SharedV3ProviderMetadata {
  const usage = finish?.usage
  const ondevice: JSONObject = {
    route: usage?.route ?? route?.route ?? null,
    routeReason: usage?.routeReason ?? route?.reason ?? null,
    handoff: handoff ? { reason: handoff.reason, completedTokens: handoff.completedTokens } : null,
    timeToFirstTokenMs: usage?.timeToFirstTokenMs ?? null,
    prefillTokensPerSecond: usage?.prefillTokensPerSecond ?? null,
    decodeTokensPerSecond: usage?.decodeTokensPerSecond ?? null,
    backend: usage?.backend ?? null,
    dtype: usage?.dtype ?? null,
  }
  return { ondevice }
}

/** A tool call whose input streams: the id and name it started with (its tool-call's too), the input sent so far. */
interface StreamedCall {
  readonly id: string
  readonly name: string
  sent: string
  /** Its tool-input-end was sent. */
  ended: boolean
}

class OndeviceLanguageModel implements LanguageModelV3 {
  readonly specificationVersion = 'v3' as const
  readonly provider = 'ondevice'
  readonly modelId: string
  // The model reads text only; no URL is fetched by the model itself.
  readonly supportedUrls: Record<string, RegExp[]> = {}
  readonly #client: OndeviceClient

  constructor(modelId: string, client: OndeviceClient) {
    this.modelId = modelId
    this.#client = client
  }

  #request(options: LanguageModelV3CallOptions): { request: ChatRequest; warnings: SharedV3Warning[] } {
    const { messages, warnings } = convertPrompt(options.prompt)
    // Neither the device nor the client's requests carry per-call headers; the ai package adds
    // its own user-agent to every call, which is no setting of the app's.
    const headers = Object.keys(options.headers ?? {}).filter((name) => name.toLowerCase() !== 'user-agent')
    if (headers.length > 0)
      warnings.push({
        type: 'unsupported',
        feature: 'headers',
        details: `Per-call headers (${headers.join(', ')}) are not sent: the device takes none, and the edge's come from createOndevice({ edge: { headers } }) (edge.headers).`,
      })
    const tools: ToolDefinition[] = []
    for (const tool of options.tools ?? []) {
      if (tool.type !== 'function') {
        // A provider-defined tool is another provider's own feature: it cannot run here.
        throw new InvalidArgumentError(
          'tools',
          `The tool "${tool.name}" is a provider-defined tool (${tool.id}); ondevice runs function tools only.`,
        )
      }
      tools.push({
        name: tool.name,
        ...(tool.description === undefined ? {} : { description: tool.description }),
        parameters: tool.inputSchema,
      })
    }
    const choice = options.toolChoice
    const toolChoice: ToolChoice | undefined =
      choice === undefined || tools.length === 0
        ? undefined
        : choice.type === 'tool'
          ? { name: choice.toolName }
          : choice.type
    const format = options.responseFormat
    const responseFormat: ResponseFormat | undefined =
      format?.type === 'json'
        ? format.schema === undefined
          ? { type: 'json_object' }
          : {
              type: 'json_schema',
              schema: format.schema,
              ...(format.name === undefined ? {} : { name: format.name }),
            }
        : undefined
    const extra = callOptionsOf(options)
    const request: ChatRequest = {
      messages,
      ...(options.maxOutputTokens === undefined ? {} : { maxTokens: options.maxOutputTokens }),
      ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
      ...(options.topP === undefined ? {} : { topP: options.topP }),
      ...(options.topK === undefined ? {} : { topK: options.topK }),
      ...(options.presencePenalty === undefined ? {} : { presencePenalty: options.presencePenalty }),
      ...(options.frequencyPenalty === undefined ? {} : { frequencyPenalty: options.frequencyPenalty }),
      ...(options.seed === undefined ? {} : { seed: options.seed }),
      ...(options.stopSequences && options.stopSequences.length > 0 ? { stop: options.stopSequences } : {}),
      ...(extra.minP === undefined ? {} : { minP: extra.minP }),
      ...(extra.repetitionPenalty === undefined ? {} : { repetitionPenalty: extra.repetitionPenalty }),
      ...(options.abortSignal ? { signal: options.abortSignal } : {}),
      ...(responseFormat === undefined ? {} : { responseFormat }),
      ...(tools.length === 0 ? {} : { tools }),
      ...(toolChoice === undefined ? {} : { toolChoice }),
      ...(extra.parallelToolCalls === undefined || tools.length === 0
        ? {}
        : { parallelToolCalls: extra.parallelToolCalls }),
      ...(extra.enableThinking === undefined ? {} : { enableThinking: extra.enableThinking }),
    }
    return { request, warnings }
  }

  async doGenerate(options: LanguageModelV3CallOptions): Promise<LanguageModelV3GenerateResult> {
    const { request, warnings } = this.#request(options)
    let route: RoutePart | undefined
    let handoff: HandoffPart | undefined
    let finish: FinishPart | undefined
    // What chat() keeps on its error (error.partialAnswer): the answer as far as it came.
    const soFar = new AnswerSoFar()
    for await (const part of this.#client.stream(request)) {
      if (part.type === 'route') route = part
      else if (part.type === 'handoff') handoff = part
      else if (part.type === 'text-delta' || part.type === 'reasoning-delta') soFar.add(part)
      else if (part.type === 'error') throw soFar.errorOf(part)
      else if (part.type === 'finish') finish = part
    }
    if (options.abortSignal?.aborted)
      throw options.abortSignal.reason ?? new DOMException('Aborted', 'AbortError')
    const content: LanguageModelV3Content[] = []
    // The reasoning first, as the model wrote it (the AI SDK's `reasoningText`).
    if (finish?.reasoning !== undefined) content.push({ type: 'reasoning', text: finish.reasoning })
    if (finish && finish.text !== '') content.push({ type: 'text', text: finish.text })
    for (const call of finish?.toolCalls ?? []) {
      content.push({ type: 'tool-call', toolCallId: call.id, toolName: call.name, input: call.arguments })
    }
    return {
      content,
      finishReason: finishReasonOf(finish?.finishReason ?? 'error'),
      usage: usageOf(finish),
      providerMetadata: metadataOf(route, handoff, finish),
      request: { body: { messages: request.messages } },
      response: { modelId: this.modelId, timestamp: new Date() },
      warnings,
    }
  }

  async doStream(options: LanguageModelV3CallOptions): Promise<LanguageModelV3StreamResult> {
    const { request, warnings } = this.#request(options)
    const answer = this.#client.stream(request)
    // A schema or tool the grammar cannot enforce rejects doStream() itself, as any other mistake
    // in the request does, not the stream it would return (the compiler loads on demand).
    await checkConstraint(request)
    const parts = answer[Symbol.asyncIterator]()
    const textId = 'text-0'
    const reasoningId = 'reasoning-0'
    const modelId = this.modelId
    let route: RoutePart | undefined
    let handoff: HandoffPart | undefined
    let textStarted = false
    let reasoningStarted = false
    let started = false
    // The calls whose input streamed, in order, and by their place in the answer (the progress's index).
    const callsByIndex = new Map<number, StreamedCall>()
    const calls: StreamedCall[] = []
    let completeCalls = 0
    // The client's generator stays suspended at its last yield until it is returned: closing
    // this stream at `finish` without returning it would leave the request's device slot and
    // cleanup pending, and every later call (and dispose()) would wait for it forever.
    let released = false
    const release = async (): Promise<void> => {
      if (released) return
      released = true
      await parts.return?.()
    }
    const stream = new ReadableStream<LanguageModelV3StreamPart>({
      async pull(controller) {
        if (!started) {
          started = true
          controller.enqueue({ type: 'stream-start', warnings })
          controller.enqueue({ type: 'response-metadata', modelId, timestamp: new Date() })
        }
        // A call's parts follow the answer's text and reasoning, which have ended then.
        const endTextAndReasoning = (): void => {
          if (reasoningStarted) {
            reasoningStarted = false
            controller.enqueue({ type: 'reasoning-end', id: reasoningId })
          }
          if (textStarted) {
            textStarted = false
            controller.enqueue({ type: 'text-end', id: textId })
          }
        }
        const startCall = (id: string, name: string): StreamedCall => {
          endTextAndReasoning()
          // Another server's call may come without an id; the AI SDK needs one per call.
          const call: StreamedCall = {
            id: id === '' ? `call_${calls.length}` : id,
            name,
            sent: '',
            ended: false,
          }
          calls.push(call)
          controller.enqueue({ type: 'tool-input-start', id: call.id, toolName: name })
          return call
        }
        /** What of `input` the call has not sent yet, as one delta; `input` extends what it sent. */
        const sendRest = (call: { id: string; sent: string }, input: string): void => {
          if (input.length <= call.sent.length || !input.startsWith(call.sent)) return
          controller.enqueue({ type: 'tool-input-delta', id: call.id, delta: input.slice(call.sent.length) })
          call.sent = input
        }
        /**
         * The inputs still streaming at the answer's end were cut (the token limit): their input
         * ends, as every started input does, with no tool-call (its arguments are not a call).
         */
        const endCutCalls = (): void => {
          for (const call of calls) {
            if (call.ended) continue
            call.ended = true
            controller.enqueue({ type: 'tool-input-end', id: call.id })
          }
        }
        try {
          while (true) {
            const { value: part, done } = await parts.next()
            if (done) {
              controller.close()
              return
            }
            if (options.includeRawChunks) controller.enqueue({ type: 'raw', rawValue: part })
            if (part.type === 'route') {
              route = part
            } else if (part.type === 'handoff') {
              handoff = part
            } else if (part.type === 'reasoning-delta') {
              if (part.text === '') continue
              if (!reasoningStarted) {
                reasoningStarted = true
                controller.enqueue({ type: 'reasoning-start', id: reasoningId })
              }
              controller.enqueue({ type: 'reasoning-delta', id: reasoningId, delta: part.text })
              return
            } else if (part.type === 'text-delta') {
              const progress = part.toolCall
              if (part.text === '' && progress === undefined) continue
              if (part.text !== '') {
                // The reasoning comes before the answer's text: it has ended.
                if (reasoningStarted) {
                  reasoningStarted = false
                  controller.enqueue({ type: 'reasoning-end', id: reasoningId })
                }
                if (!textStarted) {
                  textStarted = true
                  controller.enqueue({ type: 'text-start', id: textId })
                }
                controller.enqueue({ type: 'text-delta', id: textId, delta: part.text })
              }
              if (progress !== undefined) {
                // A call streams as it is written, as OpenAI's do: started once its name is
                // known, then what each token added to its arguments. The progress is the whole
                // call so far (a handoff's edge restates what the device sent), so only what
                // goes beyond the sent deltas is new.
                let call = callsByIndex.get(progress.index)
                if (call === undefined) {
                  call = startCall(progress.id, progress.name)
                  callsByIndex.set(progress.index, call)
                }
                if (!call.ended) sendRest(call, progress.arguments)
              }
              return
            } else if (part.type === 'tool-call') {
              // A complete call (the finish lists it): its input ends, then the call itself, with
              // the id its input streamed under. Its arguments extend what streamed (a call's
              // progress is a prefix of them), so the deltas add up to the input exactly.
              const { id, name, arguments: input } = part.toolCall
              // The finish lists the complete calls in the answer's order, so the n-th is the
              // n-th streamed unless one was cut before it (another server's); the id decides.
              const atIndex = callsByIndex.get(completeCalls++)
              const call =
                calls.find((streamed) => streamed.id === id && !streamed.ended) ??
                (atIndex?.ended === false && atIndex.name === name ? atIndex : undefined) ??
                startCall(id, name)
              sendRest(call, input)
              call.ended = true
              controller.enqueue({ type: 'tool-input-end', id: call.id })
              controller.enqueue({ type: 'tool-call', toolCallId: call.id, toolName: call.name, input })
              return
            } else if (part.type === 'error') {
              endCutCalls()
              controller.enqueue({ type: 'error', error: deserializeError(part.error) })
              controller.close()
              await release()
              return
            } else if (part.type === 'finish') {
              if (part.finishReason === 'abort' && options.abortSignal?.aborted) {
                // The AI SDK recognises an AbortError and reports the call as aborted.
                controller.error(options.abortSignal.reason ?? new DOMException('Aborted', 'AbortError'))
                await release()
                return
              }
              endTextAndReasoning()
              endCutCalls()
              controller.enqueue({
                type: 'finish',
                finishReason: finishReasonOf(part.finishReason),
                usage: usageOf(part),
                providerMetadata: metadataOf(route, handoff, part),
              })
              controller.close()
              await release()
              return
            }
          }
        } catch (error) {
          controller.error(error)
          await release()
        }
      },
      async cancel() {
        await release()
      },
    })
    return { stream, request: { body: { messages: request.messages } } }
  }
}

/** Creates the provider: `ondevice()` (or `ondevice.languageModel()`) is the LanguageModelV3 to pass to the AI SDK. */
export function createOndevice(
  settings: OndeviceProviderSettings = {},
  internals: ClientInternals = {},
): OndeviceProvider {
  // Named as createOndevice's own, with `client` among them (createClient's refusal named
  // createClient, a call the app never wrote, and left `client` out).
  if (typeof settings === 'object' && settings !== null && !Array.isArray(settings))
    refuseUnknownNames(settings, [...clientOptionNames, 'client'], 'createOndevice option')
  const { client: given, ...options } = settings
  // The given client was made with its own options: these would be ignored without a word.
  const ignored =
    given === undefined
      ? []
      : Object.keys(options).filter((key) => (options as Record<string, unknown>)[key] !== undefined)
  if (ignored.length > 0)
    throw new InvalidArgumentError(
      ignored[0] as string,
      `createOndevice({ client }) uses that client as it was created, so ${ignored.join(', ')} would be ignored: pass them to createClient(), or pass options without client.`,
    )
  const client = given ?? createClient(options, internals)
  const modelName = settings.model ?? 'ondevice-default'
  // The provider runs one package, the client's: another id was a label on that model's answers.
  const languageModel = (modelId?: string): LanguageModelV3 => {
    if (modelId !== undefined && modelId !== modelName)
      throw new InvalidArgumentError(
        'modelId',
        `ondevice(${JSON.stringify(modelId.slice(0, 200))}) cannot choose a model: this provider runs the package given to createOndevice({ model }) (${JSON.stringify(modelName)}). Call ondevice() with no id, or create a provider per model.`,
      )
    return new OndeviceLanguageModel(modelName, client)
  }
  const provider = ((modelId?: string) => languageModel(modelId)) as OndeviceProvider
  Object.assign(provider, { languageModel })
  Object.defineProperty(provider, 'client', { value: client, enumerable: true })
  return provider
}
