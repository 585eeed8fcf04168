// Group 7's Chromium rows, the page side: ondevice's engine (engine.wasm, and engine-threads.wasm
// with helper Web Workers for 2 threads) or onnxruntime-web's WASM, on a package served by the
// bench's static server (cross-origin isolated), through the same ModelSession interface. One
// visit loads one contender, warms up, then measures greedy decode after a short prompt and the
// time to the first token of a long one, `rounds` times. The greedy loop is the same for both
// (argmax over the logits, EOS ignored), so the figures compare the sessions alone.
import { createOrtSession, type OrtModule } from '../../../../client-runtime/ort-session.ts'
import type { PackageReader } from '../../../../client-runtime/package-reader.ts'
import type { ModelSession } from '../../../../core/model-session.ts'
import { loadOrtWebForBrowser } from '../../../../wasm/browser.ts'
import { loadEngineModuleForBrowser } from '../../../../wasm/engine/browser.ts'
import { Kernels } from '../../../../wasm/engine/kernels.ts'
import { wholeFileWeightReader } from '../../../../wasm/engine/package-files.ts'
import { createEngineSession, type EngineSession } from '../../../../wasm/engine/session.ts'
import type { EngineSimd } from '../../../../wasm/engine/simd.ts'
import { browserEngineThreads } from '../../../../wasm/engine/threads-browser.ts'
import { warmUpKernels } from '../../../../wasm/engine/warm-up.ts'

export interface EngineBenchRequest {
  /** URL prefix of the package on this origin, ending in '/'. */
  readonly packageUrl: string
  readonly runtime: 'engine' | 'ort-web'
  readonly dtype: string
  readonly threads: number
  readonly shortPrompt: readonly number[]
  readonly longPrompt: readonly number[]
  readonly decodeTokens: number
  readonly rounds: number
  /** Run the engine's warm-up when the session is created (default true; the first-prompt script compares). */
  readonly warmUp?: boolean
  /** The engine's build (default: relaxed SIMD where the browser validates it, as an app gets). */
  readonly simd?: EngineSimd
}

export interface EngineBenchResult {
  readonly loadMs: number
  readonly decodeTokensPerSecond: number[]
  readonly ttftShortMs: number[]
  readonly ttftLongMs: number[]
  /** The greedy tokens of the first decode run (to compare contenders). */
  readonly tokens: number[]
  readonly crossOriginIsolated: boolean
  readonly setup: Readonly<Record<string, unknown>>
}

function argmax(logits: Float32Array): number {
  let best = 0
  for (let i = 1; i < logits.length; i++) if ((logits[i] as number) > (logits[best] as number)) best = i
  return best
}

async function greedy(
  session: ModelSession,
  prompt: readonly number[],
  maxTokens: number,
): Promise<{ tokens: number[]; ttftMs: number; decodeTokensPerSecond: number }> {
  await session.reset()
  const started = performance.now()
  const tokens = [argmax(await session.append([...prompt]))]
  const firstAt = performance.now()
  while (tokens.length < maxTokens) tokens.push(argmax(await session.append([tokens.at(-1) as number])))
  const lastAt = performance.now()
  return {
    tokens,
    ttftMs: firstAt - started,
    decodeTokensPerSecond: tokens.length > 1 ? ((tokens.length - 1) * 1000) / (lastAt - firstAt) : Number.NaN,
  }
}

/** The contender's session, loaded from the package (what a visit's load time measures). */
async function openSession(
  request: EngineBenchRequest,
): Promise<{ session: ModelSession; setup: Record<string, unknown>; loadMs: number }> {
  const fetchOk = async (path: string): Promise<Response> => {
    const response = await fetch(`${request.packageUrl}${path}`)
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`)
    return response
  }
  const reader: PackageReader = {
    readText: async (path) => (await fetchOk(path)).text(),
    readBytes: async (path) => new Uint8Array(await (await fetchOk(path)).arrayBuffer()),
    exists: async (path) => (await fetch(`${request.packageUrl}${path}`, { method: 'HEAD' })).ok,
  }
  const started = performance.now()
  let session: ModelSession
  let setup: Record<string, unknown>
  if (request.runtime === 'engine') {
    const threads = await browserEngineThreads(request.threads, request.simd)
    session = await createEngineSession({
      module: await loadEngineModuleForBrowser(request.simd),
      files: wholeFileWeightReader(reader),
      dtype: request.dtype,
      ...(threads ? { threads } : {}),
      ...(request.warmUp === false ? { warmUp: false } : {}),
    })
    setup = { engine: 'ondevice-wasm', threads: request.threads, simd: (session as EngineSession).build.simd }
  } else {
    const configured = await loadOrtWebForBrowser({
      wasmBaseUrl: '/ort/',
      flavor: 'wasm',
      numThreads: request.threads,
      cacheName: false,
    })
    session = await createOrtSession(configured.ort as unknown as OrtModule, reader, {
      backend: 'wasm',
      dtype: request.dtype,
    })
    setup = { ...configured.setup }
  }
  return { session, setup, loadMs: performance.now() - started }
}

async function runEngineBench(request: EngineBenchRequest): Promise<EngineBenchResult> {
  const { session, setup, loadMs } = await openSession(request)
  try {
    await greedy(session, request.shortPrompt, 2)
    const result: EngineBenchResult = {
      loadMs,
      decodeTokensPerSecond: [],
      ttftShortMs: [],
      ttftLongMs: [],
      tokens: [],
      crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
      setup,
    }
    for (let round = 0; round < request.rounds; round++) {
      const decode = await greedy(session, request.shortPrompt, request.decodeTokens)
      if (round === 0) result.tokens.push(...decode.tokens)
      result.decodeTokensPerSecond.push(decode.decodeTokensPerSecond)
      result.ttftShortMs.push(decode.ttftMs)
      result.ttftLongMs.push((await greedy(session, request.longPrompt, 1)).ttftMs)
    }
    return result
  } finally {
    await session.dispose()
  }
}

/**
 * The first prompts of a fresh page (test/bench/engine-first-prompt.ts): openFirstPrompts loads
 * the session, then each runFirstPrompt call runs the long prompt, nothing before the first, so it
 * meets whatever the browser has not optimized yet. Separate calls let the script read the page's
 * CPU time (DevTools' Performance metrics) between prompts.
 */
let firstPrompts: { session: ModelSession; request: EngineBenchRequest } | undefined

async function openFirstPrompts(request: EngineBenchRequest): Promise<number> {
  const { session, loadMs } = await openSession(request)
  firstPrompts = { session, request }
  return loadMs
}

async function runFirstPrompt(): Promise<number> {
  if (!firstPrompts) throw new Error('call openFirstPrompts first')
  return (await greedy(firstPrompts.session, firstPrompts.request.longPrompt, 1)).ttftMs
}

async function closeFirstPrompts(): Promise<void> {
  await firstPrompts?.session.dispose()
  firstPrompts = undefined
}

/**
 * The engine's warm-up alone on a fresh page (test/bench/engine-first-prompt.ts states its cost):
 * prepareWarmUp makes a new instance of the module this page runs, timeWarmUp runs warmUpKernels on
 * it with the Qwen3.5-0.8B shape's head sizes and returns its milliseconds (separate calls, so the
 * script can read the page's CPU time around the warm-up alone).
 */
let warmUpKernelsInstance: Kernels | undefined

async function prepareWarmUp(): Promise<void> {
  warmUpKernelsInstance = await Kernels.create(await loadEngineModuleForBrowser())
}

function timeWarmUp(): number {
  if (!warmUpKernelsInstance) throw new Error('call prepareWarmUp first')
  return warmUpKernels(warmUpKernelsInstance, {
    dtype: 'q4',
    headDim: 256,
    rotaryDim: 64,
    linear: { keyHeadDim: 128, valueHeadDim: 128, convKernel: 4 },
  })
}

const page = window as unknown as {
  runEngineBench: typeof runEngineBench
  openFirstPrompts: typeof openFirstPrompts
  runFirstPrompt: typeof runFirstPrompt
  closeFirstPrompts: typeof closeFirstPrompts
  prepareWarmUp: typeof prepareWarmUp
  timeWarmUp: typeof timeWarmUp
}
page.runEngineBench = runEngineBench
page.openFirstPrompts = openFirstPrompts
page.runFirstPrompt = runFirstPrompt
page.closeFirstPrompts = closeFirstPrompts
page.prepareWarmUp = prepareWarmUp
page.timeWarmUp = timeWarmUp
document.body.dataset['ready'] = 'true'
