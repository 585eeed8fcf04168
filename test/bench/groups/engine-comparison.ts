// Group 1: our runtime against transformers.js v4 on the same package folder, both on
// onnxruntime-node's CPU provider (transformers.js runs only there in Node), greedy, EOS ignored.
// Both engines stay loaded in this process and take turns (which goes first alternates by round)
// after a warm-up; peak RSS and load time come from a fresh child process per engine.
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { BenchContext, GroupResult } from '../support/context.ts'
import {
  type BenchEngine,
  followTokens,
  type GenerationRun,
  openOurs,
  openTransformers,
} from '../support/engines.ts'
import { type BenchPackage, ensurePackage, type PackageId, unavailableReason } from '../support/packages.ts'
import { promptOfLength } from '../support/prompts.ts'
import { formatBytes, formatNumber, formatRatio, median, type Table } from '../support/stats.ts'
import { backendComparison } from './backend-comparison.ts'

const run = promisify(execFile)

export interface EngineFigures {
  loadMs?: number
  peakRssBytes?: number
  ttft128Ms: number[]
  ttft512Ms: number[]
  decodeTokensPerSecond: number[]
  error?: string
}

export interface ComparisonRow {
  readonly packageId: PackageId
  readonly label: string
  readonly dtype: string
  readonly promptLengths: readonly [number, number]
  readonly decodeTokens: number
  readonly rounds: number
  readonly ours: EngineFigures
  readonly transformers: EngineFigures
  /** 'same' | 'same up to near-ties (...)' | 'DIFFERENT (...)' | why it wasn't checked. */
  readonly check: string
  readonly checkDetail?: unknown
  readonly configPatched?: boolean
  readonly positionsPatched?: boolean
  readonly skipped?: string
}

const cases: readonly { id: PackageId; dtype: string }[] = [
  { id: 'stories260K', dtype: 'fp32' },
  { id: 'stories260K', dtype: 'q4' },
  { id: 'qwen3_5-tiny', dtype: 'fp32' },
  { id: 'qwen3_5-tiny', dtype: 'q4' },
  { id: 'qwen3-0.6b', dtype: 'q4' },
  { id: 'qwen3_5-0.8b', dtype: 'q4' },
]

/** A gap this small between our best logit and theirs is rounding (thread split, kernel order), not a different model. */
const nearTie = 1e-3

async function probeMemory(
  context: BenchContext,
  engine: 'ours' | 'transformers',
  pkg: BenchPackage,
  dtype: string,
  promptTokenIds: readonly number[],
): Promise<{ loadMs: number; peakRssBytes: number }> {
  const request = {
    engine,
    folder: pkg.folder,
    dtype,
    cacheFolder: context.cacheFolder,
    promptTokenIds,
    maxTokens: 8,
  }
  const { stdout } = await run(
    process.execPath,
    [join(import.meta.dirname, '../support/rss-probe.ts'), JSON.stringify(request)],
    { maxBuffer: 16 * 1024 * 1024, timeout: 300_000 },
  )
  const last = stdout.trim().split('\n').at(-1) ?? '{}'
  return JSON.parse(last) as { loadMs: number; peakRssBytes: number }
}

async function measureCase(context: BenchContext, pkg: BenchPackage, dtype: string): Promise<ComparisonRow> {
  const rounds = context.quick ? 1 : pkg.large ? 2 : 3
  const decodeTokens = context.quick ? 16 : pkg.large ? 32 : 128
  const longPrompt = Math.min(512, pkg.contextLength - 1)
  const base = {
    packageId: pkg.id,
    label: pkg.label,
    dtype,
    promptLengths: [128, longPrompt] as [number, number],
    decodeTokens,
    rounds,
  }
  const ours = await openOurs({
    folder: pkg.folder,
    dtype,
    backend: 'native',
    cacheFolder: context.cacheFolder,
  })
  let transformers: Awaited<ReturnType<typeof openTransformers>>
  try {
    transformers = await openTransformers({ folder: pkg.folder, dtype })
  } catch (error) {
    await ours.dispose()
    const message = `transformers.js could not load it: ${(error as Error).message.split('\n')[0]}`
    return {
      ...base,
      ours: { ttft128Ms: [], ttft512Ms: [], decodeTokensPerSecond: [] },
      transformers: { ttft128Ms: [], ttft512Ms: [], decodeTokensPerSecond: [], error: message },
      check: message,
    }
  }
  const shortPrompt = promptOfLength(ours.tokenizer, 128, pkg.bosTokenId)
  const longPromptIds = promptOfLength(ours.tokenizer, longPrompt, pkg.bosTokenId)
  const figures = new Map<BenchEngine, EngineFigures>([
    [ours, { ttft128Ms: [], ttft512Ms: [], decodeTokensPerSecond: [] }],
    [transformers, { ttft128Ms: [], ttft512Ms: [], decodeTokensPerSecond: [] }],
  ])
  const firstTokens = new Map<BenchEngine, readonly number[]>()
  try {
    // Warm-up: JIT, ORT's first-run allocations, page cache.
    for (const engine of [ours, transformers]) await engine.run(shortPrompt.slice(0, 16), 4)
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [ours, transformers] : [transformers, ours]
      for (const engine of order) {
        const decode: GenerationRun = await engine.run(shortPrompt, decodeTokens)
        const long: GenerationRun = await engine.run(longPromptIds, 1)
        const entry = figures.get(engine) as EngineFigures
        entry.ttft128Ms.push(decode.ttftMs)
        entry.decodeTokensPerSecond.push(decode.decodeTokensPerSecond)
        entry.ttft512Ms.push(long.ttftMs)
        if (!firstTokens.has(engine)) firstTokens.set(engine, decode.tokens)
      }
      context.log(
        `  ${pkg.id} ${dtype} round ${round + 1}/${rounds}: decode ${formatNumber(median((figures.get(ours) as EngineFigures).decodeTokensPerSecond))} vs ${formatNumber(median((figures.get(transformers) as EngineFigures).decodeTokensPerSecond))} tok/s`,
      )
    }
    const ourTokens = firstTokens.get(ours) ?? []
    const theirTokens = firstTokens.get(transformers) ?? []
    let check: string
    let checkDetail: unknown
    if (
      ourTokens.length === theirTokens.length &&
      ourTokens.every((token, index) => token === theirTokens[index])
    ) {
      check = `same (${ourTokens.length} tokens)`
    } else {
      const firstDifference = ourTokens.findIndex((token, index) => token !== theirTokens[index])
      const follow = await followTokens(ours.session, shortPrompt, theirTokens)
      checkDetail = { firstDifference, ...follow, ourTokens, theirTokens }
      check =
        follow.maxGap <= nearTie
          ? `same up to near-ties (split at token ${firstDifference}; their tokens are within ${follow.maxGap.toExponential(1)} of our best logit at every step)`
          : `DIFFERENT from token ${firstDifference} (their token is ${follow.maxGap.toFixed(3)} below our best logit at ${follow.gapSteps} steps)`
    }
    return {
      ...base,
      ours: figures.get(ours) as EngineFigures,
      transformers: figures.get(transformers) as EngineFigures,
      check,
      checkDetail,
      configPatched: transformers.configPatched,
      positionsPatched: transformers.positionsPatched,
    }
  } finally {
    await ours.dispose()
    await transformers.dispose()
  }
}

export async function engineComparison(context: BenchContext): Promise<GroupResult> {
  const rows: ComparisonRow[] = []
  for (const { id, dtype } of cases) {
    if (context.packages && !context.packages.has(id)) continue
    const missing = unavailableReason(id)
    if (missing) {
      rows.push({
        packageId: id,
        label: id,
        dtype,
        promptLengths: [128, 512],
        decodeTokens: 0,
        rounds: 0,
        ours: { ttft128Ms: [], ttft512Ms: [], decodeTokensPerSecond: [] },
        transformers: { ttft128Ms: [], ttft512Ms: [], decodeTokensPerSecond: [] },
        check: 'not run',
        skipped: missing,
      })
      continue
    }
    const pkg = await ensurePackage(id, context.cacheFolder, context.log)
    context.log(`group 1: ${id} ${dtype}`)
    let row: ComparisonRow
    try {
      row = await measureCase(context, pkg, dtype)
    } catch (error) {
      row = {
        packageId: id,
        label: pkg.label,
        dtype,
        promptLengths: [128, 512],
        decodeTokens: 0,
        rounds: 0,
        ours: { ttft128Ms: [], ttft512Ms: [], decodeTokensPerSecond: [] },
        transformers: { ttft128Ms: [], ttft512Ms: [], decodeTokensPerSecond: [] },
        check: `failed: ${(error as Error).message.split('\n')[0]}`,
      }
    }
    if (!row.transformers.error && row.rounds > 0) {
      // Memory and load time in fresh processes, one engine at a time.
      const prompt = promptOfLength(
        (await import('../support/engines.ts')).folderTokenizer(pkg.folder),
        row.promptLengths[1],
        pkg.bosTokenId,
      )
      for (const engine of ['ours', 'transformers'] as const) {
        try {
          const probe = await probeMemory(context, engine, pkg, dtype, prompt)
          const target = engine === 'ours' ? row.ours : row.transformers
          target.loadMs = probe.loadMs
          target.peakRssBytes = probe.peakRssBytes
        } catch (error) {
          context.log(`  memory probe for ${engine} failed: ${(error as Error).message.split('\n')[0]}`)
        }
      }
    }
    rows.push(row)
  }
  const backends = await backendComparison(context)
  return {
    group: 1,
    title:
      'ondevice vs transformers.js (Node, onnxruntime-node CPU, same files), and ondevice WASM vs native',
    tables: [comparisonTable(rows), backends.table],
    data: { transformers: rows, backends: backends.rows },
  }
}

function pair(
  ours: number | undefined,
  theirs: number | undefined,
  format: (value: number | undefined) => string = formatNumber,
): string {
  return `${format(ours)} / ${format(theirs)}`
}

export function comparisonTable(rows: readonly ComparisonRow[]): Table {
  return {
    title:
      'Group 1: ondevice vs transformers.js v4 (Node, onnxruntime-node CPU, same package folder, greedy)',
    columns: [
      'package',
      'dtype',
      'TTFT 128 ms (ours / tjs)',
      'TTFT long ms (ours / tjs)',
      'TTFT speed-up 128 / long',
      'decode tok/s (ours / tjs)',
      'decode ratio',
      'load s (ours / tjs)',
      'peak RSS (ours / tjs)',
      'same greedy tokens',
    ],
    rows: rows.map((row) => {
      if (row.skipped)
        return [row.label, row.dtype, '—', '—', '—', '—', '—', '—', '—', `not run: ${row.skipped}`]
      const o = row.ours
      const t = row.transformers
      const ttft128 = [median(o.ttft128Ms), median(t.ttft128Ms)] as const
      const ttftLong = [median(o.ttft512Ms), median(t.ttft512Ms)] as const
      const decode = [median(o.decodeTokensPerSecond), median(t.decodeTokensPerSecond)] as const
      return [
        row.label,
        row.dtype,
        pair(...ttft128),
        `${pair(...ttftLong)} (${row.promptLengths[1]} tokens)`,
        `${formatRatio(ttft128[1] / ttft128[0])} / ${formatRatio(ttftLong[1] / ttftLong[0])}`,
        pair(...decode),
        formatRatio(decode[0] / decode[1]),
        pair(
          o.loadMs === undefined ? undefined : o.loadMs / 1000,
          t.loadMs === undefined ? undefined : t.loadMs / 1000,
        ),
        pair(o.peakRssBytes, t.peakRssBytes, formatBytes),
        row.check +
          (row.configPatched || row.positionsPatched
            ? ` (tjs patched in memory: ${[row.configPatched ? 'config' : '', row.positionsPatched ? 'decode positions' : ''].filter(Boolean).join(', ')}; see notes)`
            : ''),
      ]
    }),
    notes: [
      'TTFT: from the generate call to the first sampled token (prefill + first sampling), fresh cache each run. Decode: (tokens − 1) / time from the first to the last token, over the 128-token answer of the 128-token prompt.',
      'Medians over the rounds; the engines alternate which goes first each round, after one warm-up run each. Ratios > 1 mean ondevice is faster.',
      'Load and peak RSS: a fresh Node process per engine (model + tokenizer load; peak RSS of the whole process after a long prompt and 8 tokens), page cache warm.',
      'Greedy check: our first decode run against theirs; where they differ, our session follows their tokens and reports how far below our best logit their choice was.',
      'transformers.js 4.3.2 on Qwen3.5 packages: (1) config: it loads embed_tokens + decoder_model_merged only when config.json says architectures[0] = "Qwen3_5ForConditionalGeneration" and has vision_config.spatial_merge_size; the builder writes both now, and packages built before get them in memory ("config" in the check column). (2) decode positions: its text-only rope delta is max + 1 + prompt length instead of max + 1 − prompt length, so after a 128-token prompt it feeds position 384 to the first new token and its answers differ from the model\'s (checked feed by feed); corrected on the model instance ("decode positions"), after which both engines give bit-identical logits. Neither changes its speed.',
    ],
  }
}
