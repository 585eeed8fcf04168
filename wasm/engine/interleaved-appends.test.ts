// Two sessions of one engine instance appending at once, not one after the other: their appends
// are in flight together, so one's continuation (a turn, the end of its append) runs between the
// other's passes and layers. The weights and working buffers (the last position's logits among
// them) are the instance's; each append must still give the very logit bytes it gives alone.
// A short append (a prompt's chunk, a decode step) has no turns, yet two of them started together
// still interleave at their awaits; a long one takes turns between passes and, with sliceMs 0,
// between every two layers: turns of a macrotask (what the session's are) or of a microtask, where
// the two sessions run layer for layer in lockstep and one's last layer comes right after the
// other's.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import type { EngineModel } from './models/types.ts'
import { folderWeightReader, loadEngineModule } from './node.ts'
import { createEngineSession, type EngineSession } from './session.ts'

let folder: string
const packages: Record<string, string> = {}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-interleaved-appends-'))
  for (const arch of ['qwen3', 'qwen3_5'] as const) {
    packages[arch] = join(folder, arch)
    await writeFixture({ arch, outDir: packages[arch], dtype: 'q4', seed: 11 })
  }
}, 120_000)

afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true })
})

async function load(arch: string): Promise<EngineSession> {
  return createEngineSession({
    module: await loadEngineModule(),
    files: folderWeightReader(packages[arch] as string),
    dtype: 'q4',
    warmUp: false,
    sessions: 2,
  })
}

const tokens = (length: number, step: number, offset: number): number[] =>
  Array.from({ length }, (_, i) => (i * step + offset) % 250)

/** What each session appends, in order: a prompt, then decode steps of one token. */
interface Script {
  readonly prompt: readonly number[]
  readonly steps: readonly number[]
}

const bytes = (row: Float32Array): Buffer => Buffer.from(row.buffer, row.byteOffset, row.byteLength)

type Turn = 'macrotask' | 'microtask'

/** A turn: the host's next macrotask, or the microtasks queued before this one. */
const turnOf = (turn: Turn): Promise<void> =>
  turn === 'macrotask' ? new Promise((resolve) => setImmediate(resolve)) : Promise.resolve()

/**
 * A hang shows as a failure naming what waits, not as the test's timeout: the bound is many times
 * what these small models take (each append here is milliseconds to a second).
 */
async function bounded<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not finish within 30 s: an append never settled.`)),
      30_000,
    )
  })
  try {
    return await Promise.race([work, limit])
  } finally {
    clearTimeout(timer)
  }
}

/** What a script's run records: its turns, and when each of its appends started and ended. */
interface Log {
  turns: number
  readonly events: string[]
}

/** Runs a script on one model session, `name` in the log: each append's logits bytes. */
async function run(
  model: EngineModel,
  name: string,
  script: Script,
  turn: Turn,
  log: Log,
): Promise<Buffer[]> {
  const rows: Buffer[] = []
  const options = {
    checkpoint: false,
    sliceMs: 0,
    between: async () => {
      log.turns++
      await turnOf(turn)
    },
  }
  const append = async (ids: readonly number[], index: number, checkpoint: boolean) => {
    log.events.push(`${name}${index} start`)
    rows.push(bytes(await model.append(ids, { ...options, checkpoint })))
    log.events.push(`${name}${index} end`)
  }
  await append(script.prompt, 0, true)
  for (const [index, token] of script.steps.entries()) await append([token], index + 1, false)
  return rows
}

/** The first row whose bytes differ, said as a failure message (never a diff of 150k floats). */
function mismatch(
  name: string,
  got: readonly Buffer[],
  expected: readonly Buffer[],
  other: readonly Buffer[],
): string | undefined {
  if (got.length !== expected.length) return `${name}: ${got.length} appends, expected ${expected.length}`
  for (const [index, row] of got.entries()) {
    const want = expected[index] as Buffer
    if (row.equals(want)) continue
    const a = new Float32Array(row.buffer, row.byteOffset, row.byteLength / 4)
    const b = new Float32Array(want.buffer, want.byteOffset, want.byteLength / 4)
    const at = a.findIndex((value, i) => !Object.is(value, b[i]))
    const step = index === 0 ? 'the prompt' : `decode step ${index}`
    const theirs = other.findIndex((row2) => row2.equals(row))
    const whose = theirs < 0 ? '' : `; they are the other session's logits of its append ${theirs}`
    return `${name}: append ${index} (${step}) gave other logits than the same script alone (logit ${at}: ${a[at]} instead of ${b[at]}${whose})`
  }
  return undefined
}

describe.each(['qwen3', 'qwen3_5'] as const)('%s: two sessions of one instance appending at once', (arch) => {
  const short: [Script, Script] = [
    { prompt: tokens(13, 37, 11), steps: tokens(6, 17, 3) },
    { prompt: tokens(5, 53, 7), steps: tokens(6, 29, 5) },
  ]
  // Past one pass each (200 and 170 tokens; passes take 128 at most), a turn at every layer boundary.
  const long: [Script, Script] = [
    { prompt: tokens(200, 37, 11), steps: tokens(4, 17, 3) },
    { prompt: tokens(170, 53, 7), steps: tokens(4, 29, 5) },
  ]
  it.each([
    // One pass and no turns: the two appends interleave only at their awaits.
    ['short prompts', short, 'macrotask'],
    ['long prompts, turns of a macrotask', long, 'macrotask'],
    ['long prompts, turns of a microtask', long, 'microtask'],
  ] as const)(
    '%s: each gives the logit bytes it gives alone',
    async (_, [scriptA, scriptB], turn: Turn) => {
      const first = await load(arch)
      const second = await first.createSession()
      const a = first.model
      const b = second.model
      try {
        expect(b.kernels).toBe(a.kernels)
        const aloneLog: Log = { turns: 0, events: [] }
        const aloneA = await bounded(run(a, 'A', scriptA, turn, aloneLog), 'session A alone')
        a.reset()
        const aloneB = await bounded(run(b, 'B', scriptB, turn, aloneLog), 'session B alone')
        b.reset()

        const log: Log = { turns: 0, events: [] }
        const [gotA, gotB] = await bounded(
          Promise.all([run(a, 'A', scriptA, turn, log), run(b, 'B', scriptB, turn, log)]),
          'sessions A and B together',
        )
        // The two were in flight together: B's prompt started before A's ended.
        const events = log.events
        expect(events.indexOf('B0 start'), events.join(', ')).toBeLessThan(events.indexOf('A0 end'))
        // The long prompts took their turns (the short ones take none).
        expect(log.turns > 0).toBe(scriptA.prompt.length > 64)
        const failure =
          mismatch('session A', gotA, aloneA, aloneB) ?? mismatch('session B', gotB, aloneB, aloneA)
        expect(failure, failure).toBeUndefined()
      } finally {
        await second.dispose()
        await first.dispose()
      }
    },
    60_000,
  )
})
