// GET /v1/models both ways: the worker lists its model ids and its answers' token limit; the SDK
// takes the first id when the caller named none, and the limit to refuse a maxTokens the edge
// could not honour before an answer starts (rather than at a handoff mid-answer).
import type { ModelListResponse } from './types.ts'

export type ModelEntry = ModelListResponse['data'][number]

/** The server's limits a model entry carries (`ondevice.max_tokens`). */
export interface ModelLimits {
  readonly maxTokens: number
}

export function toModelEntry(id: string, limits?: ModelLimits): ModelEntry {
  return {
    id,
    object: 'model',
    created: 0,
    owned_by: 'ondevice',
    ...(limits === undefined ? {} : { ondevice: { max_tokens: limits.maxTokens } }),
  }
}

export function toModelList(ids: Iterable<string>, limits?: ModelLimits): ModelListResponse {
  return { object: 'list', data: [...ids].map((id) => toModelEntry(id, limits)) }
}

/** The first entry's `ondevice.max_tokens` in an untrusted list, or undefined (an older edge). */
export function listedMaxTokens(body: unknown): number | undefined {
  const data = typeof body === 'object' && body !== null ? (body as { data?: unknown }).data : undefined
  const first = Array.isArray(data) ? (data[0] as { ondevice?: unknown } | undefined) : undefined
  const extension = first?.ondevice
  const value =
    typeof extension === 'object' && extension !== null
      ? (extension as { max_tokens?: unknown }).max_tokens
      : undefined
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 ? value : undefined
}

/** The first model id an untrusted list names, or undefined. */
export function firstModelId(body: unknown): string | undefined {
  const data = typeof body === 'object' && body !== null ? (body as { data?: unknown }).data : undefined
  const first = Array.isArray(data) ? (data[0] as { id?: unknown } | undefined) : undefined
  return typeof first?.id === 'string' ? first.id : undefined
}
