// Planning: where the next request runs, decided without side effects from what the device can
// do (capabilities and the probe), the package's state, the policy and the edge's availability.
// The router (route.ts) is the pure decision; this gathers its inputs from the device host and
// covers the cases the router cannot see (no device host at all, a package that cannot be read).
import { AbortedError, type OndeviceError, toOndeviceError } from '../core/errors.ts'
import type { DeviceHost, DeviceLoadOptions } from './device.ts'
import {
  type DeviceCapabilities,
  decideRoute,
  type PackageInfo,
  type RouteDecision,
  type RoutePolicy,
  type RouteThresholds,
} from './route.ts'

export interface Plan {
  readonly decision: RouteDecision
  readonly capabilities?: DeviceCapabilities
  readonly packageInfo?: PackageInfo
  /** Why the device could not even be inspected (a bad package path), for the attempts list. */
  readonly deviceError?: OndeviceError
}

export interface PlannerOptions {
  readonly policy: RoutePolicy
  readonly model: string | undefined
  readonly deviceOptions: Pick<DeviceLoadOptions, 'backend' | 'dtype'>
  readonly thresholds: RouteThresholds
}

/** What the client knows of its device model right now. */
export interface DeviceState {
  /** The probe's decode speed, once the model was loaded. */
  readonly probeRate: number | undefined
  /** The model is loaded (so its package is on this device). */
  readonly loaded: boolean
  /** The last load failed a moment ago, and is tried again (in the background) after retryInMs. */
  readonly recentLoadFailure?: { readonly error: OndeviceError; readonly retryInMs: number }
  /**
   * The caller means to load the package (prepare()): a manifest.json not stored yet is retried
   * with the store's policy even while the edge could answer.
   */
  readonly loading?: boolean
  /**
   * The request's (or prepare()'s) signal: the look at the package stops with it, a wait through
   * manifest.json's retry pauses included (an AbortedError, not a fall-back to the edge).
   */
  readonly signal?: AbortSignal
}

export class Planner {
  readonly #host: Promise<DeviceHost | undefined>
  readonly #options: PlannerOptions
  #cachedPackage: PackageInfo | undefined

  constructor(host: Promise<DeviceHost | undefined>, options: PlannerOptions) {
    this.#host = host
    this.#options = options
  }

  /** Decides without side effects: capabilities, package state, policy. */
  async plan(
    edge: { readonly configured: boolean; readonly reachable: boolean; readonly leftOut?: string },
    device: DeviceState,
  ): Promise<Plan> {
    const { policy, thresholds } = this.#options
    let hostError: OndeviceError | undefined
    const host = await this.#host.catch((error: unknown) => {
      hostError = toOndeviceError(error, 'backend_unavailable')
      return undefined
    })
    if (!host) {
      if (hostError && (policy === 'device-only' || !edge.configured)) throw hostError
      const capabilities: DeviceCapabilities = { wasm: false, online: true }
      const packageInfo: PackageInfo = { name: 'the model', downloadBytes: 0, cached: false }
      const why = hostError
        ? `the on-device runtime failed to start (${hostError.message})`
        : 'no on-device runtime in this environment (a Worker or server)'
      const decision: RouteDecision =
        policy === 'edge-only'
          ? decideRoute(capabilities, packageInfo, policy, thresholds, { configured: edge.configured })
          : edge.configured
            ? { route: 'edge', reason: `${why}: answering from the edge` }
            : { route: 'none', reason: `${why} and no edge is configured` }
      return { decision, ...(hostError ? { deviceError: hostError } : {}) }
    }
    let capabilities = await host.capabilities()
    if (device.probeRate !== undefined)
      capabilities = { ...capabilities, probeTokensPerSecond: device.probeRate }
    // device-only answers however slow the device is: the probe only informs, it never vetoes.
    if (policy === 'device-only' && capabilities.probeTokensPerSecond !== undefined) {
      const { probeTokensPerSecond: _ignored, ...rest } = capabilities
      capabilities = rest
    }
    let packageInfo: PackageInfo
    try {
      // Once cached, a package stays cached: no need to ask the store (for a URL, the network) again.
      // While the edge could answer, a package never stored is asked for once: the store's retries
      // (seconds of pauses, a stall's idle timeout each) would hold up an answer the edge gives
      // now, and the load that follows (a background download, prepare()) retries on its own.
      const edgeCanAnswer =
        policy !== 'device-only' && edge.configured && edge.reachable && capabilities.online
      const once = edgeCanAnswer && device.loading !== true
      packageInfo =
        this.#cachedPackage ??
        (await host.inspect(this.#options.model, {
          ...this.#options.deviceOptions,
          ...(once ? { retryManifest: false } : {}),
          ...(device.signal === undefined ? {} : { signal: device.signal }),
        }))
      if (packageInfo.cached) this.#cachedPackage = packageInfo
    } catch (error) {
      // Stopped by the caller: not a package the device cannot use.
      if (device.signal?.aborted) throw new AbortedError(undefined, { cause: error })
      const deviceError = toOndeviceError(error, 'model_invalid')
      if (policy === 'device-only' || !edge.configured || !capabilities.online) throw deviceError
      // An edge left out (unreachable, busy: a 429, starting) is still asked: nothing else could
      // answer, as below. Thrown here, the device's error answered every request for the edge's
      // whole wait (up to 5 minutes), the edge free again or not.
      const leftOut = edge.reachable
        ? ''
        : ` (although ${edge.leftOut ?? 'the edge is unreachable'}: nothing else could answer)`
      return {
        decision: {
          route: 'edge',
          reason: `the device can't use the package (${deviceError.message}): answering from the edge${leftOut}`,
        },
        capabilities,
        deviceError,
      }
    }
    if (device.loaded && !packageInfo.cached) {
      packageInfo = { ...packageInfo, cached: true, downloadBytes: 0 }
      this.#cachedPackage = packageInfo
    }
    // A forced backend is what the device will load: judge the device on it.
    const forced = this.#options.deviceOptions.backend
    const routeOptions = forced === undefined ? {} : { backend: forced }
    let decision = decideRoute(capabilities, packageInfo, policy, thresholds, edge, routeOptions)
    // An edge remembered as unreachable is still tried when nothing else could answer.
    if (decision.route === 'none' && edge.configured && !edge.reachable) {
      decision = decideRoute(
        capabilities,
        packageInfo,
        policy,
        thresholds,
        { configured: true },
        routeOptions,
      )
    }
    // A device that just failed to load (its runtime files, its backend) would fail again: say
    // so, and let the edge answer until the load is retried in the background.
    const failure = device.recentLoadFailure
    // (Also when the package is not stored yet: the edge would answer "while it downloads", but
    // the load that failed is what stands in the way.)
    if (
      (decision.route === 'device' || (decision.route === 'edge' && decision.backgroundDownload === true)) &&
      failure &&
      policy !== 'device-only' &&
      edge.configured &&
      edge.reachable
    ) {
      decision = {
        route: 'edge',
        reason: `the device could not load the model (${failure.error.message}): answering from the edge; the load is retried in ${Math.ceil(failure.retryInMs / 1000)} s`,
        backgroundDownload: true,
        ...(decision.backend ? { backend: decision.backend } : {}),
        fallback: 'device',
      }
    }
    return { decision, capabilities, packageInfo }
  }
}
