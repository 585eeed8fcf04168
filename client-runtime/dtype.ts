// Weight formats (dtypes) and the file names they live in, as transformers.js / onnx-community
// name them, plus the order in which each backend prefers them. The order is measured, not
// assumed (docs/builder.md, "Why q8 on WASM and q4 elsewhere"): on WASM, 4-bit MatMulNBits dequantizes the whole matrix on every
// call, so dynamic int8 is fastest there; onnxruntime-node and WebGPU run 4-bit well.
import { InvalidArgumentError, ModelError } from '../core/errors.ts'
import { type Backend, knownDtypes, onnxSuffixByDtype } from '../core/weight-format.ts'

export { type Backend, backends, knownDtypes } from '../core/weight-format.ts'

const suffixByDtype = onnxSuffixByDtype

/** Accepts the aliases people use ('quantized' for q8) and rejects unknown names with the list. */
export function normalizeDtype(dtype: string, param = 'dtype'): string {
  const name = dtype === 'quantized' ? 'q8' : dtype
  // Own keys only: 'constructor' or 'toString' are in every object.
  if (!Object.hasOwn(suffixByDtype, name)) {
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
      // The engine's 4-bit kernel reads half the bytes of q8 at the same arithmetic per weight.
      return ['q4', 'q8', 'fp32', 'fp16', 'int8', 'uint8', 'bnb4', 'q4f16']
    case 'ort-wasm':
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

export interface DtypeChoiceOptions {
  readonly backend: Backend
  /**
   * config.json's model_type: it decides the graph files (one, or embedding + decoder), so it is
   * needed to look for files when there is no list. Without it only the list counts.
   */
  readonly modelType?: string | undefined
  /** manifest.json's `dtypes`: when not empty, trusted as what the package holds. */
  readonly listed?: readonly string[] | undefined
  /** Whether a package file exists; without a list, a dtype is there when all its graph files are. */
  readonly exists?: ((path: string) => Promise<boolean>) | undefined
  /** Whether the WebGPU adapter runs f16 shaders. */
  readonly shaderF16?: boolean
  /** The package, for the error message. */
  readonly source: string
}

/** What a package says about its weights. */
export type PackageContents = Pick<DtypeChoiceOptions, 'modelType' | 'listed' | 'exists'>

async function holds(contents: PackageContents, dtype: string): Promise<boolean> {
  if (contents.listed && contents.listed.length > 0) return contents.listed.includes(dtype)
  const { exists, modelType } = contents
  if (!exists || modelType === undefined) return false
  const files = layoutFiles(onnxLayout(modelType, dtype))
  return (await Promise.all(files.map((file) => exists(file)))).every(Boolean)
}

/** The dtypes a package holds (manifest.json's list, else those whose graph files all exist). */
export async function availableDtypes(contents: PackageContents): Promise<string[]> {
  if (contents.listed && contents.listed.length > 0) return [...contents.listed]
  const found: string[] = []
  for (const dtype of knownDtypes) if (await holds(contents, dtype)) found.push(dtype)
  return found
}

/**
 * The one dtype chooser (device load, inspection, the edge worker): the fastest dtype for
 * `backend` (preferredDtypes) that the package holds. Throws model_invalid when it holds none
 * the backend runs. A package that can say neither (no manifest list, no way to ask whether a
 * file exists) gets the backend's fastest; loading then says which file is missing.
 */
export async function chooseDtype(options: DtypeChoiceOptions): Promise<string> {
  const preferred = preferredDtypes(options.backend, { shaderF16: options.shaderF16 ?? false })
  const canTell =
    (options.listed !== undefined && options.listed.length > 0) ||
    (options.exists !== undefined && options.modelType !== undefined)
  if (!canTell) return preferred[0] as string
  // In order of preference, stopping at the first: a URL package without a manifest asks the
  // server about each file.
  for (const dtype of preferred) if (await holds(options, dtype)) return dtype
  const available = await availableDtypes(options)
  const expected =
    options.modelType === undefined
      ? ''
      : `; expected e.g. ${layoutFiles(onnxLayout(options.modelType, preferred[0] as string)).join(' + ')}`
  throw new ModelError(
    'model_invalid',
    `${options.source} carries no ONNX weights ${options.backend} can run (found: ${available.join(', ') || 'none'}${expected}).`,
  )
}
