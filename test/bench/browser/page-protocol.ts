// What the benchmark pages read from their URL and leave on `window` for the runner. Shared by
// both pages and the Node side, so the two engines are driven the same way.

export interface PageRequest {
  /** URL prefix of the package folder on the page's origin, ending in '/'. */
  readonly packageUrl: string
  readonly dtype: string
  readonly backend: 'wasm' | 'webgpu'
  readonly threads: number
  readonly promptTokenIds: readonly number[]
  readonly maxTokens: number
  /** Config fields transformers.js needs for a Qwen3.5 package (see support/engines.ts). */
  readonly transformersConfigPatch?: Readonly<Record<string, unknown>>
}

export interface PageResult {
  readonly loadMs: number
  readonly ttftMs: number
  readonly decodeTokensPerSecond: number
  readonly tokens: readonly number[]
  /** How the engine set itself up (threads it got, provider), as far as it says. */
  readonly setup: Readonly<Record<string, unknown>>
  readonly error?: string
}

export function readRequest(search: string): PageRequest {
  const encoded = new URLSearchParams(search).get('request')
  if (!encoded) throw new Error('The page needs ?request=<JSON>.')
  return JSON.parse(encoded) as PageRequest
}

export function decodeRate(count: number, firstAt: number, lastAt: number): number {
  return count > 1 && lastAt > firstAt ? ((count - 1) * 1000) / (lastAt - firstAt) : Number.NaN
}
