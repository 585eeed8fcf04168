// What decides the bits of an answer besides the model: the weight format (dtype) and the backend
// that runs it. Both sides of a handoff name them with these lists (the wire format validates a
// request's `ondevice_format` against them), and the runtime maps each dtype to its file names.
// The lists live in core because core/protocol, which compiles without any platform, checks them.

/**
 * 'wasm': ondevice's own WebAssembly engine (wasm/engine/) where it covers the package, else
 * onnxruntime-web's WASM, which then reports itself as 'ort-wasm'; 'ort-wasm': onnxruntime-web's
 * WASM always; 'webgpu': onnxruntime-web on WebGPU; 'native': onnxruntime-node.
 */
export type Backend = 'wasm' | 'ort-wasm' | 'webgpu' | 'native'

export const backends: readonly Backend[] = ['wasm', 'ort-wasm', 'webgpu', 'native']

/**
 * File-name suffix per dtype (`onnx/model${suffix}.onnx`), as transformers.js / onnx-community
 * name them. `_quantized` is the file of q8.
 */
export const onnxSuffixByDtype: Readonly<Record<string, string>> = {
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  int8: '_int8',
  uint8: '_uint8',
  q4: '_q4',
  q4f16: '_q4f16',
  bnb4: '_bnb4',
}

export const knownDtypes: readonly string[] = Object.keys(onnxSuffixByDtype)

export function isBackend(value: unknown): value is Backend {
  return typeof value === 'string' && (backends as readonly string[]).includes(value)
}
