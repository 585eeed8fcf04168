// A long append (a prompt of many passes) on the engine, which computes on the calling thread:
// between its passes the host's event loop gets its turn (a server's other requests and health
// checks, timers, the abort that stops it), an abort that lands there stops it with the cache as
// it was, and calls on one session while it runs wait for it instead of stepping on it.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { AbortedError, ModelError } from '../../core/errors.ts'
import { folderWeightReader, loadEngineModule } from './node.ts'
import { createEngineSession, type EngineSession } from './session.ts'

const ids = Array.from({ length: 400 }, (_, i) => (i * 37 + 11) % 250)

let folder: string
const packages: Record<string, string> = {}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-long-append-'))
  for (const arch of ['qwen3', 'qwen3_5'] as const) {
    packages[arch] = join(folder, arch)
    await writeFixture({ arch, outDir: packages[arch], dtype: 'q4', seed: 3 })
  }
}, 120_000)

afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true })
})

async function load(arch: string, sessions?: number): Promise<EngineSession> {
  return createEngineSession({
    module: await loadEngineModule(),
    files: folderWeightReader(packages[arch]!),
    dtype: 'q4',
    warmUp: false,
    ...(sessions === undefined ? {} : { sessions }),
  })
}

const bytes = (row: Float32Array): Buffer => Buffer.from(row.buffer, row.byteOffset, row.byteLength)

/** Resolves on the host's next macrotask (what a request, a timer or an abort needs to run). */
const nextMacrotask = (): Promise<'macrotask'> =>
  new Promise((resolve) => setImmediate(() => resolve('macrotask')))

describe.each(['qwen3', 'qwen3_5'])('%s: a long append', (arch) => {
  it('lets a macrotask run between its passes (the host is not held for the whole prompt)', async () => {
    const session = await load(arch)
    try {
      const order: string[] = []
      const appended = session.append(ids.slice(0, 300)).then(() => order.push('append'))
      await nextMacrotask().then(() => order.push('macrotask'))
      await appended
      expect(order).toEqual(['macrotask', 'append'])
    } finally {
      await session.dispose()
    }
  })

  it("reports its progress between passes (a server keeps a long prefill's slot alive with it)", async () => {
    const session = await load(arch)
    try {
      let calls = 0
      await session.append(ids.slice(0, 300), { onProgress: () => calls++ })
      // Three passes: 128, 128 and 44 tokens (models/pass-size.ts); more reports where a pass
      // takes a turn between its layers too (a slice of time passed: a loaded machine).
      expect(calls).toBeGreaterThanOrEqual(2)
      // A decode step is one pass without turns: no report, however many the prompt gave.
      const afterPrompt = calls
      await session.append([1], { onProgress: () => calls++ })
      expect(calls).toBe(afterPrompt)
    } finally {
      await session.dispose()
    }
  })

  it('stops at an abort that lands between passes and keeps the cache as it was', async () => {
    const reference = await load(arch)
    const expected = bytes(await reference.append(ids.slice(0, 70)))
    const next = bytes(await reference.append(ids.slice(70, 75)))
    await reference.dispose()

    const session = await load(arch)
    try {
      expect(bytes(await session.append(ids.slice(0, 70))).equals(expected)).toBe(true)
      const controller = new AbortController()
      const appended = session.append(ids.slice(70, 400), { signal: controller.signal })
      // The abort comes from another task, as a client's disconnect or a caller's stop does.
      setImmediate(() => controller.abort())
      await expect(appended).rejects.toBeInstanceOf(AbortedError)
      expect(session.tokens).toEqual(ids.slice(0, 70))
      expect(bytes(await session.append(ids.slice(70, 75))).equals(next)).toBe(true)
    } finally {
      await session.dispose()
    }
  })

  it('stops at an abort between the passes of an append that starts at no checkpoint, and keeps the cache as it was', async () => {
    // A decode step after the prompt: the cache's length (71) is no checkpoint's, so only the
    // state the append started from can take it back.
    const reference = await load(arch)
    await reference.append(ids.slice(0, 70))
    await reference.append(ids.slice(70, 71))
    const next = bytes(await reference.append(ids.slice(71, 75)))
    await reference.dispose()

    const session = await load(arch)
    try {
      await session.append(ids.slice(0, 70))
      await session.append(ids.slice(70, 71))
      const controller = new AbortController()
      // 171 tokens: a pass of 128, then one of 43 (pass-size.ts).
      const appended = session.append(ids.slice(71, 242), { signal: controller.signal })
      setImmediate(() => controller.abort())
      await expect(appended).rejects.toBeInstanceOf(AbortedError)
      expect(session.tokens).toEqual(ids.slice(0, 71))
      expect(bytes(await session.append(ids.slice(71, 75))).equals(next)).toBe(true)
    } finally {
      await session.dispose()
    }
  })

  // Inside a pass, a turn comes between two layers once a slice of time has passed (pass-size.ts);
  // this fixture's layers take microseconds, so these cases take one at every layer boundary
  // (sliceMs 0), through the model the session runs.
  it('gives the same logit bytes with a turn at every layer boundary inside its passes', async () => {
    const reference = await load(arch)
    const expected = bytes(await reference.append(ids.slice(0, 300)))
    await reference.dispose()

    const session = await load(arch)
    try {
      let turns = 0
      const logits = await session.model.append(ids.slice(0, 300), {
        checkpoint: true,
        sliceMs: 0,
        between: async () => {
          turns++
          await nextMacrotask()
        },
      })
      expect(bytes(logits).equals(expected)).toBe(true)
      // Passes of 128, 128 and 44 tokens: a turn between each two, and one before every layer but
      // the first inside each.
      expect(turns).toBe(2 + 3 * (session.model.config.numHiddenLayers - 1))
    } finally {
      await session.dispose()
    }
  })

  it('lets another session of the instance run its passes at a turn inside a pass, each with its own logits', async () => {
    const reference = await load(arch)
    const expected = bytes(await reference.append(ids.slice(0, 300)))
    await reference.reset()
    const expectedSibling = bytes(await reference.append(ids.slice(100, 250)))
    const expectedStep = bytes(await reference.append([7]))
    await reference.dispose()

    const session = await load(arch, 2)
    const sibling = await session.createSession()
    try {
      let turns = 0
      const siblings: Promise<Buffer>[] = []
      const logits = await session.model.append(ids.slice(0, 300), {
        checkpoint: true,
        sliceMs: 0,
        between: async () => {
          turns++
          // Inside the first pass (its first layer boundary): a prompt of two passes and a decode
          // step on the sibling, run through while this pass waits at its turn.
          if (turns === 1) {
            const prompt = bytes(await sibling.append(ids.slice(100, 250)))
            siblings.push(Promise.resolve(prompt), sibling.append([7]).then(bytes))
            await Promise.all(siblings)
          }
          await nextMacrotask()
        },
      })
      expect(bytes(logits).equals(expected)).toBe(true)
      const [prompt, step] = await Promise.all(siblings)
      expect(prompt?.equals(expectedSibling)).toBe(true)
      expect(step?.equals(expectedStep)).toBe(true)
    } finally {
      await sibling.dispose()
      await session.dispose()
    }
  })

  it('stops at an abort that lands at a turn inside a pass, and keeps the cache as it was', async () => {
    const reference = await load(arch)
    await reference.append(ids.slice(0, 70))
    await reference.append(ids.slice(70, 71))
    const next = bytes(await reference.append(ids.slice(71, 75)))
    await reference.dispose()

    const session = await load(arch)
    try {
      await session.append(ids.slice(0, 70))
      await session.append(ids.slice(70, 71))
      const controller = new AbortController()
      let turns = 0
      // 100 tokens: one pass, aborted at its first layer boundary (its first layer has run).
      const appended = session.model.append(ids.slice(71, 171), {
        checkpoint: true,
        signal: controller.signal,
        sliceMs: 0,
        between: async () => {
          if (++turns === 1) controller.abort()
          await nextMacrotask()
        },
      })
      await expect(appended).rejects.toThrow()
      expect(turns).toBe(1)
      expect(session.model.length).toBe(71)
      expect(bytes(await session.append(ids.slice(71, 75))).equals(next)).toBe(true)
    } finally {
      await session.dispose()
    }
  })

  it('holds later calls on the same session until it ends (two appends racing run one after the other)', async () => {
    const reference = await load(arch)
    const first = bytes(await reference.append(ids.slice(0, 300)))
    const second = bytes(await reference.append(ids.slice(300, 310)))
    await reference.dispose()

    const session = await load(arch)
    try {
      const [a, b] = await Promise.all([
        session.append(ids.slice(0, 300)),
        session.append(ids.slice(300, 310)),
      ])
      expect(bytes(a).equals(first)).toBe(true)
      expect(bytes(b).equals(second)).toBe(true)
      expect(session.tokens).toEqual(ids.slice(0, 310))
    } finally {
      await session.dispose()
    }
  })

  it('runs the ids it was called with, whatever the caller does to its array afterwards', async () => {
    const reference = await load(arch)
    const expected = bytes(await reference.append(ids.slice(0, 300)))
    await reference.dispose()
    const session = await load(arch)
    try {
      const reused = ids.slice(0, 300)
      const appended = session.append(reused)
      reused.fill(0)
      expect(bytes(await appended).equals(expected)).toBe(true)
      expect(session.tokens).toEqual(ids.slice(0, 300))
    } finally {
      await session.dispose()
    }
  })

  it('ends when its session is disposed meanwhile, and the cache it held serves the next session cleanly', async () => {
    const reference = await load(arch)
    const expected = bytes(await reference.append(ids.slice(0, 130)))
    await reference.dispose()

    const session = await load(arch, 2)
    const sibling = await session.createSession()
    try {
      const appended = session.append(ids.slice(0, 300))
      appended.catch(() => undefined)
      const disposed = nextMacrotask().then(() => session.dispose())
      await expect(appended).rejects.toBeInstanceOf(ModelError)
      await disposed
      await expect(session.append([1])).rejects.toThrow(/disposed/)
      // The slot the disposed session held goes to the next one, which starts from nothing.
      const next = await sibling.createSession()
      expect(bytes(await next.append(ids.slice(0, 130))).equals(expected)).toBe(true)
      await next.dispose()
    } finally {
      await sibling.dispose()
    }
  })
})
