// wrangler's CompiledWasm rule turns a `.wasm` import into a precompiled WebAssembly.Module
// (Workers forbid compiling WebAssembly from bytes at run time).
declare module 'onnxruntime-web/ort-wasm-simd-threaded.wasm' {
  const compiledModule: WebAssembly.Module
  export default compiledModule
}

// ondevice's own engine (wasm/engine/engine.wasm, engine-relaxed.wasm), imported the same way in workerd.
declare module '*/engine.wasm' {
  const compiledModule: WebAssembly.Module
  export default compiledModule
}
declare module '*/engine-relaxed.wasm' {
  const compiledModule: WebAssembly.Module
  export default compiledModule
}
