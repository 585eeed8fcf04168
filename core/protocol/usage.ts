// Usage both ways: OpenAI's three counts plus our timing and placement fields, flat. The reader
// takes whatever a server sent (other servers send only the counts, or nothing) and returns the
// fields that are present and well-formed; the caller decides what a missing one means.
import type { Usage } from '../stream-parts.ts'
import type { ChatCompletionUsage } from './types.ts'

/** Core usage in the wire shape. */
export function toUsage(usage: Usage): ChatCompletionUsage {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + (usage.continuationTokens ?? 0) + usage.completionTokens,
    ...(usage.continuationTokens === undefined ? {} : { continuation_tokens: usage.continuationTokens }),
    ...(usage.cachedTokens === undefined
      ? {}
      : { prompt_tokens_details: { cached_tokens: usage.cachedTokens } }),
    ...(usage.reasoningTokens === undefined
      ? {}
      : { completion_tokens_details: { reasoning_tokens: usage.reasoningTokens } }),
    time_to_first_token_ms: usage.timeToFirstTokenMs,
    prefill_tokens_per_second: usage.prefillTokensPerSecond,
    decode_tokens_per_second: usage.decodeTokensPerSecond,
    ...(usage.backend === undefined ? {} : { backend: usage.backend }),
    ...(usage.dtype === undefined ? {} : { dtype: usage.dtype }),
    ...(usage.route === undefined ? {} : { route: usage.route }),
    ...(usage.routeReason === undefined ? {} : { route_reason: usage.routeReason }),
  }
}

/** The usage fields a wire object carries, each only when present and well-formed. */
export type UsageReading = Partial<Usage>

/** A finite number ≥ 0 (times, rates): a server's negative or infinite value is not a reading. */
function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined
}

/** A token count: a whole number ≥ 0 that a counter can hold. */
function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined
}

/** `field` of an OpenAI details object (prompt_tokens_details, completion_tokens_details), if it is one. */
function detail(details: unknown, field: string): unknown {
  return typeof details === 'object' && details !== null
    ? (details as Readonly<Record<string, unknown>>)[field]
    : undefined
}

/** Reads an untrusted wire usage object (anything else reads as no fields). */
export function fromUsage(value: unknown): UsageReading {
  if (typeof value !== 'object' || value === null) return {}
  const wire = value as Readonly<Record<string, unknown>>
  const promptTokens = count(wire['prompt_tokens'])
  const completionTokens = count(wire['completion_tokens'])
  const cachedTokens = count(detail(wire['prompt_tokens_details'], 'cached_tokens'))
  const reasoningTokens = count(detail(wire['completion_tokens_details'], 'reasoning_tokens'))
  const timeToFirstTokenMs = finite(wire['time_to_first_token_ms'])
  const prefillTokensPerSecond = finite(wire['prefill_tokens_per_second'])
  const decodeTokensPerSecond = finite(wire['decode_tokens_per_second'])
  const { backend, dtype, route, route_reason: routeReason } = wire
  return {
    ...(promptTokens === undefined ? {} : { promptTokens }),
    ...(completionTokens === undefined ? {} : { completionTokens }),
    ...(cachedTokens === undefined ? {} : { cachedTokens }),
    // More reasoning than completion tokens is not a reading of this answer.
    ...(reasoningTokens === undefined ||
    (completionTokens !== undefined && reasoningTokens > completionTokens)
      ? {}
      : { reasoningTokens }),
    ...(timeToFirstTokenMs === undefined ? {} : { timeToFirstTokenMs }),
    ...(prefillTokensPerSecond === undefined ? {} : { prefillTokensPerSecond }),
    ...(decodeTokensPerSecond === undefined ? {} : { decodeTokensPerSecond }),
    ...(typeof backend === 'string' ? { backend } : {}),
    ...(typeof dtype === 'string' ? { dtype } : {}),
    ...(route === 'device' || route === 'edge' || route === 'device+edge' ? { route } : {}),
    ...(typeof routeReason === 'string' ? { routeReason } : {}),
  }
}
