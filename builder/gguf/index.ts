// GGUF export: a package's float weights and tokenizer as a llama.cpp GGUF file (llama, qwen3,
// qwen35; F32, F16, Q8_0, Q4_0, Q4_1), for llama.cpp / wllama and as the WASM peer in the benchmarks.

export {
  type GgufDtype,
  type GgufExportOptions,
  type GgufExportResult,
  type GgufSourceWeights,
  ggufDtypeAliases,
  ggufDtypes,
  isQwen35Model,
  parseGgufDtype,
  writeGguf,
} from './gguf-export.ts'
export {
  GgmlType,
  type GgmlTypeName,
  type GgufHeader,
  type GgufTensorInfo,
  type GgufValue,
  ggmlTensorBytes,
  gguf,
  layoutGguf,
  readGgufHeader,
} from './gguf-file.ts'
export { decodeGgmlTensor, encodeGgmlTensor } from './gguf-quantize.ts'
export { type GgufTensorPlan, planQwen35Tensors, qwen35Metadata, tiledValueHeadOrder } from './gguf-qwen35.ts'
export { type GgufTokenizerSource, ggufTokenizerMetadata } from './gguf-tokenizer.ts'
export {
  type PackageSource,
  readGgufSource,
  readPackageSource,
  readPackageTokenizer,
} from './package-source.ts'
