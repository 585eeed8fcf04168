import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  blockDigestsBytes,
  blockDigestsPath,
  digestBlockBytes,
  hasBlockDigests,
  parsePackageManifest,
} from '../../core/model-package.ts'
import { manifestMemoryFields } from '../../core/package-memory.ts'
import { Tokenizer } from '../../core/tokenizer.ts'
import { randomDecoderWeights } from '../architectures/random-weights.ts'
import { fixtureConfig, writeFixture } from '../fixtures/fixture.ts'
import { readModelSummary } from '../onnx/index.ts'
import { ReferenceModel } from '../reference/reference-model.ts'
import { maxAbsDifference, OrtDecoder, topOneAgreement } from '../testing/ort-decoder.ts'
import { sha256File } from './package-writer.ts'

const root = mkdtempSync(join(tmpdir(), 'ondevice-package-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

describe('tiny qwen3 fixture package (fp32, q4, q8, fp16)', () => {
  const outDir = join(root, 'qwen3-tiny')
  const config = fixtureConfig('qwen3', 'tiny')
  const shape = { kvHeads: config.numKeyValueHeads, headDim: config.headDim }
  beforeAll(async () => {
    await writeFixture({ arch: 'qwen3', outDir, seed: 3, dtype: ['fp32', 'q4', 'q8', 'fp16'] })
  })

  it('writes the onnx-community layout and a manifest whose sizes and hashes are true', () => {
    const manifest = parsePackageManifest(readFileSync(join(outDir, 'manifest.json'), 'utf8'))
    expect(manifest.dtypes).toEqual(['fp32', 'q4', 'q8', 'fp16'])
    expect(manifest.files.map((f) => f.path)).toEqual([
      'block-sha256/onnx/model.onnx_data',
      'block-sha256/onnx/model_fp16.onnx_data',
      'block-sha256/onnx/model_q4.onnx_data',
      'block-sha256/onnx/model_quantized.onnx_data',
      'config.json',
      'generation_config.json',
      'onnx/model.onnx',
      'onnx/model.onnx_data',
      'onnx/model_fp16.onnx',
      'onnx/model_fp16.onnx_data',
      'onnx/model_q4.onnx',
      'onnx/model_q4.onnx_data',
      'onnx/model_quantized.onnx',
      'onnx/model_quantized.onnx_data',
      'tokenizer.json',
      'tokenizer_config.json',
    ])
    for (const file of manifest.files)
      expect(sha256File(join(outDir, file.path)), file.path).toBe(file.sha256)
    // Each ONNX file over one block has its blocks' SHA-256s beside it, in order (the graphs here
    // are smaller); nothing else has.
    for (const file of manifest.files) {
      const digests = manifest.files.find((entry) => entry.path === blockDigestsPath(file.path))
      expect(digests !== undefined, file.path).toBe(hasBlockDigests(file))
      if (!digests) continue
      const bytes = readFileSync(join(outDir, file.path))
      const expected = Buffer.alloc(blockDigestsBytes(file.bytes))
      for (let at = 0; at < bytes.length; at += digestBlockBytes)
        createHash('sha256')
          .update(bytes.subarray(at, at + digestBlockBytes))
          .digest()
          .copy(expected, (at / digestBlockBytes) * 32)
      expect(Buffer.compare(readFileSync(join(outDir, digests.path)), expected), digests.path).toBe(0)
    }
    // 4-bit weights take less than fp32 on the engine and onnxruntime-node; not on onnxruntime-web,
    // whose 4-bit product dequantizes whole matrices (at least 200 MiB, core/memory-estimate.ts),
    // and the manifest's one figure per dtype is the largest over the backends.
    for (const backend of ['wasm', 'native'] as const)
      expect(manifest.estimatedMemory?.q4?.[backend]?.bytes, backend).toBeLessThan(
        manifest.estimatedMemory?.fp32?.[backend]?.bytes as number,
      )
    // The graphs take num_logits_to_keep, so the figures count one row of prefill logits.
    const contextLength = manifest.contextLength as number
    const oneRow = manifestMemoryFields(config, manifest.dtypes, manifest.files, contextLength, {
      allPositionLogits: false,
    })
    expect(manifest.estimatedMemory).toEqual(oneRow.estimatedMemory)
    const allRows = manifestMemoryFields(config, manifest.dtypes, manifest.files, contextLength)
    expect(manifest.estimatedMemoryBytes.q4!).toBeLessThan(allRows.estimatedMemoryBytes.q4!)
    expect(readdirSync(root).filter((n) => n.includes('partial'))).toEqual([])

    const summary = readModelSummary(new Uint8Array(readFileSync(join(outDir, 'onnx/model_q4.onnx'))))
    expect(summary.inputs.map((i) => i.name)).toEqual([
      'input_ids',
      'attention_mask',
      'position_ids',
      'past_key_values.0.key',
      'past_key_values.0.value',
      'past_key_values.1.key',
      'past_key_values.1.value',
      'num_logits_to_keep',
    ])
    expect(summary.inputs.at(-1)).toEqual({ name: 'num_logits_to_keep', type: 'int64', dims: [] })
    expect(summary.outputs[0]!.dims).toEqual(['batch_size', 'logits_length', config.vocabSize])
    expect(summary.outputs.map((o) => o.name)).toEqual([
      'logits',
      'present.0.key',
      'present.0.value',
      'present.1.key',
      'present.1.value',
    ])
    expect(summary.outputs[1]!.dims).toEqual(['batch_size', 2, 'total_sequence_length', 32])
    expect(summary.nodes.filter((n) => n.opType === 'MatMulNBits').length).toBe(2 * 7 + 1)
    // Tied q4 embeddings: one copy of the 4-bit bytes, read by the gather and the lm_head.
    const readers = summary.nodes
      .filter((n) => n.inputs.includes('model.embed_tokens.weight_Q4'))
      .map((n) => n.opType)
    expect(readers.sort()).toEqual(['GatherBlockQuantized', 'MatMulNBits'])
    const q8 = readModelSummary(new Uint8Array(readFileSync(join(outDir, 'onnx/model_quantized.onnx'))))
    expect(q8.nodes.filter((n) => n.opType === 'DynamicQuantizeMatMul').length).toBe(2 * 7 + 1)
    expect(q8.nodes.some((n) => n.opType === 'DequantizeLinear')).toBe(false)
  })

  it('is deterministic per seed and loads with core Tokenizer', async () => {
    const again = join(root, 'qwen3-tiny-again')
    await writeFixture({ arch: 'qwen3', outDir: again, seed: 3 })
    expect(sha256File(join(again, 'onnx/model.onnx_data'))).toBe(
      sha256File(join(outDir, 'onnx/model.onnx_data')),
    )
    const tokenizer = Tokenizer.fromFiles({
      tokenizerJson: readFileSync(join(outDir, 'tokenizer.json'), 'utf8'),
      tokenizerConfigJson: readFileSync(join(outDir, 'tokenizer_config.json'), 'utf8'),
      configJson: readFileSync(join(outDir, 'config.json'), 'utf8'),
      generationConfigJson: readFileSync(join(outDir, 'generation_config.json'), 'utf8'),
    })
    expect(tokenizer.eosTokenIds).toContain(151645)
    expect(tokenizer.encode('Hello world')).toEqual([9707, 1879])
  })

  it('fp32 matches the reference; q4/q8/fp16 run and mostly agree with fp32 (agreement figures: quantize/agreement.test.ts)', async () => {
    const open = (file: string) => OrtDecoder.create(ort, join(outDir, 'onnx', file), shape)
    const fp32 = await open('model.onnx')
    const reference = new ReferenceModel(randomDecoderWeights(config, 3))
    const prompt = [9707, 1879, 11, 358, 1079, 264, 1273]
    const expected = reference.forward(prompt)
    const actual = await fp32.append(prompt)
    let worst = 0
    for (let i = 0; i < prompt.length; i++)
      worst = Math.max(worst, maxAbsDifference(actual[i]!, expected[i]!))
    expect(worst).toBeLessThanOrEqual(1e-4)
    const figures: Record<string, number> = {}
    for (const [dtype, file] of [
      ['q4', 'model_q4.onnx'],
      ['q8', 'model_quantized.onnx'],
      ['fp16', 'model_fp16.onnx'],
    ] as const) {
      const other = await open(file)
      figures[dtype] = (await topOneAgreement(fp32, other, prompt, 24)).agreement
      await other.release()
    }
    await fp32.release()
    console.log(
      `tiny qwen3 (seed 3) fp32 parity ${worst.toExponential(2)}; top-1 agreement with fp32 over 24 steps:`,
      figures,
    )
    expect(figures.fp16!).toBeGreaterThanOrEqual(0.95)
    expect(figures.q8!).toBeGreaterThanOrEqual(0.9)
    expect(figures.q4!).toBeGreaterThanOrEqual(0.6)
  })

  it('refuses to overwrite and leaves nothing behind on bad input', async () => {
    await expect(writeFixture({ arch: 'qwen3', outDir, seed: 3 })).rejects.toThrow(/already exists/)
    await expect(writeFixture({ arch: 'qwen3', outDir: join(root, 'x'), size: 'huge' })).rejects.toThrow(
      /Unknown fixture size "huge"/,
    )
    expect(existsSync(join(root, 'x'))).toBe(false)
  })
})
