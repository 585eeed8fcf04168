// Several sessions over one engine instance (one copy of the weights): each has its own length,
// KV cache and (Qwen3.5) recurrent state, so two sessions interleaved pass by pass give the very
// logit bytes each gives alone on an instance of its own, on 1 and 2 threads; one session's
// reset, rewind or dispose never touches another's cache; a disposed session's cache is reused;
// the helper threads stop with the last session, and a helper that dies breaks them all.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Worker } from 'node:worker_threads'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomDecoderWeights } from '../../builder/architectures/random-weights.ts'
import { writeFixture } from '../../builder/fixtures/fixture.ts'
import { writeModelPackage } from '../../builder/package/package-writer.ts'
import { BackendError } from '../../core/errors.ts'
import { parseModelConfig } from '../../core/model-package.ts'
import { folderWeightReader, loadEngineModule, nodeEngineThreads } from './node.ts'
import { createEngineSession, type EngineSession } from './session.ts'

const tokens = Array.from({ length: 200 }, (_, i) => (i * 37 + 11) % 250)
const other = Array.from({ length: 200 }, (_, i) => (i * 53 + 7) % 250)

let folder: string
const packages: Record<string, string> = {}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-shared-instance-'))
  for (const arch of ['qwen3', 'qwen3_5'] as const) {
    packages[arch] = join(folder, arch)
    await writeFixture({ arch, outDir: packages[arch], dtype: 'q4', seed: 5 })
  }
}, 120_000)

afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true })
})

async function load(arch: string, threads: number, sessions?: number): Promise<EngineSession> {
  return createEngineSession({
    module: await loadEngineModule(),
    files: folderWeightReader(packages[arch]!),
    dtype: 'q4',
    ...(sessions === undefined ? {} : { sessions }),
    ...(threads > 1 ? { threads: await nodeEngineThreads(threads) } : {}),
  })
}

const bytes = (rows: readonly Float32Array[]): Buffer =>
  Buffer.concat(rows.map((row) => Buffer.from(row.buffer, row.byteOffset, row.byteLength)))

/**
 * One conversation's steps: a prompt (checkpointed), three decode steps, a rewind to the prompt
 * (the next turn reuses it), a second turn's prompt and two decode steps.
 */
function script(
  ids: readonly number[],
  prompt: number,
): ((session: EngineSession) => Promise<Float32Array>)[] {
  const steps: ((session: EngineSession) => Promise<Float32Array>)[] = [
    (session) => session.append(ids.slice(0, prompt)),
  ]
  for (let i = 0; i < 3; i++) steps.push((session) => session.append([ids[prompt + i]!]))
  steps.push(async (session) => {
    expect(await session.rewind(prompt)).toBe(true)
    return session.append(ids.slice(prompt + 10, prompt + 30))
  })
  for (let i = 0; i < 2; i++) steps.push((session) => session.append([ids[prompt + 40 + i]!]))
  return steps
}

async function alone(arch: string, threads: number, ids: readonly number[], prompt: number): Promise<Buffer> {
  const session = await load(arch, threads)
  try {
    const rows: Float32Array[] = []
    for (const step of script(ids, prompt)) rows.push(await step(session))
    return bytes(rows)
  } finally {
    await session.dispose()
  }
}

describe.each(['qwen3', 'qwen3_5'])('%s: sessions sharing one instance', (arch) => {
  const expected: Record<string, Buffer> = {}
  beforeAll(async () => {
    expected.a = await alone(arch, 1, tokens, 70)
    expected.b = await alone(arch, 1, other, 90)
  }, 60_000)

  it.each([1, 2])(
    '%i thread(s): two sessions interleaved step by step give the bytes of each alone',
    async (threads) => {
      const first = await load(arch, threads, 2)
      const second = await first.createSession()
      try {
        // Weights once: both sessions run on the same kernels (one instance, one memory).
        expect(second.model.kernels).toBe(first.model.kernels)
        const a = script(tokens, 70)
        const b = script(other, 90)
        const rowsA: Float32Array[] = []
        const rowsB: Float32Array[] = []
        for (let i = 0; i < a.length; i++) {
          rowsA.push(await a[i]!(first))
          rowsB.push(await b[i]!(second))
        }
        expect(bytes(rowsA).equals(expected.a!)).toBe(true)
        expect(bytes(rowsB).equals(expected.b!)).toBe(true)
      } finally {
        await second.dispose()
        await first.dispose()
      }
    },
    60_000,
  )

  it("one session's reset and dispose leave the other's cache; a new session reuses the disposed one's", async () => {
    const first = await load(arch, 2)
    const second = await first.createSession()
    try {
      const a = script(tokens, 70)
      const rowsA: Float32Array[] = [await a[0]!(first)]
      await second.append(other.slice(0, 90))
      rowsA.push(await a[1]!(first))
      await second.reset()
      await second.append(other.slice(0, 50))
      rowsA.push(await a[2]!(first))
      await second.dispose()
      await expect(second.append([1])).rejects.toMatchObject({ code: 'backend_unavailable' })
      rowsA.push(await a[3]!(first))
      // Beyond what the instance was sized for (1 session): the disposed session's cache again.
      const third = await first.createSession()
      try {
        expect(third.tokens).toEqual([])
        const b = script(other, 90)
        const rowsB: Float32Array[] = []
        for (let i = 4; i < a.length; i++) rowsA.push(await a[i]!(first))
        for (const step of b) rowsB.push(await step(third))
        expect(bytes(rowsA).equals(expected.a!)).toBe(true)
        expect(bytes(rowsB).equals(expected.b!)).toBe(true)
        // The first session goes; the helpers stay for the third until it goes too.
        const pool = first.model.kernels.pool!
        await first.dispose()
        const again = await third.createSession()
        const prompt = bytes([await again.append(tokens.slice(0, 70))])
        expect(prompt.equals(expected.a!.subarray(0, prompt.length))).toBe(true)
        await again.dispose()
        expect((pool.helpers as Worker[]).every((worker) => worker.threadId !== -1)).toBe(true)
        await third.dispose()
        expect((pool.helpers as Worker[]).every((worker) => worker.threadId === -1)).toBe(true)
      } finally {
        await third.dispose()
      }
    } finally {
      await second.dispose()
      await first.dispose()
    }
  }, 60_000)

  it('a helper thread that dies breaks every session of the instance with the same clear error', async () => {
    const first = await load(arch, 3)
    const second = await first.createSession()
    try {
      await first.append(tokens.slice(0, 30))
      await second.append(other.slice(0, 30))
      const pool = first.model.kernels.pool!
      await (pool.helpers as Worker[])[1]!.terminate()
      const error = await first.append([tokens[30]!]).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(BackendError)
      expect(error).toMatchObject({ code: 'backend_failed', isRetryable: true })
      await expect(second.append([other[30]!])).rejects.toBe(error)
      await expect(second.createSession()).rejects.toBe(error)
      expect((pool.helpers as Worker[]).every((worker) => worker.threadId === -1)).toBe(true)
    } finally {
      await second.dispose()
      await first.dispose()
    }
  }, 60_000)
})

describe('room for the caches in wasm32’s 4 GiB', () => {
  // 8 KiB of cache per position and a context of a million: one cache could take all the memory.
  const config = parseModelConfig({
    model_type: 'qwen3',
    hidden_size: 64,
    intermediate_size: 64,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 4,
    head_dim: 64,
    vocab_size: 260,
    max_position_embeddings: 1_048_576,
    tie_word_embeddings: true,
  })
  let dir: string
  let engineModule: WebAssembly.Module
  beforeAll(async () => {
    dir = join(folder, 'long-context')
    await writeModelPackage({
      outDir: dir,
      weights: randomDecoderWeights(config, 3),
      tokenizer: { tokenizerJson: {}, tokenizerConfigJson: {} },
      dtypes: ['q4'],
    })
    engineModule = await loadEngineModule()
  }, 60_000)
  const open = (sessions?: number) =>
    createEngineSession({
      module: engineModule,
      files: folderWeightReader(dir),
      dtype: 'q4',
      ...(sessions === undefined ? {} : { sessions }),
    })

  it('sized for one session, a second is refused with a clear error and the first goes on as before', async () => {
    const first = await open()
    try {
      const before = await first.append(tokens.slice(0, 20))
      const memory = first.model.kernels.memory.buffer.byteLength
      await expect(first.createSession()).rejects.toMatchObject({
        code: 'backend_unavailable',
        message: expect.stringMatching(/no room .* for another session's cache of \d+ tokens.*sessions/),
      })
      // Nothing was allocated for the refused session.
      expect(first.model.kernels.memory.buffer.byteLength).toBe(memory)
      await first.rewind(0)
      expect(
        Buffer.from((await first.append(tokens.slice(0, 20))).buffer).equals(Buffer.from(before.buffer)),
      ).toBe(true)
    } finally {
      await first.dispose()
    }
  }, 60_000)

  it('sized for two sessions, each cache holds half what one could and both run', async () => {
    const single = await open()
    const capacity = single.info.contextLength
    await single.dispose()
    const first = await open(2)
    const second = await first.createSession()
    try {
      expect(first.info.contextLength).toBeLessThanOrEqual(Math.ceil(capacity / 2))
      expect(first.info.contextLength).toBeGreaterThan(capacity / 2 - 1024)
      expect(second.info.contextLength).toBe(first.info.contextLength)
      const a = await first.append(tokens.slice(0, 20))
      const b = await second.append(tokens.slice(0, 20))
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true)
    } finally {
      await second.dispose()
      await first.dispose()
    }
    await expect(open(0)).rejects.toMatchObject({ code: 'invalid_argument', param: 'sessions' })
  }, 60_000)
})
