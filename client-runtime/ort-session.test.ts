// The ORT ModelSession on a Qwen3.5 (split layout, KV + conv + recurrent state) package and on
// Llama-style packages with and without num_logits_to_keep, against the builder's plain
// TypeScript reference, on onnxruntime-node and onnxruntime-web (WASM).
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ortNode from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeQwen35Package } from '../builder/architectures/qwen3-5-package.ts'
import { createQwen35State, qwen35Forward } from '../builder/architectures/qwen3-5-reference.ts'
import { randomQwen35Weights, tinyQwen35Config } from '../builder/architectures/qwen3-5-weights.ts'
import { randomDecoderWeights } from '../builder/architectures/random-weights.ts'
import { qwen3TokenizerFiles } from '../builder/fixtures/fixture.ts'
import { writeModelPackage } from '../builder/package/package-writer.ts'
import { ReferenceModel } from '../builder/reference/reference-model.ts'
import { parseModelConfig } from '../core/model-package.ts'
import { loadOrtWebForNode } from '../wasm/node.ts'
import type { Backend } from './dtype.ts'
import { createOrtSession, type OrtModule } from './ort-session.ts'
import { storedPackageReader } from './package-reader.ts'
import { createNodeStore } from './store/node-store.ts'

const vocabularySize = 300
const config = tinyQwen35Config(vocabularySize)
const weights = randomQwen35Weights(config, 3)
let folder: string

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-ort-session-'))
  await writeQwen35Package({ outDir: join(folder, 'pkg'), config, weights, dtypes: ['fp32'] })
})
afterAll(async () => {
  await rm(folder, { recursive: true, force: true })
})

function maxDifference(a: Float32Array, b: Float32Array): number {
  let max = 0
  for (let index = 0; index < a.length; index++)
    max = Math.max(max, Math.abs((a[index] as number) - (b[index] as number)))
  return max
}

const hosts: [Backend, () => Promise<OrtModule>][] = [
  ['native', async () => ortNode],
  ['wasm', async () => (await loadOrtWebForNode()).ort],
]

describe.each(hosts)('ORT session, Qwen3.5 layout, %s', (backend, loadOrt) => {
  async function open() {
    const store = createNodeStore({ cacheDir: join(folder, 'cache') })
    const pkg = await store.open(join(folder, 'pkg'))
    return createOrtSession(await loadOrt(), storedPackageReader(pkg), {
      backend,
      dtype: 'fp32',
      modelId: 'tiny-qwen3.5',
    })
  }

  it('matches the reference across prefill and decode, and rewinds to a checkpoint', async () => {
    const session = await open()
    expect(session.info).toMatchObject({ backend, dtype: 'fp32', vocabularySize, modelId: 'tiny-qwen3.5' })
    expect(session.inputNames).toContain('past_recurrent.0')
    const prompt = [5, 17, 250, 3, 99, 42, 7]
    const state = createQwen35State(config)
    const reference = qwen35Forward({ config, weights }, prompt, state, { logits: 'last' }).at(
      -1,
    ) as Float32Array
    const logits = await session.append(prompt)
    expect(logits).toHaveLength(vocabularySize)
    expect(maxDifference(logits, reference)).toBeLessThan(1e-3)
    const decoded: Float32Array[] = []
    for (const token of [11, 12, 13]) {
      const expected = qwen35Forward({ config, weights }, [token], state, { logits: 'last' }).at(
        -1,
      ) as Float32Array
      const actual = await session.append([token])
      expect(maxDifference(actual, expected)).toBeLessThan(1e-3)
      decoded.push(actual)
    }
    expect(session.tokens).toEqual([...prompt, 11, 12, 13])
    // Recurrent state: only a checkpoint (end of the prompt) can be rewound to.
    expect(await session.rewind(prompt.length + 1)).toBe(false)
    expect(await session.rewind(prompt.length)).toBe(true)
    expect(session.tokens).toEqual(prompt)
    expect(maxDifference(await session.append([11]), decoded[0] as Float32Array)).toBeLessThan(1e-5)
    await session.reset()
    expect(session.tokens).toEqual([])
    expect(maxDifference(await session.append(prompt), logits)).toBeLessThan(1e-5)
    await session.dispose()
  })

  it('refuses a prompt longer than the context and a token outside the vocabulary', async () => {
    const store = createNodeStore({ cacheDir: join(folder, 'cache') })
    const pkg = await store.open(join(folder, 'pkg'))
    const session = await createOrtSession(await loadOrt(), storedPackageReader(pkg), {
      backend,
      dtype: 'fp32',
      contextLength: 8,
    })
    await expect(session.append(Array.from({ length: 9 }, () => 1))).rejects.toMatchObject({
      code: 'context_length_exceeded',
    })
    await expect(session.append([vocabularySize])).rejects.toMatchObject({
      code: 'invalid_argument',
      param: 'tokenIds',
    })
    expect(session.tokens).toEqual([])
    await session.dispose()
    // A cap above the model's context is refused, not quietly lowered to it.
    const config = JSON.parse(await readFile(join(folder, 'pkg', 'config.json'), 'utf8')) as {
      max_position_embeddings: number
    }
    const maximum = config.max_position_embeddings
    await expect(
      createOrtSession(await loadOrt(), storedPackageReader(pkg), {
        backend,
        dtype: 'fp32',
        contextLength: maximum + 1,
      }),
    ).rejects.toMatchObject({
      code: 'invalid_argument',
      param: 'contextLength',
      message: expect.stringContaining(`at most ${maximum}`),
    })
  })
})

// Packages built before the Llama / Qwen3 graphs took num_logits_to_keep (users' caches, bench
// caches) compute every position's logits: the session must still load them and give the same
// numbers as the new graph, which it feeds num_logits_to_keep = 1.
describe.each(hosts)(
  'ORT session, Llama / Qwen3 graphs with and without num_logits_to_keep, %s',
  (backend, loadOrt) => {
    const qwen3 = parseModelConfig({
      model_type: 'qwen3',
      hidden_size: 64,
      intermediate_size: 128,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 32,
      vocab_size: 320,
      max_position_embeddings: 256,
      tie_word_embeddings: true,
    })
    const decoderWeights = randomDecoderWeights(qwen3, 5)
    const packageFolder = (logitsToKeep: boolean) => join(folder, `qwen3-${logitsToKeep ? 'new' : 'old'}`)
    beforeAll(async () => {
      for (const logitsToKeep of [true, false])
        if (!existsSync(packageFolder(logitsToKeep)))
          await writeModelPackage({
            outDir: packageFolder(logitsToKeep),
            weights: decoderWeights,
            tokenizer: qwen3TokenizerFiles(),
            dtypes: ['fp32'],
            graph: { logitsToKeep },
          })
    })

    it('loads both and gives the reference logits, bit for bit the same on both graphs', async () => {
      const store = createNodeStore({ cacheDir: join(folder, 'cache') })
      const prompt = Array.from({ length: 20 }, (_, index) => (index * 37 + 11) % 320)
      const expected = new ReferenceModel(decoderWeights).forward([...prompt, 7, 8])
      const runs: Float32Array[][] = []
      for (const logitsToKeep of [true, false]) {
        const pkg = await store.open(packageFolder(logitsToKeep))
        const session = await createOrtSession(await loadOrt(), storedPackageReader(pkg), {
          backend,
          dtype: 'fp32',
        })
        try {
          expect(session.inputNames.includes('num_logits_to_keep')).toBe(logitsToKeep)
          const logits = [await session.append(prompt), await session.append([7]), await session.append([8])]
          logits.forEach((row, index) => {
            expect(row).toHaveLength(320)
            expect(maxDifference(row, expected[prompt.length - 1 + index] as Float32Array)).toBeLessThan(1e-4)
          })
          runs.push(logits)
        } finally {
          await session.dispose()
        }
      }
      expect(runs[0]).toEqual(runs[1])
    })
  },
)

describe('ORT session options', () => {
  /** onnxruntime-node with InferenceSession.create recording the options each graph gets. */
  function recordingOrt(): { ort: OrtModule; options: Record<string, unknown>[] } {
    const options: Record<string, unknown>[] = []
    const create = (async (...args: unknown[]) => {
      options.push(args[1] as Record<string, unknown>)
      return (ortNode.InferenceSession.create as (...values: unknown[]) => unknown)(...args)
    }) as unknown as typeof ortNode.InferenceSession.create
    return {
      ort: { Tensor: ortNode.Tensor, InferenceSession: { ...ortNode.InferenceSession, create } },
      options,
    }
  }

  async function open(ort: OrtModule, sessionOptions?: Record<string, unknown>) {
    const pkg = await createNodeStore({ cacheDir: join(folder, 'cache') }).open(join(folder, 'pkg'))
    return createOrtSession(ort, storedPackageReader(pkg), {
      backend: 'native',
      dtype: 'fp32',
      ...(sessionOptions === undefined ? {} : { sessionOptions }),
    })
  }

  it("logs ONNX Runtime's errors only (no warnings on a successful load), unless the caller says otherwise", async () => {
    const recorded = recordingOrt()
    const session = await open(recorded.ort)
    await session.dispose()
    // Both graphs of the split layout (embed_tokens, the decoder).
    expect(recorded.options).toHaveLength(2)
    for (const options of recorded.options) expect(options).toMatchObject({ logSeverityLevel: 3 })

    const verbose = recordingOrt()
    await (await open(verbose.ort, { logSeverityLevel: 1 })).dispose()
    for (const options of verbose.options) expect(options).toMatchObject({ logSeverityLevel: 1 })
  })
})
