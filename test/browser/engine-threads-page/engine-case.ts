// One engine run in a browser context (the page or a module Web Worker): loadModel through the
// browser host with backend 'wasm' and the asked numThreads, a fixed prompt then single-token
// steps, and the SHA-256 of every logit row's bytes in order, which the test compares with
// Node's engine. Page and worker share this file.
import { browserHost } from '../../../client-runtime/browser-host.ts'
import { loadModelWith, type RuntimeHost } from '../../../client-runtime/load-model.ts'
import type { OndeviceError } from '../../../core/errors.ts'
import {
  loadEngineModuleForBrowser,
  loadThreadsEngineModuleForBrowser,
} from '../../../wasm/engine/browser.ts'
import type { EngineSession } from '../../../wasm/engine/session.ts'
import { type EngineSimd, hostHasRelaxedSimd } from '../../../wasm/engine/simd.ts'
import { browserEngineThreads, browserHelperThreads } from '../../../wasm/engine/threads-browser.ts'

export interface EngineCaseRequest {
  /** Absolute URL prefix of the package (where config.json is served). */
  readonly packageUrl: string
  readonly dtype: string
  /** numThreads for loadModel; undefined: the host's default. */
  readonly threads?: number
  /** Appended in one piece, then... */
  readonly prompt: readonly number[]
  /** ...one token at a time. */
  readonly steps: readonly number[]
  /** Forces the engine's build (default: relaxed SIMD where the browser validates it). */
  readonly simd?: EngineSimd
  /**
   * The helper threads are started with a module whose start function waits forever, so none
   * ever says 'ready' (as Firefox's nested helpers sometimes never did), under this start bound.
   */
  readonly helpersNeverStartMs?: number
  /** The load is meant to fail (a broken package): runEngineCases goes on to the next request. */
  readonly failureExpected?: boolean
  /** 'ort-wasm': onnxruntime-web's WASM instead of the engine (its files under /ort/). Default 'wasm'. */
  readonly backend?: 'wasm' | 'ort-wasm'
}

export interface EngineCaseResult {
  readonly sha256: string
  readonly rows: number
  readonly firstLogits: readonly number[]
  readonly backend: string
  readonly backendSetup: Readonly<Record<string, unknown>> | undefined
  readonly warnings: readonly string[]
  readonly crossOriginIsolated: boolean
  /** Whether this context validates relaxed SIMD (so the default ran engine-relaxed.wasm). */
  readonly relaxedSimd: boolean
  readonly milliseconds: number
}

/** browserHost with the engine's module (and its helpers') swapped for the `simd` build. */
function hostWithSimd(simd: EngineSimd): RuntimeHost {
  return {
    ...browserHost,
    loadEngine: async (options) => {
      const loaded = await browserHost.loadEngine!(options)
      const threads = loaded.threads && (await browserEngineThreads(loaded.threads.count, simd))
      return { ...loaded, module: await loadEngineModuleForBrowser(simd), ...(threads ? { threads } : {}) }
    },
  }
}

/**
 * A shared-memory module importing env.memory whose start function waits on address 0 forever
 * (memory.atomic.wait32 with no timeout, in a loop): a helper instantiating it never says 'ready'.
 */
const neverReadyModule = () =>
  new WebAssembly.Module(
    new Uint8Array([
      ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
      ...[0x01, 0x04, 0x01, 0x60, 0x00, 0x00], // type: () -> ()
      // import env.memory: shared, 1 page to 65536
      ...[0x02, 0x12, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79],
      ...[0x02, 0x03, 0x01, 0x80, 0x80, 0x04],
      ...[0x03, 0x02, 0x01, 0x00], // one function
      ...[0x08, 0x01, 0x00], // start: function 0
      // loop { drop(memory.atomic.wait32(0, i32.atomic.load(0), -1)) }
      ...[0x0a, 0x18, 0x01, 0x16, 0x00, 0x03, 0x40, 0x41, 0x00, 0x41, 0x00, 0xfe, 0x10, 0x02, 0x00],
      ...[0x42, 0x7f, 0xfe, 0x01, 0x02, 0x00, 0x1a, 0x0c, 0x00, 0x0b, 0x0b],
    ]),
  )

/** `host` whose helper threads never start (request.helpersNeverStartMs). */
function hostWithHelpersNeverStarting(host: RuntimeHost, startTimeoutMs: number): RuntimeHost {
  return {
    ...host,
    loadEngine: async (options) => {
      // The host on one thread makes no helper; ours are made where the host makes its own, ahead
      // of the start, and only once: Firefox's worker sometimes blocked for good inside a second
      // `new Worker` made right after the first was terminated (or in one made at start time),
      // where no start bound can end it. The engine itself runs the threaded build.
      const loaded = await host.loadEngine!({ ...options, numThreads: 1 })
      const count = options.numThreads ?? 2
      const never = browserHelperThreads(count, neverReadyModule(), { startTimeoutMs })
      return { ...loaded, threads: { ...never, module: await loadThreadsEngineModuleForBrowser() } }
    },
  }
}

/**
 * Runs each request in order in this context, each a load, its prompt and steps, then its
 * dispose (as an app that switches models, or loads again, does in the SDK's model worker).
 * `mark` hears where each load is, so a run that never ends says where it stopped.
 */
export async function runEngineCases(
  requests: readonly EngineCaseRequest[],
  mark: (phase: string) => void = () => undefined,
): Promise<EngineCaseOutcome[]> {
  const outcomes: EngineCaseOutcome[] = []
  for (const [index, request] of requests.entries()) {
    const run = runEngineCase(request, (phase) => mark(`load ${index + 1}: ${phase}`))
    outcomes.push(
      request.failureExpected
        ? await run.then(
            (result) => result,
            (error: unknown) => ({
              failed: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
            }),
          )
        : await run,
    )
  }
  return outcomes
}

/** A run's result, or what failed a load meant to fail. */
export type EngineCaseOutcome = EngineCaseResult | { readonly failed: string }

export async function runEngineCase(
  request: EngineCaseRequest,
  mark: (phase: string) => void = () => undefined,
): Promise<EngineCaseResult> {
  const started = performance.now()
  mark('loading')
  const host = request.simd ? hostWithSimd(request.simd) : browserHost
  const model = await loadModelWith(
    request.helpersNeverStartMs === undefined
      ? host
      : hostWithHelpersNeverStarting(host, request.helpersNeverStartMs),
    {
      model: request.packageUrl,
      backend: request.backend ?? 'wasm',
      dtype: request.dtype,
      ...(request.threads === undefined ? {} : { numThreads: request.threads }),
    },
  )
  mark('loaded')
  try {
    const rows = [await model.session.append([...request.prompt])]
    for (const token of request.steps) rows.push(await model.session.append([token]))
    mark('ran')
    const bytes = new Uint8Array(rows.reduce((sum, row) => sum + row.byteLength, 0))
    let offset = 0
    for (const row of rows) {
      bytes.set(new Uint8Array(row.buffer, row.byteOffset, row.byteLength), offset)
      offset += row.byteLength
    }
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))
    return {
      sha256: [...digest].map((byte) => byte.toString(16).padStart(2, '0')).join(''),
      rows: rows.length,
      firstLogits: [...(rows[0] ?? []).slice(0, 4)],
      backend: model.backend,
      backendSetup: model.backendSetup,
      warnings: model.warnings,
      crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
      relaxedSimd: hostHasRelaxedSimd(),
      milliseconds: performance.now() - started,
    }
  } finally {
    await model.dispose()
    mark('disposed')
  }
}

export interface HelperDeathResult {
  /** The error of the first append after the helper was stopped (undefined: none failed). */
  readonly error?: {
    readonly name: string
    readonly code: string
    readonly isRetryable: boolean
    readonly message: string
  }
  /** Steps that ran before it failed. */
  readonly stepsBeforeError: number
  /** Milliseconds from the failing append's start to its error. */
  readonly milliseconds: number
  /** The next append and reset() threw the very same error. */
  readonly sameErrorAfter: boolean
}

/**
 * Loads the model on `request.threads` threads, runs the prompt, stops helper thread 1 (as the
 * browser may stop a worker: no event reaches the page) and feeds the steps until one fails.
 */
export async function runHelperDeathCase(request: EngineCaseRequest): Promise<HelperDeathResult> {
  const model = await loadModelWith(browserHost, {
    model: request.packageUrl,
    backend: 'wasm',
    dtype: request.dtype,
    ...(request.threads === undefined ? {} : { numThreads: request.threads }),
  })
  try {
    await model.session.append([...request.prompt])
    const pool = (model.session as EngineSession).model.kernels.pool
    if (!pool) throw new Error('the engine runs without helper threads here')
    ;(pool.helpers[0] as Worker).terminate()
    // Chromium stops a worker that is busy in JavaScript (a helper always is, in its wait loop)
    // from a task of the parent's event loop 2 s later: let that task run, as a page streaming
    // tokens to its UI does between tokens.
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    let steps = 0
    for (const token of request.steps) {
      const started = performance.now()
      const error = await model.session.append([token]).then(
        () => undefined,
        (caught: unknown) => caught as OndeviceError,
      )
      if (error) {
        const milliseconds = performance.now() - started
        const next = await model.session.append([token]).catch((caught: unknown) => caught)
        const reset = await model.session.reset().catch((caught: unknown) => caught)
        return {
          error: {
            name: error.name,
            code: error.code,
            isRetryable: error.isRetryable,
            message: error.message,
          },
          stepsBeforeError: steps,
          milliseconds,
          sameErrorAfter: next === error && reset === error,
        }
      }
      steps++
    }
    return { stepsBeforeError: steps, milliseconds: 0, sameErrorAfter: false }
  } finally {
    await model.dispose()
  }
}
