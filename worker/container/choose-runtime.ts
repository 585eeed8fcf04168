// EDGE_RUNTIME = "auto": a package answers in the isolate when its manifest's memory estimate for
// the weight format fits the isolate budget, else in a container: the engine's ('wasm', what the
// isolate runs) model part where the manifest has per-backend estimates, else its per-dtype
// figure. A package without an estimate is taken at its weights' size (every file under onnx/
// for that format).
import type { EdgeRuntime } from './settings.ts'

export interface RuntimeManifest {
  readonly dtypes?: readonly string[]
  readonly estimatedMemoryBytes?: Readonly<Record<string, number>>
  readonly estimatedMemory?: Readonly<Record<string, { readonly wasm?: { readonly modelBytes?: number } }>>
  readonly files?: Readonly<Record<string, { readonly size?: number }>>
}

export interface RuntimeChoice {
  readonly runtime: 'isolate' | 'container'
  /** Why, in words, for the log and /healthz. */
  readonly reason: string
}

/** The bytes a package needs in `dtype`, from its manifest; undefined when the manifest cannot say. */
export function estimatedBytes(manifest: RuntimeManifest, dtype: string): number | undefined {
  const model = manifest.estimatedMemory?.[dtype]?.wasm?.modelBytes
  if (typeof model === 'number') return model
  const estimate = manifest.estimatedMemoryBytes?.[dtype]
  if (typeof estimate === 'number') return estimate
  if (manifest.files === undefined) return undefined
  let total = 0
  const suffix = dtype === 'fp32' ? '' : `_${dtype}`
  for (const [path, entry] of Object.entries(manifest.files)) {
    const weights = path.startsWith('onnx/') && new RegExp(`${suffix}\\.onnx(_data(_\\d+)?)?$`).test(path)
    if (weights) total += entry.size ?? 0
  }
  return total > 0 ? total : undefined
}

export function chooseRuntime(
  setting: EdgeRuntime,
  manifest: RuntimeManifest | undefined,
  dtype: string,
  budgetBytes: number,
): RuntimeChoice {
  if (setting !== 'auto') return { runtime: setting, reason: `EDGE_RUNTIME is "${setting}"` }
  const bytes = manifest === undefined ? undefined : estimatedBytes(manifest, dtype)
  if (bytes === undefined) {
    return { runtime: 'isolate', reason: `the package states no size for ${dtype}: tried in the isolate` }
  }
  return bytes > budgetBytes
    ? {
        runtime: 'container',
        reason: `${dtype} needs ~${bytes} bytes, over the isolate budget of ${budgetBytes}`,
      }
    : {
        runtime: 'isolate',
        reason: `${dtype} needs ~${bytes} bytes, within the isolate budget of ${budgetBytes}`,
      }
}
