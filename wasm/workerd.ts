/// <reference path="./compiled-wasm.d.ts" />
// onnxruntime-web in workerd (Cloudflare Workers), the recipe in docs/runtime.md ("ONNX Runtime in workerd"):
// Workers forbid compiling WebAssembly from bytes, and ORT only accepts bytes in
// `env.wasm.wasmBinary`. So the .wasm is imported through wrangler's CompiledWasm rule (a
// precompiled WebAssembly.Module), ORT gets a short marker byte array as its "binary", and
// `WebAssembly.instantiate` is wrapped so that exactly that marker instantiates the precompiled
// module. One thread, no proxy worker: an isolate has neither threads nor Workers to spare.
// Pinned to onnxruntime-web 1.30.0 (package.json); the workerd test in worker/ guards it.

import precompiledOrtWasm from 'onnxruntime-web/ort-wasm-simd-threaded.wasm'
import ort from 'onnxruntime-web/wasm'
import type { ConfiguredOrt } from './types.ts'

/** Not a valid wasm file on purpose: if it ever reaches the real compiler it fails loudly. */
const marker = new Uint8Array([0x6f, 0x6e, 0x64, 0x65, 0x76, 0x69, 0x63, 0x65, 0x2d, 0x77, 0x61, 0x73, 0x6d])

function isMarker(source: unknown): boolean {
  let bytes: Uint8Array
  if (source instanceof Uint8Array) bytes = source
  else if (source instanceof ArrayBuffer) bytes = new Uint8Array(source)
  else if (ArrayBuffer.isView(source))
    bytes = new Uint8Array(source.buffer, source.byteOffset, source.byteLength)
  else return false
  return bytes.length === marker.length && bytes.every((value, index) => value === marker[index])
}

let installed = false

function installInstantiateHook(): void {
  if (installed) return
  installed = true
  const original = WebAssembly.instantiate.bind(WebAssembly) as (
    source: unknown,
    imports?: WebAssembly.Imports,
  ) => Promise<unknown>
  const wrapped = async (source: unknown, imports?: WebAssembly.Imports): Promise<unknown> => {
    if (!isMarker(source)) return original(source, imports)
    const instance = await WebAssembly.instantiate(precompiledOrtWasm, imports)
    // Same shape as instantiating from bytes, which is what Emscripten's loader expects.
    return { instance, module: precompiledOrtWasm }
  }
  ;(WebAssembly as { instantiate: unknown }).instantiate = wrapped
}

let configured: ConfiguredOrt | undefined

/** Returns onnxruntime-web configured for workerd. Idempotent; call it at first request, not at import. */
export function loadOrtWebForWorkerd(): ConfiguredOrt {
  if (configured) return configured
  installInstantiateHook()
  ort.env.wasm.wasmBinary = marker
  ort.env.wasm.numThreads = 1
  ort.env.wasm.proxy = false
  configured = {
    ort,
    setup: {
      host: 'workerd',
      threads: 1,
      threadsReason: 'workerd isolates run WebAssembly on one thread',
      wasmSource: 'precompiled module (wrangler CompiledWasm rule)',
      ortVersion: ort.env.versions.web ?? 'unknown',
    },
  }
  return configured
}
