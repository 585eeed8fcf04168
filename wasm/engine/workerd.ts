/// <reference path="../compiled-wasm.d.ts" />
// The engine in workerd (Cloudflare Workers): Workers forbid compiling WebAssembly from bytes at
// run time, so the engine is imported through wrangler's CompiledWasm rule (wrangler.toml) as a
// precompiled WebAssembly.Module. One module, chosen here and not at run time: a precompiled
// import that the runtime cannot compile fails the whole Worker, so there is no probing. It is
// the relaxed-SIMD build (engine-relaxed.wasm, ./simd.ts), which workerd validates (V8's relaxed
// SIMD has been on by default since 2023) and which gives the same bits as engine.wasm. One
// thread: an isolate has no threads to spare.
import engineModule from './engine-relaxed.wasm'

/** engine-relaxed.wasm as the module wrangler precompiled. */
export function engineModuleForWorkerd(): WebAssembly.Module {
  return engineModule
}
