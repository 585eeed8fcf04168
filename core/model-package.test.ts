import { describe, expect, it } from 'vitest'
import { ModelError } from './errors.ts'
import {
  dtypeOfOnnxFile,
  onnxFileNames,
  packageFingerprint,
  parseModelConfig,
  parsePackageManifest,
} from './model-package.ts'

const qwen3 = {
  model_type: 'qwen3',
  hidden_size: 1024,
  intermediate_size: 3072,
  num_hidden_layers: 28,
  num_attention_heads: 16,
  num_key_value_heads: 8,
  head_dim: 128,
  vocab_size: 151936,
  max_position_embeddings: 40960,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  tie_word_embeddings: true,
  bos_token_id: 151643,
  eos_token_id: 151645,
}

describe('parseModelConfig', () => {
  it('reads a Qwen3-0.6B config with a decoupled head_dim', () => {
    const config = parseModelConfig(JSON.stringify(qwen3))
    expect(config).toMatchObject({
      modelType: 'qwen3',
      hiddenSize: 1024,
      headDim: 128,
      numKeyValueHeads: 8,
      tieWordEmbeddings: true,
      ropeTheta: 1000000,
      partialRotaryFactor: 1,
      bosTokenId: 151643,
      eosTokenIds: [151645],
    })
  })

  it('derives Llama defaults and reads llama3 rope scaling', () => {
    const config = parseModelConfig({
      model_type: 'llama',
      hidden_size: 2048,
      intermediate_size: 8192,
      num_hidden_layers: 16,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      vocab_size: 128256,
      rope_theta: 500000,
      rope_scaling: {
        rope_type: 'llama3',
        factor: 32,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
      eos_token_id: [128001, 128008, 128009],
    })
    expect(config.headDim).toBe(64)
    expect(config.tieWordEmbeddings).toBe(false)
    expect(config.ropeScaling).toEqual({
      ropeType: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    })
    expect(config.eosTokenIds).toEqual([128001, 128008, 128009])
  })

  it('reads Qwen3.5 from its text_config', () => {
    const config = parseModelConfig({
      model_type: 'qwen3_5',
      text_config: {
        model_type: 'qwen3_5_text',
        hidden_size: 1024,
        intermediate_size: 3584,
        num_hidden_layers: 4,
        num_attention_heads: 8,
        num_key_value_heads: 2,
        head_dim: 256,
        vocab_size: 248320,
        layer_types: ['linear_attention', 'linear_attention', 'linear_attention', 'full_attention'],
        linear_num_key_heads: 16,
        linear_num_value_heads: 16,
        rope_parameters: { rope_theta: 10000000, partial_rotary_factor: 0.25 },
      },
    })
    expect(config.modelType).toBe('qwen3_5')
    expect(config.partialRotaryFactor).toBe(0.25)
    expect(config.ropeTheta).toBe(10000000)
    expect(config.linearAttention).toEqual({
      convKernelDim: 4,
      keyHeadDim: 128,
      valueHeadDim: 128,
      numKeyHeads: 16,
      numValueHeads: 16,
    })
  })

  it.each([
    [{ ...qwen3, model_type: 'gpt2' }, /"model_type" is "gpt2"; ondevice supports llama, qwen3/],
    [{ ...qwen3, hidden_size: 10_000_000 }, /"hidden_size" is 10000000, above the sane limit/],
    [{ ...qwen3, num_hidden_layers: 0 }, /"num_hidden_layers" must be a positive integer/],
    [
      { ...qwen3, num_key_value_heads: 5 },
      /"num_key_value_heads" \(5\) must divide num_attention_heads \(16\)/,
    ],
    [{ ...qwen3, vocab_size: undefined }, /"vocab_size" is missing/],
    [{ ...qwen3, head_dim: 127 }, /"head_dim" \(127\) must be even/],
    ['{not json', /config.json is not valid JSON/],
  ])('rejects bad input clearly (%#)', (input, message) => {
    expect(() => parseModelConfig(input)).toThrow(message)
    expect(() => parseModelConfig(input)).toThrow(ModelError)
  })
})

describe('package file names', () => {
  it('follows the onnx-community convention', () => {
    expect(onnxFileNames('qwen3', 'fp32')).toEqual({ model: 'onnx/model.onnx' })
    expect(onnxFileNames('llama', 'q4').model).toBe('onnx/model_q4.onnx')
    expect(onnxFileNames('llama', 'q8').model).toBe('onnx/model_quantized.onnx')
    expect(onnxFileNames('llama', 'fp16').model).toBe('onnx/model_fp16.onnx')
    expect(onnxFileNames('qwen3_5', 'q4')).toEqual({
      model: 'onnx/decoder_model_merged_q4.onnx',
      embedTokens: 'onnx/embed_tokens_q4.onnx',
    })
    expect(dtypeOfOnnxFile('onnx/model_quantized.onnx')).toBe('q8')
    expect(dtypeOfOnnxFile('onnx/decoder_model_merged_q4f16.onnx')).toBe('q4f16')
    expect(dtypeOfOnnxFile('onnx/model.onnx')).toBe('fp32')
    expect(dtypeOfOnnxFile('onnx/other.onnx')).toBeUndefined()
  })

  it('validates manifests', () => {
    const good = {
      format: 'ondevice-package/1',
      modelType: 'llama',
      files: [{ path: 'config.json', bytes: 10, sha256: 'a'.repeat(64) }],
      dtypes: ['fp32'],
      estimatedMemoryBytes: { fp32: 100 },
    }
    expect(parsePackageManifest(good).files).toHaveLength(1)
    expect(() =>
      parsePackageManifest({ ...good, files: [{ path: '../x', bytes: 1, sha256: 'a'.repeat(64) }] }),
    ).toThrow(/"files.0.path" must be a relative path/)
    expect(() => parsePackageManifest({ ...good, dtypes: ['int3'] })).toThrow(/"dtypes"/)
  })
})

describe('packageFingerprint', () => {
  const sha = (digit: string) => digit.repeat(64)
  const files = [
    { path: 'config.json', sha256: sha('1') },
    { path: 'tokenizer.json', sha256: sha('2') },
    { path: 'onnx/model_quantized.onnx', sha256: sha('3') },
    { path: 'onnx/model_quantized.onnx_data', sha256: sha('4') },
    { path: 'onnx/model_q4.onnx', sha256: sha('5') },
  ]
  it('changes with a file that decides the tokens in that dtype, not with others', () => {
    const q8 = packageFingerprint(files, 'q8')
    expect(q8).toMatch(/^[0-9a-f]{32}$/)
    // Another dtype's graph, a README and the order of the list do not count.
    expect(
      packageFingerprint([...files.slice(0, 4), { path: 'README.md', sha256: sha('6') }].reverse(), 'q8'),
    ).toBe(q8)
    expect(packageFingerprint(files, 'q4')).not.toBe(q8)
    for (const index of [0, 1, 3]) {
      const changed = files.map((file, at) => (at === index ? { ...file, sha256: sha('9') } : file))
      expect(packageFingerprint(changed, 'q8')).not.toBe(q8)
    }
    // A shard of external data belongs to its graph.
    expect(
      packageFingerprint([...files, { path: 'onnx/model_quantized.onnx_data_1', sha256: sha('7') }], 'q8'),
    ).not.toBe(q8)
  })
  it('is undefined without a manifest or without that dtype', () => {
    expect(packageFingerprint(undefined, 'q8')).toBeUndefined()
    expect(packageFingerprint(files, 'fp16')).toBeUndefined()
  })
})
