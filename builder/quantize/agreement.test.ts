import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, describe, expect, it } from 'vitest'
import { parseModelConfig } from '../../core/model-package.ts'
import { Tokenizer } from '../../core/tokenizer.ts'
import { architectureFor, type BuilderDtype } from '../architectures/decoder-graph.ts'
import { randomDecoderWeights } from '../architectures/random-weights.ts'
import type { DecoderWeights } from '../architectures/weights.ts'
import { readLlama2cCheckpoint, readLlama2cTokenizer } from '../importers/llama2c.ts'
import { convertLlama2cTokenizer } from '../importers/llama2c-tokenizer.ts'
import { writeModelFile } from '../onnx/index.ts'
import { OrtDecoder, topOneAgreement } from '../testing/ort-decoder.ts'

// Top-1 agreement of the quantized graphs with fp32 over 300 greedy decode steps (teacher-forced
// on fp32's tokens). The figures are printed for the record; the thresholds catch regressions.

const folder = mkdtempSync(join(tmpdir(), 'ondevice-agreement-'))
afterAll(() => rmSync(folder, { recursive: true, force: true }))
const STEPS = 300

async function agreementFigures(name: string, weights: DecoderWeights, prompt: number[]) {
  const architecture = architectureFor(weights)
  const open = async (dtype: BuilderDtype) => {
    const path = join(folder, `${name}-${dtype}.onnx`)
    writeModelFile(architecture.buildGraph(dtype), path)
    return OrtDecoder.create(ort, path, {
      kvHeads: weights.config.numKeyValueHeads,
      headDim: weights.config.headDim,
    })
  }
  const fp32 = await open('fp32')
  const figures: Record<string, number> = {}
  let tokens: number[] = []
  for (const dtype of ['q4', 'q8', 'fp16'] as const) {
    const other = await open(dtype)
    const result = await topOneAgreement(fp32, other, prompt, STEPS)
    figures[dtype] = result.agreement
    tokens = result.tokens
    await other.release()
  }
  await fp32.release()
  console.log(`${name}: top-1 agreement with fp32 over ${STEPS} decode steps`, figures)
  return { figures, tokens }
}

const shapes = {
  llama: {
    model_type: 'llama',
    hidden_size: 128,
    intermediate_size: 384,
    num_attention_heads: 4,
    num_key_value_heads: 2,
  },
  qwen3: {
    model_type: 'qwen3',
    hidden_size: 128,
    intermediate_size: 384,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 64,
  },
}

describe('q4 / q8 / fp16 top-1 agreement with fp32', () => {
  it.each(Object.entries(shapes))('seeded %s (2 layers, hidden 128, vocab 4096)', async (name, shape) => {
    const config = parseModelConfig({
      ...shape,
      num_hidden_layers: 2,
      vocab_size: 4096,
      tie_word_embeddings: true,
    })
    const { figures } = await agreementFigures(
      `seeded-${name}`,
      randomDecoderWeights(config, 11),
      [5, 17, 300, 2000],
    )
    expect(figures.fp16!).toBeGreaterThanOrEqual(0.97)
    expect(figures.q8!).toBeGreaterThanOrEqual(0.85)
    expect(figures.q4!).toBeGreaterThanOrEqual(0.6)
  })

  const stories = join(import.meta.dirname, '../../../shared/models/stories260K')
  it.skipIf(!existsSync(join(stories, 'stories260K.bin')))(
    'stories260K, and q8 reproduces the golden text',
    async () => {
      const weights = readLlama2cCheckpoint(new Uint8Array(readFileSync(join(stories, 'stories260K.bin'))))
      const { figures } = await agreementFigures('stories260K', weights, [1])
      const converted = convertLlama2cTokenizer(
        readLlama2cTokenizer(new Uint8Array(readFileSync(join(stories, 'tok512.bin'))), 512),
      )
      const tokenizer = Tokenizer.fromFiles({
        tokenizerJson: converted.tokenizerJson,
        tokenizerConfigJson: converted.tokenizerConfigJson,
      })
      // q8 decoding on its own (not teacher-forced) must print the golden text.
      const path = join(folder, 'stories260K-q8.onnx')
      const q8 = await OrtDecoder.create(ort, path, { kvHeads: 4, headDim: 8 })
      const produced: number[] = []
      let [logits] = await q8.append([1])
      for (let i = 0; i < 80; i++) {
        let best = 0
        for (let t = 1; t < logits!.length; t++) if (logits![t]! > logits![best]!) best = t
        produced.push(best)
        ;[logits] = await q8.append([best])
      }
      await q8.release()
      const golden =
        'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.'
      expect(tokenizer.decode(produced, { skipSpecialTokens: true }).slice(0, golden.length)).toBe(golden)
      expect(figures.q8!).toBeGreaterThanOrEqual(0.9)
      expect(figures.fp16!).toBeGreaterThanOrEqual(0.97)
    },
  )
})
