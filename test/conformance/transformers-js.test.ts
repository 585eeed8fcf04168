// The builder's packages read by an independent engine: transformers.js v4 (onnxruntime-node, CPU)
// loads the package folder exactly as written, with no in-memory config patch, and its greedy
// tokens equal ours on the same file. For Qwen3.5 that needs the config.json fields
// transformers.js looks for (architectures, vision_config, transformers.js_config). Its own
// text-only decode-position bug for Qwen3.5 (docs/benchmarks.md) is still corrected on the model
// instance by openTransformers, so that both engines feed the same positions.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../../builder/index.ts'
import { openOurs, openTransformers } from '../bench/support/engines.ts'

let folder: string
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-transformers-js-'))
})
afterAll(async () => {
  await rm(folder, { recursive: true, force: true })
})

describe.each(['qwen3', 'qwen3_5'] as const)('a %s fixture through transformers.js', (arch) => {
  it('loads as written and gives our greedy tokens', async () => {
    const packageFolder = join(folder, arch)
    await writeFixture({ arch, outDir: packageFolder, seed: 3, dtype: 'fp32' })
    const config = JSON.parse(await readFile(join(packageFolder, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >
    if (arch === 'qwen3_5') {
      expect(config.architectures).toEqual(['Qwen3_5ForConditionalGeneration'])
      expect(config['transformers.js_config']).toEqual({
        use_external_data_format: { 'embed_tokens.onnx': true, 'decoder_model_merged.onnx': true },
      })
    }
    const theirs = await openTransformers({ folder: packageFolder, dtype: 'fp32' })
    const ours = await openOurs({
      folder: packageFolder,
      dtype: 'fp32',
      backend: 'native',
      cacheFolder: join(folder, `${arch}-cache`),
    })
    try {
      expect(theirs.configPatched).toBe(false)
      const prompt = ours.tokenizer.encodeChat([{ role: 'user', content: 'Name three rivers.' }])
      const [theirRun, ourRun] = [await theirs.run(prompt, 12), await ours.run(prompt, 12)]
      expect(ourRun.tokens).toHaveLength(12)
      expect(theirRun.tokens).toEqual(ourRun.tokens)
    } finally {
      await theirs.dispose()
      await ours.dispose()
    }
  })
})
