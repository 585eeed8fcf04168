// What this device can do, as a plain object the SDK's router consumes: WebGPU (adapter,
// features, limits), memory, cores, storage, network state. The short answer on a loaded model
// that measures real decode speed is decode-speed.ts's: it runs core's generation loop, which a
// page that reads capabilities (the Web Worker proxy does) must not load up front.
import { detectPlatform, type Platform } from './platform.ts'
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
  /**
   * The adapter renders in software on the CPU (a fallback adapter: SwiftShader, llvmpipe,
   * WARP), where the WebAssembly engine is far faster: the router does not pick it unasked.
   */
  readonly software?: boolean
  /** Why there is no adapter, in words. */
  readonly reason?: string
}

/**
 * What the device can do: the probe's report, and what the SDK's router reads (`decideRoute`
 * takes it as is). Only the flags are required, so an app can ask the router about a device it
 * describes itself; `probeCapabilities()` fills every field it can measure.
 */
export interface DeviceCapabilities {
  /** Where this runs (detectPlatform). */
  readonly host?: Platform
  /** WebGPU: whether an adapter was found, its features and the limits that bound weight buffers. */
  readonly webgpu?: WebGpuReport
  /** WebAssembly can run ORT here (true in every current browser, Node and workerd). */
  readonly wasm: boolean
  /** onnxruntime-node loads (Node only). */
  readonly native?: boolean
  /** Node without onnxruntime-node: why, and how to add it (the route's reason repeats it). */
  readonly nativeNote?: string
  /** The same, worded for an app that forced backend 'native' (the route's refusal says it). */
  readonly nativeMissing?: string
  /** Memory the device has, in bytes (navigator.deviceMemory × 2³⁰ in browsers, os.totalmem() in Node). */
  readonly deviceMemoryBytes?: number
  /** Logical CPU cores (navigator.hardwareConcurrency / os.availableParallelism()). */
  readonly cores?: number
  /** Storage estimate (the store's, else navigator.storage.estimate()). */
  readonly storage?: { readonly quotaBytes: number; readonly usageBytes: number }
  readonly online: boolean
  /** The user asked to save data (navigator.connection.saveData). */
  readonly saveData?: boolean
  /** The connection is metered (cellular), where known. */
  readonly metered?: boolean
  /** Threads for WASM need a cross-origin isolated page. */
  readonly crossOriginIsolated?: boolean
  /**
   * Decode speed of the generation loop on the loaded model (`measureDecodeSpeed`), once a model
   * is loaded: the one figure the router and the stall watch compare with minDeviceTokensPerSecond.
   */
  readonly probeTokensPerSecond?: number
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
  readonly info?: {
    readonly vendor?: string
    readonly architecture?: string
    readonly description?: string
    readonly isFallbackAdapter?: boolean
  }
  /** Before GPUAdapterInfo had it (Chromium < 131). */
  readonly isFallbackAdapter?: boolean
}

/**
 * Whether a host picks WebGPU when the app names no backend: an adapter, and not a software one
 * (the router's rule too, sdk/route.ts, which weighs the package's needs besides).
 */
export function hardwareWebGpu(report: WebGpuReport | undefined): boolean {
  return report?.available === true && report.software !== true
}

/** Names software renderers report as their architecture or description. */
const softwareRenderer = /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|\bwarp\b/i

/** Measures every field but the model's speed (that needs a loaded model: measureDecodeSpeed). */
export async function probeCapabilities(
  options: ProbeOptions = {},
): Promise<DeviceCapabilities & { readonly host: Platform; readonly webgpu: WebGpuReport }> {
  const globals = globalThis as {
    navigator?: NavigatorLike
    crossOriginIsolated?: boolean
    WebAssembly?: unknown
  }
  const host = detectPlatform()
  const isNode = host === 'node'
  const navigator = globals.navigator
  const webgpu = options.skipWebGpu
    ? { available: false, reason: 'not probed' }
    : await probeWebGpu(navigator, isNode)
  let deviceMemoryBytes: number | undefined
  let cores: number | undefined
  let native: boolean | undefined
  let nativeNote: string | undefined
  let nativeMissing: string | undefined
  let storage: DeviceCapabilities['storage']
  if (isNode) {
    // '#runtime-node' is node-platform.ts under the 'node' condition only: browser bundles never
    // contain this Node-only module (package.json "imports").
    const node = await import('#runtime-node')
    ;({ deviceMemoryBytes, cores, native, nativeNote, nativeMissing } = await node.probeNodeCapabilities())
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
    ...(nativeNote === undefined ? {} : { nativeNote }),
    ...(nativeMissing === undefined ? {} : { nativeMissing }),
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
    const software =
      info?.isFallbackAdapter === true ||
      adapter.isFallbackAdapter === true ||
      softwareRenderer.test(`${info?.vendor ?? ''} ${info?.architecture ?? ''} ${info?.description ?? ''}`)
    return {
      available: true,
      ...(software ? { software } : {}),
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
