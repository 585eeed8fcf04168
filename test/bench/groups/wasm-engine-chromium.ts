// Group 7's Chromium rows: the same Qwen3.5-0.8B-shape rows as Node's, in headless Chromium
// (Debian's) on a cross-origin isolated page: ondevice's engine q4 at 1 and 2 threads (helper Web
// Workers over shared memory), and its plain SIMD128 build (engine.wasm: what Safari / iOS WebKit and
// Firefox without relaxed SIMD run) at 1 thread, against onnxruntime-web's WASM q8 at 1 and 2 threads. The page
// (browser/engine-bench/) is built with Vite, as an app would build it, so the engine's two .wasm
// files and its helper chunk are the ones an app ships. Each contender gets a fresh browser
// context per visit (load, warm-up, `rounds` measurements); visits alternate the order; medians
// over every round of every visit. Ratios are within this run only.
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { EngineBenchRequest, EngineBenchResult } from '../browser/engine-bench/main.ts'
import type { BenchContext } from '../support/context.ts'
import { type BenchPackage, repositoryRoot } from '../support/packages.ts'
import { formatNumber, formatRatio, median, type Table } from '../support/stats.ts'

interface Contender {
  readonly label: string
  readonly runtime: EngineBenchRequest['runtime']
  readonly dtype: string
  readonly threads: number
  /** The engine's build, forced (default: the browser's own choice, relaxed SIMD in Chromium). */
  readonly simd?: 'plain'
}

export const chromiumContenders: readonly Contender[] = [
  { label: 'ondevice engine q4, 1 thread', runtime: 'engine', dtype: 'q4', threads: 1 },
  { label: 'ondevice engine q4, 2 threads', runtime: 'engine', dtype: 'q4', threads: 2 },
  {
    label: 'ondevice engine q4, plain SIMD128 build, 1 thread',
    runtime: 'engine',
    dtype: 'q4',
    threads: 1,
    simd: 'plain',
  },
  { label: 'onnxruntime-web q8, 1 thread', runtime: 'ort-web', dtype: 'q8', threads: 1 },
  { label: 'onnxruntime-web q8, 2 threads', runtime: 'ort-web', dtype: 'q8', threads: 2 },
]

interface Outcome {
  readonly results: EngineBenchResult[]
  readonly errors: string[]
}

/** The engine-bench page (browser/engine-bench/), built with Vite into `outDir`; groups 7 and 9 serve it. */
export async function buildEngineBenchPage(outDir: string): Promise<void> {
  const { build, defaultClientConditions } = await import('vite')
  await build({
    configFile: false,
    root: fileURLToPath(new URL('../browser/engine-bench/', import.meta.url)),
    base: './',
    logLevel: 'error',
    publicDir: false,
    resolve: { conditions: ['ondevice-source', ...defaultClientConditions] },
    worker: { format: 'es' },
    build: { outDir, emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
  })
}

export interface ChromiumRowsOptions {
  readonly pkg: BenchPackage
  readonly shortPrompt: readonly number[]
  readonly longPrompt: readonly number[]
  readonly decodeTokens: number
}

/** The Chromium table for one package (Qwen3.5-0.8B shape in group 7). */
export async function wasmEngineChromiumRows(
  context: BenchContext,
  options: ChromiumRowsOptions,
): Promise<{ table: Table; data: unknown }> {
  const { pkg } = options
  const pageFolder = join(context.cacheFolder, 'engine-bench-page')
  context.log('group 7 (Chromium): building the page with Vite')
  await buildEngineBenchPage(pageFolder)
  const { startStaticServer } = await import('../../../demo/static-server.ts')
  const { launchChromium } = await import('../../browser/chromium.ts')
  const server = await startStaticServer({
    mounts: [
      { prefix: '/ort/', directory: join(repositoryRoot, 'node_modules/onnxruntime-web/dist') },
      { prefix: `/packages/${pkg.id}/`, directory: pkg.folder },
      { prefix: '/', directory: pageFolder },
    ],
  })
  const visits = context.quick ? 1 : 2
  const rounds = context.quick ? 1 : 2
  const outcomes = new Map<Contender, Outcome>(
    chromiumContenders.map((c) => [c, { results: [], errors: [] }]),
  )
  const chromium = await launchChromium({ webgpu: false })
  try {
    for (let visit = 0; visit < visits; visit++) {
      const order = visit % 2 === 0 ? [...chromiumContenders] : [...chromiumContenders].reverse()
      for (const contender of order) {
        const outcome = outcomes.get(contender) as Outcome
        const request: EngineBenchRequest = {
          packageUrl: `/packages/${pkg.id}/`,
          runtime: contender.runtime,
          dtype: contender.dtype,
          threads: contender.threads,
          shortPrompt: options.shortPrompt,
          longPrompt: options.longPrompt,
          decodeTokens: options.decodeTokens,
          rounds,
          ...(contender.simd ? { simd: contender.simd } : {}),
        }
        const browserContext = await chromium.newContext()
        try {
          const page = await browserContext.newPage()
          await page.goto(`${server.url}/`)
          await page.waitForSelector('body[data-ready="true"]', { state: 'attached' })
          const result = await page.evaluate(
            (body) =>
              (
                window as unknown as { runEngineBench(r: EngineBenchRequest): Promise<EngineBenchResult> }
              ).runEngineBench(body),
            request,
          )
          if (!result.crossOriginIsolated) throw new Error('the page is not cross-origin isolated')
          if (contender.runtime === 'engine' && result.setup['simd'] !== (contender.simd ?? 'relaxed'))
            throw new Error(`the engine ran its ${String(result.setup['simd'])} build`)
          outcome.results.push(result)
          context.log(
            `  ${pkg.id} Chromium visit ${visit + 1}/${visits} ${contender.label}: decode ${formatNumber(median(result.decodeTokensPerSecond))} tok/s, TTFT ${options.longPrompt.length} tokens ${formatNumber(median(result.ttftLongMs))} ms`,
          )
        } catch (error) {
          const message = (error as Error).message.split('\n')[0] ?? 'failed'
          outcome.errors.push(message)
          context.log(`  ${pkg.id} Chromium ${contender.label}: ${message}`)
        } finally {
          await browserContext.close()
        }
      }
    }
  } finally {
    await chromium.close()
    await server.close()
  }

  const figures = (contender: Contender) => {
    const results = (outcomes.get(contender) as Outcome).results
    return {
      decode: median(results.flatMap((r) => r.decodeTokensPerSecond)),
      ttftShort: median(results.flatMap((r) => r.ttftShortMs)),
      ttftLong: median(results.flatMap((r) => r.ttftLongMs)),
      load: median(results.map((r) => r.loadMs)),
      tokens: results[0]?.tokens,
    }
  }
  const peerOf = (threads: number) =>
    chromiumContenders.find((c) => c.runtime === 'ort-web' && c.threads === threads) as Contender
  const ratio = (value: number, base: number) =>
    Number.isFinite(value) && Number.isFinite(base) && base !== 0 ? formatRatio(value / base) : ''
  const engineOneThread = figures(chromiumContenders[0] as Contender).tokens
  const table: Table = {
    title: `${pkg.label}: the WebAssembly engine vs onnxruntime-web in headless Chromium (cross-origin isolated page, ${visits} visit(s) × ${rounds} round(s), medians)`,
    columns: [
      'engine',
      'decode tok/s',
      'vs ort-web q8, same threads',
      'vs ort-web q8, 1 thread',
      `TTFT ${options.shortPrompt.length} tokens`,
      `TTFT ${options.longPrompt.length} tokens`,
      'vs ort-web, same threads',
      'load',
      'greedy tokens = engine 1 thread',
    ],
    rows: chromiumContenders.map((contender) => {
      const outcome = outcomes.get(contender) as Outcome
      if (outcome.results.length === 0)
        return [contender.label, `failed: ${outcome.errors[0] ?? 'no result'}`, '', '', '', '', '', '', '']
      const f = figures(contender)
      const same = figures(peerOf(contender.threads))
      const one = figures(peerOf(1))
      const tokensMatch =
        f.tokens === undefined || engineOneThread === undefined
          ? ''
          : contender.runtime !== 'engine'
            ? ''
            : f.tokens.length === engineOneThread.length && f.tokens.every((t, i) => t === engineOneThread[i])
              ? 'same'
              : 'differ'
      return [
        contender.label,
        formatNumber(f.decode),
        ratio(f.decode, same.decode),
        ratio(f.decode, one.decode),
        `${formatNumber(f.ttftShort)} ms`,
        `${formatNumber(f.ttftLong)} ms`,
        ratio(same.ttftLong, f.ttftLong),
        `${formatNumber(f.load / 1000)} s`,
        tokensMatch,
      ]
    }),
    notes: [
      `greedy (argmax, EOS ignored), ${options.decodeTokens} tokens after a ${options.shortPrompt.length}-token prompt, and the time to the first token of a ${options.longPrompt.length}-token prompt; each round of each visit counts; ratios above 1 are faster than onnxruntime-web (TTFT: theirs / ours)`,
      'the page is served from 127.0.0.1 with COOP/COEP (crossOriginIsolated checked); the engine reads the package over fetch, whole files, into its memory; onnxruntime-web 1.30.0 WASM (its own threads, proxy off) through createOrtSession',
      'load: fetching the package over loopback HTTP and building the session, from a fresh browser context each visit',
    ],
  }
  return {
    table,
    data: Object.fromEntries(chromiumContenders.map((c) => [c.label, outcomes.get(c)])),
  }
}
