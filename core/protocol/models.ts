// GET /v1/models both ways: the worker lists its model ids; the SDK takes the first one when the
// caller named none.
import type { ModelListResponse } from './types.ts'

export type ModelEntry = ModelListResponse['data'][number]

export function toModelEntry(id: string): ModelEntry {
  return { id, object: 'model', created: 0, owned_by: 'ondevice' }
}

export function toModelList(ids: Iterable<string>): ModelListResponse {
  return { object: 'list', data: [...ids].map(toModelEntry) }
}

/** The first model id an untrusted list names, or undefined. */
export function firstModelId(body: unknown): string | undefined {
  const data = typeof body === 'object' && body !== null ? (body as { data?: unknown }).data : undefined
  const first = Array.isArray(data) ? (data[0] as { id?: unknown } | undefined) : undefined
  return typeof first?.id === 'string' ? first.id : undefined
}
