// What every host module in wasm/ hands back: the configured onnxruntime-web module plus a
// plain description of how it was set up, so callers (usage reports, the capability probe, a
// person reading logs) can see whether threads are on and why.
import type * as OrtWeb from 'onnxruntime-web'

/** The onnxruntime-web module namespace (the same API surface as onnxruntime-node). */
export type OrtWebModule = typeof OrtWeb

export type WasmHost = 'node' | 'browser' | 'workerd'

export interface WasmSetup {
  readonly host: WasmHost
  /** Threads ORT's WASM backend was told to use (1 = single-threaded). */
  readonly threads: number
  /** Why that many threads, in words a person can read. */
  readonly threadsReason: string
  /** Where the .wasm binary came from: a file path, a same-origin URL, a cache, or a precompiled module. */
  readonly wasmSource: string
  /** onnxruntime-web version that was loaded. */
  readonly ortVersion: string
}

export interface ConfiguredOrt {
  readonly ort: OrtWebModule
  readonly setup: WasmSetup
}
