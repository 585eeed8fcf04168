// The engine fetch page: loads ondevice's engine module the way the browser host does (the
// relaxed-SIMD build here, Chromium), with an idle timeout and an AbortSignal, and says what came
// of it: the module's exports (and which deploy's .wasm it was), or the error's class, code, retryability and message.
import { OndeviceError } from '../../../core/errors.ts'
import { loadEngineModuleForBrowser } from '../../../wasm/engine/browser.ts'

export interface EngineFetchRequest {
  readonly idleTimeoutMs?: number
  /** Aborts the load's signal this long after it starts. */
  readonly abortAfterMs?: number
  /**
   * A load aborted as soon as it starts, and the next one started at once (React's StrictMode
   * mounts, unmounts and mounts again in one go): the result is the second load's.
   */
  readonly abortedLoadFirst?: boolean
}

export interface EngineFetchResult {
  /** The compiled module's export names (the engine's kernels) when it loaded. */
  readonly exports?: readonly string[]
  /**
   * The text of the module's `ondevice-test-deploy` custom section: the browser test marks the
   * .wasm of an earlier deploy with it, to tell which deploy's bytes compiled.
   */
  readonly deploy?: string
  readonly error?: { name: string; code: string; isRetryable: boolean; message: string }
  readonly milliseconds: number
}

async function loadEngine(request: EngineFetchRequest): Promise<EngineFetchResult> {
  const started = performance.now()
  const controller = new AbortController()
  if (request.abortAfterMs !== undefined) setTimeout(() => controller.abort(), request.abortAfterMs)
  try {
    if (request.abortedLoadFirst === true) {
      const first = new AbortController()
      void loadEngineModuleForBrowser(undefined, { signal: first.signal }).catch(() => undefined)
      first.abort()
    }
    const module = await loadEngineModuleForBrowser(undefined, {
      signal: controller.signal,
      ...(request.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: request.idleTimeoutMs }),
    })
    const exports = WebAssembly.Module.exports(module).map((entry) => entry.name)
    const [marker] = WebAssembly.Module.customSections(module, 'ondevice-test-deploy')
    return {
      exports,
      ...(marker ? { deploy: new TextDecoder().decode(marker) } : {}),
      milliseconds: performance.now() - started,
    }
  } catch (error) {
    const known = error instanceof OndeviceError
    return {
      error: {
        name: error instanceof Error ? error.name : 'unknown',
        code: known ? error.code : 'not an OndeviceError',
        isRetryable: known ? error.isRetryable : false,
        message: error instanceof Error ? error.message : String(error),
      },
      milliseconds: performance.now() - started,
    }
  }
}

;(window as unknown as { loadEngine: typeof loadEngine }).loadEngine = loadEngine
document.body.dataset.ready = 'true'
