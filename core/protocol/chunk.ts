// Streamed chunks both ways. The worker writes one completion as: a role chunk, a chunk per text
// or reasoning delta (`content` or `reasoning_content`, with its token ids, our extension), a finish chunk (with `ondevice`), and a usage chunk
// when the client asked for one. The SDK reads each server-sent event back into the same facts,
// accepting what other OpenAI-compatible servers send (no token ids, no usage).
import { EdgeError } from '../errors.ts'
import type { FinishPart, FinishReason, ReasoningDeltaPart, TextDeltaPart } from '../stream-parts.ts'
import { fromErrorBody } from './errors.ts'
import { fromFinishReason, toFinishReason } from './finish-reason.ts'
import { type CompletionHeader, toOndeviceResult, toWireToolCalls } from './response.ts'
import type { ChatCompletionChunk } from './types.ts'
import { fromUsage, toUsage, type UsageReading } from './usage.ts'

type Choice = ChatCompletionChunk['choices'][number]

export interface ChunkWriter {
  /** The first chunk: the assistant's role, no text. */
  start(): ChatCompletionChunk
  /** A text delta (`content` only when it has text); undefined for one with neither text nor token ids. */
  delta(part: TextDeltaPart): ChatCompletionChunk | undefined
  /** A reasoning delta as `reasoning_content` (vLLM's field); undefined for one with neither text nor token ids. */
  reasoning(part: ReasoningDeltaPart): ChatCompletionChunk | undefined
  /** What the answer's tool calls have not streamed yet, as one delta; undefined when nothing is left. */
  toolCalls(part: FinishPart): ChatCompletionChunk | undefined
  /** The finish reason with every generated token id and the next step (`ondevice`). */
  finish(part: FinishPart): ChatCompletionChunk
  /** The usage chunk (no choices) that stream_options.include_usage asks for. */
  usage(part: FinishPart): ChatCompletionChunk
}

/**
 * `answer` says what the role chunk can know of the answer before its first token: 'text' (no
 * tools may be called: `content: ""`, OpenAI's first chunk), 'call' (tool_choice "required" or a
 * named function: no text, `content: null`, as OpenAI's) or 'either' (tool_choice "auto": no
 * `content` yet). Clients that open a text part on `content: ""` (the AI SDK's OpenAI provider)
 * then open none for an answer that is a call.
 */
export function createChunkWriter(
  header: CompletionHeader,
  includeUsage: boolean,
  answer: 'text' | 'call' | 'either' = 'text',
): ChunkWriter {
  const chunk = (
    delta: Choice['delta'],
    finishReason: Choice['finish_reason'],
    extra: Partial<ChatCompletionChunk> = {},
  ): ChatCompletionChunk => ({
    id: header.id,
    object: 'chat.completion.chunk',
    created: header.created,
    model: header.model,
    system_fingerprint: header.systemFingerprint,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    // OpenAI sends usage: null on every chunk but the last when usage was asked for.
    ...(includeUsage ? { usage: null } : {}),
    ...extra,
  })
  // The arguments each call has sent so far, by index: a call streams as OpenAI's do, its first
  // delta with index, id, type and name, then argument fragments; the finish sends what is left
  // (all of a call nothing streamed yet, e.g. one a handoff's replayed tokens began).
  const sent: string[] = []
  const callDelta = (call: { index: number; id: string; name: string; arguments: string }) => {
    const before = sent[call.index]
    if (before === undefined) {
      sent[call.index] = call.arguments
      return {
        index: call.index,
        id: call.id,
        type: 'function' as const,
        function: { name: call.name, arguments: call.arguments },
      }
    }
    // Fragments are final (core holds back what may still change), so a call only grows.
    if (call.arguments.length <= before.length || !call.arguments.startsWith(before)) return undefined
    sent[call.index] = call.arguments
    return { index: call.index, function: { arguments: call.arguments.slice(before.length) } }
  }
  return {
    start: () =>
      chunk(
        answer === 'either'
          ? { role: 'assistant' }
          : { role: 'assistant', content: answer === 'call' ? null : '' },
        null,
      ),
    // A token that shows no text (half a character held back, a tool call's markup, which
    // generate() never shows, EOS) still sends its ids, for a handoff and the client's count, but
    // no empty `content`. Inside a call, what the token added to the call goes with them.
    delta: (part) => {
      const toolCall = part.toolCall === undefined ? undefined : callDelta(part.toolCall)
      if (toolCall !== undefined)
        return chunk(
          {
            ...(part.text.length > 0 ? { content: part.text } : {}),
            tool_calls: [toolCall],
            token_ids: [...part.tokenIds],
          },
          null,
        )
      // A call's tokens before its name is written say so (`in_tool_call`, our extension): a
      // client that stops the stream there cut a call (FinishPart.partial), whatever tool_choice
      // was. The `<tool_call>` token itself may release held-back text (half a character).
      const mark = part.inToolCall === true ? { in_tool_call: true } : {}
      if (part.text.length > 0)
        return chunk({ content: part.text, token_ids: [...part.tokenIds], ...mark }, null)
      return part.tokenIds.length > 0 ? chunk({ token_ids: [...part.tokenIds], ...mark }, null) : undefined
    },
    // A reasoning token that shows no text (`<think>`, `</think>`, half a character) sends its
    // ids with an empty `reasoning_content`, so a reader can tell them from the reply's: a client
    // that aborts the stream (and never reads the final usage) counts reasoning tokens as
    // completion_tokens_details.reasoning_tokens does.
    reasoning: (part) =>
      part.text.length > 0 || part.tokenIds.length > 0
        ? chunk({ reasoning_content: part.text, token_ids: [...part.tokenIds] }, null)
        : undefined,
    toolCalls: (part) => {
      const deltas = toWireToolCalls(part).flatMap((call, index) => {
        const delta = callDelta({ index, id: call.id, ...call.function })
        return delta === undefined ? [] : [delta]
      })
      return deltas.length === 0 ? undefined : chunk({ tool_calls: deltas }, null)
    },
    finish: (part) =>
      chunk({}, toFinishReason(part.finishReason), {
        ondevice: toOndeviceResult(part, header.formatFallback),
      }),
    usage: (part) => ({ ...chunk({}, null), choices: [], usage: toUsage(part.usage) }),
  }
}

/** What one chunk says, in core's terms; fields it does not carry (or carries malformed) are absent. */
export interface ChunkReading {
  readonly id?: string
  readonly model?: string
  readonly systemFingerprint?: string
  /** The first choice's text ('' when none). */
  readonly text: string
  /**
   * The first choice's `reasoning_content`, a thinking model's reasoning; absent when none, ''
   * for reasoning tokens that show no text (ours send their ids so).
   */
  readonly reasoning?: string
  /** The token ids behind `text` (our extension; [] from other servers). */
  readonly tokenIds: readonly number[]
  readonly finishReason?: FinishReason
  /** Our extension on the last chunk: every generated token id and the next sampler step. */
  readonly ondevice?: {
    readonly tokenIds: readonly number[]
    readonly nextStep?: number
    readonly partial?: boolean
  }
  /**
   * The chunk's tokens are a tool call's (our `in_tool_call`, or OpenAI's `tool_calls` deltas):
   * TextDeltaPart.inToolCall.
   */
  readonly inToolCall?: true
  /** Tool-call deltas (OpenAI's streamed shape): merge them by index. */
  readonly toolCallDeltas?: readonly {
    readonly index: number
    readonly id?: string
    readonly name?: string
    readonly arguments?: string
  }[]
  readonly usage?: UsageReading
}

function readTokenIds(value: unknown): number[] {
  return Array.isArray(value) && value.every((v) => Number.isInteger(v)) ? (value as number[]) : []
}

/**
 * Reads one server-sent event's data. An error event (OpenAI's way to fail mid-stream) is thrown
 * as the library's error class; data that is not JSON is an `edge_failed` error.
 */
export function readChunk(data: string): ChunkReading {
  let chunk: Record<string, unknown>
  try {
    chunk = JSON.parse(data) as Record<string, unknown>
  } catch {
    throw new EdgeError(
      'edge_failed',
      `The edge sent a stream event that is not JSON: ${data.slice(0, 100)}`,
      {
        isRetryable: true,
      },
    )
  }
  if (typeof chunk !== 'object' || chunk === null) {
    throw new EdgeError(
      'edge_failed',
      `The edge sent a stream event that is not a JSON object: ${data.slice(0, 100)}`,
      {
        isRetryable: true,
      },
    )
  }
  if ('error' in chunk) throw fromErrorBody(undefined, chunk)
  const { id, model, system_fingerprint: systemFingerprint, choices, ondevice, usage } = chunk
  const choice = Array.isArray(choices) ? (choices[0] as Record<string, unknown> | undefined) : undefined
  let text = ''
  let reasoning: string | undefined
  let tokenIds: number[] = []
  let finishReason: FinishReason | undefined
  let toolCallDeltas: { index: number; id?: string; name?: string; arguments?: string }[] | undefined
  let inToolCall = false
  if (choice) {
    const delta = (choice['delta'] ?? {}) as Record<string, unknown>
    text = typeof delta['content'] === 'string' ? delta['content'] : ''
    // vLLM and SGLang write `reasoning_content`; newer vLLM and Ollama's OpenAI API `reasoning`.
    const thought = delta['reasoning_content'] ?? delta['reasoning']
    reasoning = typeof thought === 'string' ? thought : undefined
    tokenIds = readTokenIds(delta['token_ids'] ?? choice['token_ids'])
    if (choice['finish_reason'] != null) finishReason = fromFinishReason(String(choice['finish_reason']))
    inToolCall =
      delta['in_tool_call'] === true || (Array.isArray(delta['tool_calls']) && delta['tool_calls'].length > 0)
    if (Array.isArray(delta['tool_calls'])) {
      toolCallDeltas = []
      for (const raw of delta['tool_calls'] as unknown[]) {
        if (typeof raw !== 'object' || raw === null) continue
        const call = raw as Record<string, unknown>
        const fn = (
          typeof call['function'] === 'object' && call['function'] !== null ? call['function'] : {}
        ) as Record<string, unknown>
        toolCallDeltas.push({
          index: typeof call['index'] === 'number' ? call['index'] : toolCallDeltas.length,
          ...(typeof call['id'] === 'string' ? { id: call['id'] } : {}),
          ...(typeof fn['name'] === 'string' ? { name: fn['name'] } : {}),
          ...(typeof fn['arguments'] === 'string' ? { arguments: fn['arguments'] } : {}),
        })
      }
    }
  }
  let extension: ChunkReading['ondevice']
  if (ondevice && typeof ondevice === 'object') {
    const next = (ondevice as Record<string, unknown>)['next_step']
    extension = {
      tokenIds: readTokenIds((ondevice as Record<string, unknown>)['token_ids']),
      ...(typeof next === 'number' && Number.isSafeInteger(next) ? { nextStep: next } : {}),
      ...((ondevice as Record<string, unknown>)['partial'] === true ? { partial: true } : {}),
    }
  }
  return {
    ...(typeof id === 'string' ? { id } : {}),
    ...(typeof model === 'string' ? { model } : {}),
    ...(typeof systemFingerprint === 'string' ? { systemFingerprint } : {}),
    text,
    ...(reasoning === undefined ? {} : { reasoning }),
    tokenIds,
    ...(finishReason === undefined ? {} : { finishReason }),
    ...(extension === undefined ? {} : { ondevice: extension }),
    ...(inToolCall ? { inToolCall: true as const } : {}),
    ...(toolCallDeltas === undefined ? {} : { toolCallDeltas }),
    ...(usage && typeof usage === 'object' ? { usage: fromUsage(usage) } : {}),
  }
}
