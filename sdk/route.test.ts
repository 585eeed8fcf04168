import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../core/errors.ts'
import {
  type DeviceCapabilities,
  decideRoute,
  defaultThresholds,
  type EdgeAvailability,
  formatBytes,
  type PackageInfo,
  type RouteDecision,
  type RoutePolicy,
  type RouteThresholds,
} from './route.ts'

const gb = 1024 ** 3
const mb = 1024 ** 2

const laptop: DeviceCapabilities = {
  webgpu: {
    available: true,
    features: ['shader-f16'],
    maxBufferSize: 2 * gb,
    maxStorageBufferBindingSize: 2 * gb,
  },
  wasm: true,
  deviceMemoryBytes: 8 * gb,
  cores: 8,
  storage: { quotaBytes: 50 * gb, usageBytes: 1 * gb },
  online: true,
}
const weakPhone: DeviceCapabilities = {
  webgpu: { available: false },
  wasm: true,
  deviceMemoryBytes: 2 * gb,
  cores: 4,
  online: true,
  probeTokensPerSecond: 3.2,
}
const cachedPackage: PackageInfo = {
  name: 'Qwen3.5-0.8B q4',
  dtype: 'q4',
  downloadBytes: 0,
  estimatedMemoryBytes: 1.1 * gb,
  cached: true,
}
const uncachedPackage: PackageInfo = { ...cachedPackage, cached: false, downloadBytes: 600 * mb }

interface Row {
  readonly name: string
  readonly capabilities: DeviceCapabilities
  readonly packageInfo: PackageInfo
  readonly policy: RoutePolicy
  readonly thresholds?: Partial<RouteThresholds>
  readonly edge?: EdgeAvailability
  /** Fields the decision must have (others are free). */
  readonly expected: Partial<RouteDecision>
  /** Substrings the reason must contain, so a person learns the real cause. */
  readonly because: readonly string[]
}

const table: readonly Row[] = [
  // prefer-device
  {
    name: 'prefer-device, capable and cached: device on WebGPU, edge as safety net',
    capabilities: laptop,
    packageInfo: cachedPackage,
    policy: 'prefer-device',
    expected: { route: 'device', backend: 'webgpu', fallback: 'edge' },
    because: ['the package is cached', 'on webgpu'],
  },
  {
    name: 'prefer-device, weak phone: edge, every cause named',
    capabilities: weakPhone,
    packageInfo: cachedPackage,
    policy: 'prefer-device',
    expected: { route: 'edge' },
    because: [
      'no WebGPU and 2 GiB deviceMemory × maxMemoryFraction 0.5 allows 1 GiB: the Qwen3.5-0.8B q4 package needs ~1.1 GiB, probe ran at 3.2 tok/s < 8 tok/s',
    ],
  },
  {
    name: 'prefer-device, not cached, download allowed: edge now and download in the background',
    capabilities: laptop,
    packageInfo: uncachedPackage,
    policy: 'prefer-device',
    expected: { route: 'edge', backgroundDownload: true, backend: 'webgpu', fallback: 'device' },
    because: ['not cached', 'background'],
  },
  {
    name: 'prefer-device, not cached, saveData: edge without a background download',
    capabilities: { ...laptop, saveData: true },
    packageInfo: uncachedPackage,
    policy: 'prefer-device',
    expected: { route: 'edge', backgroundDownload: undefined },
    because: ['saveData is on and allowMeteredDownload is false'],
  },
  {
    name: 'prefer-device, not cached, metered but allowed by threshold: background download',
    capabilities: { ...laptop, metered: true },
    packageInfo: uncachedPackage,
    policy: 'prefer-device',
    thresholds: { allowMeteredDownload: true },
    expected: { route: 'edge', backgroundDownload: true },
    because: ['background'],
  },
  {
    name: 'prefer-device, not cached, bigger than maxDownloadBytes: edge only',
    capabilities: laptop,
    packageInfo: uncachedPackage,
    policy: 'prefer-device',
    thresholds: { maxDownloadBytes: 100 * mb },
    expected: { route: 'edge', backgroundDownload: undefined },
    because: ['exceeds maxDownloadBytes (100 MiB)'],
  },
  {
    name: 'prefer-device, not cached, storage too small: edge',
    capabilities: { ...laptop, storage: { quotaBytes: 1 * gb, usageBytes: 0.8 * gb } },
    packageInfo: uncachedPackage,
    policy: 'prefer-device',
    expected: { route: 'edge' },
    because: ['of storage free, the package needs 600 MiB'],
  },
  {
    name: 'prefer-device, no edge, not cached: download first, then device',
    capabilities: laptop,
    packageInfo: uncachedPackage,
    policy: 'prefer-device',
    edge: { configured: false },
    expected: { route: 'device', downloadFirst: true, fallback: undefined },
    because: ['no edge is configured', 'downloading it first'],
  },
  {
    name: 'prefer-device, no edge, weak device: none with the cause',
    capabilities: weakPhone,
    packageInfo: cachedPackage,
    policy: 'prefer-device',
    edge: { configured: false },
    expected: { route: 'none' },
    because: ['probe ran at 3.2 tok/s < 8 tok/s', 'no edge is configured'],
  },
  {
    name: 'prefer-device, no edge, capable but slow: the device anyway, and the reason says so',
    capabilities: { ...laptop, probeTokensPerSecond: 2 },
    packageInfo: cachedPackage,
    policy: 'prefer-device',
    edge: { configured: false },
    expected: { route: 'device', fallback: undefined },
    because: [
      'no edge is configured, so the device answers even though it is slow',
      'probe ran at 2.0 tok/s < 8 tok/s',
    ],
  },
  {
    name: 'device-only, capable but slow: device (speed never vetoes device-only)',
    capabilities: { ...laptop, probeTokensPerSecond: 2 },
    packageInfo: cachedPackage,
    policy: 'device-only',
    expected: { route: 'device' },
    because: ['probe ran at 2.0 tok/s < 8 tok/s'],
  },
  {
    name: 'prefer-edge, edge unreachable, slow device: still the device',
    capabilities: { ...laptop, probeTokensPerSecond: 2 },
    packageInfo: cachedPackage,
    policy: 'prefer-edge',
    edge: { configured: true, reachable: false },
    expected: { route: 'device' },
    because: ['falling back to the device', '2.0 tok/s'],
  },
  {
    name: 'prefer-device, offline and cached: device with no network',
    capabilities: { ...laptop, online: false },
    packageInfo: cachedPackage,
    policy: 'prefer-device',
    expected: { route: 'device', fallback: undefined },
    because: ['offline: answering from what is kept on this device'],
  },
  {
    name: 'prefer-device, offline and not cached: none',
    capabilities: { ...laptop, online: false },
    packageInfo: uncachedPackage,
    policy: 'prefer-device',
    expected: { route: 'none' },
    because: ['offline and the package is not cached'],
  },
  {
    name: 'prefer-device, fast probe: device, speed stated',
    capabilities: { ...laptop, probeTokensPerSecond: 42 },
    packageInfo: cachedPackage,
    policy: 'prefer-device',
    expected: { route: 'device' },
    because: ['probe ran at 42.0 tok/s ≥ 8 tok/s'],
  },
  {
    name: 'prefer-device, probe under a raised threshold: edge',
    capabilities: { ...laptop, probeTokensPerSecond: 42 },
    packageInfo: cachedPackage,
    policy: 'prefer-device',
    thresholds: { minDeviceTokensPerSecond: 50 },
    expected: { route: 'edge' },
    because: ['probe ran at 42.0 tok/s < 50 tok/s'],
  },
  {
    name: 'prefer-device, fp16 package without shader-f16: WASM instead of WebGPU',
    capabilities: { ...laptop, webgpu: { available: true, features: [] } },
    packageInfo: { ...cachedPackage, requiresShaderF16: true },
    policy: 'prefer-device',
    expected: { route: 'device', backend: 'wasm' },
    because: ['WebGPU without shader-f16'],
  },
  {
    name: 'prefer-device, tensor larger than the GPU buffer limit: WASM',
    capabilities: { ...laptop, webgpu: { available: true, maxBufferSize: 256 * mb } },
    packageInfo: { ...cachedPackage, largestTensorBytes: 500 * mb },
    policy: 'prefer-device',
    expected: { route: 'device', backend: 'wasm' },
    because: ['WebGPU buffers limited to 256 MiB'],
  },
  {
    name: 'prefer-device, Node with onnxruntime-node: native',
    capabilities: { wasm: true, native: true, online: true, deviceMemoryBytes: 16 * gb },
    packageInfo: cachedPackage,
    policy: 'prefer-device',
    expected: { route: 'device', backend: 'native' },
    because: ['on native'],
  },
  {
    name: 'prefer-device, WASM only and a package over 4 GB: edge',
    capabilities: { wasm: true, online: true, deviceMemoryBytes: 64 * gb },
    packageInfo: { ...cachedPackage, name: 'Qwen3-8B fp16', estimatedMemoryBytes: 16 * gb },
    policy: 'prefer-device',
    expected: { route: 'edge' },
    because: ['WASM heap is limited to 4 GiB'],
  },
  {
    name: 'prefer-device, no backend at all: edge',
    capabilities: { wasm: false, online: true },
    packageInfo: cachedPackage,
    policy: 'prefer-device',
    expected: { route: 'edge' },
    because: ['no WebGPU and no WebAssembly'],
  },
  {
    name: 'prefer-device, edge unreachable and device weak: none',
    capabilities: weakPhone,
    packageInfo: cachedPackage,
    policy: 'prefer-device',
    edge: { configured: true, reachable: false },
    expected: { route: 'none' },
    because: ['the edge is unreachable'],
  },
  // device-only
  {
    name: 'device-only, capable and cached: device, no fallback',
    capabilities: laptop,
    packageInfo: cachedPackage,
    policy: 'device-only',
    expected: { route: 'device', fallback: undefined },
    because: ['policy device-only'],
  },
  {
    name: 'device-only, not cached: download first even though an edge exists',
    capabilities: laptop,
    packageInfo: uncachedPackage,
    policy: 'device-only',
    expected: { route: 'device', downloadFirst: true },
    because: ['downloading it first'],
  },
  {
    name: 'device-only, not cached on saveData: download anyway, said so',
    capabilities: { ...laptop, saveData: true },
    packageInfo: uncachedPackage,
    policy: 'device-only',
    expected: { route: 'device', downloadFirst: true },
    because: ['saveData is on', 'no other way to answer'],
  },
  {
    name: 'device-only, weak device: none',
    capabilities: weakPhone,
    packageInfo: cachedPackage,
    policy: 'device-only',
    expected: { route: 'none' },
    because: ['policy device-only', "can't run the package", '3.2 tok/s'],
  },
  {
    name: 'device-only, offline, not cached: none',
    capabilities: { ...laptop, online: false },
    packageInfo: uncachedPackage,
    policy: 'device-only',
    expected: { route: 'none' },
    because: ['offline and the package is not cached'],
  },
  // edge-only
  {
    name: 'edge-only with an edge: edge, no device fallback',
    capabilities: laptop,
    packageInfo: cachedPackage,
    policy: 'edge-only',
    expected: { route: 'edge', fallback: undefined, backgroundDownload: undefined },
    because: ['policy edge-only'],
  },
  {
    name: 'edge-only without an edge: none',
    capabilities: laptop,
    packageInfo: cachedPackage,
    policy: 'edge-only',
    edge: { configured: false },
    expected: { route: 'none' },
    because: ['no edge is configured', 'configure edge.url'],
  },
  {
    name: 'edge-only offline: none',
    capabilities: { ...laptop, online: false },
    packageInfo: cachedPackage,
    policy: 'edge-only',
    expected: { route: 'none' },
    because: ['offline'],
  },
  // prefer-edge
  {
    name: 'prefer-edge, edge up: edge with the device as fallback',
    capabilities: laptop,
    packageInfo: cachedPackage,
    policy: 'prefer-edge',
    expected: { route: 'edge', fallback: 'device' },
    because: ['policy prefer-edge'],
  },
  {
    name: 'prefer-edge, edge unreachable, cached: device',
    capabilities: laptop,
    packageInfo: cachedPackage,
    policy: 'prefer-edge',
    edge: { configured: true, reachable: false },
    expected: { route: 'device', backend: 'webgpu' },
    because: ['the edge is unreachable', 'falling back to the device'],
  },
  {
    name: 'prefer-edge, edge unreachable, not cached: download then device',
    capabilities: laptop,
    packageInfo: uncachedPackage,
    policy: 'prefer-edge',
    edge: { configured: true, reachable: false },
    expected: { route: 'device', downloadFirst: true },
    because: ['the edge is unreachable'],
  },
  {
    name: 'prefer-edge, edge unreachable, weak device: none',
    capabilities: weakPhone,
    packageInfo: cachedPackage,
    policy: 'prefer-edge',
    edge: { configured: true, reachable: false },
    expected: { route: 'none' },
    because: ['the edge is unreachable', '3.2 tok/s'],
  },
  {
    name: 'prefer-edge, offline, cached: device',
    capabilities: { ...laptop, online: false },
    packageInfo: cachedPackage,
    policy: 'prefer-edge',
    expected: { route: 'device' },
    because: ['offline'],
  },
]

describe('decideRoute', () => {
  it.each(table)('$name', (row) => {
    const decision = decideRoute(row.capabilities, row.packageInfo, row.policy, row.thresholds, row.edge)
    for (const [key, value] of Object.entries(row.expected)) {
      expect(decision[key as keyof RouteDecision], `${key} in ${JSON.stringify(decision)}`).toBe(value)
    }
    for (const phrase of row.because) expect(decision.reason).toContain(phrase)
    expect(decision.reason.length).toBeGreaterThan(10)
  })

  it('rejects an unknown policy, naming the field and the choices', () => {
    const call = () => decideRoute(laptop, cachedPackage, 'device-first' as RoutePolicy)
    expect(call).toThrow(InvalidArgumentError)
    expect(call).toThrow(/policy.*'prefer-device', 'device-only', 'edge-only', 'prefer-edge'/)
  })

  it('defaults to prefer-device', () => {
    expect(decideRoute(laptop, uncachedPackage).backgroundDownload).toBe(true)
  })

  it('formats bytes for people in binary units, named as such', () => {
    expect(formatBytes(1.1 * gb)).toBe('1.1 GiB')
    expect(formatBytes(600 * mb)).toBe('600 MiB')
    expect(formatBytes(2048)).toBe('2 KiB')
    expect(formatBytes(1_000_000)).toBe('977 KiB')
    expect(formatBytes(12)).toBe('12 B')
  })

  it('a memory refusal states the share of deviceMemory that made it fail', () => {
    // 16 GiB is plenty; maxMemoryFraction is what refuses the 72 MiB package.
    const decision = decideRoute(
      { ...laptop, deviceMemoryBytes: 16 * gb },
      { ...cachedPackage, estimatedMemoryBytes: 72 * mb },
      'prefer-device',
      { ...defaultThresholds, maxMemoryFraction: 0.001 },
      { configured: true, reachable: true },
    )
    expect(decision.route).toBe('edge')
    expect(decision.reason).toContain(
      '16 GiB deviceMemory × maxMemoryFraction 0.001 allows 16 MiB: the Qwen3.5-0.8B q4 package needs ~72 MiB',
    )
  })
})

describe('decideRoute: the memory figure of the backend it chooses', () => {
  const phone: DeviceCapabilities = {
    webgpu: { available: false },
    wasm: true,
    deviceMemoryBytes: 4 * gb,
    online: true,
  }
  const q8 = {
    ...cachedPackage,
    name: 'Qwen3.5-0.8B q8',
    dtype: 'q8',
    estimatedMemoryBytes: 1.4 * gb,
    memoryByBackend: {
      wasm: { dtype: 'q8', bytes: 1.4 * gb },
      'ort-wasm': { dtype: 'q8', bytes: 2.9 * gb },
      native: { dtype: 'q4', bytes: 1.1 * gb },
    },
  } satisfies PackageInfo

  it("runs the engine's 1.4 GiB on a 4 GiB phone, and refuses onnxruntime-web's 2.9 GiB there", () => {
    const engine = decideRoute(phone, q8, 'device-only')
    expect(engine.route).toBe('device')
    expect(engine.reason).toContain('fits ~1.4 GiB on wasm')
    const ortWeb = decideRoute(phone, { ...q8, backend: 'ort-wasm' }, 'device-only')
    expect(ortWeb.route).toBe('none')
    expect(ortWeb.reason).toContain('needs ~2.9 GiB on ort-wasm')
  })

  it('reads the native figure (and its dtype) when native runs', () => {
    const decision = decideRoute({ ...phone, native: true }, q8, 'device-only')
    expect(decision.backend).toBe('native')
    expect(decision.reason).toContain('fits ~1.1 GiB on native in q4')
  })
})

describe('decideRoute: a backend the app forced (ClientOptions.backend)', () => {
  const server: DeviceCapabilities = {
    webgpu: { available: false, reason: 'not in Node' },
    wasm: true,
    native: true,
    deviceMemoryBytes: 4 * gb,
    online: true,
  }
  const q4 = {
    ...cachedPackage,
    memoryByBackend: {
      wasm: { dtype: 'q4', bytes: 0.6 * gb },
      'ort-wasm': { dtype: 'q4', bytes: 2.9 * gb },
      native: { dtype: 'q4', bytes: 1.1 * gb },
    },
  } satisfies PackageInfo

  it('judges the device on the forced backend: its name and its memory figure, not the best one it has', () => {
    const engine = decideRoute(server, q4, 'device-only', {}, { configured: false }, { backend: 'wasm' })
    expect(engine).toMatchObject({ route: 'device', backend: 'wasm' })
    expect(engine.reason).toContain('running on wasm')
    expect(engine.reason).toContain('fits ~614 MiB on wasm')
    expect(engine.reason).not.toContain('native')
    const ortWeb = decideRoute(server, q4, 'device-only', {}, { configured: false }, { backend: 'ort-wasm' })
    expect(ortWeb.route).toBe('none')
    expect(ortWeb.reason).toContain('needs ~2.9 GiB on ort-wasm')
  })

  it('a forced backend the device lacks rules the device out, saying which and why', () => {
    const noNative = {
      ...server,
      native: false,
      nativeMissing:
        "onnxruntime-node is not available here (not installed): `npm install onnxruntime-node`, or use backend 'wasm'",
    }
    const toEdge = decideRoute(noNative, q4, 'prefer-device', {}, { configured: true }, { backend: 'native' })
    expect(toEdge.route).toBe('edge')
    expect(toEdge.reason).toContain(
      "backend 'native' was asked for, but onnxruntime-node is not available here (not installed): `npm install onnxruntime-node`",
    )
    const none = decideRoute(server, q4, 'device-only', {}, { configured: false }, { backend: 'webgpu' })
    expect(none.route).toBe('none')
    expect(none.reason).toContain("backend 'webgpu' was asked for, but no WebGPU (not in Node)")
  })

  it('refuses a backend it does not know, naming the field', () => {
    expect(() =>
      decideRoute(server, q4, 'device-only', {}, { configured: false }, { backend: 'cuda' as 'wasm' }),
    ).toThrow(InvalidArgumentError)
  })
})

describe('decideRoute: a software WebGPU adapter', () => {
  const swiftShader: DeviceCapabilities = {
    webgpu: {
      available: true,
      software: true,
      adapter: { vendor: 'google', architecture: 'swiftshader' },
      maxBufferSize: 2 * gb,
      maxStorageBufferBindingSize: 2 * gb,
    },
    wasm: true,
    deviceMemoryBytes: 8 * gb,
    online: true,
  }

  it('runs the engine instead, saying why; an app that forces webgpu still gets it', () => {
    const decision = decideRoute(swiftShader, cachedPackage, 'device-only')
    expect(decision).toMatchObject({ route: 'device', backend: 'wasm' })
    expect(decision.reason).toContain('WebGPU only through a software renderer (swiftshader)')
    const forced = decideRoute(
      swiftShader,
      cachedPackage,
      'device-only',
      {},
      { configured: false },
      { backend: 'webgpu' },
    )
    expect(forced).toMatchObject({ route: 'device', backend: 'webgpu' })
  })
})
