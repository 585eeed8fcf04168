// Weight formats (dtypes) and the file names they live in, as transformers.js / onnx-community
// name them, plus the order in which each backend prefers them. The order is measured, not
// assumed (DESIGN.md section 2): on WASM, 4-bit MatMulNBits dequantizes the whole matrix on every
// call, so dynamic int8 is fastest there; onnxruntime-node and WebGPU run 4-bit well.
import { InvalidArgumentError } from '../core/errors.ts'

export type Backend = 'wasm' | 'webgpu' | 'native'

export const backends: readonly Backend[] = ['wasm', 'webgpu', 'native']

/** File-name suffix per dtype (`onnx/model${suffix}.onnx`). `quantized` is the file name of q8. */
const suffixByDtype: Readonly<Record<string, string>> = {
  fp32: '',
  fp16: '_fp16',
  q8: '_quantized',
  int8: '_int8',
  uint8: '_uint8',
  q4: '_q4',
  q4f16: '_q4f16',
  bnb4: '_bnb4',
}

export const knownDtypes: readonly string[] = Object.keys(suffixByDtype)

/** Accepts the aliases people use ('quantized' for q8) and rejects unknown names with the list. */
export function normalizeDtype(dtype: string, param = 'dtype'): string {
  const name = dtype === 'quantized' ? 'q8' : dtype
  if (!(name in suffixByDtype)) {
    throw new InvalidArgumentError(
      param,
      `Unknown dtype ${JSON.stringify(dtype)}; use one of ${knownDtypes.join(', ')} (or 'quantized' for q8).`,
    )
  }
  return name
}

export function dtypeSuffix(dtype: string): string {
  return suffixByDtype[normalizeDtype(dtype)] as string
}

/** Fastest first, per backend. `shaderF16` says whether the WebGPU adapter can run f16 shaders. */
export function preferredDtypes(backend: Backend, options: { shaderF16?: boolean } = {}): readonly string[] {
  switch (backend) {
    case 'wasm':
      return ['q8', 'int8', 'uint8', 'fp32', 'q4', 'fp16', 'bnb4', 'q4f16']
    case 'native':
      return ['q4', 'q8', 'int8', 'uint8', 'fp32', 'bnb4', 'fp16', 'q4f16']
    case 'webgpu':
      return options.shaderF16
        ? ['q4f16', 'q4', 'fp16', 'fp32', 'q8', 'int8', 'uint8']
        : ['q4', 'fp32', 'q8', 'int8', 'uint8']
  }
}

export type OnnxLayout =
  | { readonly kind: 'single'; readonly model: string }
  | { readonly kind: 'split'; readonly embedTokens: string; readonly decoder: string }

/** Qwen3.5 ships an embedding graph and a decoder graph; Llama and Qwen3 one graph. */
export function isSplitLayout(modelType: string): boolean {
  return modelType === 'qwen3_5' || modelType === 'qwen3_5_text'
}

export function onnxLayout(modelType: string, dtype: string): OnnxLayout {
  const suffix = dtypeSuffix(dtype)
  return isSplitLayout(modelType)
    ? {
        kind: 'split',
        embedTokens: `onnx/embed_tokens${suffix}.onnx`,
        decoder: `onnx/decoder_model_merged${suffix}.onnx`,
      }
    : { kind: 'single', model: `onnx/model${suffix}.onnx` }
}

export function layoutFiles(layout: OnnxLayout): string[] {
  return layout.kind === 'single' ? [layout.model] : [layout.embedTokens, layout.decoder]
}

/** The dtype a file name belongs to, or undefined when it is not an ONNX model file. */
export function dtypeOfFile(path: string): string | undefined {
  const match = /^onnx\/(?:model|decoder_model_merged)(_[a-z0-9]+)?\.onnx$/.exec(path)
  if (!match) return undefined
  const suffix = match[1] ?? ''
  return Object.entries(suffixByDtype).find(([, value]) => value === suffix)?.[0]
}
