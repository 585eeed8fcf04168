// Group 9: the WASM peer. ondevice's WebAssembly engine against wllama, llama.cpp's WebAssembly
// build (npm @wllama/wllama), one thread each and, for the usual 4-bit, two threads each (wllama's
// pthreads, our helper Web Workers), in the same headless Chromium run, on the same weights: the Qwen3-0.6B-shape fixture exported to GGUF by the builder
// (`writeGguf` from the same seeded weights the package holds) in the nearest ggml type to each of
// our formats (q4 → Q4_1, and Q4_0, llama.cpp's usual 4-bit; q8 → Q8_0), and stories260K
// fp32 → F32. Both pages are served from 127.0.0.1 with every file local; visits alternate; each
// loads the model, warms up, then runs the same prompt (wllama takes it as text: llama.cpp's token
// count is printed beside ours) for the same number of greedy tokens.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { qwen35FixtureConfig } from '../../../builder/architectures/qwen3-5-fixture.ts'
import { randomQwen35Weights } from '../../../builder/architectures/qwen3-5-weights.ts'
import { randomDecoderWeights } from '../../../builder/architectures/random-weights.ts'
import { fixtureConfig } from '../../../builder/fixtures/fixture.ts'
import {
  type GgufDtype,
  type GgufSourceWeights,
  readPackageSource,
  readPackageTokenizer,
  writeGguf,
} from '../../../builder/gguf/index.ts'
import { parseModelConfig } from '../../../core/model-package.ts'
import type { WllamaRequest, WllamaResult } from '../../browser/wllama-page/main.ts'
import type { EngineBenchRequest, EngineBenchResult } from '../browser/engine-bench/main.ts'
import type { BenchContext, GroupResult } from '../support/context.ts'
import { folderTokenizer } from '../support/engines.ts'
import {
  type BenchPackage,
  builderFingerprint,
  ensurePackage,
  type PackageId,
  repositoryRoot,
  unavailableReason,
} from '../support/packages.ts'
import { promptOfLength } from '../support/prompts.ts'
import { formatNumber, formatRatio, median, type Table } from '../support/stats.ts'
import { buildEngineBenchPage } from './wasm-engine-chromium.ts'

interface PeerCase {
  readonly id: PackageId
  readonly ours: string
  readonly gguf: GgufDtype
  readonly threads: number
}

const cases: readonly PeerCase[] = [
  { id: 'qwen3-0.6b', ours: 'q4', gguf: 'q4_1', threads: 1 },
  { id: 'qwen3-0.6b', ours: 'q4', gguf: 'q4_0', threads: 1 },
  { id: 'qwen3-0.6b', ours: 'q4', gguf: 'q4_0', threads: 2 },
  { id: 'qwen3-0.6b', ours: 'q8', gguf: 'q8_0', threads: 1 },
  { id: 'stories260K', ours: 'fp32', gguf: 'f32', threads: 1 },
  // The seed's model: llama.cpp runs Qwen3.5 as 'qwen35'.
  { id: 'qwen3_5-0.8b', ours: 'q4', gguf: 'q4_0', threads: 1 },
  { id: 'qwen3_5-0.8b', ours: 'q8', gguf: 'q8_0', threads: 1 },
]

/**
 * The weights a package was built from: the fixture's seed for random shapes, the fp32 file
 * otherwise. Qwen3.5 goes to writeGguf in the Qwen3.5 builder's form ({ config, weights }), which is
 * what `ondevice export` reads back from an fp32 package of the same seed (builder/gguf/gguf.test.ts
 * checks they are the same weights, A_log within float rounding), so its Q4_0 and Q8_0 rows run the export that
 * test/browser/gguf-wllama.test.ts checks against the reference in llama.cpp (F32, Q8_0, Q4_0, Q4_1).
 */
async function packageWeights(pkg: BenchPackage): Promise<GgufSourceWeights> {
  if (pkg.id === 'qwen3-0.6b') return randomDecoderWeights(fixtureConfig('qwen3', 'qwen3-0.6b'), 1)
  if (pkg.id === 'qwen3_5-0.8b') {
    const config = qwen35FixtureConfig('0.8b')
    return { config, weights: randomQwen35Weights(config, 1) }
  }
  return (await readPackageSource(pkg.folder)).weights
}

/** The package's GGUF in `dtype`, written on first use and reused while the builder is unchanged. */
async function ensureGguf(
  context: BenchContext,
  pkg: BenchPackage,
  dtypes: readonly GgufDtype[],
): Promise<Map<GgufDtype, string>> {
  const folder = join(context.cacheFolder, 'gguf')
  mkdirSync(folder, { recursive: true })
  const fingerprint = builderFingerprint()
  const stampPath = join(folder, `${pkg.id}.json`)
  const stamp = existsSync(stampPath)
    ? (JSON.parse(readFileSync(stampPath, 'utf8')) as Record<string, string>)
    : {}
  const files = new Map(dtypes.map((dtype) => [dtype, `${pkg.id}-${dtype}.gguf`] as const))
  const stale = dtypes.filter(
    (dtype) =>
      !existsSync(join(folder, files.get(dtype)!)) || (stamp[dtype] !== fingerprint && !context.keepPackages),
  )
  if (stale.length > 0) {
    context.log(`group 9: exporting ${pkg.id} to GGUF ${stale.join(', ')}`)
    const weights = await packageWeights(pkg)
    const config = parseModelConfig(readFileSync(join(pkg.folder, 'config.json'), 'utf8'))
    const tokenizer = readPackageTokenizer(pkg.folder, config)
    for (const dtype of stale) {
      const started = performance.now()
      await writeGguf({
        weights,
        tokenizer,
        dtype,
        outPath: join(folder, files.get(dtype)!),
        name: pkg.id,
        overwrite: true,
      })
      stamp[dtype] = fingerprint
      context.log(`group 9: ${files.get(dtype)} in ${((performance.now() - started) / 1000).toFixed(0)} s`)
    }
    writeFileSync(`${stampPath}.tmp`, `${JSON.stringify(stamp, null, 2)}\n`)
    renameSync(`${stampPath}.tmp`, stampPath)
  }
  return files
}

/** wllama's page (esbuild); ours is group 7's engine-bench page (Vite: the engine's .wasm and thread workers as an app gets them). */
async function buildPages(folder: string): Promise<void> {
  const esbuild = await import('esbuild')
  mkdirSync(folder, { recursive: true })
  await esbuild.build({
    entryPoints: { wllama: join(repositoryRoot, 'test/browser/wllama-page/main.ts') },
    outdir: folder,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'error',
  })
  writeFileSync(
    join(folder, 'wllama.html'),
    '<!doctype html><html><head><meta charset="utf-8"><title>wllama</title></head><body><script type="module" src="/wllama.js"></script></body></html>\n',
  )
  await buildEngineBenchPage(join(folder, 'engine'))
}

interface Visit {
  readonly loadMs: number
  readonly ttftMs: number
  readonly decode: number
  readonly promptTokens?: number
  readonly ownDecode?: number
  readonly error?: string
}

export async function wasmPeer(context: BenchContext): Promise<GroupResult> {
  const title =
    "WASM peer (headless Chromium, 1 and 2 threads): ondevice's engine vs wllama (llama.cpp) on GGUF exports of the same weights"
  const selected = cases.filter((entry) => !context.packages || context.packages.has(entry.id))
  const pageFolder = join(context.cacheFolder, 'wasm-peer-pages')
  await buildPages(pageFolder)
  const rows: string[][] = []
  const data: unknown[] = []
  const { startStaticServer } = await import('../../../demo/static-server.ts')
  const { launchChromium } = await import('../../browser/chromium.ts')
  const { bannedTokenIds } = await import('../../browser/wllama.ts')
  for (const folder of ['gguf', 'packages']) mkdirSync(join(context.cacheFolder, folder), { recursive: true })
  const server = await startStaticServer({
    mounts: [
      { prefix: '/wllama/', directory: join(repositoryRoot, 'node_modules/@wllama/wllama/esm') },
      { prefix: '/gguf/', directory: join(context.cacheFolder, 'gguf') },
      { prefix: '/packages/', directory: join(context.cacheFolder, 'packages') },
      { prefix: '/', directory: pageFolder },
    ],
  })
  const chromium = await launchChromium({ webgpu: false })
  const visits = context.quick ? 1 : 2
  const maxTokens = context.quick ? 16 : 32
  const promptLength = 128
  try {
    for (const entry of selected) {
      const missing = unavailableReason(entry.id)
      if (missing) {
        rows.push([
          entry.id,
          `${entry.ours} / ${entry.gguf.toUpperCase()}`,
          String(entry.threads),
          '—',
          '—',
          '—',
          '—',
          '—',
          '—',
          `not run: ${missing}`,
        ])
        continue
      }
      const pkg = await ensurePackage(entry.id, context.cacheFolder, context.log)
      // Every GGUF type this package's rows need in one pass (the 0.6B weights are generated once).
      const needed = [
        ...new Set(selected.filter((other) => other.id === entry.id).map((other) => other.gguf)),
      ]
      const gguf = (await ensureGguf(context, pkg, needed)).get(entry.gguf)!
      const tokenizer = folderTokenizer(pkg.folder)
      const promptIds = promptOfLength(tokenizer, promptLength, pkg.bosTokenId)
      // wllama's completion takes text; llama.cpp adds BOS itself where the model wants one.
      const promptText = tokenizer.decode(pkg.bosTokenId === undefined ? promptIds : promptIds.slice(1), {
        skipSpecialTokens: true,
      })
      const config = parseModelConfig(readFileSync(join(pkg.folder, 'config.json'), 'utf8'))
      const ggufTokenizer = readPackageTokenizer(pkg.folder, config)
      const vocabulary = (ggufTokenizer.get('tokenizer.ggml.tokens') as unknown as { value: string[] }).value
      const model = (ggufTokenizer.get('tokenizer.ggml.model') as unknown as { value: 'gpt2' | 'llama' })
        .value
      const banned = bannedTokenIds(vocabulary, model)
      context.log(`group 9: ${entry.id} ${entry.ours} vs wllama ${entry.gguf}, ${entry.threads} thread(s)`)
      const results: Record<'ours' | 'wllama', Visit[]> = { ours: [], wllama: [] }
      for (let visit = 0; visit < visits; visit++) {
        const order = visit % 2 === 0 ? (['ours', 'wllama'] as const) : (['wllama', 'ours'] as const)
        for (const engine of order) {
          const browserContext = await chromium.newContext()
          try {
            const page = await browserContext.newPage()
            if (engine === 'ours') {
              // The prompt is both the decode's prompt and the TTFT figure's (one round).
              const request: EngineBenchRequest = {
                packageUrl: `/packages/${entry.id}/`,
                runtime: 'engine',
                dtype: entry.ours,
                threads: entry.threads,
                shortPrompt: promptIds,
                longPrompt: promptIds,
                decodeTokens: maxTokens,
                rounds: 1,
              }
              await page.goto(`${server.url}/engine/`)
              await page.waitForSelector('body[data-ready="true"]', { state: 'attached' })
              const result = await page.evaluate(
                (body) =>
                  (
                    window as unknown as { runEngineBench(r: EngineBenchRequest): Promise<EngineBenchResult> }
                  ).runEngineBench(body),
                request,
              )
              if (!result.crossOriginIsolated) throw new Error('the page is not cross-origin isolated')
              results.ours.push({
                loadMs: result.loadMs,
                ttftMs: median(result.ttftLongMs),
                decode: median(result.decodeTokensPerSecond),
                promptTokens: promptIds.length,
              })
            } else {
              await page.goto(`${server.url}/wllama.html`)
              await page.waitForFunction(
                () => (globalThis as { wllamaPageReady?: boolean }).wllamaPageReady === true,
              )
              const request: WllamaRequest = {
                ggufUrl: `/gguf/${gguf}`,
                prompt: promptText,
                promptTokens: promptIds.length,
                warmupPrompt: tokenizer.decode(promptIds.slice(0, 8), { skipSpecialTokens: true }),
                maxTokens,
                bannedTokenIds: banned,
                threads: entry.threads,
              }
              const result = (await page.evaluate(
                (r) =>
                  (globalThis as unknown as { runWllama(r: WllamaRequest): Promise<WllamaResult> }).runWllama(
                    r,
                  ),
                request,
              )) as WllamaResult
              results.wllama.push({
                loadMs: result.loadMs,
                ttftMs: result.ttftMs,
                decode: result.decodeTokensPerSecond,
                ...(result.timings?.['prompt_n'] === undefined
                  ? {}
                  : { promptTokens: result.timings['prompt_n'] }),
                ...(result.timings?.['predicted_per_second'] === undefined
                  ? {}
                  : { ownDecode: result.timings['predicted_per_second'] }),
              })
            }
          } catch (error) {
            results[engine].push({
              loadMs: 0,
              ttftMs: 0,
              decode: 0,
              error: (error as Error).message.split('\n')[0] ?? 'failed',
            })
            context.log(`  ${engine}: ${(error as Error).message.split('\n')[0]}`)
          } finally {
            await browserContext.close()
          }
        }
      }
      const good = (engine: 'ours' | 'wllama') => results[engine].filter((visit) => !visit.error)
      const figure = (engine: 'ours' | 'wllama', key: 'ttftMs' | 'decode' | 'loadMs') =>
        median(good(engine).map((visit) => visit[key]))
      const ours = {
        ttft: figure('ours', 'ttftMs'),
        decode: figure('ours', 'decode'),
        load: figure('ours', 'loadMs'),
      }
      const peer = {
        ttft: figure('wllama', 'ttftMs'),
        decode: figure('wllama', 'decode'),
        load: figure('wllama', 'loadMs'),
        own: median(good('wllama').map((visit) => visit.ownDecode ?? Number.NaN)),
      }
      const errors = (['ours', 'wllama'] as const).flatMap((engine) =>
        results[engine]
          .filter((visit) => visit.error)
          .map((visit) => `${engine}: ${visit.error?.slice(0, 160)}`),
      )
      rows.push([
        pkg.label,
        `${entry.ours} / ${entry.gguf.toUpperCase()}`,
        String(entry.threads),
        `${formatNumber(ours.ttft)} / ${formatNumber(peer.ttft)}`,
        formatRatio(peer.ttft / ours.ttft),
        `${formatNumber(ours.decode)} / ${formatNumber(peer.decode)}`,
        formatRatio(ours.decode / peer.decode),
        formatNumber(peer.own),
        `${formatNumber(ours.load / 1000)} / ${formatNumber(peer.load / 1000)}`,
        `${promptIds.length} / ${good('wllama')[0]?.promptTokens ?? '—'}${errors.length > 0 ? `; ${errors.join('; ')}` : ''}`,
      ])
      data.push({ ...entry, maxTokens, promptLength, results })
    }
  } finally {
    await chromium.close()
    await server.close()
  }
  const table: Table = {
    title: `Group 9: ${title}`,
    columns: [
      'package',
      'ours / GGUF',
      'threads',
      'TTFT ms (ours / wllama)',
      'TTFT speed-up',
      'decode tok/s (ours / wllama)',
      'decode ratio',
      "wllama's own decode tok/s",
      'load s (ours / wllama)',
      'prompt tokens (ours / llama.cpp)',
    ],
    rows,
    notes: [
      `Medians of ${visits} page visit(s) per engine, alternating; each visit loads the model over HTTP from 127.0.0.1, warms up (wllama on 8 tokens, ours on the prompt), then runs a ${promptLength}-token prompt for ${maxTokens} greedy tokens. Both rates are timed in the page from the first to the last token (wllama's worker posts each token to the page; llama.cpp's own figure, without that hop, is the column beside).`,
      'wllama 3.13 (llama.cpp b12211), n_threads as the threads column (1: its single-thread path; 2: its pthreads build; the page is cross-origin isolated for both; ours: helper Web Workers), n_gpu_layers 0, f16 KV cache and flash attention as llama.cpp defaults. Its sampler bans the ~1,450 tokens whose text is not UTF-8 on its own (wllama fails on such text; test/browser/wllama.ts), a logit bias that costs nothing measurable; ours is plain greedy. GGUF files are written by the builder (`ondevice export`) from the same weights as the package.',
    ],
  }
  return { group: 9, title, tables: [table], data }
}
