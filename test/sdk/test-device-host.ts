// For the SDK's tests: a DeviceHost over core's deterministic test session and the real Qwen3
// tokenizer, with the knobs a router and handoff test needs (cached or not, download time,
// capabilities, failure at token k, a device that turns slow mid-answer). Node only.
import { createDeviceModel } from '../../client-runtime/device-host/index.ts'
import { BackendError } from '../../core/errors.ts'
import type { ModelSession } from '../../core/model-session.ts'
import type { Tokenizer } from '../../core/tokenizer.ts'
import type { DeviceHost, DownloadProgress } from '../../sdk/device.ts'
import type { DeviceCapabilities, PackageInfo } from '../../sdk/route.ts'
import { qwen3Tokenizer } from '../support/qwen3-tokenizer.ts'
import { createTestSession, type TestSessionOptions } from '../support/test-session.ts'
import { type BeforeAppend, isDecodeStep, watchAppends } from '../support/watch-appends.ts'

export interface TestDeviceHostOptions {
  /** Options of every session the host loads (delayMs, eos, ...). */
  readonly session?: TestSessionOptions
  /** Starts cached (default true). */
  readonly cached?: boolean
  /** Bytes a download takes, in 4 progress steps. */
  readonly downloadBytes?: number
  /** Milliseconds each download step takes. */
  readonly downloadStepMs?: number
  readonly capabilities?: Partial<DeviceCapabilities>
  readonly packageInfo?: Partial<PackageInfo>
  /** The answer's append call `failAtToken` and later ones throw a BackendError (0 = prefill, k = feeding token k). */
  readonly failAtToken?: number
  /** From this append call of the answer on, every append takes `slowDelayMs` (a device that throttles mid-answer). */
  readonly slowAfterCalls?: number
  readonly slowDelayMs?: number
  /** load() rejects with this error. */
  readonly loadError?: Error
  /** The loaded model's warnings (what the runtime's loadModel reports, e.g. a thread fallback). */
  readonly loadWarnings?: readonly string[]
  /** The model's tokenizer (default: Qwen3's; another chat template, a model without tool calls). */
  readonly tokenizer?: Tokenizer
}

export interface TestDeviceHost extends DeviceHost {
  readonly loads: number
  readonly cached: boolean
  readonly progress: readonly DownloadProgress[]
}

/** Vocabulary of the test sessions: the real tokenizer's, so the text decodes. */
export function testVocabularySize(): number {
  return qwen3Tokenizer().vocabularySize
}

export interface Faults {
  readonly failAtToken?: number
  readonly slowAfterCalls?: number
  readonly slowDelayMs?: number
}

/**
 * Wraps a session so faults count the answer's append calls only: the load-time probe (which
 * ends with reset()) runs clean, then call 0 is the prompt's prefill (all its chunks), call k
 * feeds token k.
 */
export function withFaults(session: ModelSession, faults: Faults): ModelSession {
  let probing = true
  let calls = 0
  const beforeAppend: BeforeAppend = async (tokenIds, options) => {
    if (probing) return
    if (isDecodeStep(tokenIds, options)) calls++
    if (faults.slowAfterCalls !== undefined && calls >= faults.slowAfterCalls) {
      await new Promise((resolve) => setTimeout(resolve, faults.slowDelayMs ?? 50))
    }
    if (faults.failAtToken !== undefined && calls >= faults.failAtToken) {
      throw new BackendError(
        'backend_failed',
        `The test device failed on purpose at append call ${calls} (like a lost WebGPU device).`,
        { isRetryable: true },
      )
    }
  }
  return watchAppends(session, beforeAppend, { onReset: () => (probing = false) })
}

export function createTestDeviceHost(options: TestDeviceHostOptions = {}): TestDeviceHost {
  let cached = options.cached ?? true
  let loads = 0
  const progress: DownloadProgress[] = []
  const downloadBytes = options.downloadBytes ?? 4_000_000
  const capabilities: DeviceCapabilities = {
    wasm: true,
    native: true,
    online: true,
    deviceMemoryBytes: 16 * 1024 ** 3,
    cores: 4,
    ...options.capabilities,
  }
  return {
    get loads() {
      return loads
    },
    get cached() {
      return cached
    },
    progress,
    async capabilities() {
      return capabilities
    },
    async inspect() {
      return {
        name: 'test package',
        dtype: 'fp32',
        downloadBytes: cached ? 0 : downloadBytes,
        estimatedMemoryBytes: 64 * 1024 ** 2,
        cached,
        ...options.packageInfo,
      }
    },
    async load(_model, loadOptions) {
      loads++
      if (options.loadError) throw options.loadError
      if (!cached) {
        for (let step = 1; step <= 4; step++) {
          await new Promise((resolve) => setTimeout(resolve, options.downloadStepMs ?? 5))
          const event: DownloadProgress = {
            phase: step === 4 ? 'done' : 'download',
            file: 'onnx/model.onnx',
            fileLoadedBytes: (downloadBytes * step) / 4,
            fileTotalBytes: downloadBytes,
            loadedBytes: (downloadBytes * step) / 4,
            totalBytes: downloadBytes,
          }
          progress.push(event)
          loadOptions.onProgress?.(event)
        }
        cached = true
      }
      const session = withFaults(
        createTestSession({ vocabularySize: testVocabularySize(), ...options.session }),
        options,
      )
      return createDeviceModel({
        session,
        tokenizer: options.tokenizer ?? qwen3Tokenizer(),
        probeTokens: 4,
        ...(options.loadWarnings === undefined ? {} : { warnings: options.loadWarnings }),
      })
    },
  }
}
