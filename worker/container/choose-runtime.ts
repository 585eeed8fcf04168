// EDGE_RUNTIME = "auto": a package answers in the isolate when everything the isolate would hold
// for it fits the isolate's memory (Cloudflare: 128 MB, enforced in production only; wrangler dev
// does not), else in a container. What counts, from the package's manifest.json:
//   - the Worker itself: its code, Hono, the engine's instance (isolateBaseBytes);
//   - the tokenizer: its compact tables, kept (tokenizerRetainedFactor × tokenizer.json), and,
//     while it is built, the file's bytes and the builder's buffers (tokenizerBuildFactor);
//   - constrained output's vocabulary, which the host prepares at load (every token's bytes and
//     their trie, core/structured: constrainedOutputFactor × tokenizer.json);
//   - the model in the engine's linear memory (weights as held, KV cache and recurrent state for
//     the context, one prompt pass): the manifest's `estimatedMemory[dtype].wasm.modelBytes`,
//     scaled to MODEL_CONTEXT_LENGTH, for every weight format the isolate serves;
//   - while a format loads, what the isolate reads of its ONNX files: the engine streams weights
//     in checked ranges from a source that serves them (R2: only the small .onnx graphs are read
//     whole, plus a few MiB of buffers), one asset chunk at a time from static assets (whose
//     binding may answer no Range request), and whole files from a URL (whose server may ignore
//     Range) or for onnxruntime-web (which takes whole files).
// The tokenizer's build comes before the weights, so the peak is the larger of the two phases.
// Calibrated with `npm run bench:memory:workerd` and `npm run bench:memory:tokenizer`.
import { dtypeOfOnnxFile } from '../../core/model-package.ts'
import { engineCovers } from '../../wasm/engine/session.ts'
import type { EdgeRuntime } from './settings.ts'

/** Per-dtype memory figures and file list of manifest.json, as far as this reads them. */
export interface RuntimeManifest {
  readonly modelType?: string
  readonly dtypes?: readonly string[]
  readonly contextLength?: number
  readonly estimatedMemoryBytes?: Readonly<Record<string, number>>
  readonly estimatedMemory?: Readonly<
    Record<
      string,
      Readonly<Record<string, { readonly modelBytes?: number; readonly perTokenBytes?: number } | undefined>>
    >
  >
  /** manifest.json's file list ({ path, bytes }); a `{ path: { size } }` map is read too. */
  readonly files?:
    | readonly { readonly path?: string; readonly bytes?: number }[]
    | Readonly<Record<string, { readonly size?: number }>>
}

/** The memory of a Cloudflare Worker isolate (Workers' limits: 128 MB). */
export const isolateMemoryBytes = 128_000_000

/**
 * What the Worker holds before any package: its bundle's code and heap (Hono, the app, the
 * engine's JavaScript, onnxruntime-web's module) and the engine's instance. Measured under workerd
 * (`npm run bench:memory:workerd`, docs/worker.md).
 */
export const isolateBaseBytes = 16 * 2 ** 20

/** The built tokenizer (core/bpe's tables) per byte of tokenizer.json: Qwen3's 11.4 MB file keeps 6.9 MiB. */
export const tokenizerRetainedFactor = 0.65

/**
 * The peak of building the tokenizer above what it keeps, per byte of tokenizer.json: the file's
 * bytes and the builder's buffers (Qwen3: 15.6 MiB of peak resident memory besides the file).
 */
export const tokenizerBuildFactor = 2.5

/**
 * Constrained output's per-tokenizer preparation (core/structured: every token's bytes in one
 * table, the byte trie, the string scans) per byte of tokenizer.json: Qwen3's 151k tokens take
 * ~8.7 MiB (25 MiB while each token's bytes were an object of their own).
 */
export const constrainedOutputFactor = 0.8

/**
 * How the isolate's package source hands weight files to the engine (worker/verified-ranges.ts):
 * 'ranges' (R2: ranged gets), 'chunks' (static assets: Range, else one asset of at most 25 MiB
 * read whole at a time), 'whole' (a URL whose server may ignore Range: every file whole).
 */
export type WeightStreaming = 'ranges' | 'chunks' | 'whole'

/**
 * What a streamed load holds besides the graphs: the pieces of the ranged reads in flight (at most
 * four at once, each read's body going straight into the engine's memory), the blocks at a read's
 * ends assembled on the side (2 × 256 KiB), the blocks kept for the next small reads (1 MiB), the
 * block digests (32 bytes per 256 KiB), the verification pass's stream chunks, and the garbage of
 * the reads before (pieces the collector has not taken yet). `npm run bench:memory:workerd`
 * samples the isolate's peak while it loads.
 */
export const streamedLoadBytes = 8 * 2 ** 20

/** Workers' largest static asset: what the 'chunks' source may hold at once without Range. */
export const largestAssetBytes = 25 * 2 ** 20

/** What an isolate would hold for a package, part by part (bytes). */
export interface IsolateMemoryEstimate {
  /** The peak: base + tokenizer + the larger of the tokenizer's build and the model's load. */
  readonly bytes: number
  readonly parts: {
    readonly base: number
    readonly tokenizer: number
    readonly constrainedOutput: number
    readonly tokenizerBuild: number
    readonly model: number
    readonly weightFiles: number
  }
  /** Where the model figure comes from. */
  readonly source: 'engine estimate' | 'package estimate' | 'weight files'
  /** Whether `weightFiles` is a streamed load's (graphs and buffers) rather than whole files. */
  readonly streamed: boolean
}

export interface RuntimeChoice {
  readonly runtime: 'isolate' | 'container'
  /** Why, in words, for the log, /healthz and the refusal when no container is configured. */
  readonly reason: string
  readonly estimate?: IsolateMemoryEstimate
}

function fileEntries(manifest: RuntimeManifest): { path: string; bytes: number }[] {
  const files = manifest.files
  if (files === undefined) return []
  if (Array.isArray(files))
    return files.flatMap((file) =>
      typeof file?.path === 'string' && typeof file.bytes === 'number'
        ? [{ path: file.path, bytes: file.bytes }]
        : [],
    )
  return Object.entries(files as Readonly<Record<string, { readonly size?: number }>>).map(
    ([path, entry]) => ({
      path,
      bytes: typeof entry?.size === 'number' ? entry.size : 0,
    }),
  )
}

/** Bytes of the ONNX files of one weight format (graphs and external data, as the package names them). */
function weightFileBytes(manifest: RuntimeManifest, dtype: string): number {
  let total = 0
  for (const { path, bytes } of fileEntries(manifest)) {
    const graph = path.replace(/_data(_\d+)?$/, '')
    if (dtypeOfOnnxFile(graph) === dtype) total += bytes
  }
  return total
}

/**
 * What loading one format holds of its files at once: the whole files, or, where the engine
 * streams them, the graphs (read whole) and the streamed data's buffers (one asset chunk on top
 * for a source that may answer no Range).
 */
function loadingBytes(
  manifest: RuntimeManifest,
  dtype: string,
  streamed: boolean,
  streaming: WeightStreaming,
): number {
  if (!streamed || streaming === 'whole') return weightFileBytes(manifest, dtype)
  let graphs = 0
  let largestData = 0
  for (const { path, bytes } of fileEntries(manifest)) {
    const graph = path.replace(/_data(_\d+)?$/, '')
    if (dtypeOfOnnxFile(graph) !== dtype) continue
    if (graph === path) graphs += bytes
    else largestData = Math.max(largestData, bytes)
  }
  const chunk = streaming === 'chunks' ? Math.min(largestData, largestAssetBytes) : 0
  return graphs + chunk + streamedLoadBytes
}

/**
 * The model part for one format at `contextLength`, and where it came from. 'wasm' is the
 * engine's figure where the engine covers the architecture and dtype, else onnxruntime-web's
 * (what the isolate then runs, holding its weights ~2-3x).
 */
function modelPart(
  manifest: RuntimeManifest,
  dtype: string,
  backend: string,
  contextLength: number | undefined,
): { bytes: number; source: IsolateMemoryEstimate['source']; onEngine: boolean } | undefined {
  const perBackend = manifest.estimatedMemory?.[dtype]
  const onEngine =
    backend === 'wasm' && (manifest.modelType === undefined || engineCovers(manifest.modelType, dtype))
  const figure = onEngine ? (perBackend?.['wasm'] ?? perBackend?.['ort-wasm']) : perBackend?.['ort-wasm']
  if (typeof figure?.modelBytes === 'number') {
    const unused =
      contextLength !== undefined && manifest.contextLength !== undefined
        ? Math.max(0, manifest.contextLength - contextLength)
        : 0
    return {
      bytes: Math.max(0, figure.modelBytes - (figure.perTokenBytes ?? 0) * unused),
      source: 'engine estimate',
      onEngine,
    }
  }
  // Older packages: one figure per dtype, the runtime and the tokenizer included.
  const plain = manifest.estimatedMemoryBytes?.[dtype]
  if (typeof plain === 'number') return { bytes: plain, source: 'package estimate', onEngine }
  const weights = weightFileBytes(manifest, dtype)
  return weights > 0 ? { bytes: weights, source: 'weight files', onEngine } : undefined
}

/**
 * What an isolate would hold at its peak to serve `dtypes` on `backends` (MODEL_DTYPE and
 * MODEL_BACKEND: every pair is a format, the default first; each other one loads on the first
 * request that names it and stays), or undefined when the manifest states no size for one of them.
 */
export function estimateIsolateMemory(
  manifest: RuntimeManifest,
  dtypes: string | readonly string[],
  contextLength?: number,
  backends: readonly string[] = ['wasm'],
  streaming: WeightStreaming = 'whole',
): IsolateMemoryEstimate | undefined {
  const formats = typeof dtypes === 'string' ? [dtypes] : dtypes
  if (formats.length === 0) return undefined
  let model = 0
  let weightFiles = 0
  let streamed = streaming !== 'whole'
  let source: IsolateMemoryEstimate['source'] = 'engine estimate'
  for (const dtype of formats)
    for (const backend of backends.length > 0 ? backends : ['wasm']) {
      const part = modelPart(manifest, dtype, backend, contextLength)
      if (part === undefined) return undefined
      model += part.bytes
      weightFiles = Math.max(weightFiles, loadingBytes(manifest, dtype, part.onEngine, streaming))
      if (!part.onEngine) streamed = false
      if (part.source !== 'engine estimate') source = part.source
    }
  // An older package's one figure per dtype already holds the runtime and the tokenizer: only the
  // files read while loading come on top.
  const legacy = source === 'package estimate'
  const tokenizerFile = legacy
    ? 0
    : (fileEntries(manifest).find((file) => file.path === 'tokenizer.json')?.bytes ?? 0)
  const base = legacy ? 0 : isolateBaseBytes
  const tokenizer = Math.ceil(tokenizerFile * tokenizerRetainedFactor)
  const constrainedOutput = Math.ceil(tokenizerFile * constrainedOutputFactor)
  const tokenizerBuild = Math.ceil(tokenizerFile * tokenizerBuildFactor)
  const bytes = base + tokenizer + constrainedOutput + Math.max(tokenizerBuild, model + weightFiles)
  return {
    bytes,
    parts: { base, tokenizer, constrainedOutput, tokenizerBuild, model, weightFiles },
    source,
    streamed,
  }
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`

/** The estimate in words: "~97.3 MB (Worker 16.8 MB, tokenizer 7.4 MB, constrained output 25.1 MB, model 20.0 MB + 15.0 MB of weight files while loading; from ...)". */
export function describeIsolateMemory(estimate: IsolateMemoryEstimate): string {
  const { base, tokenizer, constrainedOutput, tokenizerBuild, model, weightFiles } = estimate.parts
  const files = estimate.streamed
    ? `${mb(weightFiles)} of graphs and buffers while the weights stream in`
    : `${mb(weightFiles)} of weight files while loading`
  if (estimate.source === 'package estimate')
    return `~${mb(estimate.bytes)} (the package's own figure ${mb(model)}, its runtime and tokenizer included, + ${files})`
  const load =
    tokenizerBuild > model + weightFiles
      ? `building the tokenizer ${mb(tokenizerBuild)}`
      : `model ${mb(model)} + ${files}`
  return `~${mb(estimate.bytes)} (Worker ${mb(base)}, tokenizer ${mb(tokenizer)}, constrained output ${mb(constrainedOutput)}, ${load}; from the ${estimate.source})`
}

export function chooseRuntime(
  setting: EdgeRuntime,
  manifest: RuntimeManifest | undefined,
  dtypes: string | readonly string[],
  limitBytes: number = isolateMemoryBytes,
  contextLength?: number,
  backends: readonly string[] = ['wasm'],
  streaming: WeightStreaming = 'whole',
): RuntimeChoice {
  if (setting !== 'auto') return { runtime: setting, reason: `EDGE_RUNTIME is "${setting}"` }
  const formats = typeof dtypes === 'string' ? dtypes : dtypes.join(' + ')
  const estimate =
    manifest === undefined
      ? undefined
      : estimateIsolateMemory(manifest, dtypes, contextLength, backends, streaming)
  if (estimate === undefined) {
    return { runtime: 'isolate', reason: `the package states no size for ${formats}: tried in the isolate` }
  }
  const needs = `${formats} needs ${describeIsolateMemory(estimate)}`
  return estimate.bytes > limitBytes
    ? { runtime: 'container', reason: `${needs}, over the isolate's ${mb(limitBytes)}`, estimate }
    : { runtime: 'isolate', reason: `${needs}, within the isolate's ${mb(limitBytes)}`, estimate }
}
