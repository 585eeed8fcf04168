// The web-standard globals that every host ondevice runs on provides (browsers, Web Workers,
// workerd, Node >= 22). core/ compiles with no platform lib, so it declares exactly the subset it
// uses here; anything else (DOM, fs, Workers bindings) stays out of reach by construction.

interface TextEncoder {
  encode(input?: string): Uint8Array
}
declare var TextEncoder: { new (): TextEncoder }

interface TextDecoderOptions {
  fatal?: boolean
  ignoreBOM?: boolean
}
interface TextDecodeOptions {
  stream?: boolean
}
interface TextDecoder {
  decode(input?: ArrayBufferView | ArrayBuffer, options?: TextDecodeOptions): string
}
declare var TextDecoder: { new (label?: string, options?: TextDecoderOptions): TextDecoder }

interface AbortSignal {
  readonly aborted: boolean
  readonly reason: unknown
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void
  removeEventListener(type: 'abort', listener: () => void): void
  throwIfAborted(): void
}

interface AbortController {
  readonly signal: AbortSignal
  abort(reason?: unknown): void
}
declare var AbortController: { new (): AbortController }
declare var AbortSignal: { any(signals: AbortSignal[]): AbortSignal }

interface Performance {
  now(): number
}
declare var performance: Performance

interface Console {
  log(...data: unknown[]): void
  warn(...data: unknown[]): void
  error(...data: unknown[]): void
}
declare var console: Console

declare function setTimeout(handler: () => void, timeout?: number): unknown
declare function clearTimeout(id: unknown): void
declare function queueMicrotask(callback: () => void): void
