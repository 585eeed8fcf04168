// What this device can do, as a plain object the SDK's router consumes: WebGPU (adapter,
// features, limits), memory, cores, storage, network state; and a short run on a loaded model
// that measures real decode speed, because capability flags alone don't predict success.
import { InvalidArgumentError } from '../core/errors.ts'
import type { ModelSession } from '../core/model-session.ts'
import type { Backend } from './dtype.ts'
import type { StorageEstimate } from './store/types.ts'

export interface WebGpuReport {
  readonly available: boolean
  readonly features?: readonly string[]
  readonly maxBufferSize?: number
  readonly maxStorageBufferBindingSize?: number
  readonly adapter?: {
    readonly vendor?: string
    readonly architecture?: string
    readonly description?: string
  }
  /** Why there is no adapter, in words. */
  readonly reason?: string
}

/** Field names match the SDK's DeviceCapabilities (sdk/route.ts), plus a few extras. */
export interface Capabilities {
  readonly host: 'browser' | 'worker' | 'node' | 'other'
  readonly webgpu: WebGpuReport
  readonly wasm: boolean
  /** onnxruntime-node loads (Node only). */
  readonly native?: boolean
  readonly deviceMemoryBytes?: number
  readonly cores?: number
  readonly storage?: { readonly quotaBytes: number; readonly usageBytes: number }
  readonly online: boolean
  readonly saveData?: boolean
  readonly metered?: boolean
  /** Threads for WASM need a cross-origin isolated page. */
  readonly crossOriginIsolated?: boolean
}

export interface ProbeOptions {
  /** Skip requesting a WebGPU adapter (it can take a while on some systems). */
  readonly skipWebGpu?: boolean
  /** A storage estimate to report (a store's `estimate()`); default: the host's own. */
  readonly estimate?: () => Promise<StorageEstimate>
}

interface NavigatorLike {
  readonly gpu?: { requestAdapter(options?: unknown): Promise<AdapterLike | null> }
  readonly deviceMemory?: number
  readonly hardwareConcurrency?: number
  readonly onLine?: boolean
  readonly connection?: { readonly saveData?: boolean; readonly type?: string; readonly metered?: boolean }
  readonly storage?: { estimate?(): Promise<{ quota?: number; usage?: number }> }
}

interface AdapterLike {
  readonly features: Iterable<string>
  readonly limits: { readonly maxBufferSize?: number; readonly maxStorageBufferBindingSize?: number }
  readonly info?: { readonly vendor?: string; readonly architecture?: string; readonly description?: string }
}

export async function probeCapabilities(options: ProbeOptions = {}): Promise<Capabilities> {
  const globals = globalThis as {
    navigator?: NavigatorLike
    process?: { versions?: { node?: string } }
    document?: unknown
    crossOriginIsolated?: boolean
    WebAssembly?: unknown
  }
  const isNode = typeof globals.process?.versions?.node === 'string'
  const host: Capabilities['host'] = isNode
    ? 'node'
    : globals.document !== undefined
      ? 'browser'
      : globals.navigator
        ? 'worker'
        : 'other'
  const navigator = globals.navigator
  const webgpu = options.skipWebGpu
    ? { available: false, reason: 'not probed' }
    : await probeWebGpu(navigator, isNode)
  let deviceMemoryBytes: number | undefined
  let cores: number | undefined
  let native: boolean | undefined
  let storage: Capabilities['storage']
  if (isNode) {
    // A computed specifier: browser bundlers must not follow this Node-only module.
    const nodeModule = './node-capabilities.ts'
    const node = (await import(/* @vite-ignore */ nodeModule)) as typeof import('./node-capabilities.ts')
    ;({ deviceMemoryBytes, cores, native } = await node.probeNodeCapabilities())
  } else {
    deviceMemoryBytes = navigator?.deviceMemory === undefined ? undefined : navigator.deviceMemory * 2 ** 30
    cores = navigator?.hardwareConcurrency
  }
  const estimate = options.estimate ? await options.estimate().catch(() => undefined) : undefined
  if (estimate?.quotaBytes !== undefined && estimate.usageBytes !== undefined) {
    storage = { quotaBytes: estimate.quotaBytes, usageBytes: estimate.usageBytes }
  } else if (!isNode && navigator?.storage?.estimate) {
    const result = await navigator.storage.estimate().catch(() => undefined)
    if (result?.quota !== undefined) storage = { quotaBytes: result.quota, usageBytes: result.usage ?? 0 }
  }
  const connection = navigator?.connection
  return {
    host,
    webgpu,
    wasm: typeof globals.WebAssembly === 'object',
    ...(native === undefined ? {} : { native }),
    ...(deviceMemoryBytes === undefined ? {} : { deviceMemoryBytes }),
    ...(cores === undefined ? {} : { cores }),
    ...(storage ? { storage } : {}),
    // Node has no onLine flag; a process that runs is assumed connected (a fetch says otherwise).
    online: navigator?.onLine ?? true,
    ...(connection?.saveData === undefined ? {} : { saveData: connection.saveData }),
    ...(connection?.metered !== undefined
      ? { metered: connection.metered }
      : connection?.type === 'cellular'
        ? { metered: true }
        : {}),
    ...(globals.crossOriginIsolated === undefined
      ? {}
      : { crossOriginIsolated: globals.crossOriginIsolated }),
  }
}

async function probeWebGpu(navigator: NavigatorLike | undefined, isNode: boolean): Promise<WebGpuReport> {
  if (!navigator?.gpu)
    return {
      available: false,
      reason: isNode
        ? 'Node has no WebGPU'
        : 'navigator.gpu is missing (browser without WebGPU, or not a secure context)',
    }
  try {
    const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' })
    if (!adapter) return { available: false, reason: 'no WebGPU adapter (blocklisted GPU or disabled)' }
    const info = adapter.info
    return {
      available: true,
      features: [...adapter.features].sort(),
      ...(adapter.limits.maxBufferSize === undefined ? {} : { maxBufferSize: adapter.limits.maxBufferSize }),
      ...(adapter.limits.maxStorageBufferBindingSize === undefined
        ? {}
        : { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize }),
      ...(info
        ? { adapter: { vendor: info.vendor, architecture: info.architecture, description: info.description } }
        : {}),
    }
  } catch (error) {
    return { available: false, reason: `requestAdapter failed: ${(error as Error).message}` }
  }
}

export interface DecodeSpeed {
  readonly tokensPerSecond: number
  readonly decodeTokens: number
  readonly prefillMs: number
  readonly backend: Backend | string
}

/**
 * A short real run: a small prefill, then `tokens` greedy decode steps, timed. The session is
 * reset before and after, so it leaves no trace in the cache.
 */
export async function measureDecodeSpeed(
  session: ModelSession,
  options: { tokens?: number; signal?: AbortSignal } = {},
): Promise<DecodeSpeed> {
  const tokens = options.tokens ?? 16
  if (!Number.isInteger(tokens) || tokens < 2 || tokens > 512)
    throw new InvalidArgumentError('tokens', 'tokens must be an integer from 2 to 512.')
  await session.reset()
  try {
    const prompt = [0, 1, 2, 3].map((id) => id % session.info.vocabularySize)
    const started = performance.now()
    let logits = await session.append(prompt, options)
    const prefillMs = performance.now() - started
    // The first decode step warms kernels up; time the rest.
    logits = await session.append([argmax(logits)], options)
    const decodeStarted = performance.now()
    for (let step = 1; step < tokens; step++) logits = await session.append([argmax(logits)], options)
    const seconds = (performance.now() - decodeStarted) / 1000
    return {
      tokensPerSecond: (tokens - 1) / Math.max(seconds, 1e-6),
      decodeTokens: tokens - 1,
      prefillMs,
      backend: session.info.backend,
    }
  } finally {
    await session.reset()
  }
}

function argmax(values: Float32Array): number {
  let best = 0
  for (let index = 1; index < values.length; index++)
    if ((values[index] as number) > (values[best] as number)) best = index
  return best
}
