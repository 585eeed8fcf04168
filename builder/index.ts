// `ondevice/builder`: writes model packages (Node only). ONNX graph writer, architectures,
// quantization, importers, seeded fixtures and the plain-TypeScript reference forward pass.

export {
  architectureFor,
  type BuilderDtype,
  builderDtypes,
  DecoderGraph,
  type DecoderGraphOptions,
  LlamaArchitecture,
  Qwen3Architecture,
  ropeInverseFrequencies,
} from './architectures/decoder-graph.ts'
export { writeQwen35Package } from './architectures/qwen3-5-package.ts'
export { qwen35Forward } from './architectures/qwen3-5-reference.ts'
export { randomDecoderWeights, seededRandom } from './architectures/random-weights.ts'
export {
  type DecoderLayerWeights,
  type DecoderWeights,
  type Matrix,
  matrix,
  validateDecoderWeights,
} from './architectures/weights.ts'
export {
  type DefaultPackageOptions,
  defaultPackageDescription,
  ensureDefaultPackage,
} from './default-package.ts'
export {
  type FixtureArchitecture,
  type FixtureOptions,
  fixtureArchitectures,
  fixtureConfig,
  fixtureSizes,
  qwen3TokenizerFiles,
  writeFixture,
} from './fixtures/fixture.ts'
// GGUF export (llama.cpp's format): package → .gguf.
export * from './gguf/index.ts'
export { type ConvertLlama2cOptions, convertLlama2c } from './importers/convert-llama2c.ts'
export {
  type ConvertHfOptions,
  convertHfCheckpoint,
  openHfCheckpoint,
  readHfDecoderWeights,
} from './importers/hf-decoder.ts'
export {
  type Llama2cHeader,
  type Llama2cVocabulary,
  llama2cConfig,
  permuteInterleavedRows,
  readLlama2cCheckpoint,
  readLlama2cHeader,
  readLlama2cTokenizer,
} from './importers/llama2c.ts'
export { type ConvertedTokenizer, convertLlama2cTokenizer } from './importers/llama2c-tokenizer.ts'
// Qwen3.5 (owned by the Qwen3.5 builder; re-exported so `ondevice/builder` is one entry point).
export { type ConvertQwen35Options, convertQwen35Checkpoint } from './importers/qwen3-5-safetensors.ts'
export { SafetensorsFile, type SafetensorsWriteEntry, writeSafetensors } from './importers/safetensors.ts'
export * from './onnx/index.ts'
export {
  estimateMemoryBytes,
  hfConfigJson,
  type PackageTokenizer,
  sha256File,
  type WritePackageOptions,
  writeModelPackage,
} from './package/package-writer.ts'
export {
  type Blockwise4Bit,
  type ColumnwiseInt8,
  dequantizeBlockwise4,
  quantizeBlockwise4,
  quantizeColumnwiseInt8,
} from './quantize/quantize.ts'
export { ReferenceModel } from './reference/reference-model.ts'
export {
  argmax,
  maxAbsDifference,
  OrtDecoder,
  type OrtModuleLike,
  type OrtSessionLike,
  topOneAgreement,
} from './testing/ort-decoder.ts'
