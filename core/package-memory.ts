// The memory model (memory-estimate.ts) over a package's files: the figures the builder writes
// into manifest.json for the dtypes a package carries (plus the largest of them as the plain
// per-dtype number older readers understand), and what the runtime computes for a package that
// has no such figures (a published export, an older package) from its config and file sizes.
import { type BackendMemoryEstimate, estimateMemoryByBackend, type MemoryInputs } from './memory-estimate.ts'
import {
  externalDataFileName,
  type ModelConfig,
  type ModelDtype,
  onnxFileNames,
  type PackageFileEntry,
  type PackageManifest,
} from './model-package.ts'

/**
 * What the file sizes don't say about a package's graphs. A writer knows (the builder's graphs all
 * take num_logits_to_keep); for a package read from elsewhere, leave it out: the memory model
 * then assumes what such packages did (see MemoryInputs.allPositionLogits).
 */
export interface PackageGraphFacts {
  /** The decoder computes logits for every prompt position (it has no num_logits_to_keep input). */
  readonly allPositionLogits?: boolean
}

/**
 * The memory model's inputs for one dtype of a package, from its file list: the dtype's ONNX
 * files and external data, the embedding graph's (Qwen3.5: read by lookups only) and, for a
 * tied 4-bit Qwen3.5 package, the table the LM head holds too (the builder writes the same
 * bytes; the engine keeps them once).
 */
export function memoryInputsFromFiles(
  config: ModelConfig,
  dtype: ModelDtype,
  files: readonly Pick<PackageFileEntry, 'path' | 'bytes'>[],
  tokenizerBytes: number,
  contextLength: number,
  graph: PackageGraphFacts = {},
): MemoryInputs {
  const names = onnxFileNames(config.modelType, dtype)
  const bytesOf = (onnx: string | undefined): number => {
    if (onnx === undefined) return 0
    let total = 0
    for (const file of files)
      if (file.path === onnx || file.path.startsWith(externalDataFileName(onnx))) total += file.bytes
    return total
  }
  const lookupOnlyBytes = bytesOf(names.embedTokens)
  const fourBitTable =
    names.embedTokens !== undefined &&
    dtype === 'q4' &&
    config.tieWordEmbeddings &&
    config.hiddenSize % 2 === 0
  return {
    config,
    dtype,
    weightFileBytes: bytesOf(names.model) + lookupOnlyBytes,
    ...(lookupOnlyBytes > 0 ? { lookupOnlyBytes } : {}),
    ...(fourBitTable ? { duplicateWeightBytes: (config.vocabSize * config.hiddenSize) / 2 } : {}),
    ...(graph.allPositionLogits === undefined ? {} : { allPositionLogits: graph.allPositionLogits }),
    tokenizerBytes,
    contextLength,
  }
}

export function manifestMemoryFields(
  config: ModelConfig,
  dtypes: readonly ModelDtype[],
  files: readonly Pick<PackageFileEntry, 'path' | 'bytes'>[],
  contextLength: number,
  graph: PackageGraphFacts = {},
): Pick<PackageManifest, 'estimatedMemoryBytes' | 'estimatedMemory' | 'contextLength'> {
  const tokenizerBytes = files.find((file) => file.path === 'tokenizer.json')?.bytes ?? 0
  const estimatedMemoryBytes: Partial<Record<ModelDtype, number>> = {}
  const estimatedMemory: Partial<Record<ModelDtype, Record<string, BackendMemoryEstimate>>> = {}
  for (const dtype of dtypes) {
    const byBackend = estimateMemoryByBackend(
      memoryInputsFromFiles(config, dtype, files, tokenizerBytes, contextLength, graph),
    )
    estimatedMemory[dtype] = byBackend
    estimatedMemoryBytes[dtype] = Math.max(...Object.values(byBackend).map((figure) => figure.bytes))
  }
  return { estimatedMemoryBytes, estimatedMemory, contextLength }
}
