// Group 6: the browser. Headless Chromium (Debian's, through playwright-core), WASM with 1 and 2
// threads on a cross-origin isolated page, and WebGPU on SwiftShader, on the tiny Qwen3.5 fixture
// and stories260K: ondevice's page against transformers.js's web build on the same page setup,
// served from 127.0.0.1 with every file from node_modules (no CDN). Each visit loads the model,
// warms up, and measures one greedy run; the engines alternate visits.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { PageRequest, PageResult } from '../browser/page-protocol.ts'
import type { BenchContext, GroupResult } from '../support/context.ts'
import { folderTokenizer, transformersQwen35ConfigPatch } from '../support/engines.ts'
import {
  type BenchPackage,
  ensurePackage,
  type PackageId,
  repositoryRoot,
  unavailableReason,
} from '../support/packages.ts'
import { promptOfLength } from '../support/prompts.ts'
import { formatNumber, formatRatio, median, type Table } from '../support/stats.ts'

type Engine = 'ours' | 'transformers'

interface BrowserCase {
  readonly id: PackageId
  readonly backend: 'wasm' | 'webgpu'
  readonly threads: number
  readonly dtype: string
}

const cases: readonly BrowserCase[] = [
  { id: 'qwen3_5-tiny', backend: 'wasm', threads: 1, dtype: 'q8' },
  { id: 'qwen3_5-tiny', backend: 'wasm', threads: 2, dtype: 'q8' },
  { id: 'qwen3_5-tiny', backend: 'webgpu', threads: 1, dtype: 'q4' },
  { id: 'stories260K', backend: 'wasm', threads: 1, dtype: 'fp32' },
  { id: 'stories260K', backend: 'wasm', threads: 2, dtype: 'fp32' },
  { id: 'stories260K', backend: 'webgpu', threads: 1, dtype: 'fp32' },
]

/**
 * transformers.js in a browser fetches `.onnx_data` only for the files config.json's
 * transformers.js_config.use_external_data_format names (Node reads them from disk regardless). The
 * Llama/Qwen3 writer sets it; the Qwen3.5 writer does not yet, so the page passes it in memory.
 */
function externalDataFiles(folder: string): Record<string, boolean> {
  const files = readdirSync(join(folder, 'onnx'))
  return Object.fromEntries(
    files
      .filter((file) => file.endsWith('.onnx') && files.includes(`${file}_data`))
      .map((file) => [file, true]),
  )
}

async function buildPages(folder: string): Promise<void> {
  const esbuild = await import('esbuild')
  mkdirSync(folder, { recursive: true })
  await esbuild.build({
    entryPoints: {
      ours: join(repositoryRoot, 'test/bench/browser/ours-page.ts'),
      transformers: join(repositoryRoot, 'test/bench/browser/transformers-page.ts'),
    },
    outdir: folder,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    external: ['@huggingface/transformers'],
    logLevel: 'error',
  })
  const importMap = {
    imports: {
      '@huggingface/transformers': '/tjs/transformers.web.js',
      'onnxruntime-web/webgpu': '/tjs-ort/ort.webgpu.bundle.min.mjs',
      'onnxruntime-common': '/tjs-ort-common/index.js',
    },
  }
  for (const engine of ['ours', 'transformers'] as const) {
    writeFileSync(
      join(folder, `${engine}.html`),
      `<!doctype html><html><head><meta charset="utf-8"><title>${engine}</title><script type="importmap">${JSON.stringify(importMap)}</script></head><body><script type="module" src="/${engine}.js"></script></body></html>\n`,
    )
  }
}

export async function browserBench(context: BenchContext): Promise<GroupResult> {
  const title =
    'Browser (headless Chromium): ondevice vs transformers.js web build, same page setup and files'
  const pageFolder = join(context.cacheFolder, 'browser')
  context.log('group 6: bundling the pages')
  await buildPages(pageFolder)
  const { startStaticServer } = await import('../../../demo/static-server.ts')
  const { launchChromium } = await import('../../browser/chromium.ts')
  const server = await startStaticServer({
    mounts: [
      { prefix: '/ort/', directory: join(repositoryRoot, 'node_modules/onnxruntime-web/dist') },
      { prefix: '/tjs/', directory: join(repositoryRoot, 'node_modules/@huggingface/transformers/dist') },
      {
        prefix: '/tjs-ort/',
        directory: join(
          repositoryRoot,
          'node_modules/@huggingface/transformers/node_modules/onnxruntime-web/dist',
        ),
      },
      {
        prefix: '/tjs-ort-common/',
        directory: join(
          repositoryRoot,
          'node_modules/@huggingface/transformers/node_modules/onnxruntime-common/dist/esm',
        ),
      },
      { prefix: '/packages/', directory: join(context.cacheFolder, 'packages') },
      { prefix: '/', directory: pageFolder },
    ],
  })
  const visits = context.quick ? 1 : 2
  const rows: string[][] = []
  const data: unknown[] = []
  try {
    for (const webgpu of [false, true]) {
      const selected = cases.filter(
        (entry) =>
          (entry.backend === 'webgpu') === webgpu && (!context.packages || context.packages.has(entry.id)),
      )
      if (selected.length === 0) continue
      const chromium = await launchChromium({ webgpu })
      try {
        for (const entry of selected) {
          const missing = unavailableReason(entry.id)
          if (missing) {
            rows.push([
              entry.id,
              entry.backend,
              String(entry.threads),
              entry.dtype,
              '—',
              '—',
              '—',
              '—',
              '—',
              `not run: ${missing}`,
            ])
            continue
          }
          const pkg: BenchPackage = await ensurePackage(entry.id, context.cacheFolder, context.log)
          // SwiftShader runs WebGPU on the CPU: a short prompt and answer keep the visit under minutes
          // (with 8 tokens and a 32-token prompt the tiny Qwen3.5 q4 pair alone took 218 s of a
          // 373 s group under load; transformers.js decodes it at ~0.08 tok/s there).
          const webgpuRun = entry.backend === 'webgpu'
          const maxTokens = webgpuRun ? 4 : context.quick ? 8 : 48
          const promptLength = webgpuRun ? 16 : 128
          const request: PageRequest = {
            packageUrl: `/packages/${entry.id}/`,
            dtype: entry.dtype,
            backend: entry.backend,
            threads: entry.threads,
            promptTokenIds: promptOfLength(folderTokenizer(pkg.folder), promptLength, pkg.bosTokenId),
            maxTokens,
            transformersConfigPatch: {
              ...transformersQwen35ConfigPatch,
              'transformers.js_config': { use_external_data_format: externalDataFiles(pkg.folder) },
            },
          }
          context.log(`group 6: ${entry.id} ${entry.backend} ${entry.threads} thread(s) ${entry.dtype}`)
          const results: Record<Engine, PageResult[]> = { ours: [], transformers: [] }
          for (let visit = 0; visit < (webgpuRun ? 1 : visits); visit++) {
            const order: Engine[] = visit % 2 === 0 ? ['ours', 'transformers'] : ['transformers', 'ours']
            for (const engine of order) {
              const browserContext = await chromium.newContext()
              try {
                const page = await browserContext.newPage()
                await page.goto(
                  `${server.url}/${engine}.html?request=${encodeURIComponent(JSON.stringify(request))}`,
                )
                await page.waitForFunction(
                  () => (globalThis as { benchResult?: unknown }).benchResult !== undefined,
                  undefined,
                  { timeout: 300_000, polling: 250 },
                )
                const result = (await page.evaluate(
                  () => (globalThis as { benchResult?: unknown }).benchResult,
                )) as PageResult
                results[engine].push(result)
                if (result.error) context.log(`  ${engine}: ${result.error.split('\n')[0]}`)
              } catch (error) {
                results[engine].push({
                  loadMs: 0,
                  ttftMs: 0,
                  decodeTokensPerSecond: 0,
                  tokens: [],
                  setup: {},
                  error: (error as Error).message.split('\n')[0] ?? 'failed',
                })
              } finally {
                await browserContext.close()
              }
            }
          }
          const good = (engine: Engine) => results[engine].filter((result) => !result.error)
          const figure = (engine: Engine, key: 'ttftMs' | 'decodeTokensPerSecond' | 'loadMs') =>
            median(good(engine).map((result) => result[key]))
          const ourTokens = good('ours')[0]?.tokens ?? []
          const theirTokens = good('transformers')[0]?.tokens ?? []
          const errors = (['ours', 'transformers'] as const).flatMap((engine) =>
            results[engine]
              .filter((result) => result.error)
              .map((result) => `${engine}: ${(result.error ?? '').split('\n')[0]?.slice(0, 160)}`),
          )
          const check =
            ourTokens.length === 0 || theirTokens.length === 0
              ? `not compared${errors.length > 0 ? ` (${errors[0]})` : ''}`
              : ourTokens.every((token, index) => token === theirTokens[index]) &&
                  ourTokens.length === theirTokens.length
                ? `same (${ourTokens.length} tokens)`
                : `differ from token ${ourTokens.findIndex((token, index) => token !== theirTokens[index])}`
          const ours = {
            ttft: figure('ours', 'ttftMs'),
            decode: figure('ours', 'decodeTokensPerSecond'),
            load: figure('ours', 'loadMs'),
          }
          const theirs = {
            ttft: figure('transformers', 'ttftMs'),
            decode: figure('transformers', 'decodeTokensPerSecond'),
            load: figure('transformers', 'loadMs'),
          }
          rows.push([
            pkg.label,
            entry.backend === 'webgpu' ? 'WebGPU (SwiftShader)' : 'WASM',
            String(entry.threads),
            entry.dtype,
            `${formatNumber(ours.ttft)} / ${formatNumber(theirs.ttft)}`,
            formatRatio(theirs.ttft / ours.ttft),
            `${formatNumber(ours.decode)} / ${formatNumber(theirs.decode)}`,
            formatRatio(ours.decode / theirs.decode),
            `${formatNumber(ours.load / 1000)} / ${formatNumber(theirs.load / 1000)}`,
            check + (errors.length > 0 && !check.startsWith('not compared') ? `; ${errors.join('; ')}` : ''),
          ])
          data.push({ ...entry, maxTokens, results })
        }
      } finally {
        await chromium.close()
      }
    }
  } finally {
    await server.close()
  }
  const table: Table = {
    title: `Group 6: ${title}`,
    columns: [
      'package',
      'backend',
      'threads',
      'dtype',
      'TTFT ms (ours / tjs)',
      'TTFT speed-up',
      'decode tok/s (ours / tjs)',
      'decode ratio',
      'load s (ours / tjs)',
      'same greedy tokens',
    ],
    rows,
    notes: [
      `WASM: medians of ${visits} page visit(s) per engine, alternating; each visit loads the model (over HTTP from 127.0.0.1, HTTP cache warm after the first), warms up on 8 tokens, then runs a 128-token prompt for ${context.quick ? 8 : 48} tokens. WebGPU on SwiftShader (a CPU rasteriser: slow, and not a GPU figure): one visit each, a 16-token prompt and 4 tokens.`,
      'Both pages are cross-origin isolated (COOP/COEP), so 2 threads are real threads. transformers.js uses its own onnxruntime-web (1.31.0-dev, as it pins) with its .wasm files served locally; ours uses onnxruntime-web 1.30.0. Same config and decode-position patches for transformers.js as in group 1.',
    ],
  }
  return { group: 6, title, tables: [table], data }
}
