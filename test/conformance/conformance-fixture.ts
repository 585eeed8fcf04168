// The fixtures every conformance run uses (Node here, Chromium in test/browser): the builder's
// tiny shapes and seeds with a 512-token vocabulary (the released fixtures carry Qwen3's 151,936
// rows, 40 MB of fp32 embedding that would dominate CI time), still with the real Qwen3
// tokenizer files.
import { writeQwen35Package } from '../../builder/architectures/qwen3-5-package.ts'
import { randomQwen35Weights, tinyQwen35Config } from '../../builder/architectures/qwen3-5-weights.ts'
import { randomDecoderWeights } from '../../builder/architectures/random-weights.ts'
import { fixtureConfig, qwen3TokenizerFiles } from '../../builder/fixtures/fixture.ts'
import { writeModelPackage } from '../../builder/package/package-writer.ts'
import { parseModelConfig } from '../../core/model-package.ts'
import type { ConformanceFixture } from './conformance-cases.ts'

export const conformanceVocabularySize = 512

export async function writeConformanceFixture(fixture: ConformanceFixture, outDir: string): Promise<void> {
  const tokenizer = qwen3TokenizerFiles()
  if (fixture === 'qwen3_5') {
    const config = tinyQwen35Config(conformanceVocabularySize)
    await writeQwen35Package({
      outDir,
      config,
      weights: randomQwen35Weights(config, 1),
      dtypes: ['fp32'],
      tokenizer,
      name: `conformance-${fixture}`,
    })
    return
  }
  const config = parseModelConfig({ ...fixtureConfig(fixture).raw, vocab_size: conformanceVocabularySize })
  await writeModelPackage({
    outDir,
    weights: randomDecoderWeights(config, 1),
    tokenizer,
    dtypes: ['fp32'],
    name: `conformance-${fixture}`,
  })
}
