// Several sessions over one loaded model (LoadedModel.createSession): ONNX Runtime's sessions
// share one InferenceSession per graph, each keeping its cache in its own tensors; the engine's
// share one instance (the weights once in its memory), each with its own cache there. Two
// generations interleaved on the shared weights (their runs in flight together on
// onnxruntime-node) give exactly the logits and tokens each gives alone and that a separately
// loaded model gives; the weights load once and are released once every holder is gone.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ortNode from 'onnxruntime-node'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { generateText } from '../core/generate.ts'
import type { ModelSession } from '../core/model-session.ts'
import type { EngineSession } from '../wasm/engine/session.ts'
import type { Backend } from './dtype.ts'
import { loadModel } from './index.ts'
import type { LoadedModel } from './load-model.ts'

// onnxruntime-node's InferenceSession is a class at run time; its type is the factory's.
const sessionPrototype = (ortNode.InferenceSession as unknown as { prototype: ortNode.InferenceSession })
  .prototype

let directory: string
const packages: Record<string, string> = {}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'ondevice-shared-weights-'))
  packages.qwen3_5 = join(directory, 'qwen3_5')
  packages.qwen3 = join(directory, 'qwen3')
  await writeFixture({ arch: 'qwen3_5', outDir: packages.qwen3_5, dtype: ['q4', 'q8'] })
  await writeFixture({ arch: 'qwen3', outDir: packages.qwen3, dtype: ['q4'] })
}, 60_000)

afterAll(async () => {
  if (directory) await rm(directory, { recursive: true, force: true })
})

afterEach(() => {
  vi.restoreAllMocks()
})

const prompts = [
  [1, 17, 4, 99, 250, 3, 8, 41, 77, 5, 12, 140, 6],
  [300, 2, 2, 51, 9],
]

/** Each prompt's logits after prefill and after each of `steps` greedy tokens. */
async function logitsTrace(
  sessions: readonly ModelSession[],
  steps: number,
  together: boolean,
): Promise<Float32Array[][]> {
  const traces: Float32Array[][] = sessions.map(() => [])
  const step = async (index: number, tokens: readonly number[]) => {
    const session = sessions[index] as ModelSession
    const logits = await session.append(tokens)
    traces[index]?.push(logits)
    return argmax(logits)
  }
  let next: number[] = []
  if (together) next = await Promise.all(prompts.map((prompt, index) => step(index, prompt)))
  else for (const [index, prompt] of prompts.entries()) next.push(await step(index, prompt))
  for (let count = 0; count < steps; count++) {
    if (together) next = await Promise.all(next.map((token, index) => step(index, [token])))
    else for (const [index, token] of next.entries()) next[index] = await step(index, [token])
  }
  return traces
}

/**
 * Where two traces' logits differ, said in a line; undefined where they are the same bytes. A
 * failing toEqual on rows of 151,936 floats has vitest diff them, which holds the thread for many
 * minutes (the test's timeout cannot fire meanwhile).
 */
function traceDifference(
  got: readonly Float32Array[][],
  expected: readonly Float32Array[][],
): string | undefined {
  if (got.length !== expected.length) return `${got.length} traces instead of ${expected.length}`
  for (const [index, trace] of got.entries()) {
    const want = expected[index] as Float32Array[]
    if (trace.length !== want.length) return `prompt ${index}: ${trace.length} rows instead of ${want.length}`
    for (const [position, logits] of trace.entries()) {
      const other = want[position] as Float32Array
      const at = logits.findIndex((value, i) => !Object.is(value, other[i]))
      if (at >= 0 || logits.length !== other.length)
        return `prompt ${index}, step ${position}: logit ${at} is ${logits[at]} instead of ${other[at]} (${logits.length} logits, expected ${other.length})`
    }
  }
  return undefined
}

function argmax(values: Float32Array): number {
  let best = 0
  for (let index = 1; index < values.length; index++)
    if ((values[index] as number) > (values[best] as number)) best = index
  return best
}

async function generations(
  loaded: LoadedModel,
  sessions: readonly ModelSession[],
  together: boolean,
  sampling: { temperature: number; seed?: number },
): Promise<(readonly number[])[]> {
  const run = (index: number) =>
    generateText(sessions[index] as ModelSession, loaded.tokenizer, {
      promptTokenIds: prompts[index] as number[],
      maxTokens: 16,
      stopTokenIds: [],
      sampling,
    }).then((finish) => finish.tokenIds)
  if (together) return Promise.all(prompts.map((_, index) => run(index)))
  const out: (readonly number[])[] = []
  for (const index of prompts.keys()) out.push(await run(index))
  return out
}

// Each backend's own weight format (onnxruntime-web's 4-bit kernel dequantizes on every call).
describe.each([
  ['qwen3_5', 'native', 'q4'],
  ['qwen3', 'native', 'q4'],
  ['qwen3_5', 'ort-wasm', 'q8'],
  // ondevice's engine: one instance (its memory holds the weights once), a cache per session.
  ['qwen3_5', 'wasm', 'q4'],
  ['qwen3', 'wasm', 'q4'],
] as const)('sessions sharing one loaded %s model on %s (%s)', (arch, backend: Backend, dtype) => {
  it('interleaved generations give exactly what each gives alone, and load the weights once', async () => {
    const create = vi.spyOn(ortNode.InferenceSession, 'create')
    const loaded = await loadModel({ model: packages[arch] as string, backend, dtype })
    expect(loaded.sharesWeights).toBe(true)
    const second = await loaded.createSession()
    const third = await loaded.createSession()
    const graphs = arch === 'qwen3_5' ? 2 : 1
    // onnxruntime-node's InferenceSession.create, once per graph whatever the sessions (ort-wasm: none).
    expect(create).toHaveBeenCalledTimes(backend === 'native' ? graphs : 0)
    if (backend === 'wasm') {
      // The engine's sessions run on the first one's instance: the same kernels and memory.
      const kernels = (session: ModelSession) => (session as EngineSession).model.kernels
      expect(kernels(second)).toBe(kernels(loaded.session))
      expect(kernels(third)).toBe(kernels(loaded.session))
    }
    try {
      const alone = await logitsTrace([loaded.session, second], 12, false)
      await Promise.all([loaded.session.reset(), second.reset()])
      // The other order of sessions, and their runs in flight together.
      const together = await logitsTrace([third, loaded.session], 12, true)
      expect(together.map((trace) => trace.length)).toEqual([13, 13])
      const interleaved = traceDifference(together, alone)
      expect(interleaved, interleaved).toBeUndefined()
      // Each session holds its own conversation.
      expect(third.tokens.slice(0, prompts[0]?.length)).toEqual(prompts[0])
      expect(loaded.session.tokens.slice(0, prompts[1]?.length)).toEqual(prompts[1])

      // A model loaded on its own (its own weights) gives the same.
      const separate = await loadModel({ model: packages[arch] as string, backend, dtype })
      try {
        const reference = await logitsTrace([separate.session, await separate.createSession()], 12, false)
        const ownWeights = traceDifference(reference, alone)
        expect(ownWeights, ownWeights).toBeUndefined()
      } finally {
        await separate.dispose()
      }

      for (const sampling of [{ temperature: 0 }, { temperature: 1, seed: 7 }]) {
        await Promise.all([loaded.session.reset(), second.reset(), third.reset()])
        const expected = await generations(loaded, [loaded.session, loaded.session], false, sampling)
        await loaded.session.reset()
        const got = await generations(loaded, [second, third], true, sampling)
        expect(got, JSON.stringify(sampling)).toEqual(expected)
        expect(got[0]?.length).toBe(16)
      }
    } finally {
      await loaded.dispose()
    }
  }, 90_000)
})

describe('the shared weights on onnxruntime-node', () => {
  it('are released once the model and every session over it are disposed, not before', async () => {
    const release = vi.spyOn(sessionPrototype, 'release')
    const loaded = await loadModel({ model: packages.qwen3_5 as string, backend: 'native', dtype: 'q4' })
    const second = await loaded.createSession()
    await second.dispose()
    await second.dispose()
    expect(release).not.toHaveBeenCalled()
    // The others still run.
    expect((await loaded.session.append([1, 2, 3])).length).toBe(loaded.session.info.vocabularySize)
    const third = await loaded.createSession()
    await loaded.dispose()
    // embed_tokens and the decoder, once each.
    expect(release).toHaveBeenCalledTimes(2)
    await expect(third.append([1])).rejects.toMatchObject({ code: 'backend_failed' })
    await expect(loaded.createSession()).rejects.toMatchObject({
      code: 'backend_failed',
      message: expect.stringContaining('disposed'),
    })
    await loaded.dispose()
    expect(release).toHaveBeenCalledTimes(2)
  }, 60_000)
})
