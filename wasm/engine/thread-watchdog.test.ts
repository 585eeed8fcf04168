// A helper thread of the engine that dies is noticed, on real worker_threads over the real shared
// memory: the append fails with a retryable backend_failed that names the thread (never a hang),
// the session stays unusable with that error, every helper is stopped, and loading the model
// again gives the same logits as before. Three ways to die: terminated between tokens (the exit
// event reaches the pool before the next pass), terminated while the calling thread is inside a
// pass (no event can arrive then: the stall bound notices), and a kernel that traps inside the
// helper (said through the shared memory at once).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Worker } from 'node:worker_threads'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { BackendError } from '../../core/errors.ts'
import { folderWeightReader, loadEngineModule, nodeEngineThreads } from './node.ts'
import { createEngineSession, type EngineSession } from './session.ts'
import { stallFloorMs, type ThreadPool } from './thread-pool.ts'

const tokens = Array.from({ length: 40 }, (_, i) => (i * 7919 + 11) % 151_000)
let folder: string
let packageDir: string
/** Logits of the prompt and two steps on one thread: what a reloaded model must give again. */
let reference: Float32Array[]

async function load(threads: number): Promise<EngineSession> {
  return createEngineSession({
    module: await loadEngineModule(),
    files: folderWeightReader(packageDir),
    dtype: 'q4',
    ...(threads > 1 ? { threads: await nodeEngineThreads(threads) } : {}),
  })
}

async function logits(session: EngineSession): Promise<Float32Array[]> {
  return [
    await session.append(tokens.slice(0, 30)),
    await session.append([tokens[30]!]),
    await session.append([tokens[31]!]),
  ]
}

function poolOf(session: EngineSession): ThreadPool {
  const pool = session.model.kernels.pool
  if (!pool) throw new Error('the session runs without helper threads')
  return pool
}

function workers(pool: ThreadPool): Worker[] {
  return pool.helpers as Worker[]
}

async function failure(promise: Promise<unknown>): Promise<BackendError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  )
  expect(error).toBeInstanceOf(BackendError)
  return error as BackendError
}

/** The session is unusable with `error`, its helpers are all stopped, and a reload works. */
async function expectBrokenThenReload(session: EngineSession, pool: ThreadPool, error: BackendError) {
  expect(error).toMatchObject({ code: 'backend_failed', isRetryable: true })
  expect(error.message).toMatch(/load it again/)
  await expect(session.append([tokens[32]!])).rejects.toBe(error)
  await expect(session.reset()).rejects.toBe(error)
  // No thread left behind: a stopped worker_threads Worker reports threadId -1.
  expect(workers(pool).map((worker) => worker.threadId)).toEqual(workers(pool).map(() => -1))
  await session.dispose()
  const again = await load(3)
  try {
    const rows = await logits(again)
    expect(rows.map((row, i) => Buffer.from(row.buffer).equals(Buffer.from(reference[i]!.buffer)))).toEqual([
      true,
      true,
      true,
    ])
  } finally {
    await again.dispose()
  }
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-watchdog-'))
  packageDir = join(folder, 'qwen3-q4')
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: 'q4', seed: 3 })
  const single = await load(1)
  reference = await logits(single)
  await single.dispose()
}, 120_000)

afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true })
})

describe('a helper thread that dies', () => {
  it('terminated between tokens: the next append fails at once, naming the thread and its exit', async () => {
    const session = await load(3)
    await session.append(tokens.slice(0, 30))
    const pool = poolOf(session)
    const helper = workers(pool)[1]!
    await helper.terminate()
    const started = performance.now()
    const error = await failure(session.append([tokens[30]!]))
    // The exit event arrived before the pass: no stall bound to wait out.
    expect(performance.now() - started).toBeLessThan(stallFloorMs)
    expect(error.message).toMatch(/helper thread 2 exited/)
    await expectBrokenThenReload(session, pool, error)
  }, 60_000)

  it('terminated while the calling thread runs a pass: the stall bound ends the wait', async () => {
    const session = await load(3)
    await session.append(tokens.slice(0, 30))
    const pool = poolOf(session)
    // No await: append starts its passes at once, on this thread, so the exit event cannot be
    // delivered before the pass waits for the helper's share.
    const stopped = workers(pool)[0]!.terminate()
    const error = await failure(session.append([tokens[30]!]))
    await stopped
    expect(error.message).toMatch(/helper threads? 1\b.*(did not finish its share|exited)/)
    await expectBrokenThenReload(session, pool, error)
  }, 60_000)

  it("a kernel that traps in a helper's share: the pass fails at once, the process does not crash", async () => {
    const session = await load(2)
    await session.append(tokens.slice(0, 30))
    const pool = poolOf(session)
    const { kernels } = session.model
    // 64 rows of 4 floats whose last 32 rows lie past the end of memory: the calling thread's
    // share (rows 0..31) reads valid memory, the helper's (32..63) traps.
    const x = kernels.alloc(16, 16)
    const y = kernels.alloc(64 * 4, 16)
    const weights = kernels.memory.buffer.byteLength - 32 * 16
    const helper = workers(pool)[0]!
    const exited = new Promise<number>((resolve) => helper.once('exit', resolve))
    const errors: Error[] = []
    helper.on('error', (error) => errors.push(error))
    const started = performance.now()
    let thrown: unknown
    try {
      kernels.parallel('gemm_f32', [weights, 64, 4, x, 1, y], 64, 4)
    } catch (error) {
      thrown = error
    }
    expect(performance.now() - started).toBeLessThan(stallFloorMs)
    expect(thrown).toBeInstanceOf(BackendError)
    expect((thrown as BackendError).message).toMatch(
      /helper thread 1 failed while running its share of gemm_f32/,
    )
    expect(await exited).toBe(1)
    expect(errors.map(String)).toEqual(['RuntimeError: memory access out of bounds'])
    // The session learns of it at its next append.
    const error = await failure(session.append([tokens[30]!]))
    expect(error).toBe(thrown)
    await expectBrokenThenReload(session, pool, error)
  }, 60_000)
})
