// Group 3: where a decode step's time goes on stories260K (compute is negligible there, so
// everything that is not ONNX Runtime shows): the session run itself, the cache hand-over around
// it (building feeds, reading the last logits row, swapping present → past), sampling, and the
// rest of core's generate loop (text stream, stop checks). The ORT module is wrapped so that every
// InferenceSession.run is timed; nothing in the product changes. transformers.js gets the same
// split (its step time against its ORT session's run time) for comparison.
import type { InferenceSession } from 'onnxruntime-node'
import type { Backend } from '../../../client-runtime/dtype.ts'
import type { OrtModule } from '../../../client-runtime/ort-session.ts'
import { generate } from '../../../core/generate.ts'
import type { ModelSession } from '../../../core/model-session.ts'
import { Sampler, type SamplingOptions } from '../../../core/sampling/index.ts'
import type { BenchContext, GroupResult } from '../support/context.ts'
import { nodeOrt, openOursSession, openTransformers } from '../support/engines.ts'
import { ensurePackage, unavailableReason } from '../support/packages.ts'
import { promptOfLength } from '../support/prompts.ts'
import { formatNumber, median, percentile, type Table } from '../support/stats.ts'

interface RunClock {
  ms: number
}

/** An OrtModule whose sessions add the time of every run() to `clock`. */
function timedOrt(ort: OrtModule, clock: RunClock): OrtModule {
  const create = async (...args: unknown[]): Promise<InferenceSession> => {
    const session = (await (ort.InferenceSession.create as (...a: unknown[]) => Promise<InferenceSession>)(
      ...args,
    )) as InferenceSession
    timeRuns(session, clock)
    return session
  }
  return { Tensor: ort.Tensor, InferenceSession: { create } as unknown as OrtModule['InferenceSession'] }
}

function timeRuns(session: InferenceSession, clock: RunClock): void {
  const run = session.run.bind(session) as (...args: unknown[]) => Promise<unknown>
  ;(session as unknown as { run: (...args: unknown[]) => Promise<unknown> }).run = async (
    ...args: unknown[]
  ) => {
    const started = performance.now()
    try {
      return await run(...args)
    } finally {
      clock.ms += performance.now() - started
    }
  }
}

interface Split {
  readonly backend: string
  readonly steps: number
  readonly sessionRunMs: number
  readonly handOverMs: number
  readonly samplingGreedyMs: number
  readonly samplingFullMs: number
  readonly loopMs: number
  readonly stepMs: number
  readonly stepP90Ms: number
}

const samplingFull: SamplingOptions = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.02,
  repetitionPenalty: 1.1,
  seed: 7,
}

/** A ModelSession view that records each append's wall time and the ORT run time inside it. */
function timedSession(
  session: ModelSession,
  clock: RunClock,
  appends: { appendMs: number; runMs: number }[],
): ModelSession {
  return {
    get info() {
      return session.info
    },
    get tokens() {
      return session.tokens
    },
    append: async (tokenIds, options) => {
      clock.ms = 0
      const started = performance.now()
      const logits = await session.append(tokenIds, options)
      appends.push({ appendMs: performance.now() - started, runMs: clock.ms })
      return logits
    },
    rewind: (length) => session.rewind(length),
    reset: () => session.reset(),
    dispose: () => session.dispose(),
  }
}

async function splitOurs(
  folder: string,
  backend: Backend,
  bosTokenId: number | undefined,
  steps: number,
  sessionOptions?: Record<string, unknown>,
): Promise<Split> {
  const clock: RunClock = { ms: 0 }
  const engine = await openOursSession({
    folder,
    dtype: 'fp32',
    backend,
    ort: timedOrt(await nodeOrt(backend, 1), clock),
    ...(sessionOptions ? { sessionOptions } : {}),
  })
  try {
    const prompt = promptOfLength(engine.tokenizer, 16, bosTokenId)
    const appends: { appendMs: number; runMs: number }[] = []
    const session = timedSession(engine.session, clock, appends)
    const view = {
      eosTokenIds: [] as number[],
      decode: (ids: readonly number[], options?: { readonly skipSpecialTokens?: boolean }) =>
        engine.tokenizer.decode(ids, options),
    }
    const intervals: number[] = []
    const stepAppends: { appendMs: number; runMs: number }[] = []
    let lastLogits: Float32Array | undefined
    for (let pass = 0; pass < 3; pass++) {
      // Pass 0 warms up; passes 1 and 2 are measured.
      await session.reset()
      appends.length = 0
      let previous = 0
      for await (const part of generate(session, view, {
        promptTokenIds: prompt,
        maxTokens: steps,
        sampling: { temperature: 0 },
      })) {
        if (part.type !== 'text-delta' || part.tokenIds.length === 0) continue
        const now = performance.now()
        if (previous > 0 && pass > 0) intervals.push(now - previous)
        previous = now
      }
      if (pass > 0) stepAppends.push(...appends.slice(1))
    }
    // Sampling, timed alone on logits this model produced.
    await session.reset()
    lastLogits = await engine.session.append(prompt)
    const history = [...prompt]
    const greedy = new Sampler({ temperature: 0 })
    const full = new Sampler(samplingFull)
    const sampleGreedy: number[] = []
    const sampleFull: number[] = []
    for (let step = 0; step < steps; step++) {
      const copy = lastLogits.slice()
      let started = performance.now()
      full.sample(copy, history, step, prompt.length)
      sampleFull.push(performance.now() - started)
      started = performance.now()
      greedy.sample(lastLogits.slice(), history, step, prompt.length)
      sampleGreedy.push(performance.now() - started)
    }
    const stepMs = median(intervals)
    const appendMs = median(stepAppends.map((entry) => entry.appendMs))
    const runMs = median(stepAppends.map((entry) => entry.runMs))
    const greedyMs = median(sampleGreedy)
    return {
      backend: `ondevice ${backend}${sessionOptions ? ' 1 thread' : backend === 'wasm' ? ' 1 thread' : ' default threads'}`,
      steps,
      sessionRunMs: runMs,
      handOverMs: appendMs - runMs,
      samplingGreedyMs: greedyMs,
      samplingFullMs: median(sampleFull),
      loopMs: Math.max(0, stepMs - appendMs - greedyMs),
      stepMs,
      stepP90Ms: percentile(intervals, 90),
    }
  } finally {
    await engine.dispose()
  }
}

async function splitTransformers(folder: string, prompt: readonly number[], steps: number): Promise<Split> {
  const engine = await openTransformers({ folder, dtype: 'fp32' })
  try {
    const clock: RunClock = { ms: 0 }
    for (const session of Object.values(engine.sessions)) timeRuns(session, clock)
    await engine.run(prompt, 8)
    const perToken: number[] = []
    const runPerToken: number[] = []
    for (let repetition = 0; repetition < 3; repetition++) {
      // Their prefill run is included in the clock; subtract a prefill-only run's time.
      clock.ms = 0
      await engine.run(prompt, 1)
      const prefillRunMs = clock.ms
      clock.ms = 0
      const result = await engine.run(prompt, steps)
      perToken.push(1000 / result.decodeTokensPerSecond)
      runPerToken.push((clock.ms - prefillRunMs) / (steps - 1))
    }
    const stepMs = median(perToken)
    const runMs = median(runPerToken)
    return {
      backend: 'transformers.js cpu',
      steps,
      sessionRunMs: runMs,
      handOverMs: Number.NaN,
      samplingGreedyMs: Number.NaN,
      samplingFullMs: Number.NaN,
      loopMs: stepMs - runMs,
      stepMs,
      stepP90Ms: percentile(perToken, 90),
    }
  } finally {
    await engine.dispose()
  }
}

export async function stepOverhead(context: BenchContext): Promise<GroupResult> {
  const title = 'Per-decode-step time on stories260K (fp32), split'
  const missing = unavailableReason('stories260K')
  if (missing)
    return {
      group: 3,
      title,
      tables: [{ title: `Group 3: ${title}`, columns: ['status'], rows: [[`not run: ${missing}`]] }],
      data: { skipped: missing },
    }
  const pkg = await ensurePackage('stories260K', context.cacheFolder, context.log)
  const steps = context.quick ? 32 : 200
  const splits: Split[] = []
  splits.push(await splitOurs(pkg.folder, 'native', pkg.bosTokenId, steps))
  splits.push(
    await splitOurs(pkg.folder, 'native', pkg.bosTokenId, steps, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    }),
  )
  splits.push(await splitOurs(pkg.folder, 'wasm', pkg.bosTokenId, steps))
  const tokenizer = (await import('../support/engines.ts')).folderTokenizer(pkg.folder)
  splits.push(await splitTransformers(pkg.folder, promptOfLength(tokenizer, 16, pkg.bosTokenId), steps))
  const ms = (value: number): string => (Number.isFinite(value) ? `${formatNumber(value * 1000)} µs` : '—')
  const table: Table = {
    title: `Group 3: ${title} (${steps} steps after a 16-token prompt, medians)`,
    columns: [
      'engine',
      'session run',
      'cache hand-over',
      'sampling (greedy)',
      'sampling (temperature, top-k, top-p, min-p, penalty)',
      'rest of the loop',
      'step total',
      'step p90',
      'overhead (step − run)',
      'tok/s',
    ],
    rows: splits.map((split) => [
      split.backend,
      ms(split.sessionRunMs),
      ms(split.handOverMs),
      ms(split.samplingGreedyMs),
      ms(split.samplingFullMs),
      ms(split.loopMs),
      ms(split.stepMs),
      ms(split.stepP90Ms),
      ms(split.stepMs - split.sessionRunMs),
      formatNumber(1000 / split.stepMs),
    ]),
    notes: [
      'Session run: InferenceSession.run (both graphs for Qwen3.5; one here). Cache hand-over: the rest of ModelSession.append (input tensors, attention mask and positions, last logits row copy, present → past swap).',
      "All from core generate() itself (the session is wrapped to time each append and the ORT runs inside it). Step total: median interval between streamed tokens. Sampling: core Sampler on this model's 512 logits, timed alone; greedy is what the generation ran, the full chain is for reference. Rest of the loop: step − append − greedy sampling (text stream, stop checks, async hand-offs).",
      'transformers.js: its step time from its streamer, against its ORT session run time per step; everything else (its logits processors, sampler, cache and tensor handling) is "rest of the loop".',
    ],
  }
  return { group: 3, title, tables: [table], data: splits }
}
