/// <reference path="../compiled-wasm.d.ts" />
// The engine in workerd (Cloudflare Workers): Workers forbid compiling WebAssembly from bytes at
// run time, so engine.wasm is imported through wrangler's CompiledWasm rule (wrangler.toml) as a
// precompiled WebAssembly.Module. One thread: an isolate has no threads to spare.
import engineModule from './engine.wasm'

/** engine.wasm as the module wrangler precompiled. */
export function engineModuleForWorkerd(): WebAssembly.Module {
  return engineModule
}
