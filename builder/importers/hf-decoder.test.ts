import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, describe, expect, it } from 'vitest'
import { parseModelConfig } from '../../core/model-package.ts'
import { randomDecoderWeights } from '../architectures/random-weights.ts'
import type { DecoderWeights } from '../architectures/weights.ts'
import { qwen3TokenizerFiles } from '../fixtures/fixture.ts'
import { bytesOf, fromBfloat16, fromFloat16, toFloat16 } from '../onnx/tensor.ts'
import { ReferenceModel } from '../reference/reference-model.ts'
import { maxAbsDifference, OrtDecoder } from '../testing/ort-decoder.ts'
import { convertHfCheckpoint } from './hf-decoder.ts'
import { type SafetensorsWriteEntry, writeSafetensors } from './safetensors.ts'

const root = mkdtempSync(join(tmpdir(), 'ondevice-hf-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const rawConfig = {
  architectures: ['Qwen3ForCausalLM'],
  model_type: 'qwen3',
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 32,
  vocab_size: 151936,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  tie_word_embeddings: true,
  bos_token_id: 151643,
  eos_token_id: 151645,
}

function bf16(values: Float32Array): Uint8Array {
  const bits = new Uint16Array(values.length)
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length)
  for (let i = 0; i < values.length; i++) bits[i] = words[i]! >>> 16 // truncation: exact round trip below
  return bytesOf(bits)
}

/** HF tensors for the weights: embeddings BF16, norms F32, projections F16 / F32 alternating. */
function hfTensors(weights: DecoderWeights): SafetensorsWriteEntry[] {
  const out: SafetensorsWriteEntry[] = []
  const add = (name: string, shape: number[], data: Float32Array, dtype: 'F32' | 'F16' | 'BF16') =>
    out.push({
      name,
      shape,
      dtype,
      data: dtype === 'F32' ? bytesOf(data) : dtype === 'F16' ? bytesOf(toFloat16(data)) : bf16(data),
    })
  const e = weights.embedTokens
  add('model.embed_tokens.weight', [e.rows, e.cols], e.data, 'BF16')
  weights.layers.forEach((layer, i) => {
    const p = `model.layers.${i}`
    const dtype = i % 2 === 0 ? 'F16' : 'F32'
    add(`${p}.input_layernorm.weight`, [layer.inputLayernorm.length], layer.inputLayernorm, 'F32')
    for (const [name, m] of [
      ['self_attn.q_proj', layer.qProj],
      ['self_attn.k_proj', layer.kProj],
      ['self_attn.v_proj', layer.vProj],
      ['self_attn.o_proj', layer.oProj],
      ['mlp.gate_proj', layer.gateProj],
      ['mlp.up_proj', layer.upProj],
      ['mlp.down_proj', layer.downProj],
    ] as const)
      add(`${p}.${name}.weight`, [m.rows, m.cols], m.data, dtype)
    add(`${p}.self_attn.q_norm.weight`, [layer.qNorm!.length], layer.qNorm!, 'F32')
    add(`${p}.self_attn.k_norm.weight`, [layer.kNorm!.length], layer.kNorm!, 'F32')
    add(
      `${p}.post_attention_layernorm.weight`,
      [layer.postAttentionLayernorm.length],
      layer.postAttentionLayernorm,
      'BF16',
    )
  })
  add('model.norm.weight', [weights.norm.length], weights.norm, 'F32')
  return out
}

/** The weights as the checkpoint stores them (rounded to each tensor's dtype). */
function roundedWeights(weights: DecoderWeights, tensors: SafetensorsWriteEntry[]): DecoderWeights {
  const byName = new Map(tensors.map((t) => [t.name, t]))
  const value = (name: string) => {
    const t = byName.get(name)!
    const copy = t.data.slice()
    if (t.dtype === 'F32') return new Float32Array(copy.buffer)
    return t.dtype === 'F16'
      ? fromFloat16(new Uint16Array(copy.buffer))
      : fromBfloat16(new Uint16Array(copy.buffer))
  }
  const m = (name: string, rows: number, cols: number) => ({ rows, cols, data: value(name) })
  return {
    config: weights.config,
    embedTokens: m('model.embed_tokens.weight', weights.embedTokens.rows, weights.embedTokens.cols),
    norm: value('model.norm.weight'),
    layers: weights.layers.map((layer, i) => {
      const p = `model.layers.${i}`
      return {
        inputLayernorm: value(`${p}.input_layernorm.weight`),
        qProj: m(`${p}.self_attn.q_proj.weight`, layer.qProj.rows, layer.qProj.cols),
        kProj: m(`${p}.self_attn.k_proj.weight`, layer.kProj.rows, layer.kProj.cols),
        vProj: m(`${p}.self_attn.v_proj.weight`, layer.vProj.rows, layer.vProj.cols),
        oProj: m(`${p}.self_attn.o_proj.weight`, layer.oProj.rows, layer.oProj.cols),
        qNorm: value(`${p}.self_attn.q_norm.weight`),
        kNorm: value(`${p}.self_attn.k_norm.weight`),
        postAttentionLayernorm: value(`${p}.post_attention_layernorm.weight`),
        gateProj: m(`${p}.mlp.gate_proj.weight`, layer.gateProj.rows, layer.gateProj.cols),
        upProj: m(`${p}.mlp.up_proj.weight`, layer.upProj.rows, layer.upProj.cols),
        downProj: m(`${p}.mlp.down_proj.weight`, layer.downProj.rows, layer.downProj.cols),
      }
    }),
  }
}

function writeCheckpoint(folder: string, tensors: SafetensorsWriteEntry[], config: object = rawConfig): void {
  mkdirSync(folder, { recursive: true })
  writeFileSync(join(folder, 'config.json'), JSON.stringify(config))
  const tokenizer = qwen3TokenizerFiles()
  writeFileSync(join(folder, 'tokenizer.json'), tokenizer.tokenizerJson)
  writeFileSync(join(folder, 'tokenizer_config.json'), tokenizer.tokenizerConfigJson)
  writeSafetensors(join(folder, 'model.safetensors'), tensors)
}

describe('Hugging Face safetensors importer (qwen3, F32/F16/BF16)', () => {
  const weights = randomDecoderWeights(parseModelConfig(rawConfig), 5)
  const tensors = hfTensors(weights)

  it('converts a checkpoint whose ONNX logits match the reference on the stored weights', async () => {
    const inDir = join(root, 'checkpoint')
    writeCheckpoint(inDir, tensors)
    const outDir = join(root, 'package')
    const manifest = await convertHfCheckpoint({ inDir, outDir, dtypes: ['fp32'] })
    expect(manifest.modelType).toBe('qwen3')
    expect(JSON.parse(readFileSync(join(outDir, 'tokenizer_config.json'), 'utf8')).chat_template).toContain(
      '<|im_start|>',
    )
    const decoder = await OrtDecoder.create(ort, join(outDir, 'onnx/model.onnx'), { kvHeads: 2, headDim: 32 })
    const reference = new ReferenceModel(roundedWeights(weights, tensors))
    const ids = [9707, 1879, 11, 1246, 525, 498, 30]
    const expected = reference.forward(ids)
    const actual = await decoder.append(ids)
    await decoder.release()
    let worst = 0
    for (let i = 0; i < ids.length; i++) worst = Math.max(worst, maxAbsDifference(actual[i]!, expected[i]!))
    expect(worst).toBeLessThanOrEqual(1e-4)
  })

  const failing = (name: string, mutate: (folder: string) => void, message: RegExp) =>
    it(`fails clearly and writes nothing: ${name}`, async () => {
      const inDir = join(root, `bad-${name.replaceAll(' ', '-')}`)
      writeCheckpoint(inDir, tensors)
      mutate(inDir)
      const outDir = join(root, `out-${name.replaceAll(' ', '-')}`)
      await expect(convertHfCheckpoint({ inDir, outDir })).rejects.toThrow(message)
      expect(existsSync(outDir)).toBe(false)
      expect(readdirSync(root).filter((n) => n.includes('.partial-'))).toEqual([])
    })

  failing(
    'wrong header',
    (folder) => writeFileSync(join(folder, 'model.safetensors'), new Uint8Array(64).fill(0xff)),
    /model\.safetensors: header length \d+ does not fit/,
  )
  failing(
    'truncated file',
    (folder) => {
      const bytes = readFileSync(join(folder, 'model.safetensors'))
      writeFileSync(join(folder, 'model.safetensors'), bytes.subarray(0, bytes.length - 100))
    },
    /model\.safetensors: tensor model\.norm\.weight: data_offsets \[\d+, \d+\] lie outside/,
  )
  failing(
    'lying offsets',
    (folder) => {
      const bytes = readFileSync(join(folder, 'model.safetensors'))
      const length = Number(bytes.readBigUInt64LE(0))
      const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'))
      header['model.layers.1.mlp.up_proj.weight'].data_offsets[0] -= 8
      const text = Buffer.from(JSON.stringify(header).padEnd(length, ' '))
      text.copy(bytes, 8)
      writeFileSync(join(folder, 'model.safetensors'), bytes)
    },
    /model\.safetensors: tensor model\.layers\.1\.mlp\.up_proj\.weight: \d+ bytes for F32\[96, 64\], which needs 24576/,
  )
  failing(
    'unknown model_type',
    (folder) =>
      writeFileSync(join(folder, 'config.json'), JSON.stringify({ ...rawConfig, model_type: 'gpt2' })),
    /config\.json: "model_type" is "gpt2"; ondevice supports/,
  )
  failing(
    'missing tensor',
    (folder) =>
      writeSafetensors(
        join(folder, 'model.safetensors'),
        tensors.filter((t) => t.name !== 'model.layers.1.self_attn.k_norm.weight'),
      ),
    /tensor model\.layers\.1\.self_attn\.k_norm\.weight is missing/,
  )
  failing(
    'shape mismatch',
    (folder) =>
      writeFileSync(join(folder, 'config.json'), JSON.stringify({ ...rawConfig, intermediate_size: 128 })),
    /model\.safetensors: tensor model\.layers\.0\.mlp\.gate_proj\.weight has shape \[96, 64\], config\.json implies \[128, 64\]/,
  )
})
