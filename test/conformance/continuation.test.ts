// Handoff exactness on the weight format WASM actually runs (q8: dynamic int8, activations
// quantized per tensor, so logits depend on how tokens are chunked): an answer continued from
// its first k tokens (core generate's `continuation`, what the edge does after a device failure)
// must equal the uninterrupted answer, greedy and seeded, on both Node backends.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomDecoderWeights } from '../../builder/architectures/random-weights.ts'
import { fixtureConfig, qwen3TokenizerFiles } from '../../builder/fixtures/fixture.ts'
import { writeModelPackage } from '../../builder/package/package-writer.ts'
import { type Backend, loadModel } from '../../client-runtime/index.ts'
import { createNodeStore } from '../../client-runtime/store/node-store.ts'
import { generateText } from '../../core/generate.ts'
import { parseModelConfig } from '../../core/model-package.ts'
import { conformancePrompt } from './conformance-cases.ts'

let folder: string
let packageDir: string

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-continuation-'))
  packageDir = join(folder, 'qwen3-q8')
  const config = parseModelConfig({ ...fixtureConfig('qwen3').raw, vocab_size: 512 })
  await writeModelPackage({
    outDir: packageDir,
    weights: randomDecoderWeights(config, 3),
    tokenizer: qwen3TokenizerFiles(),
    dtypes: ['q8'],
    name: 'continuation-q8',
  })
})
afterAll(async () => {
  await rm(folder, { recursive: true, force: true })
})

describe('continuation equals the uninterrupted answer on q8', () => {
  it.each<Backend>(['native', 'wasm'])('%s', async (backend) => {
    const model = await loadModel({
      model: packageDir,
      backend,
      store: createNodeStore({ cacheDir: join(folder, 'cache') }),
    })
    try {
      expect(model.dtype).toBe('q8')
      for (const sampling of [{ temperature: 0 }, { temperature: 1, topK: 50, seed: 42 }]) {
        await model.session.reset()
        const whole = await generateText(model.session, model.tokenizer, {
          promptTokenIds: conformancePrompt,
          maxTokens: 10,
          sampling,
        })
        expect(whole.tokenIds).toHaveLength(10)
        for (const k of [1, 4, 8]) {
          await model.session.reset()
          const rest = await generateText(model.session, model.tokenizer, {
            promptTokenIds: conformancePrompt,
            maxTokens: 10 - k,
            sampling,
            continuation: { tokenIds: whole.tokenIds.slice(0, k), step: k },
          })
          expect(
            [...whole.tokenIds.slice(0, k), ...rest.tokenIds],
            `k=${k} ${JSON.stringify(sampling)}`,
          ).toEqual(whole.tokenIds)
        }
      }
    } finally {
      await model.dispose()
    }
  })
})
