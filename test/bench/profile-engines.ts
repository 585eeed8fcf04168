// Why does one engine decode faster than the other on the same graph and the same onnxruntime-node?
// Runs ours and transformers.js on one package with ORT profiling on (enableProfiling) and every
// InferenceSession.run timed from JavaScript, alternating engines round by round, then compares per
// decode step: wall time between streamed tokens, JS time inside run(), ORT's own model_run time,
// the sum of its kernel times, per-op-type kernel time, and what each engine feeds and fetches.
// A diagnostic script, not part of `npm run bench`:
//   npx node test/bench/profile-engines.ts --package qwen3-0.6b --dtype q4 [--steps 16] [--rounds 3]
//     [--no-profile] [--paired N] [--cache FOLDER] [--threads N] [--ours-options JSON] [--theirs-options JSON]
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import type { InferenceSession, Tensor } from 'onnxruntime-node'
import type { OrtModule } from '../../client-runtime/ort-session.ts'
import { nodeOrt, openOursSession, openTransformers } from './support/engines.ts'
import { defaultCacheFolder, ensurePackage, type PackageId, repositoryRoot } from './support/packages.ts'
import { promptOfLength } from './support/prompts.ts'
import { median } from './support/stats.ts'

interface RunRecord {
  readonly engine: string
  readonly session: string
  readonly sequenceLength: number
  readonly jsMs: number
  readonly feedBytes: number
  readonly fetchBytes: number
  readonly feeds: string
  readonly fetches: string
}

function argument(name: string): string | undefined {
  const index = process.argv.indexOf(`--${name}`)
  return index < 0 ? undefined : process.argv[index + 1]
}

const packageId = (argument('package') ?? 'qwen3-0.6b') as PackageId
const dtype = argument('dtype') ?? 'q4'
const steps = Number(argument('steps') ?? 16)
const rounds = Number(argument('rounds') ?? 3)
const promptLength = Number(argument('prompt') ?? 128)
const profile = !process.argv.includes('--no-profile')
const threads = argument('threads') === undefined ? undefined : Number(argument('threads'))
const oursExtra = JSON.parse(argument('ours-options') ?? '{}') as InferenceSession.SessionOptions
const theirsExtra = JSON.parse(argument('theirs-options') ?? '{}') as InferenceSession.SessionOptions
const outFolder = argument('out') ?? join(repositoryRoot, 'bench-results', 'profile')
const records: RunRecord[] = []
const pairedRuns = Number(argument('paired') ?? 30)
/** The feeds of each session's latest decode step (`engine/session`), replayed by the paired test. */
const lastDecodeFeeds = new Map<string, Record<string, Tensor>>()
let recording = true

function tensorBytes(tensor: Tensor): number {
  const data = (tensor as unknown as { data?: { byteLength?: number } }).data
  return data?.byteLength ?? 0
}

function describe(tensors: Record<string, Tensor>): string {
  return Object.entries(tensors)
    .map(([name, tensor]) => `${name}:${tensor.type}[${tensor.dims.join(',')}]`)
    .join(' ')
}

/** Times every run() of a session from JavaScript and records what went in and out. */
function instrument(session: InferenceSession, engine: string, name: string): void {
  const run = session.run.bind(session) as (
    feeds: Record<string, Tensor>,
    ...rest: unknown[]
  ) => Promise<Record<string, Tensor>>
  ;(session as unknown as { run: typeof run }).run = async (feeds, ...rest) => {
    const started = performance.now()
    const outputs = await run(feeds, ...rest)
    const jsMs = performance.now() - started
    if (!recording) return outputs
    const first = (feeds.input_ids ?? feeds.inputs_embeds) as Tensor | undefined
    if (first?.dims[1] === 1) lastDecodeFeeds.set(`${engine}/${name}`, feeds)
    records.push({
      engine,
      session: name,
      sequenceLength: (first?.dims[1] as number | undefined) ?? 0,
      jsMs,
      feedBytes: Object.values(feeds).reduce((sum, tensor) => sum + tensorBytes(tensor), 0),
      fetchBytes: Object.values(outputs).reduce((sum, tensor) => sum + tensorBytes(tensor), 0),
      feeds: describe(feeds),
      fetches: describe(outputs),
    })
    return outputs
  }
}

// onnxruntime-node is CommonJS: transformers.js requires it and our ESM import gets the same module,
// so one patch of InferenceSession.create sees every session either engine makes. It records the
// options and gives each session its own profile file (`<engine>-<n>_<date>.json`).
interface Created {
  readonly engine: string
  readonly index: number
  readonly options: unknown
  session?: InferenceSession
}
const created: Created[] = []
let creatingFor = 'ondevice'
const commonJsOrt = createRequire(
  join(repositoryRoot, 'node_modules/@huggingface/transformers/dist/transformers.node.mjs'),
)('onnxruntime-node') as typeof import('onnxruntime-node')
{
  const create = commonJsOrt.InferenceSession.create.bind(commonJsOrt.InferenceSession)
  ;(commonJsOrt.InferenceSession as unknown as { create: unknown }).create = async (...args: unknown[]) => {
    const optionsIndex = args.findIndex(
      (value, index) => index > 0 && typeof value === 'object' && value !== null,
    )
    const options = (optionsIndex < 0 ? {} : args[optionsIndex]) as Record<string, unknown>
    const entry: Created = {
      engine: creatingFor,
      index: created.filter((item) => item.engine === creatingFor).length,
      options: JSON.parse(
        JSON.stringify(options, (key, value) => (key === 'externalData' ? '[...]' : value)),
      ),
    }
    created.push(entry)
    if (typeof options.profileFilePrefix === 'string') {
      const copy = { ...options, profileFilePrefix: `${options.profileFilePrefix}-${entry.index}` }
      if (optionsIndex < 0) args.push(copy)
      else args[optionsIndex] = copy
    }
    entry.session = await (create as (...a: unknown[]) => Promise<InferenceSession>)(...args)
    return entry.session
  }
}

function oursOrt(ort: OrtModule): { module: OrtModule; sessions: InferenceSession[] } {
  const sessions: InferenceSession[] = []
  const create = async (...args: unknown[]): Promise<InferenceSession> => {
    const session = await (ort.InferenceSession.create as (...a: unknown[]) => Promise<InferenceSession>)(
      ...args,
    )
    instrument(
      session,
      'ondevice',
      sessions.length === 0 && packageId.startsWith('qwen3_5') ? 'embed' : 'model',
    )
    sessions.push(session)
    return session
  }
  return {
    module: { Tensor: ort.Tensor, InferenceSession: { create } as unknown as OrtModule['InferenceSession'] },
    sessions,
  }
}

interface ProfileEvent {
  cat: string
  name: string
  ts: number
  dur: number
  args?: { op_name?: string; provider?: string; thread_scheduling_stats?: unknown }
}

interface RunProfile {
  runUs: number
  kernelUs: number
  byOp: Map<string, number>
}

/** model_run events in order, each with the kernel time of the nodes inside it. */
function readProfile(file: string): RunProfile[] {
  const events = JSON.parse(readFileSync(file, 'utf8')) as ProfileEvent[]
  const runs = events.filter((event) => event.cat === 'Session' && event.name === 'model_run')
  const kernels = events.filter((event) => event.cat === 'Node' && event.name.endsWith('_kernel_time'))
  return runs.map((run) => {
    const byOp = new Map<string, number>()
    let kernelUs = 0
    for (const kernel of kernels) {
      if (kernel.ts < run.ts || kernel.ts > run.ts + run.dur) continue
      kernelUs += kernel.dur
      const op = kernel.args?.op_name ?? '?'
      byOp.set(op, (byOp.get(op) ?? 0) + kernel.dur)
    }
    return { runUs: run.dur, kernelUs, byOp }
  })
}

async function main(): Promise<void> {
  const log = (line: string): void => {
    process.stderr.write(`[profile] ${line}\n`)
  }
  log(
    `load average at start: ${loadavg()
      .map((value) => value.toFixed(2))
      .join(' / ')}`,
  )
  const pkg = await ensurePackage(packageId, argument('cache') ?? defaultCacheFolder(), log, true)
  rmSync(outFolder, { recursive: true, force: true })
  mkdirSync(outFolder, { recursive: true })
  const profiling = (prefix: string): InferenceSession.SessionOptions =>
    profile ? { enableProfiling: true, profileFilePrefix: join(outFolder, prefix) } : {}
  const threadOptions: InferenceSession.SessionOptions =
    threads === undefined ? {} : { intraOpNumThreads: threads, interOpNumThreads: 1 }
  const wrapped = oursOrt(await nodeOrt('native'))
  const ours = await openOursSession({
    folder: pkg.folder,
    dtype,
    backend: 'native',
    ort: wrapped.module,
    sessionOptions: { ...profiling('ours'), ...threadOptions, ...oursExtra },
  })
  creatingFor = 'transformers.js'
  const theirs = await openTransformers({
    folder: pkg.folder,
    dtype,
    sessionOptions: { ...profiling('tjs'), ...threadOptions, ...theirsExtra },
  })
  for (const [name, session] of Object.entries(theirs.sessions)) instrument(session, 'transformers.js', name)
  for (const entry of created)
    log(`${entry.engine} session ${entry.index} options: ${JSON.stringify(entry.options)}`)
  const sessionName = new Map<InferenceSession, string>()
  for (const [name, session] of Object.entries(theirs.sessions)) sessionName.set(session, name)
  for (const [index, session] of wrapped.sessions.entries())
    sessionName.set(session, index === 0 && wrapped.sessions.length > 1 ? 'embed' : 'model')

  const prompt = promptOfLength(ours.tokenizer, promptLength, pkg.bosTokenId)
  const stepWall = new Map<string, number[]>([
    ['ondevice', []],
    ['transformers.js', []],
  ])
  const ttft = new Map<string, number[]>([
    ['ondevice', []],
    ['transformers.js', []],
  ])
  const cpuSeconds = new Map<string, number[]>([
    ['ondevice', []],
    ['transformers.js', []],
  ])
  // Warm-up (not counted): 4 tokens each.
  records.length = 0
  for (const engine of [ours, theirs]) await engine.run(prompt.slice(0, 16), 4)
  const warmupRecords = records.length
  const engines = [
    { name: 'ondevice', engine: ours },
    { name: 'transformers.js', engine: theirs },
  ]
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? engines : [...engines].reverse()
    for (const { name, engine } of order) {
      const cpuBefore = process.cpuUsage()
      const result = await engine.run(prompt, steps + 1)
      const cpu = process.cpuUsage(cpuBefore)
      cpuSeconds.get(name)?.push((cpu.user + cpu.system) / 1e6)
      ttft.get(name)?.push(result.ttftMs)
      stepWall.get(name)?.push(1000 / result.decodeTokensPerSecond)
      log(
        `round ${round + 1} ${name}: TTFT ${result.ttftMs.toFixed(0)} ms, decode ${(1000 / result.decodeTokensPerSecond).toFixed(1)} ms/step, process CPU ${cpuSeconds.get(name)?.at(-1)?.toFixed(2)} s for the run (load ${loadavg()[0]?.toFixed(2)})`,
      )
    }
  }
  for (const session of wrapped.sessions) (session as unknown as { endProfiling(): void }).endProfiling?.()
  for (const session of Object.values(theirs.sessions))
    (session as unknown as { endProfiling(): void }).endProfiling?.()

  // Paired test: the two engines' decoder sessions run the very same feeds (our last decode step),
  // one after the other, so each pair sees the same machine load; the ratio per pair is robust
  // where the medians of whole runs are not.
  recording = false
  const oursDecoder = wrapped.sessions.at(-1) as InferenceSession
  const theirsDecoder = Object.entries(theirs.sessions).find(([name]) => !name.startsWith('embed'))?.[1]
  const pairedFeeds = lastDecodeFeeds.get('ondevice/model')
  const pairs: { ours: number; theirs: number }[] = []
  if (theirsDecoder && pairedFeeds && pairedRuns > 0) {
    for (let index = 0; index < pairedRuns; index++) {
      const time = async (session: InferenceSession): Promise<number> => {
        const started = performance.now()
        await session.run(pairedFeeds)
        return performance.now() - started
      }
      // Alternate which goes first.
      if (index % 2 === 0) {
        const ours = await time(oursDecoder)
        pairs.push({ ours, theirs: await time(theirsDecoder) })
      } else {
        const theirsMs = await time(theirsDecoder)
        pairs.push({ ours: await time(oursDecoder), theirs: theirsMs })
      }
    }
  }
  // Cross test: each decoder session on each engine's own last decode feeds, round-robin. If one
  // engine's feeds are slower on either session, the difference is in what it feeds (layout,
  // values), not in its session.
  const theirFeeds = [...lastDecodeFeeds.entries()].find(
    ([key]) => key.startsWith('transformers.js/') && !key.includes('embed'),
  )?.[1]
  const cross = new Map<string, number[]>()
  const feedsUsable = (feeds: Record<string, Tensor> | undefined): boolean =>
    feeds !== undefined &&
    Object.values(feeds).every((tensor) => {
      try {
        return (tensor as unknown as { data?: unknown }).data !== undefined
      } catch {
        return false
      }
    })
  if (theirsDecoder && pairedFeeds && pairedRuns > 0 && feedsUsable(theirFeeds)) {
    const combos = [
      ['our session, our feeds', oursDecoder, pairedFeeds],
      ['our session, their feeds', oursDecoder, theirFeeds],
      ['their session, our feeds', theirsDecoder, pairedFeeds],
      ['their session, their feeds', theirsDecoder, theirFeeds],
    ] as const
    for (let index = 0; index < Math.ceil(pairedRuns / 2); index++) {
      const order = index % 2 === 0 ? combos : [...combos].reverse()
      for (const [label, session, feeds] of order) {
        const started = performance.now()
        await session.run(feeds as Record<string, Tensor>)
        cross.set(label, [...(cross.get(label) ?? []), performance.now() - started])
      }
    }
  } else if (pairedRuns > 0) {
    console.log('\n(cross test skipped: their last decode feeds are not readable any more)')
  }
  const measured = records.slice(warmupRecords)
  const decodeRecords = (engine: string, session: string): RunRecord[] =>
    measured.filter(
      (record) => record.engine === engine && record.session === session && record.sequenceLength === 1,
    )
  console.log(
    `\n## ${pkg.label} ${dtype}: ${steps} decode steps after a ${promptLength}-token prompt, ${rounds} rounds\n`,
  )
  console.log(
    `load average now ${loadavg()
      .map((value) => value.toFixed(2))
      .join(' / ')}`,
  )
  for (const { name } of engines) {
    const walls = stepWall.get(name) as number[]
    console.log(
      `${name}: wall per decode step median ${median(walls).toFixed(1)} ms, min ${Math.min(...walls).toFixed(1)} ms (rounds: ${walls.map((value) => value.toFixed(1)).join(', ')}); process CPU per run median ${median(cpuSeconds.get(name) as number[]).toFixed(2)} s; TTFT median ${median(ttft.get(name) as number[]).toFixed(0)} ms (${(ttft.get(name) as number[]).map((value) => value.toFixed(0)).join(', ')})`,
    )
    const sessions = [
      ...new Set(measured.filter((record) => record.engine === name).map((record) => record.session)),
    ]
    // What a decode step costs outside ORT (logits handling, sampling, cache hand-over, the
    // engine's own tensor code): mean wall per step minus the mean JS time of its runs per step.
    const decodeRunMs = measured
      .filter((record) => record.engine === name && record.sequenceLength === 1)
      .reduce((sum, record) => sum + record.jsMs, 0)
    const meanWall = walls.reduce((sum, value) => sum + value, 0) / walls.length
    console.log(
      `  outside ORT per decode step: ${(meanWall - decodeRunMs / (rounds * steps)).toFixed(1)} ms (mean wall ${meanWall.toFixed(1)} ms − runs ${(decodeRunMs / (rounds * steps)).toFixed(1)} ms)`,
    )

    for (const session of sessions) {
      const decode = decodeRecords(name, session)
      if (decode.length === 0) continue
      console.log(
        `  ${session}.run (decode, JS wall): median ${median(decode.map((record) => record.jsMs)).toFixed(2)} ms, min ${Math.min(...decode.map((record) => record.jsMs)).toFixed(2)} ms over ${decode.length} runs; feeds ${(decode[0]?.feedBytes ?? 0) / 2 ** 20 > 0.01 ? `${((decode[0]?.feedBytes ?? 0) / 2 ** 20).toFixed(2)} MiB` : `${decode[0]?.feedBytes} B`}, fetches ${((decode[0]?.fetchBytes ?? 0) / 2 ** 20).toFixed(2)} MiB`,
      )
      console.log(`    first decode feeds:   ${decode[0]?.feeds.slice(0, 600)}`)
      console.log(`    first decode fetches: ${decode[0]?.fetches.slice(0, 600)}`)
      const prefill = measured.filter(
        (record) => record.engine === name && record.session === session && record.sequenceLength > 1,
      )
      if (prefill.length > 0)
        console.log(
          `  ${session}.run (prefill ${prefill[0]?.sequenceLength} tokens, JS wall): median ${median(prefill.map((record) => record.jsMs)).toFixed(1)} ms; fetches ${((prefill[0]?.fetchBytes ?? 0) / 2 ** 20).toFixed(1)} MiB: ${prefill[0]?.fetches.slice(0, 300)}`,
        )
    }
  }
  if (pairs.length > 0) {
    const ratios = pairs.map((pair) => pair.theirs / pair.ours)
    console.log(
      `\nPaired: both decoder sessions on the same feeds (${pairedFeeds?.attention_mask?.dims[1] ?? '?'} positions), ${pairs.length} pairs, alternating: ours median ${median(pairs.map((pair) => pair.ours)).toFixed(1)} ms (min ${Math.min(...pairs.map((pair) => pair.ours)).toFixed(1)}), theirs median ${median(pairs.map((pair) => pair.theirs)).toFixed(1)} ms (min ${Math.min(...pairs.map((pair) => pair.theirs)).toFixed(1)}); theirs ÷ ours per pair: median ${median(ratios).toFixed(3)}, ours faster in ${ratios.filter((ratio) => ratio > 1).length} of ${ratios.length} (profiling ${profile ? 'on' : 'off'}; load ${loadavg()[0]?.toFixed(2)})`,
    )
  }
  for (const [label, times] of cross)
    console.log(
      `Cross: ${label}: median ${median(times).toFixed(1)} ms, min ${Math.min(...times).toFixed(1)} ms (${times.length} runs)`,
    )
  if (theirFeeds && pairedFeeds)
    for (const name of Object.keys(pairedFeeds)) {
      const ours = pairedFeeds[name] as Tensor
      const their = theirFeeds[name] as Tensor | undefined
      const ourData = (ours as unknown as { data: ArrayBufferView }).data
      const theirData = (their as unknown as { data?: ArrayBufferView } | undefined)?.data
      if (!theirData) continue
      const describeBuffer = (data: ArrayBufferView): string => {
        let subnormal = 0
        if (data instanceof Float32Array)
          for (const value of data) if (value !== 0 && Math.abs(value) < 1.1754944e-38) subnormal++
        return `offset ${data.byteOffset} (mod 64: ${data.byteOffset % 64}), buffer ${data.buffer.byteLength} B for ${data.byteLength} B, ${subnormal} subnormal floats`
      }
      if (/^(past_recurrent\.0|past_conv\.0|inputs_embeds|past_key_values\.[03]\.key)$/.test(name))
        console.log(`  feed ${name}: ours ${describeBuffer(ourData)}; theirs ${describeBuffer(theirData)}`)
    }
  if (!profile) return
  const warmupRecordsOf = (engine: string, session: string): number =>
    records.slice(0, warmupRecords).filter((record) => record.engine === engine && record.session === session)
      .length
  const files = readdirSync(outFolder).filter((file) => file.endsWith('.json'))
  console.log(`\nORT profiles (${outFolder}): ${files.join(', ')}`)
  for (const file of files) {
    const engine = file.startsWith('ours') ? 'ondevice' : 'transformers.js'
    const index = Number(/-(\d+)_/.exec(file)?.[1])
    const entry = created.find((item) => item.engine === engine && item.index === index)
    const session = entry?.session ? (sessionName.get(entry.session) ?? '?') : '?'
    const runs = readProfile(join(outFolder, file))
    const all = records.filter((record) => record.engine === engine)
    const sessionRecords = all.filter((record) => record.session === session)
    // Align from the end: the last runs of the profile are the last runs recorded from JavaScript.
    const offset = runs.length - sessionRecords.length
    const decodeRuns = sessionRecords
      .map((record, index) => ({ record, run: runs[index + offset] as RunProfile }))
      .slice(warmupRecordsOf(engine, session))
      .filter(({ record, run }) => record.sequenceLength === 1 && run !== undefined)
    if (decodeRuns.length === 0) {
      console.log(`${file}: ${runs.length} runs, none matched as decode (session ${session})`)
      continue
    }
    const byOp = new Map<string, number>()
    for (const { run } of decodeRuns)
      for (const [op, us] of run.byOp) byOp.set(op, (byOp.get(op) ?? 0) + us / decodeRuns.length)
    const top = [...byOp.entries()].sort((a, b) => b[1] - a[1])
    console.log(
      `${engine} ${session} (${file}): ${decodeRuns.length} decode runs; ORT model_run median ${(median(decodeRuns.map(({ run }) => run.runUs)) / 1000).toFixed(2)} ms, kernel sum median ${(median(decodeRuns.map(({ run }) => run.kernelUs)) / 1000).toFixed(2)} ms, JS run() median ${median(decodeRuns.map(({ record }) => record?.jsMs ?? 0)).toFixed(2)} ms`,
    )
    const quartiles = (values: number[]): string => {
      const sorted = [...values].sort((a, b) => a - b)
      const at = (share: number): string =>
        (sorted[Math.floor(share * (sorted.length - 1))] ?? Number.NaN).toFixed(1)
      return `min ${at(0)} / p25 ${at(0.25)} / p50 ${at(0.5)}`
    }
    console.log(
      `  ms per decode run: ORT model_run ${quartiles(decodeRuns.map(({ run }) => run.runUs / 1000))}; kernels ${quartiles(decodeRuns.map(({ run }) => run.kernelUs / 1000))}; JS run() ${quartiles(decodeRuns.map(({ record }) => record.jsMs))}; JS run() − model_run (feeds, fetch copies, hand-back) ${quartiles(decodeRuns.map(({ record, run }) => record.jsMs - run.runUs / 1000))}`,
    )
    console.log(
      `  per op type (mean µs per decode run): ${top
        .slice(0, 14)
        .map(([op, us]) => `${op} ${us.toFixed(0)}`)
        .join(', ')}`,
    )
  }
}

await main()
