// Converting a Hugging Face Qwen3.5 checkpoint: a test writes tiny checkpoints with HF tensor
// names (the multimodal one, prefixed `model.language_model.` with a vision tower and an MTP
// head to ignore, in F32 and BF16; and a flat text-only one), converts them, and compares the
// package's ONNX logits with the reference run on the original weights.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ortNode from 'onnxruntime-node'
import { afterAll, describe, expect, it } from 'vitest'
import { Qwen35OrtRunner } from '../../test/bench/qwen3-5-harness.ts'
import { qwen35ConfigJson } from '../architectures/qwen3-5-config.ts'
import { createQwen35State, type Qwen35Tensor, qwen35Forward } from '../architectures/qwen3-5-reference.ts'
import { randomQwen35Weights, tinyQwen35Config } from '../architectures/qwen3-5-weights.ts'
import { qwen3TokenizerFiles } from '../fixtures/qwen3-tokenizer.ts'
import { fromBfloat16 } from '../onnx/index.ts'
import { convertQwen35Checkpoint, qwen35TextTensorName, readQwen35Checkpoint } from './qwen3-5-safetensors.ts'
import { writeSafetensors } from './safetensors.ts'

const folder = mkdtempSync(join(tmpdir(), 'ondevice-qwen3-5-import-'))
afterAll(() => rmSync(folder, { recursive: true, force: true }))

type Dtype = 'F32' | 'BF16'

/** Writes a .safetensors file from fp32 tensors, each stored as F32 or (truncated) BF16. */
function writeCheckpointFile(path: string, tensors: [string, Qwen35Tensor, Dtype][]): void {
  writeSafetensors(
    path,
    tensors.map(([name, tensor, dtype]) => {
      const words = new Uint32Array(
        tensor.data.buffer.slice(tensor.data.byteOffset, tensor.data.byteOffset + tensor.data.byteLength),
      )
      // bfloat16: the top 16 bits of the fp32 pattern (the expected model uses the same numbers).
      const data =
        dtype === 'F32'
          ? new Uint8Array(words.buffer)
          : new Uint8Array(Uint16Array.from(words, (w) => w >>> 16).buffer)
      return { name, dtype, shape: tensor.shape, data }
    }),
    { format: 'pt' },
  )
}

const vocabularySize = 384
const tokens = [3, 77, 120, 5, 301, 42, 42, 9, 250, 1, 17, 383]

describe('Qwen3.5 safetensors importer', () => {
  it('maps checkpoint names to the text model and drops the vision tower and MTP head', () => {
    expect(qwen35TextTensorName('model.language_model.layers.0.linear_attn.A_log')).toBe(
      'model.layers.0.linear_attn.A_log',
    )
    expect(qwen35TextTensorName('model.language_model.embed_tokens.weight')).toBe('model.embed_tokens.weight')
    expect(qwen35TextTensorName('model.layers.3.self_attn.q_proj.weight')).toBe(
      'model.layers.3.self_attn.q_proj.weight',
    )
    expect(qwen35TextTensorName('lm_head.weight')).toBe('lm_head.weight')
    expect(qwen35TextTensorName('model.visual.blocks.0.attn.qkv.weight')).toBeUndefined()
    expect(qwen35TextTensorName('mtp.fc.weight')).toBeUndefined()
  })

  it('converts a multimodal checkpoint (model.language_model. prefix, F32 + BF16) with reference parity', async () => {
    const config = tinyQwen35Config(vocabularySize, { tie_word_embeddings: false })
    const weights = randomQwen35Weights(config, 11)
    // Norm weights go in as BF16: the expected model uses the same rounded values.
    const expectedWeights = new Map(weights)
    const tensors: [string, Qwen35Tensor, Dtype][] = []
    for (const [name, tensor] of weights) {
      const dtype: Dtype = name.endsWith('norm.weight') ? 'BF16' : 'F32'
      if (dtype === 'BF16') {
        const words = new Uint32Array(
          tensor.data.buffer.slice(tensor.data.byteOffset, tensor.data.byteOffset + tensor.data.byteLength),
        )
        expectedWeights.set(name, {
          shape: tensor.shape,
          data: fromBfloat16(Uint16Array.from(words, (w) => w >>> 16)),
        })
      }
      tensors.push([
        name === 'lm_head.weight' ? name : name.replace(/^model\./, 'model.language_model.'),
        tensor,
        dtype,
      ])
    }
    tensors.push([
      'model.visual.blocks.0.attn.qkv.weight',
      { shape: [4, 4], data: new Float32Array(16) },
      'F32',
    ])
    tensors.push(['mtp.fc.weight', { shape: [2, 2], data: new Float32Array(4) }, 'F32'])
    const checkpoint = join(folder, 'multimodal')
    mkdirSync(checkpoint, { recursive: true })
    // Two shards and an index, as large checkpoints are published.
    writeCheckpointFile(join(checkpoint, 'model-00001-of-00002.safetensors'), tensors.slice(0, 20))
    writeCheckpointFile(join(checkpoint, 'model-00002-of-00002.safetensors'), tensors.slice(20))
    writeFileSync(
      join(checkpoint, 'model.safetensors.index.json'),
      JSON.stringify({
        metadata: {},
        weight_map: Object.fromEntries(
          tensors.map(([name], i) => [
            name,
            i < 20 ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors',
          ]),
        ),
      }),
    )
    const { architectures: _, ...textConfig } = qwen35ConfigJson(config)
    writeFileSync(
      join(checkpoint, 'config.json'),
      JSON.stringify({
        architectures: ['Qwen3_5ForConditionalGeneration'],
        model_type: 'qwen3_5',
        tie_word_embeddings: false,
        text_config: textConfig,
        vision_config: { depth: 1 },
      }),
    )
    writeFileSync(join(checkpoint, 'chat_template.jinja'), '{{ messages[0].content }}')

    const read = await readQwen35Checkpoint(checkpoint)
    expect(read.config).toEqual(config)
    expect([...read.weights.keys()].sort()).toEqual([...weights.keys()].sort())

    const outDir = join(folder, 'multimodal-package')
    const manifest = await convertQwen35Checkpoint({ checkpointDir: checkpoint, outDir, dtypes: ['fp32'] })
    expect(manifest.files.map((f) => f.path)).toContain('chat_template.jinja')
    const runner = await Qwen35OrtRunner.open(ortNode, outDir)
    try {
      const expected = qwen35Forward({ config, weights: expectedWeights }, tokens, createQwen35State(config))
      const result = await runner.run(tokens)
      let max = 0
      expected.forEach((row, t) => {
        row.forEach((v, j) => {
          max = Math.max(max, Math.abs(v - (result.logits[t * vocabularySize + j] as number)))
        })
      })
      expect(max).toBeLessThan(1e-4)
    } finally {
      await runner.release()
    }
  })

  it('converts a flat text-only checkpoint (tied embeddings, no prefix)', async () => {
    const config = tinyQwen35Config(vocabularySize)
    const weights = randomQwen35Weights(config, 12)
    const checkpoint = join(folder, 'text')
    mkdirSync(checkpoint, { recursive: true })
    writeCheckpointFile(
      join(checkpoint, 'model.safetensors'),
      [...weights].map(([name, tensor]) => [name, tensor, 'F32']),
    )
    writeFileSync(join(checkpoint, 'config.json'), JSON.stringify(qwen35ConfigJson(config)))
    const outDir = join(folder, 'text-package')
    await convertQwen35Checkpoint({ checkpointDir: checkpoint, outDir, dtypes: ['fp32'] })
    const runner = await Qwen35OrtRunner.open(ortNode, outDir)
    try {
      const expected = qwen35Forward({ config, weights }, tokens, createQwen35State(config), {
        logits: 'last',
      })[0] as Float32Array
      const result = await runner.run(tokens)
      const last = result.logits.subarray((tokens.length - 1) * vocabularySize)
      let max = 0
      expected.forEach((v, j) => {
        max = Math.max(max, Math.abs(v - (last[j] as number)))
      })
      expect(max).toBeLessThan(1e-4)
    } finally {
      await runner.release()
    }
  })

  it("puts chat_template.jinja's template into tokenizer_config.json, where transformers.js looks for it", async () => {
    const config = tinyQwen35Config(vocabularySize)
    const checkpoint = join(folder, 'jinja-template')
    mkdirSync(checkpoint, { recursive: true })
    writeCheckpointFile(
      join(checkpoint, 'model.safetensors'),
      [...randomQwen35Weights(config, 14)].map(([name, tensor]) => [name, tensor, 'F32']),
    )
    writeFileSync(join(checkpoint, 'config.json'), JSON.stringify(qwen35ConfigJson(config)))
    // As newer checkpoints ship: the template only in chat_template.jinja.
    const tokenizer = qwen3TokenizerFiles()
    const { chat_template: template, ...tokenizerConfig } = JSON.parse(tokenizer.tokenizerConfigJson) as {
      chat_template: string
    }
    writeFileSync(join(checkpoint, 'tokenizer.json'), tokenizer.tokenizerJson)
    writeFileSync(join(checkpoint, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig))
    writeFileSync(join(checkpoint, 'chat_template.jinja'), template)
    const outDir = join(folder, 'jinja-template-package')
    await convertQwen35Checkpoint({ checkpointDir: checkpoint, outDir, dtypes: ['fp32'] })
    const written = JSON.parse(readFileSync(join(outDir, 'tokenizer_config.json'), 'utf8')) as Record<
      string,
      unknown
    >
    expect(written).toEqual({ ...tokenizerConfig, chat_template: template })
    expect(readFileSync(join(outDir, 'chat_template.jinja'), 'utf8')).toBe(template)
    // And transformers.js, which reads only tokenizer_config.json, renders it (it threw before:
    // "tokenizer.chat_template is not set").
    const { AutoTokenizer, env } = await import('@huggingface/transformers')
    env.allowRemoteModels = false
    env.localModelPath = `${folder}/`
    const theirs = await AutoTokenizer.from_pretrained('jinja-template-package', { local_files_only: true })
    expect(
      theirs.apply_chat_template([{ role: 'user', content: 'Hi' }], {
        add_generation_prompt: true,
        tokenize: false,
      }),
    ).toBe('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n')
  })

  it('names the missing tensor when a checkpoint is incomplete', async () => {
    const config = tinyQwen35Config(vocabularySize)
    const weights = randomQwen35Weights(config, 13)
    const checkpoint = join(folder, 'broken')
    mkdirSync(checkpoint, { recursive: true })
    writeCheckpointFile(
      join(checkpoint, 'model.safetensors'),
      [...weights]
        .filter(([name]) => !name.endsWith('layers.1.linear_attn.A_log'))
        .map(([name, tensor]) => [name, tensor, 'F32']),
    )
    writeFileSync(join(checkpoint, 'config.json'), JSON.stringify(qwen35ConfigJson(config)))
    await expect(readQwen35Checkpoint(checkpoint)).rejects.toThrow(
      /"model\.layers\.1\.linear_attn\.A_log" is missing/,
    )
  })
})
