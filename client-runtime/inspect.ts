// What running a package here would take, without downloading weights: the dtype the backend
// would pick, the files and bytes it needs, how much is still missing, and the memory estimate
// from manifest.json. The SDK's router compares this with the probe (storage, memory, WebGPU).
import { InvalidArgumentError } from '../core/errors.ts'
import { estimateSessionMemory } from '../core/memory-estimate.ts'
import { modelIdFromLocation } from '../core/model-id.ts'
import {
  type ModelDtype,
  manifestMemoryEstimate,
  modelDtypes,
  type PackageManifest,
  parseMemoryFields,
  parseModelConfig,
} from '../core/model-package.ts'
import { manifestMemoryFields } from '../core/package-memory.ts'
import { engineCovers } from '../wasm/engine/session.ts'
import { type Backend, backends, chooseDtype, layoutFiles, normalizeDtype, onnxLayout } from './dtype.ts'
import type { ModelStore } from './store/types.ts'

/**
 * What running a package on this device takes: `inspectPackage` reports it and the SDK's router
 * reads it (`decideRoute` takes it as is). Only name, downloadBytes and cached are required, so an
 * app can ask the router about a package it describes itself.
 */
export interface PackageInfo {
  /** A short name for messages, e.g. "Qwen3.5-0.8B q4". */
  readonly name: string
  /** The weight format a load would use. */
  readonly dtype?: string
  /** The backend the figures are for. */
  readonly backend?: Backend
  /** Bytes of the files this dtype needs (metadata, tokenizer, ONNX + external data); undefined when unknown. */
  readonly totalBytes?: number | undefined
  /** Of those, bytes not stored yet (0 when cached). */
  readonly downloadBytes: number
  /**
   * Memory needed to run it on `backend` (weights, cache, runtime), from the manifest: the
   * backend's own estimate when the manifest has one, else its per-dtype figure.
   */
  readonly estimatedMemoryBytes?: number
  /**
   * The same for every backend a device could run the package on, each with the dtype a load
   * there would pick: the router reads the figure of the backend it chooses.
   */
  readonly memoryByBackend?: Readonly<Partial<Record<Backend, BackendMemory>>>
  /** Every file of the chosen dtype is stored and verified. */
  readonly cached: boolean
  /** Weights stored as fp16 need the WebGPU shader-f16 feature to run on WebGPU. */
  readonly requiresShaderF16?: boolean
  /** The largest single weight tensor, which has to fit one GPU buffer. */
  readonly largestTensorBytes?: number
  /** The package files a load of this dtype reads. */
  readonly files?: readonly string[]
}

/** One backend's memory figure for the dtype it would load. */
export interface BackendMemory {
  readonly dtype: string
  /** Peak bytes a load and a conversation filling the context add (WebGPU: host and GPU memory together). */
  readonly bytes: number
  /** WebGPU: the part in GPU buffers. */
  readonly gpuBytes?: number
}

type MemoryManifest = Pick<PackageManifest, 'estimatedMemoryBytes' | 'estimatedMemory' | 'contextLength'>

/**
 * The figure for `dtype` on `backend`. 'wasm' is the engine where it covers the architecture and
 * dtype, else onnxruntime-web's WASM, which is what a load would run.
 */
function memoryFor(
  manifest: MemoryManifest,
  modelType: string,
  dtype: string,
  backend: Backend,
  contextLength: number | undefined,
): BackendMemory | undefined {
  const runs = backend === 'wasm' && !engineCovers(modelType, dtype) ? 'ort-wasm' : backend
  const estimate = manifestMemoryEstimate(manifest, dtype, runs, contextLength)
  if (!estimate) return undefined
  return {
    dtype,
    bytes: estimate.bytes,
    ...(estimate.gpuBytes === undefined ? {} : { gpuBytes: estimate.gpuBytes }),
  }
}

export async function inspectPackage(options: {
  model: string
  backend: Backend
  dtype?: string
  store: ModelStore
  shaderF16?: boolean
  /** The context a load will cap the cache at (the memory figures are for it). */
  contextLength?: number
  /** false: a manifest.json not stored yet is asked for once (OpenOptions.retryManifest). */
  retryManifest?: boolean
  /** Stops the store's open (manifest.json's fetch and its retry pauses). */
  signal?: AbortSignal
}): Promise<
  PackageInfo & {
    readonly dtype: string
    readonly backend: Backend
    readonly requiresShaderF16: boolean
    readonly files: readonly string[]
    /**
     * What each further session over the same loaded weights adds (its cache at the context the
     * estimate is for, one prompt's activations): a server's concurrent slots on ONNX Runtime
     * share the weights and need `estimatedMemoryBytes` once plus this per further slot. Absent
     * for ondevice's engine, whose every session is an instance holding its own weights.
     */
    readonly sessionMemoryBytes?: number
  }
> {
  if (typeof options?.model !== 'string' || options.model === '')
    throw new InvalidArgumentError('model', 'model must be a package folder or URL prefix.')
  const pkg = await options.store.open(options.model, {
    ...(options.retryManifest === false ? { retryManifest: false } : {}),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  })
  const config = parseModelConfig(await pkg.readText('config.json'))
  let dtype = options.dtype === undefined ? undefined : normalizeDtype(options.dtype)
  dtype ??= await chooseDtype({
    backend: options.backend,
    modelType: config.modelType,
    listed: pkg.manifest?.dtypes,
    exists: (path) => pkg.exists(path),
    shaderF16: options.shaderF16 ?? false,
    source: pkg.source,
  })
  const files: string[] = []
  for (const path of [
    'config.json',
    'generation_config.json',
    'tokenizer.json',
    'tokenizer_config.json',
    'chat_template.jinja',
  ])
    if (await pkg.exists(path)) files.push(path)
  for (const file of layoutFiles(onnxLayout(config.modelType, dtype))) {
    files.push(file)
    for (let index = 0; index < 64; index++) {
      const shard = index === 0 ? `${file}_data` : `${file}_data_${index}`
      if (!(await pkg.exists(shard))) break
      files.push(shard)
    }
  }
  let totalBytes: number | undefined = 0
  for (const file of files) {
    const size = await pkg.size(file)
    totalBytes = size === undefined || totalBytes === undefined ? undefined : totalBytes + size
  }
  const cached = pkg.kind === 'folder' || (await options.store.isCached(pkg.source, files))
  // The store keeps the manifest's other fields as they came: the memory ones are checked here.
  let manifest: MemoryManifest | undefined = pkg.manifest
    ? parseMemoryFields({ estimatedMemoryBytes: {}, ...pkg.manifest })
    : undefined
  // A package without per-backend figures (a published export, one written before them): the
  // same memory model over its config and the sizes of the files this dtype needs, for the
  // context the builder plans with. Modelled on the builder's graphs; another exporter's may differ.
  // The graph is not read (its file may not be here): a one-graph model is assumed to compute
  // every prompt position's logits, as the builder's did before num_logits_to_keep, which
  // over-counts one that has the input and never under-counts.
  if (
    manifest?.estimatedMemory === undefined &&
    totalBytes !== undefined &&
    modelDtypes.includes(dtype as ModelDtype)
  ) {
    const sized = await Promise.all(files.map(async (path) => ({ path, bytes: (await pkg.size(path)) ?? 0 })))
    const contextLength = manifest?.contextLength ?? Math.min(config.maxPositionEmbeddings, 4096)
    manifest = manifestMemoryFields(config, [dtype as ModelDtype], sized, contextLength)
  }
  const estimate = manifest
    ? memoryFor(manifest, config.modelType, dtype, options.backend, options.contextLength)?.bytes
    : undefined
  // Every backend's figure, for the dtype each would pick from the manifest's list (no I/O).
  const memoryByBackend: Partial<Record<Backend, BackendMemory>> = {}
  const modelled = (pkg.manifest as MemoryManifest | undefined)?.estimatedMemory === undefined
  if (manifest?.estimatedMemory !== undefined)
    for (const backend of backends) {
      // Modelled here: only the dtype whose file sizes were read.
      const backendDtype = modelled
        ? dtype
        : options.dtype === undefined
          ? await chooseDtype({
              backend,
              modelType: config.modelType,
              listed: pkg.manifest?.dtypes,
              shaderF16: options.shaderF16 ?? false,
              source: pkg.source,
            }).catch(() => undefined)
          : dtype
      const figure =
        backendDtype === undefined
          ? undefined
          : memoryFor(manifest, config.modelType, backendDtype, backend, options.contextLength)
      if (figure) memoryByBackend[backend] = figure
    }
  // At the context the estimate is for: the stored one, or a shorter one the load caps it at.
  const storedContext = manifest?.contextLength ?? Math.min(config.maxPositionEmbeddings, 4096)
  const runs =
    options.backend === 'wasm' && !engineCovers(config.modelType, dtype) ? 'ort-wasm' : options.backend
  // Every runtime's sessions share the weights (the engine's, one instance's memory), so a
  // further session adds its cache and states (the engine's figure also counts a prompt chunk's
  // activations, which its sessions share: an estimate on the safe side).
  const sessionMemoryBytes = estimateSessionMemory(runs, {
    config,
    dtype,
    contextLength: Math.min(storedContext, options.contextLength ?? storedContext),
  })
  const name = (pkg.manifest as { name?: unknown } | undefined)?.name
  return {
    name: `${typeof name === 'string' ? name : (modelIdFromLocation(pkg.source) ?? 'model')} ${dtype}`,
    dtype,
    backend: options.backend,
    totalBytes,
    downloadBytes: cached ? 0 : (totalBytes ?? 0),
    ...(estimate === undefined ? {} : { estimatedMemoryBytes: estimate }),
    ...(estimate === undefined || sessionMemoryBytes === undefined ? {} : { sessionMemoryBytes }),
    ...(Object.keys(memoryByBackend).length > 0 ? { memoryByBackend } : {}),
    cached,
    requiresShaderF16: dtype === 'fp16' || dtype === 'q4f16',
    files,
  }
}
