// GGUF export: the container's bytes (header, metadata, tensor table, 32-byte alignment), ggml's
// block formats against hand-worked blocks, llama's q/k row order, the package read-back, and the
// refusals. That llama.cpp itself loads the files and computes the same tokens is checked in
// Chromium through wllama (test/browser/gguf-wllama.test.ts).
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseModelConfig } from '../../core/model-package.ts'
import { randomDecoderWeights } from '../architectures/random-weights.ts'
import { fixtureConfig, qwen3TokenizerFiles, writeFixture } from '../fixtures/fixture.ts'
import {
  decodeGgmlTensor,
  encodeGgmlTensor,
  GgmlType,
  type GgufDtype,
  ggmlTensorBytes,
  ggufDtypes,
  ggufTokenizerMetadata,
  parseGgufDtype,
  readGgufHeader,
  readPackageSource,
  writeGguf,
} from './index.ts'

const folder = mkdtempSync(join(tmpdir(), 'ondevice-gguf-'))
afterAll(() => rmSync(folder, { recursive: true, force: true }))

const config = fixtureConfig('qwen3', 'tiny')
const weights = randomDecoderWeights(config, 1)
const tokenizerFiles = qwen3TokenizerFiles()
const tokenizer = ggufTokenizerMetadata({
  tokenizerJson: tokenizerFiles.tokenizerJson,
  tokenizerConfigJson: tokenizerFiles.tokenizerConfigJson,
  config,
  bosTokenId: 151643,
  eosTokenId: 151645,
})

function tensorBytes(file: Uint8Array, header: ReturnType<typeof readGgufHeader>, name: string) {
  const tensor = header.tensors.find((t) => t.name === name)
  if (!tensor) throw new Error(`no tensor ${name}`)
  const typeName = (Object.keys(GgmlType) as (keyof typeof GgmlType)[]).find(
    (k) => GgmlType[k] === tensor.type,
  )!
  const bytes = ggmlTensorBytes({ name, dims: tensor.dims, type: typeName })
  return { tensor, typeName, data: file.subarray(tensor.offset, tensor.offset + bytes) }
}

describe('GGUF export of the tiny qwen3 fixture', () => {
  const written = new Map<GgufDtype, { file: Uint8Array; header: ReturnType<typeof readGgufHeader> }>()
  for (const dtype of ggufDtypes)
    it(`writes ${dtype}: header, metadata, tensor table and aligned data`, async () => {
      const path = join(folder, `qwen3-${dtype}.gguf`)
      const result = await writeGguf({ weights, tokenizer, dtype, outPath: path, name: 'qwen3-tiny' })
      const file = new Uint8Array(readFileSync(path))
      expect(result.bytes).toBe(file.length)
      expect(result.fallbacks).toEqual([])
      const header = readGgufHeader(file)
      written.set(dtype, { file, header })
      expect(header.version).toBe(3)
      expect(header.alignment).toBe(32)
      expect(header.dataOffset % 32).toBe(0)
      const m = header.metadata
      expect(m.get('general.architecture')).toBe('qwen3')
      expect(m.get('general.file_type')).toBe({ f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 7 }[dtype])
      expect(m.get('qwen3.block_count')).toBe(2)
      expect(m.get('qwen3.embedding_length')).toBe(64)
      expect(m.get('qwen3.feed_forward_length')).toBe(128)
      expect(m.get('qwen3.attention.head_count')).toBe(4)
      expect(m.get('qwen3.attention.head_count_kv')).toBe(2)
      expect(m.get('qwen3.attention.key_length')).toBe(32)
      expect(m.get('qwen3.attention.value_length')).toBe(32)
      expect(m.get('qwen3.context_length')).toBe(2048)
      expect(m.get('qwen3.rope.freq_base')).toBe(1_000_000)
      expect(m.get('qwen3.attention.layer_norm_rms_epsilon')).toBe(Math.fround(1e-6))
      expect(m.get('tokenizer.ggml.model')).toBe('gpt2')
      expect(m.get('tokenizer.ggml.pre')).toBe('qwen2')
      const tokens = m.get('tokenizer.ggml.tokens') as string[]
      expect(tokens).toHaveLength(151936)
      expect(tokens[9707]).toBe('Hello')
      expect(tokens[151645]).toBe('<|im_end|>')
      expect(tokens[151900]).toBe('[PAD151900]')
      const types = m.get('tokenizer.ggml.token_type') as number[]
      expect([types[9707], types[151645], types[151667], types[151900]]).toEqual([1, 3, 4, 5])
      expect((m.get('tokenizer.ggml.merges') as string[])[0]).toBe('Ġ Ġ')
      expect(m.get('tokenizer.ggml.eos_token_id')).toBe(151645)
      expect(m.get('tokenizer.ggml.add_bos_token')).toBe(false)
      expect(String(m.get('tokenizer.chat_template'))).toContain('<|im_start|>')
      // llama.cpp's names; tied embeddings: no `output` tensor.
      expect(header.tensors.map((t) => t.name)).toEqual([
        'token_embd.weight',
        ...[0, 1].flatMap((i) =>
          [
            'attn_norm',
            'attn_q',
            'attn_k',
            'attn_v',
            'attn_output',
            'attn_q_norm',
            'attn_k_norm',
            'ffn_norm',
            'ffn_gate',
            'ffn_up',
            'ffn_down',
          ].map((part) => `blk.${i}.${part}.weight`),
        ),
        'output_norm.weight',
      ])
      const expectedType = { f32: 0, f16: 1, q4_0: 2, q4_1: 3, q8_0: 8 }[dtype]
      for (const tensor of header.tensors) {
        expect((tensor.offset - header.dataOffset) % 32).toBe(0)
        expect(tensor.type).toBe(tensor.dims.length === 1 ? GgmlType.F32 : expectedType)
      }
      const q = header.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!
      expect(q.dims).toEqual([64, 128])
      const last = header.tensors.at(-1)!
      expect(file.length).toBe(last.offset + 64 * 4 + ((32 - ((64 * 4) % 32)) % 32))
    })

  it('stores the weights: F32 exactly, the others within their format bound', () => {
    const f32 = written.get('f32')!
    const down = tensorBytes(f32.file, f32.header, 'blk.1.ffn_down.weight')
    expect(new Float32Array(down.data.slice().buffer)).toEqual(weights.layers[1]!.downProj.data)
    const embedding = weights.embedTokens.data
    const maxAbs = embedding.reduce((max, v) => Math.max(max, Math.abs(v)), 0)
    const bounds: Record<string, number> = {
      f16: maxAbs / 1000,
      q8_0: maxAbs / 127,
      q4_0: maxAbs / 7,
      q4_1: maxAbs / 7,
    }
    for (const [dtype, bound] of Object.entries(bounds)) {
      const { file, header } = written.get(dtype as GgufDtype)!
      const { data, typeName } = tensorBytes(file, header, 'token_embd.weight')
      const checked = 1 << 20
      const decoded = decodeGgmlTensor(data, typeName, checked)
      let worst = 0
      for (let i = 0; i < checked; i++) worst = Math.max(worst, Math.abs(decoded[i]! - embedding[i]!))
      expect(worst, dtype).toBeLessThanOrEqual(bound)
      expect(worst, dtype).toBeGreaterThan(0)
    }
  })
})

describe('ggml block formats', () => {
  const block = Float32Array.from({ length: 32 }, (_, i) => (i - 12) / 4)
  it('Q8_0: fp16 scale max|x|/127, codes rounded half away from zero', () => {
    const bytes = encodeGgmlTensor(block, 'Q8_0')
    expect(bytes.length).toBe(34)
    const d = new DataView(bytes.buffer).getUint16(0, true)
    expect(d).toBe(0x28ca) // fp16(4.75 / 127) = 1.197 · 2^-5
    expect(new Int8Array(bytes.buffer, 2, 32)[0]).toBe(-80) // -3 / (4.75/127) = -80.2
    expect(new Int8Array(bytes.buffer, 2, 32)[31]).toBe(127)
  })
  it('Q4_1: range (min, max) in 15 steps; nibble j and j + 16 share a byte', () => {
    const values = Float32Array.from({ length: 32 }, (_, i) => (i % 16) * 0.5 - 1)
    const bytes = encodeGgmlTensor(values, 'Q4_1')
    expect(bytes.length).toBe(20)
    expect(Array.from(decodeGgmlTensor(bytes, 'Q4_1', 32))).toEqual(Array.from(values))
    expect(bytes[4]).toBe(0x00)
    expect(bytes[5]).toBe(0x11)
  })
  it('Q4_0: scale from the signed extreme, codes offset by 8', () => {
    const values = Float32Array.from({ length: 32 }, (_, i) => (i - 16) * 0.25) // extreme -4 → d = 0.5
    const bytes = encodeGgmlTensor(values, 'Q4_0')
    expect(bytes.length).toBe(18)
    const decoded = decodeGgmlTensor(bytes, 'Q4_0', 32)
    for (let i = 0; i < 32; i++) expect(Math.abs(decoded[i]! - values[i]!)).toBeLessThanOrEqual(0.25)
    expect(decoded[0]).toBe(-4)
  })
  it('refuses a row that is not whole blocks', () => {
    expect(() => encodeGgmlTensor(new Float32Array(40), 'Q8_0')).toThrow(/whole blocks of 32/)
    expect(() => ggmlTensorBytes({ name: 'x', dims: [40, 2], type: 'Q4_1' })).toThrow(/x: Q4_1 needs rows/)
  })
})

describe('GGUF export from a package folder', () => {
  it('reads the fp32 package back into the weights it was built from and writes the same file', async () => {
    const pkg = join(folder, 'qwen3-package')
    await writeFixture({ arch: 'qwen3', outDir: pkg, dtype: 'fp32' })
    const source = await readPackageSource(pkg)
    expect(source.onnxFile).toBe('onnx/model.onnx')
    expect(source.weights.layers[1]!.oProj.data).toEqual(weights.layers[1]!.oProj.data)
    expect(source.weights.layers[0]!.kNorm).toEqual(weights.layers[0]!.kNorm)
    // Byte comparison: toEqual walks 9.7M floats one by one.
    const same = (a: Float32Array, b: Float32Array) =>
      Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
        Buffer.from(b.buffer, b.byteOffset, b.byteLength),
      )
    expect(same(source.weights.embedTokens.data, weights.embedTokens.data)).toBe(true)
    const path = join(folder, 'from-package.gguf')
    await writeGguf({
      weights: source.weights,
      tokenizer: source.tokenizer,
      dtype: 'q8_0',
      outPath: path,
      name: 'qwen3-tiny',
    })
    // Same weights, same tokenizer, same generation ids: byte for byte the direct export.
    const direct = join(folder, 'qwen3-q8_0.gguf')
    const padded = ggufTokenizerMetadata({
      tokenizerJson: tokenizerFiles.tokenizerJson,
      tokenizerConfigJson: tokenizerFiles.tokenizerConfigJson,
      config,
      bosTokenId: 151643,
      eosTokenId: 151645,
      padTokenId: 151643,
    })
    await writeGguf({
      weights,
      tokenizer: padded,
      dtype: 'q8_0',
      outPath: direct,
      name: 'qwen3-tiny',
      overwrite: true,
    })
    expect(Buffer.compare(readFileSync(path), readFileSync(direct))).toBe(0)
  })

  it('llama: q/k rows interleaved per head for llama.cpp rope, SentencePiece-style tokenizer as "llama"', async () => {
    const { convertLlama2c } = await import('../importers/convert-llama2c.ts')
    const models = join(import.meta.dirname, '../../../shared/models/stories260K')
    const pkg = join(folder, 'stories')
    await convertLlama2c({
      checkpointPath: join(models, 'stories260K.bin'),
      tokenizerPath: join(models, 'tok512.bin'),
      outDir: pkg,
      dtypes: ['fp32'],
    })
    const source = await readPackageSource(pkg)
    const path = join(folder, 'stories-q8_0.gguf')
    const result = await writeGguf({
      weights: source.weights,
      tokenizer: source.tokenizer,
      dtype: 'q8_0',
      outPath: path,
    })
    // ffn_down's rows are 172 long: not whole Q8_0 blocks, written as F16 (llama.cpp does the same).
    expect(result.fallbacks).toEqual([
      'blk.0.ffn_down.weight',
      'blk.1.ffn_down.weight',
      'blk.2.ffn_down.weight',
      'blk.3.ffn_down.weight',
      'blk.4.ffn_down.weight',
    ])
    const file = new Uint8Array(readFileSync(path))
    const header = readGgufHeader(file)
    const m = header.metadata
    expect(m.get('general.architecture')).toBe('llama')
    expect(m.get('llama.attention.head_count')).toBe(8)
    expect(m.get('llama.attention.head_count_kv')).toBe(4)
    expect(m.get('tokenizer.ggml.model')).toBe('llama')
    expect(m.get('tokenizer.ggml.bos_token_id')).toBe(1)
    expect(m.get('tokenizer.ggml.add_bos_token')).toBe(true)
    const tokens = m.get('tokenizer.ggml.tokens') as string[]
    const types = m.get('tokenizer.ggml.token_type') as number[]
    expect(tokens.slice(0, 4)).toEqual(['<unk>', '<s>', '</s>', '<0x00>'])
    expect(types.slice(0, 4)).toEqual([2, 3, 3, 6])
    const scores = m.get('tokenizer.ggml.scores') as number[]
    // Piece order follows the merge ranks: a more frequent merge scores higher.
    expect(scores[tokens.indexOf('▁t')]!).toBeGreaterThan(scores[tokens.indexOf('▁the')]!)
    // The f32 export's attn_q row 2i + pair of a head is HF's row pair · half + i.
    const f32 = join(folder, 'stories-f32.gguf')
    await writeGguf({ weights: source.weights, tokenizer: source.tokenizer, dtype: 'f32', outPath: f32 })
    const f32File = new Uint8Array(readFileSync(f32))
    const { data } = tensorBytes(f32File, readGgufHeader(f32File), 'blk.0.attn_q.weight')
    const stored = new Float32Array(data.slice().buffer)
    const hf = source.weights.layers[0]!.qProj
    const headDim = source.weights.config.headDim
    for (const [head, i, pair] of [
      [0, 0, 1],
      [3, 2, 0],
      [7, 3, 1],
    ] as const) {
      const to = (head * headDim + 2 * i + pair) * hf.cols
      const from = (head * headDim + pair * (headDim / 2) + i) * hf.cols
      expect(stored.subarray(to, to + hf.cols)).toEqual(hf.data.subarray(from, from + hf.cols))
    }
  })

  it('refuses what it cannot write, clearly, and leaves no file behind', async () => {
    expect(() => parseGgufDtype('q5_k')).toThrow(/use f32, f16, q8_0, q4_0, q4_1/)
    expect(parseGgufDtype('q4')).toBe('q4_1')
    expect(parseGgufDtype('Q8_0')).toBe('q8_0')
    // A package with only quantized weights (what readPackageSource looks for is absent).
    const quantizedOnly = join(folder, 'q8-only')
    mkdirSync(join(quantizedOnly, 'onnx'), { recursive: true })
    copyFileSync(join(folder, 'qwen3-package/config.json'), join(quantizedOnly, 'config.json'))
    writeFileSync(join(quantizedOnly, 'onnx/model_quantized.onnx'), '')
    await expect(readPackageSource(quantizedOnly)).rejects.toThrow(/no fp32 or fp16 ONNX file.*--dtype fp32/)
    await expect(readPackageSource(join(folder, 'nothing-here'))).rejects.toThrow(/not a model package/)
    const existing = join(folder, 'qwen3-f32.gguf')
    await expect(writeGguf({ weights, tokenizer, dtype: 'f32', outPath: existing })).rejects.toThrow(/exists/)
    const qwen35 = { ...weights, config: parseModelConfig({ ...config.raw, model_type: 'qwen3_5_text' }) }
    await expect(
      writeGguf({ weights: qwen35, tokenizer, dtype: 'f32', outPath: join(folder, 'x.gguf') }),
    ).rejects.toThrow(/llama and qwen3.*qwen35/)
    // Inconsistent weights are refused before any byte is written.
    const brokenLayers = weights.layers.map((layer, i) =>
      i === 1 ? { ...layer, downProj: { ...layer.downProj, data: new Float32Array(10) } } : layer,
    )
    await expect(
      writeGguf({
        weights: { ...weights, layers: brokenLayers },
        tokenizer,
        dtype: 'f32',
        outPath: join(folder, 'y.gguf'),
      }),
    ).rejects.toThrow(/down_proj/)
    expect(existsSync(join(folder, 'y.gguf'))).toBe(false)
    // A failure after the data is written (here: the target is a folder that cannot be replaced)
    // removes the partial file.
    const occupied = join(folder, 'occupied.gguf')
    mkdirSync(join(occupied, 'inside'), { recursive: true })
    await expect(
      writeGguf({ weights, tokenizer, dtype: 'q4_0', outPath: occupied, overwrite: true }),
    ).rejects.toThrow()
    expect(readdirSync(folder).filter((name) => name.includes('partial'))).toEqual([])
    expect(existsSync(join(folder, 'y.gguf'))).toBe(false)
  })
})
