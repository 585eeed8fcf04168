// The client's one device model: loaded (downloading first if needed) and probed once, shared by
// concurrent callers, dropped after it failed mid-answer so the next request loads it again, and
// downloaded in the background while the edge answers (a failed background download waits a
// while before it is tried again).
import { AbortedError, OndeviceError, toOndeviceError } from '../core/errors.ts'
import type { DeviceHost, DeviceLoadOptions, DeviceModel, DownloadProgress } from './device.ts'

type Backend = NonNullable<DeviceLoadOptions['backend']>

const backgroundRetryDelayMs = 60_000

/**
 * How long after a failed load the device is tried again: a minute, or longer when the package's
 * server said when to come back (a 429/503's Retry-After, on the store's error), at most an hour.
 */
function retryDelayMsAfter(error: OndeviceError): number {
  return Math.max(backgroundRetryDelayMs, Math.min(error.retryAfterSeconds ?? 0, 3_600) * 1_000)
}

export interface DeviceSlotHooks {
  /** Every download progress event, whoever started the load. */
  onProgress(progress: DownloadProgress): void
  /** The model is loaded and probed. */
  onReady(ready: {
    readonly backend: string
    readonly dtype: string
    readonly probeTokensPerSecond: number
    readonly warnings: readonly string[]
  }): void
  /** A background download or load failed. */
  onBackgroundError(error: OndeviceError): void
}

export class DeviceSlot {
  readonly #host: Promise<DeviceHost | undefined>
  readonly #model: string | undefined
  readonly #options: Pick<DeviceLoadOptions, 'backend' | 'dtype' | 'numThreads'>
  readonly #hooks: DeviceSlotHooks
  readonly #lifetime = new AbortController()
  #loading: Promise<DeviceModel> | undefined
  #loaded: DeviceModel | undefined
  #probeRate: number | undefined
  #downloading: Promise<DeviceModel> | undefined
  #backgroundRetryAt = 0
  #disposed = false
  /** The router's backend (follow()), where the app forced none. */
  #planned: Backend | undefined
  /**
   * The last load's failure (cleared by a load that succeeds). Its time, like #backgroundRetryAt,
   * is performance.now: a wall clock set back a day kept the device off for a day.
   */
  #failure: { readonly error: OndeviceError; readonly at: number } | undefined

  constructor(
    host: Promise<DeviceHost | undefined>,
    model: string | undefined,
    options: Pick<DeviceLoadOptions, 'backend' | 'dtype' | 'numThreads'>,
    hooks: DeviceSlotHooks,
  ) {
    this.#host = host
    this.#model = model
    this.#options = options
    this.#hooks = hooks
  }

  /**
   * The backend the router chose, for a load that the app's options leave open: the router
   * weighs what the host's default does not (WebGPU buffer limits, shader-f16, memory per
   * backend), so the device runs what the decision's reason says. A load under way keeps its own.
   */
  follow(backend: Backend): void {
    if (this.#options.backend === undefined && this.#loading === undefined) this.#planned = backend
  }

  /** The model, once loaded and probed. */
  get loaded(): DeviceModel | undefined {
    return this.#loaded
  }

  /** Decode speed the probe measured, once it ran. */
  get probeRate(): number | undefined {
    return this.#probeRate
  }

  /**
   * The last load's failure while it is recent (within the background retry delay): where the
   * next request should not expect the device, and why. Aborts (dispose, a caller's signal) are
   * no failure of the device.
   */
  get recentFailure(): { readonly error: OndeviceError; readonly retryInMs: number } | undefined {
    if (!this.#failure || this.#loaded) return undefined
    const retryInMs = this.#failure.at + retryDelayMsAfter(this.#failure.error) - performance.now()
    return retryInMs > 0 ? { error: this.#failure.error, retryInMs } : undefined
  }

  /** A download (and load) is running. */
  get downloading(): boolean {
    return this.#downloading !== undefined && this.#loaded === undefined
  }

  /** The onProgress of each load() call still waiting for the model. */
  readonly #progressListeners = new Set<(progress: DownloadProgress) => void>()

  /** Loads (downloading first if needed) and probes the device model once; concurrent callers share it. */
  load(onProgress?: (progress: DownloadProgress) => void, signal?: AbortSignal): Promise<DeviceModel> {
    if (this.#disposed) {
      return Promise.reject(new OndeviceError('aborted', 'The client was disposed: nothing is loaded.'))
    }
    if (!this.#loading) {
      const load = (async () => {
        const host = await this.#host
        if (!host) throw new OndeviceError('backend_unavailable', 'No on-device runtime in this environment.')
        const model = await host.load(this.#model, {
          ...this.#options,
          ...(this.#options.backend === undefined && this.#planned !== undefined
            ? { backend: this.#planned }
            : {}),
          onProgress: (progress) => {
            this.#hooks.onProgress(progress)
            for (const listener of [...this.#progressListeners]) {
              try {
                listener(progress)
              } catch (error) {
                // The app's callback: a bug in a progress bar must not fail the download that
                // every waiting caller (and the background route) shares.
                console.error('ondevice: a prepare() onProgress callback threw', error)
              }
            }
          },
          signal: this.#lifetime.signal,
        })
        if (this.#disposed) {
          await model.dispose()
          throw new OndeviceError('aborted', 'The client was disposed while the model loaded.')
        }
        // Capability flags don't predict speed: a short run on this device does.
        this.#probeRate = await model.probe(this.#lifetime.signal)
        this.#loaded = model
        this.#hooks.onReady({
          backend: model.backend,
          dtype: model.dtype,
          probeTokensPerSecond: this.#probeRate,
          warnings: model.warnings ?? [],
        })
        return model
      })()
      this.#loading = load
      this.#downloading = load
      load.then(
        () => {
          this.#downloading = undefined
          this.#failure = undefined
        },
        (cause: unknown) => {
          // A failed load must not stick: the next request (or prepare) tries again.
          if (this.#loading === load) this.#loading = undefined
          this.#downloading = undefined
          const error = toOndeviceError(cause, 'backend_unavailable')
          if (error.code !== 'aborted' && !this.#disposed) this.#failure = { error, at: performance.now() }
        },
      )
    }
    const model = this.#loading
    if (onProgress === undefined) return this.#wait(model, signal)
    // Every caller that waits hears the shared download (a second prepare() heard nothing).
    const listener = (progress: DownloadProgress): void => onProgress(progress)
    this.#progressListeners.add(listener)
    const wait = this.#wait(model, signal)
    wait.then(
      () => this.#progressListeners.delete(listener),
      () => this.#progressListeners.delete(listener),
    )
    return wait
  }

  #wait(model: Promise<DeviceModel>, signal: AbortSignal | undefined): Promise<DeviceModel> {
    if (!signal) return model
    if (signal.aborted) return Promise.reject(new AbortedError())
    // The listener leaves with the wait: an app that passes one long-lived signal to many calls
    // must not collect a listener per call.
    let onAbort: (() => void) | undefined
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new AbortedError())
      signal.addEventListener('abort', onAbort, { once: true })
    })
    return Promise.race([model, aborted]).finally(() => signal.removeEventListener('abort', onAbort!))
  }

  /** Drops a model that failed mid-answer (device lost, out of memory): the next request reloads it. */
  async drop(): Promise<void> {
    const model = this.#loaded
    this.#loaded = undefined
    this.#loading = undefined
    this.#probeRate = undefined
    await model?.dispose().catch(() => {})
  }

  /** Starts loading in the background, unless a load runs or a failed one is still recent. */
  startBackgroundDownload(): void {
    if (this.#loading || performance.now() < this.#backgroundRetryAt || this.recentFailure) return
    this.load().catch((error: unknown) => {
      const failure = toOndeviceError(error, 'download_failed')
      this.#backgroundRetryAt = performance.now() + retryDelayMsAfter(failure)
      this.#hooks.onBackgroundError(failure)
    })
  }

  /** Stops a running load and frees the model. */
  async dispose(): Promise<void> {
    this.#disposed = true
    this.#lifetime.abort()
    const model = this.#loading
    this.#loading = undefined
    this.#loaded = undefined
    await model?.then((loaded) => loaded.dispose()).catch(() => {})
  }
}
