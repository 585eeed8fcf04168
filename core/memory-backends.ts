// The runtimes a package's memory figures are kept for, in a module of their own: the package
// contract (model-package.ts) reads the list and the memory model (memory-estimate.ts) reads the
// contract's graph layout, and the list in memory-estimate.ts made the two import each other (a
// cycle Rollup warned of in every app's build: "Circular dependency ... model-package.js ->
// memory-estimate.js -> model-package.js").

/**
 * The runtimes that hold a model: 'wasm' ondevice's WebAssembly engine, 'ort-wasm'
 * onnxruntime-web's WASM, 'webgpu' onnxruntime-web on WebGPU, 'native' onnxruntime-node.
 */
export const memoryBackends = ['wasm', 'ort-wasm', 'webgpu', 'native'] as const
export type MemoryBackend = (typeof memoryBackends)[number]
