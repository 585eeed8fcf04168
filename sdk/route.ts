// Where the next request runs, and why. A pure function of what the device can do, what the
// package needs, the developer's policy and thresholds, and whether an edge exists: no I/O, so
// every decision is reproducible in a table test and its reason can be shown to a person.
import type { PackageInfo } from '../client-runtime/inspect.ts'
import type { DeviceCapabilities } from '../client-runtime/probe.ts'
import { InvalidArgumentError } from '../core/errors.ts'

export type RoutePolicy = 'prefer-device' | 'device-only' | 'edge-only' | 'prefer-edge'

export const routePolicies: readonly RoutePolicy[] = [
  'prefer-device',
  'device-only',
  'edge-only',
  'prefer-edge',
]

export type DeviceBackend = 'webgpu' | 'wasm' | 'native'

/** A backend the app forced (ClientOptions.backend): 'ort-wasm' is onnxruntime-web's WASM. */
export type ForcedDeviceBackend = DeviceBackend | 'ort-wasm'

export interface RouteOptions {
  /**
   * The backend the app forced: the device is judged on it alone (its availability, its memory
   * figure), not on the best one the device has.
   */
  readonly backend?: ForcedDeviceBackend
}

// The router reads the runtime's own shapes: what the probe reports, what inspection finds.
export type { DeviceCapabilities, PackageInfo }

export interface RouteThresholds {
  /**
   * Below this decode speed the device is too slow. One measure on both sides of the answer: the
   * probe (the generation loop's decode rate on a short answer, measureDecodeSpeed) before it,
   * and the stall watch (the rate the device hands text over, the reader's own time left out,
   * over slowDecodeWindowTokens) during it.
   */
  readonly minDeviceTokensPerSecond: number
  /** Never download a package larger than this. */
  readonly maxDownloadBytes: number
  /** Download on a metered connection or with saveData on. */
  readonly allowMeteredDownload: boolean
  /** Part of the device's memory the model may take (browsers get only a share of it). */
  readonly maxMemoryFraction: number
  /** A stream slower than minDeviceTokensPerSecond over this many tokens hands off to the edge. */
  readonly slowDecodeWindowTokens: number
}

export const defaultThresholds: RouteThresholds = {
  minDeviceTokensPerSecond: 8,
  maxDownloadBytes: 2 * 1024 ** 3,
  allowMeteredDownload: false,
  maxMemoryFraction: 0.5,
  slowDecodeWindowTokens: 16,
}

export interface EdgeAvailability {
  /** The developer gave an edge URL. */
  readonly configured: boolean
  /** False once a request to it failed to connect (unknown = assume reachable). */
  readonly reachable?: boolean
  /**
   * Why it is left out while `reachable` is false, as the route's reason says it (default: 'the
   * edge is unreachable'; a busy edge that answered 429 is not unreachable).
   */
  readonly leftOut?: string
}

export interface RouteDecision {
  /** 'none' when neither side can answer: `reason` says why. */
  readonly route: 'device' | 'edge' | 'none'
  readonly reason: string
  /** Answer from the edge now and download the package meanwhile; the device takes over once verified. */
  readonly backgroundDownload?: boolean
  /** The device route must download the package first (no edge to answer meanwhile). */
  readonly downloadFirst?: boolean
  /** The device backend to use when route is 'device' (or when a background download is planned). */
  readonly backend?: ForcedDeviceBackend
  /** Where to go if the chosen route fails (before or during an answer). */
  readonly fallback?: 'device' | 'edge'
}

const gib = 1024 ** 3

/**
 * Bytes as a person reads them, in binary units said as such (1 KiB = 1024 bytes): "1.1 GiB",
 * "350 MiB". Binary because the numbers they sit beside are (deviceMemory is whole GiB, ORT's
 * heap limit is 4 GiB); naming them KiB/MiB/GiB keeps 1,000,000 bytes from reading as "977 KB".
 */
export function formatBytes(bytes: number): string {
  if (bytes >= gib) return `${trim(bytes / gib)} GiB`
  if (bytes >= 1024 ** 2) return `${trim(bytes / 1024 ** 2)} MiB`
  if (bytes >= 1024) return `${trim(bytes / 1024)} KiB`
  return `${bytes} B`
}

function trim(value: number): string {
  return value >= 10 ? value.toFixed(0) : value.toFixed(1).replace(/\.0$/, '')
}

interface DeviceAssessment {
  /** The device can run the package (ignoring whether it may download it now). */
  /** Nothing but speed stands in the way (see `slow`). */
  readonly canRun: boolean
  /** The probe ran slower than the threshold: in words. */
  readonly slow?: string
  readonly backend: ForcedDeviceBackend | undefined
  /** Why it can't, or notes on how it would run. */
  readonly problems: readonly string[]
  readonly facts: readonly string[]
  /** Download state when not cached: 'ok' | blocked for a reason. */
  readonly download: { readonly possible: boolean; readonly soft: boolean; readonly why?: string }
}

function assessDevice(
  capabilities: DeviceCapabilities,
  packageInfo: PackageInfo,
  thresholds: RouteThresholds,
  forced: ForcedDeviceBackend | undefined,
): DeviceAssessment {
  const problems: string[] = []
  const facts: string[] = []

  // Backend: WebGPU when its adapter can hold the package, else native (Node), else WASM; or the
  // one the app forced, if the device has it.
  let backend: ForcedDeviceBackend | undefined
  const gpu = capabilities.webgpu
  let gpuProblem: string | undefined
  if (gpu?.available) {
    const features = gpu.features ?? []
    const maxBuffer = Math.min(gpu.maxBufferSize ?? Infinity, gpu.maxStorageBufferBindingSize ?? Infinity)
    if (packageInfo.requiresShaderF16 && !features.includes('shader-f16')) {
      gpuProblem = 'WebGPU without shader-f16 (the package stores fp16 weights)'
    } else if (packageInfo.largestTensorBytes !== undefined && packageInfo.largestTensorBytes > maxBuffer) {
      gpuProblem = `WebGPU buffers limited to ${formatBytes(maxBuffer)} (largest tensor ${formatBytes(packageInfo.largestTensorBytes)})`
    } else if (gpu.software && forced !== 'webgpu') {
      // A CPU rasterizer behind WebGPU runs a model hundreds of times slower than the engine
      // (measured: 0.7 against 500+ tok/s on the default package); forcing 'webgpu' still gets it.
      const name = gpu.adapter?.architecture || gpu.adapter?.description || 'a fallback adapter'
      gpuProblem = `WebGPU only through a software renderer (${name})`
    } else {
      backend = 'webgpu'
    }
  } else {
    gpuProblem = gpu?.reason ? `no WebGPU (${gpu.reason})` : 'no WebGPU'
  }
  if (forced !== undefined) {
    const missing =
      forced === 'webgpu'
        ? backend === 'webgpu'
          ? undefined
          : gpuProblem
        : forced === 'native'
          ? capabilities.native
            ? undefined
            : // The words come from the Node-only probe: a page bundle never names that package.
              (capabilities.nativeMissing ?? 'this host has no native backend (Node only)')
          : capabilities.wasm
            ? undefined
            : 'no WebAssembly'
    backend = missing === undefined ? forced : undefined
    if (missing !== undefined) problems.push(`backend '${forced}' was asked for, but ${missing}`)
  } else {
    if (backend === undefined && capabilities.native) backend = 'native'
    if (backend === undefined && capabilities.wasm) backend = 'wasm'
    if (backend === undefined) {
      problems.push(`${gpuProblem ?? 'no WebGPU'} and no WebAssembly`)
    } else if (backend !== 'webgpu' && gpuProblem && capabilities.webgpu !== undefined) {
      facts.push(gpuProblem)
    }
    // Node without the optional peer dependency: say why it is WASM and how to get native
    // (the words come from the Node-only probe, so a page bundle never names that package).
    if (backend === 'wasm' && capabilities.nativeNote !== undefined) facts.push(capabilities.nativeNote)
  }

  // Memory: the estimate of the backend about to run (onnxruntime-web's WASM peaks at twice the
  // engine's on the same package) against the share of device memory a page may take; WASM also
  // has a 4 GiB heap. An app's own PackageInfo may give one figure for every backend.
  const memoryKey = backend === 'wasm' && packageInfo.backend === 'ort-wasm' ? ('ort-wasm' as const) : backend
  const own = memoryKey === undefined ? undefined : packageInfo.memoryByBackend?.[memoryKey]
  const needs = own?.bytes ?? packageInfo.estimatedMemoryBytes
  const on = own
    ? ` on ${memoryKey}${packageInfo.dtype !== undefined && own.dtype !== packageInfo.dtype ? ` in ${own.dtype}` : ''}`
    : ''
  if (needs !== undefined && capabilities.deviceMemoryBytes !== undefined) {
    const allowed = capabilities.deviceMemoryBytes * thresholds.maxMemoryFraction
    if (needs > allowed) {
      // The share, not only the total: "16 GiB deviceMemory" alone reads as plenty.
      problems.push(
        `${formatBytes(capabilities.deviceMemoryBytes)} deviceMemory × maxMemoryFraction ${thresholds.maxMemoryFraction} allows ${formatBytes(allowed)}: the ${packageInfo.name} package needs ~${formatBytes(needs)}${on}`,
      )
    } else {
      facts.push(
        `${formatBytes(capabilities.deviceMemoryBytes)} deviceMemory fits ~${formatBytes(needs)}${on}`,
      )
    }
  }
  if ((backend === 'wasm' || backend === 'ort-wasm') && needs !== undefined && needs > 4 * gib) {
    problems.push(
      `the WASM heap is limited to 4 GiB and the ${packageInfo.name} package needs ~${formatBytes(needs)}${on}`,
    )
  }

  // Speed: only a run on this device says; capability flags don't predict it. Slow is not
  // broken: it sends requests elsewhere only when there is an elsewhere.
  let slow: string | undefined
  if (capabilities.probeTokensPerSecond !== undefined) {
    const rate = capabilities.probeTokensPerSecond
    const min = thresholds.minDeviceTokensPerSecond
    if (rate < min) slow = `probe ran at ${rate.toFixed(1)} tok/s < ${min} tok/s`
    else facts.push(`probe ran at ${rate.toFixed(1)} tok/s ≥ ${min} tok/s`)
  }

  // Download: hard limits (offline, too big, no room) and the soft one (metered / saveData).
  let download: DeviceAssessment['download'] = { possible: true, soft: false }
  if (!packageInfo.cached) {
    const bytes = packageInfo.downloadBytes
    const free = capabilities.storage
      ? capabilities.storage.quotaBytes - capabilities.storage.usageBytes
      : undefined
    if (!capabilities.online) {
      download = { possible: false, soft: false, why: 'offline and the package is not cached' }
    } else if (bytes > thresholds.maxDownloadBytes) {
      download = {
        possible: false,
        soft: false,
        why: `the download (${formatBytes(bytes)}) exceeds maxDownloadBytes (${formatBytes(thresholds.maxDownloadBytes)})`,
      }
    } else if (free !== undefined && free < bytes) {
      download = {
        possible: false,
        soft: false,
        why: `${formatBytes(Math.max(0, free))} of storage free, the package needs ${formatBytes(bytes)}`,
      }
    } else if ((capabilities.saveData || capabilities.metered) && !thresholds.allowMeteredDownload) {
      const what = capabilities.saveData ? 'saveData is on' : 'the connection is metered'
      download = { possible: false, soft: true, why: `${what} and allowMeteredDownload is false` }
    }
  }
  return { canRun: problems.length === 0, backend, problems, facts, download, ...(slow ? { slow } : {}) }
}

function validatePolicy(policy: unknown): asserts policy is RoutePolicy {
  if (!routePolicies.includes(policy as RoutePolicy)) {
    throw new InvalidArgumentError(
      'policy',
      `Unknown policy ${JSON.stringify(policy)}: use one of ${routePolicies.map((p) => `'${p}'`).join(', ')}.`,
    )
  }
}

/**
 * Decides where the next request runs. Every decision carries a reason a person can read, e.g.
 * "no WebGPU and 2 GiB deviceMemory × maxMemoryFraction 0.5 allows 1 GiB: the Qwen3.5-0.8B q4 package needs ~1.1 GiB; probe ran at 3.2 tok/s < 8 tok/s".
 */
export function decideRoute(
  capabilities: DeviceCapabilities,
  packageInfo: PackageInfo,
  policy: RoutePolicy = 'prefer-device',
  thresholds: Partial<RouteThresholds> = {},
  edge: EdgeAvailability = { configured: true },
  options: RouteOptions = {},
): RouteDecision {
  validatePolicy(policy)
  const forced = options?.backend
  if (forced !== undefined && !['webgpu', 'wasm', 'ort-wasm', 'native'].includes(forced))
    throw new InvalidArgumentError(
      'backend',
      `backend must be one of 'webgpu', 'wasm', 'ort-wasm', 'native' (got ${JSON.stringify(forced)}).`,
    )
  const limits: RouteThresholds = { ...defaultThresholds, ...thresholds }
  const device = assessDevice(capabilities, packageInfo, limits, forced)
  const edgeUsable = edge.configured && capabilities.online && edge.reachable !== false
  const edgeWhy = !edge.configured
    ? 'no edge is configured'
    : !capabilities.online
      ? 'offline'
      : edge.reachable === false
        ? (edge.leftOut ?? 'the edge is unreachable')
        : 'the edge is available'

  // Why the device can't, as one clause (the missing backend first, then memory, then speed);
  // `deviceCannot` only for what rules it out, `deviceWhyNot` also when it is merely slow.
  const allProblems = device.slow ? [...device.problems, device.slow] : device.problems
  const deviceCannot = device.problems.length > 0 ? joinClauses(allProblems, device.facts) : undefined
  const deviceWhyNot = allProblems.length > 0 ? joinClauses(allProblems, device.facts) : undefined
  const running = device.backend ? ` on ${device.backend}` : ''
  const cachedWhy = packageInfo.cached
    ? 'the package is cached'
    : `the package (${formatBytes(packageInfo.downloadBytes)}) is not cached`
  const notes = device.slow ? [...device.facts, device.slow] : device.facts
  const factsSuffix = notes.length > 0 ? ` (${notes.join('; ')})` : ''

  const deviceNow = (prefix: string, fallback?: 'edge'): RouteDecision => ({
    route: 'device',
    reason: `${prefix}${cachedWhy}${running ? `; running${running}` : ''}${factsSuffix}${capabilities.online ? '' : '; offline: answering from what is kept on this device'}`,
    ...(device.backend ? { backend: device.backend } : {}),
    ...(fallback ? { fallback } : {}),
  })
  const deviceAfterDownload = (prefix: string, fallback?: 'edge'): RouteDecision => ({
    route: 'device',
    reason: `${prefix}${cachedWhy}: downloading it first, then running${running}${factsSuffix}${
      device.download.soft ? ` (${device.download.why}, but there is no other way to answer)` : ''
    }`,
    downloadFirst: true,
    ...(device.backend ? { backend: device.backend } : {}),
    ...(fallback ? { fallback } : {}),
  })
  const none = (reason: string): RouteDecision => ({ route: 'none', reason })

  switch (policy) {
    case 'edge-only':
      return edgeUsable
        ? { route: 'edge', reason: 'policy edge-only' }
        : none(`policy edge-only but ${edgeWhy}: configure edge.url or choose another policy`)

    case 'device-only': {
      if (deviceCannot)
        return none(`policy device-only but the device can't run the package: ${deviceCannot}`)
      if (packageInfo.cached) return deviceNow('policy device-only: ')
      if (!device.download.possible && !device.download.soft) {
        return none(`policy device-only but ${device.download.why}`)
      }
      return deviceAfterDownload('policy device-only: ')
    }

    case 'prefer-edge': {
      const deviceFallback =
        !deviceCannot && (packageInfo.cached || device.download.possible || device.download.soft)
      if (edgeUsable) {
        return {
          route: 'edge',
          reason: 'policy prefer-edge: the edge is available',
          ...(deviceFallback ? { fallback: 'device' as const } : {}),
        }
      }
      if (deviceCannot)
        return none(`policy prefer-edge: ${edgeWhy} and the device can't run the package: ${deviceCannot}`)
      if (packageInfo.cached)
        return deviceNow(`policy prefer-edge but ${edgeWhy}, falling back to the device: `)
      if (!device.download.possible && !device.download.soft) {
        return none(`policy prefer-edge: ${edgeWhy} and ${device.download.why}`)
      }
      return deviceAfterDownload(`policy prefer-edge but ${edgeWhy}, falling back to the device: `)
    }

    default: {
      // prefer-device: the device when it can, the edge while it can't yet, the edge as the safety net.
      const fallback = edgeUsable ? ('edge' as const) : undefined
      if (deviceWhyNot && edgeUsable)
        return { route: 'edge', reason: `${deviceWhyNot}: answering from the edge` }
      if (deviceCannot) return none(`the device can't run the package (${deviceCannot}) and ${edgeWhy}`)
      // Slow but working, and nowhere else to go: the device it is (the reason says it is slow).
      const prefix = device.slow ? `${edgeWhy}, so the device answers even though it is slow: ` : ''
      if (packageInfo.cached) return deviceNow(prefix, fallback)
      if (device.download.possible) {
        // Never make the user wait for a download while an edge can answer.
        return edgeUsable
          ? {
              route: 'edge',
              reason: `${cachedWhy}: answering from the edge while it downloads in the background`,
              backgroundDownload: true,
              ...(device.backend ? { backend: device.backend } : {}),
              fallback: 'device',
            }
          : deviceAfterDownload(`${edgeWhy}: `)
      }
      if (edgeUsable)
        return { route: 'edge', reason: `${cachedWhy} and ${device.download.why}: answering from the edge` }
      if (device.download.soft) return deviceAfterDownload(`${edgeWhy}: `)
      return none(`${cachedWhy}, ${device.download.why}, and ${edgeWhy}`)
    }
  }
}

function joinClauses(problems: readonly string[], facts: readonly string[]): string {
  // "no WebGPU and 2 GiB deviceMemory: ..." reads better than two sentences when the GPU note leads.
  const gpuFact = facts.find((fact) => fact.startsWith('no WebGPU') || fact.startsWith('WebGPU'))
  const [first, ...rest] = problems
  const head = gpuFact ? `${gpuFact} and ${first}` : first
  return [head, ...rest].join(', ')
}
