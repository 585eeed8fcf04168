// The engine's helper threads in a browser page or Web Worker: module Web Workers that
// instantiate engine-threads.wasm over the model's shared memory and take their share of each
// matrix product and of attention, with the same control block protocol as Node's worker_threads
// (./thread-pool.ts). Shared memory needs a cross-origin isolated page (COOP: same-origin and
// COEP: require-corp; `crossOriginIsolated`); elsewhere the engine runs on one thread and says why.
import { BackendError, InvalidArgumentError } from '../../core/errors.ts'
import { type EngineFetchOptions, loadThreadsEngineModuleForBrowser } from './browser.ts'
import type { Kernels } from './kernels.ts'
import type { EngineThreads } from './session.ts'
import type { EngineSimd } from './simd.ts'
import { controlWords, stopHelpersAt, ThreadPool } from './thread-pool.ts'
import type { BrowserHelperStart } from './thread-worker-browser.ts'

/** Each helper's shadow stack (the split kernels use little or none of it). */
const helperStackBytes = 64 * 1024
/**
 * How long the helpers may take to start (created, fetch their script, instantiate) before the
 * engine gives up on them and runs on one thread.
 */
const helperStartTimeoutMs = 30_000
/**
 * How long an unloaded model's helpers may take to say they left their loop (they wake from
 * Atomics.wait at once) before they are terminated instead of kept.
 */
const helperLeaveTimeoutMs = 2_000

/** What the page offers for threads. */
export interface BrowserThreadEnvironment {
  /** `crossOriginIsolated`: the page was served with COOP/COEP. */
  readonly isolated: boolean
  /**
   * SharedArrayBuffer exists here. An isolated page normally has it; WebKitGTK 2.50 (Debian 12's)
   * is isolated and has none, so the reason for one thread must not blame the page's headers.
   * Absent: taken as present.
   */
  readonly sharedArrayBuffer?: boolean
  /** `Worker` exists here (pages and dedicated workers; not every worklet or service worker). */
  readonly workers: boolean
  /** navigator.hardwareConcurrency. */
  readonly cores: number
}

export interface BrowserThreadPlan {
  readonly count: number
  readonly reason: string
  /**
   * For the load result: the caller asked for threads this page cannot give, or the default
   * threads are lost to a page that is not cross-origin isolated.
   */
  readonly warning?: string
}

/**
 * The default: one thread per core but one (the page, the model worker's own loop and the
 * browser need one), at most 2. Decode is bound by memory bandwidth, which two threads come close
 * to filling on phones and laptops; more threads than that mostly add waiting at each split. The
 * bits are the same for any count, so the default never changes an answer.
 */
export function defaultBrowserEngineThreads(cores: number): number {
  return Math.max(1, Math.min(2, Math.floor(cores) - 1))
}

/** This page's or worker's thread environment. */
export function browserThreadEnvironment(): BrowserThreadEnvironment {
  const globals = globalThis as {
    crossOriginIsolated?: boolean
    navigator?: { hardwareConcurrency?: number }
    Worker?: unknown
  }
  return {
    isolated: globals.crossOriginIsolated === true,
    sharedArrayBuffer: typeof SharedArrayBuffer === 'function',
    workers: typeof globals.Worker === 'function',
    cores: globals.navigator?.hardwareConcurrency ?? 1,
  }
}

/** What a page without cross-origin isolation does to get threads (onnxruntime-web's warning says it too). */
export const isolationHint =
  'serve the page with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp (the ondevice/vite plugin does on its dev and preview servers; docs/sdk.md)'

/** How many threads the engine runs here, and why. Throws on a numThreads that is not 1..64. */
export function planBrowserEngineThreads(
  requested: number | undefined,
  environment: BrowserThreadEnvironment,
): BrowserThreadPlan {
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 1 || requested > 64))
    throw new InvalidArgumentError(
      'numThreads',
      `numThreads must be an integer from 1 to 64, got ${String(requested)}.`,
    )
  const wanted = requested ?? defaultBrowserEngineThreads(environment.cores)
  const asked = requested === undefined ? 'default' : 'requested by the caller (numThreads)'
  if (wanted === 1)
    return {
      count: 1,
      reason:
        requested === undefined
          ? `default (one thread: ${environment.cores} core(s))`
          : 'requested by the caller (numThreads)',
    }
  const missing = !environment.isolated
    ? `the page is not cross-origin isolated, so there is no shared memory: ${isolationHint}`
    : environment.sharedArrayBuffer === false
      ? 'this browser has no SharedArrayBuffer although the page is cross-origin isolated (WebKitGTK builds without it), so there is no shared memory; nothing on the page can change that'
      : !environment.workers
        ? 'this context cannot start Web Workers'
        : undefined
  if (missing === undefined)
    return {
      count: wanted,
      reason: `${asked}: ${wanted} threads (${environment.cores} cores, cross-origin isolated)`,
    }
  const reason = `one thread: ${missing}`
  if (requested !== undefined)
    return {
      count: 1,
      reason,
      warning: `numThreads ${requested} asked for, the WebAssembly engine runs on one thread: ${missing}.`,
    }
  // Threads by default lost to missing headers: the app's own setup, which only it can fix, and
  // otherwise nothing would tell it (an app that forgot COOP/COEP in production ran at half speed
  // without a word). A browser without shared memory or workers is not the app's to fix: no warning.
  return environment.isolated
    ? { count: 1, reason }
    : {
        count: 1,
        reason,
        warning: `The WebAssembly engine runs on one thread where it would run ${wanted} on this device (${environment.cores} cores): ${missing}. Pass numThreads: 1 to run one thread without this warning.`,
      }
}

/**
 * `count` threads for createEngineSession (module Web Workers over shared memory); undefined for
 * 1. `simd` as loadEngineModuleForBrowser's (the helpers run the same build).
 */
export async function browserEngineThreads(
  count: number,
  simd?: EngineSimd,
  fetchOptions: EngineFetchOptions = {},
): Promise<EngineThreads | undefined> {
  if (!Number.isInteger(count) || count < 1 || count > 64)
    throw new InvalidArgumentError(
      'numThreads',
      `numThreads must be an integer from 1 to 64, got ${String(count)}.`,
    )
  if (count === 1) return undefined
  return browserHelperThreads(count, await loadThreadsEngineModuleForBrowser(simd, fetchOptions))
}

/**
 * Helpers sent nothing yet, kept for the next load in this page or worker instead of terminated:
 * those made ahead of a start that never came (a load that failed before it: a graph that is not
 * ONNX, the engine's own module not served), and those of an unloaded model that left their loop
 * cleanly. In Firefox 153 ESR inside a Web Worker, a `new Worker(...)` made shortly after
 * terminating helpers sometimes never returned, blocking the worker for good (docs/wasm-engine.md,
 * Threads); the next load takes these and makes none. At most one load's worth is kept (the
 * helpers the giving load had); they wait idle, holding no memory of the engine's, and go with
 * the page or worker.
 */
const spareHelpers: Worker[] = []

/** Keeps `worker` (sent nothing, or whose loop has ended) for the next load, or stops it. */
function keepOrStop(worker: Worker, keep: number): void {
  worker.onmessage = null
  worker.onmessageerror = null
  // One whose script failed would fail the next load too.
  if (earlyFailures.has(worker) || spareHelpers.length >= keep) {
    worker.onerror = null
    worker.terminate()
    return
  }
  // A failure while it waits is kept, and fails the load that takes it (startHelper).
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault()
    earlyFailures.set(worker, event.message || 'it failed while it waited for a start')
  }
  spareHelpers.push(worker)
}

/**
 * `count` threads whose helpers run `module` (engine-threads.wasm, or a stand-in in the tests),
 * created now (or taken from those an earlier load released) and started by the first `start`.
 */
export function browserHelperThreads(
  count: number,
  module: WebAssembly.Module,
  startOptions: Omit<BrowserThreadsStartOptions, 'workers'> = {},
): EngineThreads {
  // The helpers are created now, before the engine's shared memory and warm-up, and sent their
  // start later: in Firefox 153 ESR inside a Web Worker, a helper's `new Worker` made at start
  // time sometimes never returned (4 of 80 loads, the browser on one core), made here none of 80
  // did (docs/wasm-engine.md, Threads). Used by the first start; a later one (a new instance after
  // every session was disposed) takes spares or creates its own.
  let early: Worker[] | undefined = Array.from(
    { length: count - 1 },
    (_, position) => spareHelpers.shift() ?? newEarlyHelperWorker(position + 1),
  )
  return {
    count,
    module,
    start: (kernels) => {
      const workers = early
      early = undefined
      return startBrowserThreads(kernels, module, count, { ...startOptions, ...(workers ? { workers } : {}) })
    },
    release: () => {
      for (const worker of early ?? []) keepOrStop(worker, count - 1)
      early = undefined
    },
  }
}

/**
 * What went wrong with a helper created early before its start was under way (its script not
 * served fails it long before the weights are in): startHelper fails with it at once.
 */
const earlyFailures = new WeakMap<Worker, string>()

/** A helper created early, not yet sent anything, whose failure meanwhile is kept. */
function newEarlyHelperWorker(index: number): Worker {
  const worker = newHelperWorker(index)
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault()
    earlyFailures.set(worker, event.message || 'its script failed to load')
  }
  return worker
}

/** Helper thread `index` (1-based), not yet sent anything. */
function newHelperWorker(index: number): Worker {
  // Bundlers (Vite, webpack, esbuild) emit the helper as its own chunk only for this exact
  // pattern, `new Worker(new URL('./x.ts', import.meta.url), ...)` in one expression (a URL made
  // beforehand becomes a plain asset: the TypeScript source); the published package rewrites it
  // to the .js beside this file.
  return new Worker(new URL('./thread-worker-browser.ts', import.meta.url), {
    type: 'module',
    name: `ondevice-engine-thread-${index}`,
  })
}

/** Whether `worker` says it left its loop (the pool's stop word) within the bound. */
function helperLeft(worker: Worker): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), helperLeaveTimeoutMs)
    worker.onmessage = (event: MessageEvent) => {
      if (event.data !== 'left') return
      clearTimeout(timer)
      resolve(true)
    }
  })
}

function startHelper(
  message: BrowserHelperStart,
  created: Worker | undefined,
): { worker: Worker; started: Promise<void> } {
  const worker = created ?? newHelperWorker(message.index)
  const started = new Promise<void>((resolve, reject) => {
    const fail = (detail: string) =>
      reject(
        new BackendError(
          'backend_unavailable',
          `ondevice's engine thread ${message.index} did not start (${detail}). Serve the bundle's assets with the page (the helper is a script of its own beside the engine's .wasm; esbuild and Rollup emit it only as an entry of its own: bundle node_modules/ondevice/dist/wasm/engine/thread-worker-browser.js beside the page's script, docs/sdk.md "A web page"), or pass numThreads: 1.`,
        ),
      )
    worker.onmessage = (event: MessageEvent) => {
      const data = event.data as 'ready' | { error?: string }
      if (data === 'ready') resolve()
      else fail(`it could not instantiate the engine: ${data.error ?? 'unknown error'}`)
    }
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault()
      fail(event.message || 'its script failed to load')
    }
    worker.onmessageerror = () => fail('the shared memory could not be sent to it')
    const early = earlyFailures.get(worker)
    if (early !== undefined) fail(early)
  })
  worker.postMessage(message)
  return { worker, started }
}

/** How startBrowserThreads may be tuned (the tests shorten the start bound). */
export interface BrowserThreadsStartOptions {
  /** How long the helpers may take to start in all before the engine runs on one thread (default 30 s). */
  readonly startTimeoutMs?: number
  /** Helpers already created and sent nothing yet (browserEngineThreads's), used in order. */
  readonly workers?: readonly Worker[]
}

/**
 * Starts threads - 1 helpers for `kernels` (created over shared memory) and attaches the pool.
 * Helpers that have not all said 'ready' within the start bound are stopped and the engine runs
 * on this thread alone: resolves with the reason then (undefined when the pool runs). The bound is
 * armed before the first helper is created, so nothing in the start can wait without it: Firefox
 * 153 ESR, loading on 2 threads inside a Web Worker, sometimes never got there (docs/wasm-engine.md,
 * Threads).
 */
export async function startBrowserThreads(
  kernels: Kernels,
  module: WebAssembly.Module,
  threads: number,
  options: BrowserThreadsStartOptions = {},
): Promise<string | undefined> {
  if (threads <= 1) return undefined
  const timeoutMs = options.startTimeoutMs ?? helperStartTimeoutMs
  let timer: ReturnType<typeof setTimeout> | undefined
  const timedOut = new Promise<'timed out'>((resolve) => {
    timer = setTimeout(() => resolve('timed out'), timeoutMs)
  })
  const control = kernels.alloc(controlWords * 4, 64)
  const workers: Worker[] = []
  const stopAll = () => {
    // Before terminate(), which lands when the browser gets to it: a helper that instantiates
    // meanwhile finds the stop word and leaves its loop without touching the memory.
    stopHelpersAt(kernels.memory, control)
    for (const worker of new Set([...workers, ...(options.workers ?? [])])) {
      worker.onmessage = null
      worker.onerror = null
      worker.onmessageerror = null
      worker.terminate()
    }
  }
  let outcome: 'started' | 'timed out'
  try {
    const starting: Promise<void>[] = []
    for (let index = 1; index < threads; index++) {
      const stackTop = kernels.alloc(helperStackBytes, 16) + helperStackBytes
      // Made ahead (browserHelperThreads), else kept from an earlier load here, else made now.
      const { worker, started } = startHelper(
        { module, memory: kernels.memory, control, index, stackTop },
        options.workers?.[index - 1] ?? spareHelpers.shift(),
      )
      workers.push(worker)
      starting.push(started)
    }
    outcome = await Promise.race([Promise.all(starting).then(() => 'started' as const), timedOut])
  } catch (error) {
    stopAll()
    throw error
  } finally {
    clearTimeout(timer)
  }
  if (outcome === 'timed out') {
    stopAll()
    return `its ${threads - 1} helper thread(s) did not start within ${timeoutMs / 1000} s (stopped), so it runs without them; loading again may get them`
  }
  const pool = new ThreadPool(
    kernels.k as unknown as Record<string, unknown>,
    kernels.memory,
    control,
    threads,
    {
      helpers: workers,
      async stop() {
        // A pool that failed (a helper died, trapped or stalled) may have one still inside a
        // share: all of them go. Otherwise each was told to leave its loop and is kept once it
        // says so (keepOrStop), so that the next load here creates no Worker.
        const failed = pool.failure !== undefined
        await Promise.all(
          workers.map(async (worker) => {
            if (!failed && (await helperLeft(worker))) keepOrStop(worker, threads - 1)
            else {
              worker.onerror = null
              worker.terminate()
            }
          }),
        )
      },
    },
  )
  // A helper's uncaught exception (a kernel that trapped, out of memory) fails the pool; these
  // events reach this thread between passes, a pass under way notices through the control block
  // or its stall bound. A worker the browser stops without an event is caught by the stall bound.
  workers.forEach((worker, position) => {
    const thread = position + 1
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault()
      pool.helperFailed(thread, `failed: ${event.message || 'an error without a message'}`)
    }
    worker.onmessageerror = () => pool.helperFailed(thread, 'could not read a message')
  })
  kernels.pool = pool
  return undefined
}
