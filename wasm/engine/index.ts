// wasm/engine: ondevice's own WebAssembly (SIMD128) CPU engine for the decoder. Host-neutral
// parts; Node-specific loading is in ./node.ts.
export { compileEngine, type KernelExports, Kernels, type Pointer } from './kernels.ts'
export { EngineUnsupportedError, modelLoaders } from './models/index.ts'
export { OnnxWeights, type WeightFileReader } from './onnx-weights.ts'
export { createEngineSession, EngineSession, type EngineSessionOptions, engineCovers } from './session.ts'
