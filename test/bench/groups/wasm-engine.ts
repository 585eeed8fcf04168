// Group 7: ondevice's WebAssembly engine (backend 'wasm') against onnxruntime-web's WASM
// ('ort-wasm', q8, one thread: what the engine replaces) and onnxruntime-node (q4, the native
// peer), on the same package files, through the same loadModel / createOrtSession + generate
// path. All engines stay loaded and take turns (order alternating by round) after a warm-up;
// medians. Peak RSS comes from a fresh child process per engine. Decode tok/s and TTFT are
// reported as ratios to onnxruntime-web q8 and to onnxruntime-node q4 in the same run (the issue's
// targets: engine q4 at one thread against onnxruntime-web q8 at one thread, at two threads against
// onnxruntime-node q4 at its default threads), with the read bandwidth each decode implies
// (weight bytes per token × tok/s) against this machine's measured limit (group 2's, or measured
// here).
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Backend } from '../../../client-runtime/dtype.ts'
import { type Bandwidth, measureReadBandwidth } from '../support/bandwidth.ts'
import type { BenchContext, GroupResult } from '../support/context.ts'
import { type BenchEngine, nodeOrt, openOurs, openOursSession } from '../support/engines.ts'
import {
  type BenchPackage,
  decoderWeightBytes,
  ensurePackage,
  type PackageId,
  unavailableReason,
} from '../support/packages.ts'
import { promptOfLength } from '../support/prompts.ts'
import { formatBytes, formatNumber, formatRatio, median, type Table } from '../support/stats.ts'

const run = promisify(execFile)

interface Contender {
  readonly label: string
  readonly backend: Backend
  readonly dtype: string
  /** Threads: the engine's numThreads, onnxruntime-node's intra-op threads (undefined = one for the engine, its default for onnxruntime-node). */
  readonly threads?: number
}

interface Figures {
  ttftShortMs: number[]
  ttftLongMs: number[]
  decodeTokensPerSecond: number[]
  peakRssBytes?: number
  /** RSS of the probe process before it loads anything (its imports). */
  baselineRssBytes?: number
  loadMs?: number
  error?: string
}

// The full-size shapes: the engine's two formats against onnxruntime-web's best WASM format and
// the native runtime.
const quantizedContenders: readonly Contender[] = [
  { label: 'ondevice engine q4, 1 thread', backend: 'wasm', dtype: 'q4' },
  { label: 'ondevice engine q4, 2 threads', backend: 'wasm', dtype: 'q4', threads: 2 },
  { label: 'ondevice engine q8, 1 thread', backend: 'wasm', dtype: 'q8' },
  { label: 'onnxruntime-web q8, 1 thread', backend: 'ort-wasm', dtype: 'q8' },
  { label: 'onnxruntime-node q4, 1 thread', backend: 'native', dtype: 'q4', threads: 1 },
  { label: 'onnxruntime-node q4, default threads', backend: 'native', dtype: 'q4' },
]

const cases: readonly { id: PackageId; contenders: readonly Contender[] }[] = [
  {
    // The seed model's shape and the issue's benchmark target.
    id: 'qwen3_5-0.8b',
    contenders: quantizedContenders,
  },
  {
    id: 'qwen3-0.6b',
    contenders: quantizedContenders,
  },
  {
    id: 'stories260K',
    contenders: [
      { label: 'ondevice engine fp32, 1 thread', backend: 'wasm', dtype: 'fp32' },
      { label: 'onnxruntime-web fp32, 1 thread', backend: 'ort-wasm', dtype: 'fp32' },
    ],
  },
]

/** Packages whose rows also run in headless Chromium (the issue's target shape). */
const chromiumCases: ReadonlySet<PackageId> = new Set(['qwen3_5-0.8b'])

async function open(context: BenchContext, pkg: BenchPackage, contender: Contender): Promise<BenchEngine> {
  if (contender.backend === 'wasm')
    return openOurs({
      folder: pkg.folder,
      dtype: contender.dtype,
      backend: 'wasm',
      cacheFolder: context.cacheFolder,
      ...(contender.threads === undefined ? {} : { numThreads: contender.threads }),
    })
  return openOursSession({
    folder: pkg.folder,
    dtype: contender.dtype,
    backend: contender.backend,
    // onnxruntime-web's thread count is global per process: this group sets it to 1 first.
    ort: await nodeOrt(contender.backend === 'ort-wasm' ? 'wasm' : 'native', 1),
    ...(contender.threads === undefined
      ? {}
      : { sessionOptions: { intraOpNumThreads: contender.threads, interOpNumThreads: 1 } }),
    label: contender.label,
  })
}

async function probeMemory(
  context: BenchContext,
  pkg: BenchPackage,
  contender: Contender,
  promptTokenIds: readonly number[],
): Promise<{ loadMs: number; peakRssBytes: number; baselineRssBytes: number }> {
  const request = {
    engine: 'ours',
    folder: pkg.folder,
    dtype: contender.dtype,
    cacheFolder: context.cacheFolder,
    promptTokenIds,
    maxTokens: 8,
    backend: contender.backend,
    numThreads: contender.backend === 'wasm' ? (contender.threads ?? 1) : 1,
  }
  const { stdout } = await run(
    process.execPath,
    [join(import.meta.dirname, '../support/rss-probe.ts'), JSON.stringify(request)],
    { maxBuffer: 16 * 1024 * 1024, timeout: 600_000 },
  )
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as {
    loadMs: number
    peakRssBytes: number
    baselineRssBytes: number
  }
}

/** Group 2's measured read bandwidth when it ran in this invocation, else measured here once. */
async function readBandwidth(context: BenchContext): Promise<Bandwidth> {
  const fromGroupTwo = (context.results.get(2)?.data as { bandwidth?: Bandwidth } | undefined)?.bandwidth
  if (fromGroupTwo) return fromGroupTwo
  context.log('group 7: measuring memory read bandwidth (as group 2 does)')
  return measureReadBandwidth({ repetitions: 3 })
}

export async function wasmEngine(context: BenchContext): Promise<GroupResult> {
  const tables: Table[] = []
  const data: Record<string, unknown> = {}
  let bandwidth: Bandwidth | undefined
  for (const { id, contenders } of cases) {
    if (context.packages && !context.packages.has(id)) continue
    const missing = unavailableReason(id)
    if (missing) {
      context.log(`group 7: ${id} skipped (${missing})`)
      continue
    }
    const pkg = await ensurePackage(id, context.cacheFolder, context.log)
    const rounds = context.quick ? 1 : 3
    const decodeTokens = context.quick ? 8 : 24
    const longLength = context.quick ? 64 : Math.min(512, pkg.contextLength - 1)
    const tokenizer = (await import('../support/engines.ts')).folderTokenizer(pkg.folder)
    const shortPrompt = promptOfLength(tokenizer, 8, pkg.bosTokenId)
    const longPrompt = promptOfLength(tokenizer, longLength, pkg.bosTokenId)
    // The same rows in headless Chromium (wasm-engine-chromium.ts), after Node's or alone (--hosts).
    const chromiumRows = async () => {
      if (!chromiumCases.has(id) || (context.hosts && !context.hosts.has('chromium'))) return
      const { wasmEngineChromiumRows } = await import('./wasm-engine-chromium.ts')
      const rows = await wasmEngineChromiumRows(context, { pkg, shortPrompt, longPrompt, decodeTokens })
      tables.push(rows.table)
      data[`${id} (Chromium)`] = rows.data
    }
    if (context.hosts && !context.hosts.has('node')) {
      await chromiumRows()
      continue
    }
    const engines: BenchEngine[] = []
    const figures = new Map<Contender, Figures>()
    for (const contender of contenders) {
      try {
        engines.push(await open(context, pkg, contender))
        figures.set(contender, { ttftShortMs: [], ttftLongMs: [], decodeTokensPerSecond: [] })
      } catch (error) {
        figures.set(contender, {
          ttftShortMs: [],
          ttftLongMs: [],
          decodeTokensPerSecond: [],
          error: (error as Error).message.split('\n')[0],
        })
      }
    }
    const running = contenders.filter((contender) => !figures.get(contender)?.error)
    try {
      for (const engine of engines) await engine.run(shortPrompt, 2)
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? [...running.keys()] : [...running.keys()].reverse()
        for (const index of order) {
          const engine = engines[index] as BenchEngine
          const entry = figures.get(running[index] as Contender) as Figures
          const decode = await engine.run(shortPrompt, decodeTokens)
          entry.ttftShortMs.push(decode.ttftMs)
          entry.decodeTokensPerSecond.push(decode.decodeTokensPerSecond)
          entry.ttftLongMs.push((await engine.run(longPrompt, 1)).ttftMs)
        }
        context.log(
          `  ${id} round ${round + 1}/${rounds}: ${running.map((c) => `${c.label} ${formatNumber(median(figures.get(c)?.decodeTokensPerSecond ?? []))} tok/s`).join(', ')}`,
        )
      }
    } finally {
      for (const engine of engines) await engine.dispose()
    }
    for (const contender of running) {
      try {
        Object.assign(
          figures.get(contender) as Figures,
          await probeMemory(context, pkg, contender, longPrompt),
        )
      } catch (error) {
        context.log(
          `  ${id} ${contender.label}: memory probe failed: ${(error as Error).message.split('\n')[0]}`,
        )
      }
    }
    const peer = running.find((c) => c.backend === 'ort-wasm')
    const peerFigures = peer ? figures.get(peer) : undefined
    const ratio = (value: number, base: number | undefined) =>
      base === undefined || !Number.isFinite(base) || base === 0 ? '' : formatRatio(value / base)
    bandwidth ??= await readBandwidth(context)
    const decodeOf = (find: (c: Contender) => boolean): number | undefined => {
      const contender = running.find(find)
      return contender ? median(figures.get(contender)?.decodeTokensPerSecond ?? []) : undefined
    }
    const nativeOne = decodeOf((c) => c.backend === 'native' && c.threads === 1)
    const nativeDefault = decodeOf((c) => c.backend === 'native' && c.threads === undefined)
    const engineOne = decodeOf((c) => c.backend === 'wasm' && c.dtype !== 'q8' && c.threads === undefined)
    const engineTwo = decodeOf((c) => c.backend === 'wasm' && c.threads === 2)
    const peerDecode = peerFigures ? median(peerFigures.decodeTokensPerSecond) : undefined
    const weightBytes = new Map<string, number>()
    const perToken = (dtype: string): number => {
      const known = weightBytes.get(dtype)
      if (known !== undefined) return known
      const bytes = decoderWeightBytes(pkg, dtype).perToken
      weightBytes.set(dtype, bytes)
      return bytes
    }
    const limit = (contender: Contender) =>
      (contender.threads ?? (contender.backend === 'native' ? 2 : 1)) > 1
        ? (bandwidth as Bandwidth).allCores
        : (bandwidth as Bandwidth).singleThread
    const target = (label: string, value: number | undefined, base: number | undefined, goal: number) =>
      value === undefined || base === undefined || base === 0
        ? `${label}: not measured`
        : `${label}: ${formatRatio(value / base)} (target ≥ ${goal}×${value / base >= goal ? ', met' : ', missed'})`
    const engineGoal = id === 'qwen3_5-0.8b' ? 3 : 2
    tables.push({
      title: `${pkg.label}: the WebAssembly engine vs onnxruntime (Node, ${rounds} rounds, medians)`,
      columns: [
        'engine',
        'decode tok/s',
        'vs ort-web',
        `TTFT ${shortPrompt.length} tokens`,
        `TTFT ${longPrompt.length} tokens`,
        `vs ort-web`,
        'vs ort-node q4 1 thread',
        'vs ort-node q4 default',
        'implied read GB/s (of limit)',
        'peak RSS',
        'load',
      ],
      rows: contenders.map((contender) => {
        const f = figures.get(contender) as Figures
        if (f.error) return [contender.label, `failed: ${f.error}`, '', '', '', '', '', '', '', '', '']
        const decode = median(f.decodeTokensPerSecond)
        const ttftLong = median(f.ttftLongMs)
        return [
          contender.label,
          formatNumber(decode),
          ratio(decode, peerFigures ? median(peerFigures.decodeTokensPerSecond) : undefined),
          `${formatNumber(median(f.ttftShortMs))} ms`,
          `${formatNumber(ttftLong)} ms`,
          peerFigures ? ratio(median(peerFigures.ttftLongMs), ttftLong) : '',
          ratio(decode, nativeOne),
          ratio(decode, nativeDefault),
          `${formatNumber((perToken(contender.dtype) * decode) / 1e9)} (${Math.round(((perToken(contender.dtype) * decode) / limit(contender)) * 100)} %)`,
          f.peakRssBytes === undefined
            ? ''
            : `${formatBytes(f.peakRssBytes - (f.baselineRssBytes ?? 0))} (of ${formatBytes(f.peakRssBytes)})`,
          f.loadMs === undefined ? '' : `${formatNumber(f.loadMs)} ms`,
        ]
      }),
      notes: [
        `greedy, ${decodeTokens} tokens after an ${shortPrompt.length}-token prompt; TTFT of a ${longPrompt.length}-token prompt separately; "vs ort-web" is the speed ratio to onnxruntime-web (decode: ours / theirs, TTFT: theirs / ours), so above 1 is faster`,
        'peak RSS: what the engine added to a fresh probe process (its imports, about 1.3 GiB here, excluded), with the whole peak in brackets; load time from the same process (loadModel with the same store)',
        'the engine runs one thread unless the label says two (worker_threads over shared memory, the same bits); onnxruntime-node "default threads" uses every core it finds',
        `the issue's decode targets, ratios from this run: ${target('engine q4 1 thread / onnxruntime-web q8 1 thread', engineOne, peerDecode, engineGoal)}; ${target('engine q4 2 threads / onnxruntime-node q4 default threads', engineTwo, nativeDefault, 1)}; engine q4 1 thread / onnxruntime-node q4 1 thread: ${nativeOne && engineOne ? formatRatio(engineOne / nativeOne) : 'not measured'}`,
        `implied read bandwidth: the decoder's weight bytes per token (${[...new Set(contenders.map((c) => c.dtype))].map((dtype) => `${formatBytes(perToken(dtype))} for ${dtype}`).join(', ')}) × decode tok/s, against the measured read bandwidth of ${formatNumber(bandwidth.singleThread / 1e9)} GB/s on one thread (${formatNumber(bandwidth.allCores / 1e9)} GB/s on ${bandwidth.threads} threads, for the rows with more than one)`,
      ],
    })
    data[id] = Object.fromEntries(contenders.map((c) => [c.label, figures.get(c)]))
    await chromiumRows()
  }
  return { group: 7, title: 'the WebAssembly engine vs onnxruntime-web and onnxruntime-node', tables, data }
}
