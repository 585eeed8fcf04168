// The tiny Qwen3.5 fixture end to end: written with the real Qwen3 tokenizer, a chat prompt
// encoded by the shared Tokenizer, greedy generation through onnxruntime-node (one prefill run,
// then one run per token) gives the same tokens as the plain TypeScript reference.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ortNode from 'onnxruntime-node'
import { afterAll, describe, expect, it } from 'vitest'
import { Tokenizer } from '../../core/tokenizer.ts'
import { Qwen35OrtRunner } from '../../test/bench/qwen3-5-harness.ts'
import { parseQwen35Config } from './qwen3-5-config.ts'
import { qwen35FixtureConfig, writeQwen35Fixture } from './qwen3-5-fixture.ts'
import { createQwen35State, qwen35Forward } from './qwen3-5-reference.ts'
import { randomQwen35Weights } from './qwen3-5-weights.ts'

const folder = mkdtempSync(join(tmpdir(), 'ondevice-qwen3-5-fixture-'))
afterAll(() => rmSync(folder, { recursive: true, force: true }))

function argmax(logits: Float32Array, offset = 0, length = logits.length - offset): number {
  let best = 0
  for (let j = 1; j < length; j++)
    if ((logits[offset + j] as number) > (logits[offset + best] as number)) best = j
  return best
}

describe('tiny Qwen3.5 fixture', () => {
  it('generates through ORT exactly what the reference generates', async () => {
    const manifest = await writeQwen35Fixture({ outDir: folder, seed: 3, dtypes: ['fp32'] })
    expect(manifest.modelType).toBe('qwen3_5_text')
    const configJson = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >
    expect(configJson.model_type).toBe('qwen3_5_text')
    expect(configJson.eos_token_id).toEqual([151645, 151643])
    const config = parseQwen35Config(configJson)
    expect(config).toEqual(qwen35FixtureConfig('tiny'))

    const tokenizer = Tokenizer.fromFiles({
      tokenizerJson: readFileSync(join(folder, 'tokenizer.json'), 'utf8'),
      tokenizerConfigJson: readFileSync(join(folder, 'tokenizer_config.json'), 'utf8'),
      generationConfigJson: readFileSync(join(folder, 'generation_config.json'), 'utf8'),
    })
    const prompt = tokenizer.encode(
      tokenizer.applyChatTemplate([{ role: 'user', content: 'Hello! Who are you?' }], {
        addGenerationPrompt: true,
      }),
    )
    expect(prompt.length).toBeGreaterThan(8)

    const runner = await Qwen35OrtRunner.open(ortNode, folder)
    const model = { config, weights: randomQwen35Weights(config, 3) }
    const state = createQwen35State(config)
    try {
      const graphTokens: number[] = []
      const referenceTokens: number[] = []
      let result = await runner.run(prompt)
      let expected = qwen35Forward(model, prompt, state, { logits: 'last' })[0] as Float32Array
      for (let step = 0; step < 8; step++) {
        const vocabulary = result.vocabularySize
        const next = argmax(result.logits, (result.sequenceLength - 1) * vocabulary, vocabulary)
        const nextReference = argmax(expected)
        graphTokens.push(next)
        referenceTokens.push(nextReference)
        result = await runner.run([next])
        expected = qwen35Forward(model, [nextReference], state, { logits: 'last' })[0] as Float32Array
      }
      expect(graphTokens).toEqual(referenceTokens)
      expect(typeof tokenizer.decode(graphTokens)).toBe('string')
    } finally {
      await runner.release()
    }
  })
})
