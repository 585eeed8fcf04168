import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, describe, expect, it } from 'vitest'
import { parseModelConfig } from '../../core/model-package.ts'
import { writeModelFile } from '../onnx/index.ts'
import { ReferenceModel } from '../reference/reference-model.ts'
import { maxAbsDifference, OrtDecoder } from '../testing/ort-decoder.ts'
import { architectureFor } from './decoder-graph.ts'
import { randomDecoderWeights } from './random-weights.ts'

const folder = mkdtempSync(join(tmpdir(), 'ondevice-parity-'))
afterAll(() => rmSync(folder, { recursive: true, force: true }))

const configs = {
  llama: parseModelConfig({
    model_type: 'llama',
    hidden_size: 48,
    intermediate_size: 96,
    num_hidden_layers: 2,
    num_attention_heads: 6,
    num_key_value_heads: 2,
    vocab_size: 300,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: false,
  }),
  qwen3: parseModelConfig({
    model_type: 'qwen3',
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 32,
    vocab_size: 320,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    tie_word_embeddings: true,
  }),
}

const tokens = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % 300)

describe.each(Object.entries(configs))('%s ONNX graph vs the TypeScript reference (fp32)', (name, config) => {
  it('matches for full prefills and prefill + token-by-token decode at several lengths', async () => {
    const weights = randomDecoderWeights(config, 7)
    const path = join(folder, `${name}.onnx`)
    writeModelFile(architectureFor(weights).buildGraph('fp32'), path)
    const decoder = await OrtDecoder.create(ort, path, {
      kvHeads: config.numKeyValueHeads,
      headDim: config.headDim,
    })
    const reference = new ReferenceModel(weights)
    const expected = reference.forward(tokens)
    let worst = 0
    try {
      for (const length of [1, 5, 17, 40]) {
        decoder.reset()
        const prefill = await decoder.append(tokens.slice(0, length))
        for (let i = 0; i < length; i++) worst = Math.max(worst, maxAbsDifference(prefill[i]!, expected[i]!))
      }
      for (const prefillLength of [1, 3, 12]) {
        decoder.reset()
        await decoder.append(tokens.slice(0, prefillLength))
        for (let i = prefillLength; i < prefillLength + 14; i++) {
          const [logits] = await decoder.append([tokens[i]!])
          worst = Math.max(worst, maxAbsDifference(logits!, expected[i]!))
        }
      }
    } finally {
      await decoder.release()
    }
    console.log(`${name} fp32 parity: max abs logit difference ${worst.toExponential(2)}`)
    expect(worst).toBeLessThanOrEqual(1e-4)
    // Logits spread a few units, so the comparison is not trivially small numbers.
    const spread = Math.max(...expected[5]!) - Math.min(...expected[5]!)
    expect(spread).toBeGreaterThan(2)
  })
})
