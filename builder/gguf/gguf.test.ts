// GGUF export: the container's bytes (header, metadata, tensor table, 32-byte alignment), ggml's
// block formats against hand-worked blocks, llama's q/k row order, Qwen3.5's qwen35 mapping (names,
// keys, 1 + w norms, ssm_a, the tiled V-head order), the package read-back, and the refusals.
// That llama.cpp itself loads the files and computes the same tokens is checked in
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
import { qwen35FixtureConfig } from '../architectures/qwen3-5-fixture.ts'
import type { Qwen35Model } from '../architectures/qwen3-5-reference.ts'
import { randomQwen35Weights } from '../architectures/qwen3-5-weights.ts'
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
  isQwen35Model,
  parseGgufDtype,
  readGgufHeader,
  readGgufSource,
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
    ).rejects.toThrow(/qwen3_5_text model as the Qwen3.5 builder's model/)
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

describe('GGUF export of the tiny Qwen3.5 fixture (llama.cpp qwen35)', () => {
  const fixtureConfig35 = qwen35FixtureConfig('tiny')
  const original = randomQwen35Weights(fixtureConfig35, 1)
  let model: Qwen35Model
  const hf = (name: string) => original.get(name)!.data

  it('reads the fp32 package back into the weights it was built from', async () => {
    const pkg = join(folder, 'qwen3_5-package')
    await writeFixture({ arch: 'qwen3_5', outDir: pkg, dtype: 'fp32' })
    // readPackageSource is for llama / qwen3; readGgufSource reads every package GGUF export writes.
    await expect(readPackageSource(pkg)).rejects.toThrow(/Qwen3.5 package: read it with readGgufSource/)
    const source = await readGgufSource(pkg)
    expect(source.onnxFile).toBe('onnx/decoder_model_merged.onnx')
    if (!isQwen35Model(source.weights)) throw new Error('expected a Qwen3.5 model')
    model = source.weights
    expect(model.config.layerTypes).toEqual(fixtureConfig35.layerTypes)
    expect([...model.weights.keys()].sort()).toEqual([...original.keys()].sort())
    for (const [name, tensor] of original) {
      const read = model.weights.get(name)!
      expect(read.shape, name).toEqual(tensor.shape)
      // A_log comes back through -exp(A_log) in float32: within rounding. The zero-centred norms
      // through the graph's 1 + w in float32: 1 + the value read is that scale exactly. The rest exactly.
      if (name.endsWith('.A_log'))
        read.data.forEach((value, i) => {
          expect(value).toBeCloseTo(tensor.data[i]!, 6)
        })
      else if (name.endsWith('norm.weight') && !name.endsWith('linear_attn.norm.weight'))
        expect(
          Float32Array.from(read.data, (w) => 1 + w),
          name,
        ).toEqual(Float32Array.from(tensor.data, (w) => 1 + w))
      else expect(Buffer.from(read.data.buffer).equals(Buffer.from(tensor.data.buffer)), name).toBe(true)
    }
  })

  it("writes llama.cpp's names, keys and layout, and F32 kernels in every type", async () => {
    const f32 = join(folder, 'qwen3_5-f32.gguf')
    const result = await writeGguf({ weights: model, tokenizer, dtype: 'f32', outPath: f32 })
    expect(result.architecture).toBe('qwen35')
    const file = new Uint8Array(readFileSync(f32))
    const header = readGgufHeader(file)
    const meta = (key: string) => header.metadata.get(key)
    expect(meta('general.architecture')).toBe('qwen35')
    expect(meta('qwen35.rope.dimension_count')).toBe(16) // head_dim 32 · partial_rotary_factor 0.5
    expect(meta('qwen35.rope.dimension_sections')).toEqual([3, 3, 2, 0])
    expect(meta('qwen35.attention.key_length')).toBe(32)
    expect(meta('qwen35.ssm.conv_kernel')).toBe(4)
    expect(meta('qwen35.ssm.state_size')).toBe(16)
    expect(meta('qwen35.ssm.group_count')).toBe(2)
    expect(meta('qwen35.ssm.time_step_rank')).toBe(4)
    expect(meta('qwen35.ssm.inner_size')).toBe(64)
    expect(meta('qwen35.full_attention_interval')).toBe(4)
    const names = header.tensors.map((t) => t.name)
    expect(names.filter((n) => n.startsWith('blk.0.')).sort()).toEqual(
      [
        'attn_gate.weight',
        'attn_norm.weight',
        'attn_qkv.weight',
        'ffn_down.weight',
        'ffn_gate.weight',
        'ffn_up.weight',
        'post_attention_norm.weight',
        'ssm_a',
        'ssm_alpha.weight',
        'ssm_beta.weight',
        'ssm_conv1d.weight',
        'ssm_dt.bias',
        'ssm_norm.weight',
        'ssm_out.weight',
      ].map((n) => `blk.0.${n}`),
    )
    expect(names.filter((n) => n.startsWith('blk.3.attn'))).toEqual(
      ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'attn_q_norm', 'attn_k_norm'].map(
        (n) => `blk.3.${n}.weight`,
      ),
    )
    expect(names).not.toContain('output.weight') // tied
    const values = (name: string) => new Float32Array(tensorBytes(file, header, name).data.slice().buffer)
    // Zero-centred norms as 1 + w; the gated norm as is.
    expect(values('blk.3.attn_q_norm.weight')).toEqual(
      Float32Array.from(hf('model.layers.3.self_attn.q_norm.weight'), (w) => 1 + w),
    )
    expect(values('output_norm.weight')).toEqual(Float32Array.from(hf('model.norm.weight'), (w) => 1 + w))
    expect(values('blk.0.ssm_norm.weight')).toEqual(hf('model.layers.0.linear_attn.norm.weight'))
    expect(header.tensors.find((t) => t.name === 'blk.3.attn_q.weight')!.dims).toEqual([64, 256])
    expect(header.tensors.find((t) => t.name === 'blk.0.ssm_conv1d.weight')!.dims).toEqual([4, 128])
    // V heads in tiled order: 2 K heads, 2 V heads each; position v·2 + k holds HF head k·2 + v.
    const tiled = [0, 2, 1, 3]
    const l = 'model.layers.0.linear_attn'
    const aLog = hf(`${l}.A_log`)
    const ssmA = values('blk.0.ssm_a')
    tiled.forEach((from, to) => {
      expect(ssmA[to]).toBeCloseTo(-Math.exp(aLog[from]!), 6)
    })
    const gate = values('blk.0.attn_gate.weight')
    const z = hf(`${l}.in_proj_z.weight`)
    const headRows = 16 * 64
    tiled.forEach((from, to) => {
      expect(gate.subarray(to * headRows, (to + 1) * headRows)).toEqual(
        z.subarray(from * headRows, (from + 1) * headRows),
      )
    })
    // in_proj_qkv: q and k rows (2 · 32) stay, the V rows move by head.
    const qkv = values('blk.0.attn_qkv.weight')
    const qkvHf = hf(`${l}.in_proj_qkv.weight`)
    expect(qkv.subarray(0, 64 * 64)).toEqual(qkvHf.subarray(0, 64 * 64))
    expect(qkv.subarray((64 + 16) * 64, (64 + 32) * 64)).toEqual(
      qkvHf.subarray((64 + 32) * 64, (64 + 48) * 64),
    )
    // out_proj's input columns move the same way.
    const out = values('blk.0.ssm_out.weight')
    const outHf = hf(`${l}.out_proj.weight`)
    expect(out.subarray(5 * 64 + 16, 5 * 64 + 32)).toEqual(outHf.subarray(5 * 64 + 32, 5 * 64 + 48))

    const q8 = join(folder, 'qwen3_5-q8_0.gguf')
    const quantized = await writeGguf({ weights: model, tokenizer, dtype: 'q8_0', outPath: q8 })
    expect(quantized.fallbacks).toEqual([])
    const q8Header = readGgufHeader(new Uint8Array(readFileSync(q8)))
    const typeOf = (name: string) => q8Header.tensors.find((t) => t.name === name)!.type
    expect(typeOf('blk.0.attn_qkv.weight')).toBe(GgmlType.Q8_0)
    expect(typeOf('blk.0.ssm_beta.weight')).toBe(GgmlType.Q8_0)
    expect(typeOf('token_embd.weight')).toBe(GgmlType.Q8_0)
    // ggml_ssm_conv takes an F32 kernel; norms, biases and ssm_a stay F32.
    for (const name of [
      'blk.0.ssm_conv1d.weight',
      'blk.0.ssm_a',
      'blk.0.ssm_dt.bias',
      'blk.0.ssm_norm.weight',
    ])
      expect(typeOf(name), name).toBe(GgmlType.F32)
  })

  it("names Qwen3.5's own pre-tokenizer (combining marks kept in words) qwen35", () => {
    // The fixtures ship Qwen3's tokenizer (qwen2); Qwen3.5's tokenizer.json adds \p{M} to the split.
    const qwen35Split = JSON.parse(tokenizerFiles.tokenizerJson, (key, value) =>
      key === 'Regex' && typeof value === 'string' && value.includes('\\p{L}+|')
        ? value
            .replace('?\\p{L}+|', '?[\\p{L}\\p{M}]+|')
            .replace('[^\\s\\p{L}\\p{N}]', '[^\\s\\p{L}\\p{M}\\p{N}]')
        : value,
    ) as Record<string, unknown>
    const metadata = ggufTokenizerMetadata({ tokenizerJson: qwen35Split, config, eosTokenId: 151645 })
    expect(metadata.get('tokenizer.ggml.pre')).toEqual({ type: 'string', value: 'qwen35' })
  })

  it('refuses Qwen3.5 shapes llama.cpp cannot run, before writing', async () => {
    // Full attention first, then never again: no interval says that.
    const irregular = {
      ...model,
      config: {
        ...model.config,
        layerTypes: ['full_attention', 'linear_attention', 'linear_attention', 'linear_attention'] as const,
      },
    }
    await expect(
      writeGguf({ weights: irregular, tokenizer, dtype: 'f32', outPath: join(folder, 'z.gguf') }),
    ).rejects.toThrow(/full_attention_interval/)
    const wide = { ...model, config: { ...model.config, linearValueHeadDim: 32 } }
    await expect(
      writeGguf({ weights: wide, tokenizer, dtype: 'f32', outPath: join(folder, 'z.gguf') }),
    ).rejects.toThrow(/linear_key_head_dim = linear_value_head_dim/)
    // Weights that do not match the config.
    const missing = {
      ...model,
      weights: new Map([...model.weights].filter(([name]) => !name.endsWith('A_log'))),
    }
    await expect(
      writeGguf({ weights: missing, tokenizer, dtype: 'f32', outPath: join(folder, 'z.gguf') }),
    ).rejects.toThrow(/A_log/)
    expect(existsSync(join(folder, 'z.gguf'))).toBe(false)
  })
})
