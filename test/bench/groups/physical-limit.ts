// Group 2: the physical limit. A decode step reads every weight of the decoder once (the
// embedding lookup reads one row; a tied lm_head reads the whole matrix), so bytes of weights per
// token × tokens/s is the memory bandwidth decode implies. Set against this machine's measured
// read bandwidth, it says how much faster decode could get before memory is the wall.

import { measureReadBandwidth } from '../support/bandwidth.ts'
import type { BenchContext, GroupResult } from '../support/context.ts'
import { openOurs } from '../support/engines.ts'
import { decoderWeightBytes, ensurePackage, type PackageId, unavailableReason } from '../support/packages.ts'
import { promptOfLength } from '../support/prompts.ts'
import { formatBytes, formatNumber, median, type Table } from '../support/stats.ts'
import type { BackendRow } from './backend-comparison.ts'
import type { ComparisonRow } from './engine-comparison.ts'

interface Rate {
  readonly packageId: PackageId
  readonly dtype: string
  readonly engine: string
  readonly tokensPerSecond: number
}

const fallbackCases: readonly { id: PackageId; dtype: string }[] = [
  { id: 'stories260K', dtype: 'fp32' },
  { id: 'qwen3_5-tiny', dtype: 'q4' },
  { id: 'qwen3-0.6b', dtype: 'q4' },
  { id: 'qwen3_5-0.8b', dtype: 'q4' },
]

function ratesFromGroupOne(context: BenchContext): Rate[] | undefined {
  const data = context.results.get(1)?.data as
    | { transformers?: ComparisonRow[]; backends?: BackendRow[] }
    | undefined
  if (!data?.transformers) return undefined
  const rates: Rate[] = []
  for (const row of data.transformers) {
    if (row.skipped || row.ours.decodeTokensPerSecond.length === 0) continue
    rates.push({
      packageId: row.packageId,
      dtype: row.dtype,
      engine: 'ondevice native',
      tokensPerSecond: median(row.ours.decodeTokensPerSecond),
    })
    if (row.transformers.decodeTokensPerSecond.length > 0)
      rates.push({
        packageId: row.packageId,
        dtype: row.dtype,
        engine: 'transformers.js cpu',
        tokensPerSecond: median(row.transformers.decodeTokensPerSecond),
      })
  }
  for (const row of data.backends ?? []) {
    const wasm = row.engines['wasm 1 thread']?.decodeTokensPerSecond ?? []
    if (wasm.length > 0)
      rates.push({
        packageId: row.packageId,
        dtype: row.dtype,
        engine: 'ondevice wasm 1 thread',
        tokensPerSecond: median(wasm),
      })
    const native = row.engines['native 1 thread']?.decodeTokensPerSecond ?? []
    if (native.length > 0)
      rates.push({
        packageId: row.packageId,
        dtype: row.dtype,
        engine: 'ondevice native 1 thread',
        tokensPerSecond: median(native),
      })
  }
  return rates
}

async function measureRates(context: BenchContext): Promise<Rate[]> {
  const rates: Rate[] = []
  for (const { id, dtype } of fallbackCases) {
    if ((context.packages && !context.packages.has(id)) || unavailableReason(id)) continue
    const pkg = await ensurePackage(id, context.cacheFolder, context.log)
    const engine = await openOurs({
      folder: pkg.folder,
      dtype,
      backend: 'native',
      cacheFolder: context.cacheFolder,
    })
    try {
      const prompt = promptOfLength(engine.tokenizer, 16, pkg.bosTokenId)
      await engine.run(prompt, 4)
      const result = await engine.run(prompt, context.quick ? 16 : 64)
      rates.push({
        packageId: id,
        dtype,
        engine: 'ondevice native',
        tokensPerSecond: result.decodeTokensPerSecond,
      })
    } finally {
      await engine.dispose()
    }
  }
  return rates
}

export async function physicalLimit(context: BenchContext): Promise<GroupResult> {
  context.log('group 2: measuring memory read bandwidth')
  const bandwidth = await measureReadBandwidth(context.quick ? { repetitions: 3 } : {})
  const fromGroupOne = ratesFromGroupOne(context)
  const rates = fromGroupOne ?? (await measureRates(context))
  const rows: string[][] = []
  const data: unknown[] = []
  for (const rate of rates) {
    const pkg = await ensurePackage(rate.packageId, context.cacheFolder, context.log)
    const { perToken: bytes } = decoderWeightBytes(pkg, rate.dtype)
    const implied = bytes * rate.tokensPerSecond
    const singleThread = rate.engine.includes('1 thread')
    const ceiling = singleThread ? bandwidth.singleThread : bandwidth.allCores
    rows.push([
      pkg.label,
      rate.dtype,
      rate.engine,
      formatNumber(rate.tokensPerSecond),
      formatBytes(bytes),
      `${formatNumber(implied / 1e9)} GB/s`,
      `${formatNumber((100 * implied) / ceiling)} % of ${singleThread ? '1-thread' : 'all-core'}`,
      formatNumber(ceiling / bytes),
    ])
    data.push({
      ...rate,
      weightBytesPerToken: bytes,
      impliedBytesPerSecond: implied,
      ceilingBytesPerSecond: ceiling,
    })
  }
  const table: Table = {
    title: 'Group 2: bytes of weights per token and the bandwidth decode implies',
    columns: [
      'package',
      'dtype',
      'engine',
      'decode tok/s',
      'weight bytes / token',
      'implied read bandwidth',
      'share of measured',
      'bandwidth-bound ceiling tok/s',
    ],
    rows,
    notes: [
      `Measured read bandwidth here (memcmp over ${formatBytes(bandwidth.bufferBytes)} buffers, best of several): ${formatNumber(bandwidth.singleThread / 1e9)} GB/s on one thread, ${formatNumber(bandwidth.allCores / 1e9)} GB/s on ${bandwidth.threads} threads.`,
      'Weight bytes per token: every initializer of the decoder graph once, except an embedding table that only a Gather reads (one row per token); a tied lm_head that multiplies by the table reads it whole. Small models fit in cache, so their share means little: they are bound by per-step overhead, not memory.',
      fromGroupOne
        ? 'Decode rates: group 1 of this run (or of the file given with --results-from).'
        : 'Decode rates: a short ondevice native run here (group 1 was not selected).',
    ],
  }
  return { group: 2, title: 'Physical limit', tables: [table], data: { bandwidth, rows: data } }
}
