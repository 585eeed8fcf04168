import { describe, expect, it } from 'vitest'
import {
  cacheBytes,
  estimateMemory,
  estimateMemoryByBackend,
  memoryBackends,
  memoryCalibration,
  storedTableBytes,
} from './memory-estimate.ts'
import { manifestMemoryEstimate, parseModelConfig, parsePackageManifest } from './model-package.ts'
import { manifestMemoryFields, memoryInputsFromFiles } from './package-memory.ts'

const qwen3 = parseModelConfig({
  model_type: 'qwen3',
  hidden_size: 1024,
  intermediate_size: 3072,
  num_hidden_layers: 28,
  num_attention_heads: 16,
  num_key_value_heads: 8,
  head_dim: 128,
  vocab_size: 151936,
  max_position_embeddings: 40960,
})
const inputs = {
  config: qwen3,
  dtype: 'q8',
  weightFileBytes: 778e6,
  tokenizerBytes: 11.4e6,
  contextLength: 4096,
}

describe('memory model', () => {
  it('costs the KV cache per full-attention layer and the recurrent state of linear layers', () => {
    expect(cacheBytes(qwen3)).toEqual({ perToken: 28 * 2 * 8 * 128 * 4, state: 0 })
    const qwen35 = parseModelConfig({
      model_type: 'qwen3_5_text',
      hidden_size: 1024,
      intermediate_size: 3584,
      num_hidden_layers: 4,
      num_attention_heads: 8,
      num_key_value_heads: 2,
      head_dim: 256,
      vocab_size: 248320,
      layer_types: ['linear_attention', 'linear_attention', 'linear_attention', 'full_attention'],
      linear_num_value_heads: 16,
      linear_num_key_heads: 16,
      linear_key_head_dim: 128,
      linear_value_head_dim: 128,
      linear_conv_kernel_dim: 4,
    })
    const conv = (2 * 16 * 128 + 16 * 128) * 3
    expect(cacheBytes(qwen35)).toEqual({ perToken: 2 * 2 * 256 * 4, state: 3 * (conv + 16 * 128 * 128) * 4 })
  })

  it('ranks the backends as measured: onnxruntime-web holds about twice the engine, a longer context costs more', () => {
    const engine = estimateMemory('wasm', inputs)
    const ortWeb = estimateMemory('ort-wasm', inputs)
    expect(ortWeb.bytes).toBeGreaterThan(1.8 * engine.bytes)
    expect(engine.parts.weights).toBe(778e6)
    const shorter = estimateMemory('wasm', { ...inputs, contextLength: 1024 })
    expect(engine.bytes - shorter.bytes).toBe(engine.perTokenBytes * 3072)
    const gpu = estimateMemory('webgpu', inputs)
    expect(gpu.gpuBytes).toBeGreaterThan(778e6)
    expect(gpu.bytes).toBeGreaterThan(gpu.gpuBytes as number)
    expect(Object.keys(estimateMemoryByBackend(inputs))).toEqual([...memoryBackends])
  })

  it('the engine keeps bytes stored twice once', () => {
    // Qwen3.5 q4: the embedding graph's table is the tied head's 4-bit bytes.
    const qwen35 = parseModelConfig({ ...qwen3.raw, model_type: 'qwen3_5_text' })
    const shared = {
      ...inputs,
      config: qwen35,
      dtype: 'q4',
      weightFileBytes: 650e6,
      duplicateWeightBytes: 127e6,
    }
    expect(estimateMemory('wasm', shared).parts.weights).toBe(523e6)
    expect(estimateMemory('ort-wasm', shared).parts.weights).toBeGreaterThan(650e6)
  })

  it("counts a prefill's logits for every prompt position only for a graph that computes them", () => {
    // 512 prompt rows of 151,936 fp32 logits against one: what num_logits_to_keep saves.
    const saved = 511 * qwen3.vocabSize * 4
    // An old package, or another exporter's one-graph model: all positions (the default).
    const allRows = estimateMemory('native', inputs)
    expect(estimateMemory('native', { ...inputs, allPositionLogits: true })).toEqual(allRows)
    const oneRow = estimateMemory('native', { ...inputs, allPositionLogits: false })
    const native = memoryCalibration.native.scratchFactor.q8 as number
    expect(allRows.parts.scratch - oneRow.parts.scratch).toBeCloseTo(native * saved, 0)
    expect(allRows.bytes - oneRow.bytes).toBeCloseTo(native * saved, -1)
    const ortWeb = memoryCalibration['ort-wasm'].scratchFactor.q8 as number
    expect(
      estimateMemory('ort-wasm', inputs).parts.scratch -
        estimateMemory('ort-wasm', { ...inputs, allPositionLogits: false }).parts.scratch,
    ).toBeCloseTo(ortWeb * saved, 0)
    expect(
      (estimateMemory('webgpu', inputs).gpuBytes as number) -
        (estimateMemory('webgpu', { ...inputs, allPositionLogits: false }).gpuBytes as number),
    ).toBeCloseTo(saved, -1)
    // The engine computes the last row whatever the graph says.
    expect(estimateMemory('wasm', { ...inputs, allPositionLogits: false })).toEqual(
      estimateMemory('wasm', inputs),
    )
    // Qwen3.5's graphs have always had the input.
    const qwen35 = parseModelConfig({ ...qwen3.raw, model_type: 'qwen3_5_text' })
    expect(estimateMemory('native', { ...inputs, config: qwen35 })).toEqual(
      estimateMemory('native', { ...inputs, config: qwen35, allPositionLogits: false }),
    )
  })

  it('package figures: what the builder writes now counts one row, a package read from elsewhere all', () => {
    const files = [
      { path: 'onnx/model_quantized.onnx', bytes: 300e3 },
      { path: 'onnx/model_quantized.onnx_data', bytes: 778e6 },
      { path: 'tokenizer.json', bytes: 11.4e6 },
    ]
    const unknown = manifestMemoryFields(qwen3, ['q8'], files, 4096)
    const written = manifestMemoryFields(qwen3, ['q8'], files, 4096, { allPositionLogits: false })
    const old = manifestMemoryFields(qwen3, ['q8'], files, 4096, { allPositionLogits: true })
    expect(old).toEqual(unknown)
    const figure = (fields: typeof unknown) => fields.estimatedMemory?.q8?.native?.bytes as number
    expect(figure(written)).toBe(
      estimateMemory('native', {
        ...memoryInputsFromFiles(qwen3, 'q8', files, 11.4e6, 4096),
        allPositionLogits: false,
      }).bytes,
    )
    expect(figure(unknown) - figure(written)).toBeGreaterThan(500e6)
    expect(written.estimatedMemoryBytes.q8 as number).toBeLessThan(unknown.estimatedMemoryBytes.q8 as number)
  })

  // Peaks measured by `npm run bench:memory` (fresh process, VmHWM added by load + prompt + 8
  // tokens; 6 December 2026, load average 3-5, graphs with num_logits_to_keep; docs/benchmarks.md)
  // with the stored bytes of the dtype's files: every backend and dtype the router can pick, tied
  // and untied tables, within the 15 % the router relies on. The engine's tied fp16 row is the
  // small Qwen3 fixture (`ondevice fixture --arch qwen3 --size small --dtype fp16`, 32-token
  // prompt, 18:55): its graph did not load on the engine before the head's Cast was read.
  it('matches the measured peaks of one-graph packages within 15 % (tied and untied tables)', () => {
    const mid = (tied: boolean) =>
      parseModelConfig({
        model_type: 'qwen3',
        hidden_size: 512,
        intermediate_size: 1536,
        num_hidden_layers: 2,
        num_attention_heads: 8,
        num_key_value_heads: 4,
        head_dim: 64,
        vocab_size: 151936,
        max_position_embeddings: 4096,
        tie_word_embeddings: tied,
      })
    const shape06 = parseModelConfig({ ...qwen3.raw, tie_word_embeddings: true })
    const small = parseModelConfig({
      model_type: 'qwen3',
      hidden_size: 256,
      intermediate_size: 768,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 64,
      vocab_size: 151936,
      max_position_embeddings: 4096,
      tie_word_embeddings: true,
    })
    type Case = readonly [
      config: typeof qwen3,
      name: string,
      dtype: string,
      fileBytes: number,
      measured: Record<string, number>,
    ]
    const cases: readonly Case[] = [
      [mid(true), 'mid tied', 'fp32', 336361571, { wasm: 340, 'ort-wasm': 1069, native: 706 }],
      [mid(true), 'mid tied', 'q8', 174712696, { wasm: 190, 'ort-wasm': 478, native: 251 }],
      [mid(true), 'mid tied', 'q4', 66058011, { wasm: 123, 'ort-wasm': 715, native: 204 }],
      [mid(true), 'mid tied', 'fp16', 168198575, { 'ort-wasm': 1179, native: 679 }],
      [mid(false), 'mid untied', 'fp32', 647526183, { wasm: 652, 'ort-wasm': 1673, native: 692 }],
      [mid(false), 'mid untied', 'q8', 174712696, { wasm: 203, 'ort-wasm': 468, native: 248 }],
      [mid(false), 'mid untied', 'q4', 104953745, { wasm: 156, 'ort-wasm': 774, native: 208 }],
      [mid(false), 'mid untied', 'fp16', 323780746, { wasm: 522, 'ort-wasm': 1431, native: 685 }],
      [shape06, '0.6B', 'q4', 406684234, { wasm: 470, native: 662 }],
      [shape06, '0.6B', 'q8', 778398109, { wasm: 798, native: 790 }],
      [shape06, '0.6B', 'fp32', 2384418529, { wasm: 2332, native: 2952 }],
      [small, 'small tied', 'fp16', 84133062, { wasm: 274, native: 366 }],
    ]
    const ratios: string[] = []
    for (const [config, name, dtype, weightFileBytes, measured] of cases) {
      const promptTokens = name === '0.6B' || name === 'small tied' ? 32 : 500
      for (const [backend, mib] of Object.entries(measured)) {
        const estimate = estimateMemory(backend as (typeof memoryBackends)[number], {
          config,
          dtype,
          weightFileBytes,
          tokenizerBytes: 11422654,
          contextLength: promptTokens + 8,
          promptTokens,
          allPositionLogits: false,
        })
        const ratio = estimate.bytes / (mib * 2 ** 20)
        if (ratio < 0.85 || ratio > 1.15) ratios.push(`${name} ${backend} ${dtype}: ${ratio.toFixed(2)}`)
      }
    }
    expect(ratios).toEqual([])
  })

  it('one-graph packages: a tied table is held twice by onnxruntime for its matrix product, an untied lookup table stays mapped', () => {
    const tied = parseModelConfig({ ...qwen3.raw, tie_word_embeddings: true })
    const untied = parseModelConfig({ ...qwen3.raw, tie_word_embeddings: false })
    const table = storedTableBytes(tied, 'fp32')
    expect(table).toBe(151936 * 1024 * 4)
    const fp32 = { ...inputs, dtype: 'fp32', weightFileBytes: 2.38e9 }
    const native = memoryCalibration.native
    const tiedNative = estimateMemory('native', { ...fp32, config: tied })
    expect(tiedNative.parts.weights).toBeCloseTo(
      2.38e9 * (native.weightFactor.fp32 as number) + table * (native.headExtraFactor?.fp32 as number),
      0,
    )
    // Untied, the file holds a second table that only the lookup reads.
    const untiedNative = estimateMemory('native', {
      ...fp32,
      config: untied,
      weightFileBytes: 2.38e9 + table,
    })
    expect(untiedNative.parts.weights - tiedNative.parts.weights).toBeCloseTo(
      table * (native.inGraphLookupFactor?.fp32 as number),
      0,
    )
    // Qwen3.5's tables live in their own graph (lookupOnlyBytes): no one-graph term.
    const qwen35 = parseModelConfig({ ...qwen3.raw, model_type: 'qwen3_5_text', tie_word_embeddings: true })
    expect(estimateMemory('native', { ...fp32, config: qwen35 }).parts.weights).toBeCloseTo(
      2.38e9 * (native.weightFactor.fp32 as number),
      0,
    )
    // A dtype without a known layout gets no table-specific term (never a smaller figure).
    expect(storedTableBytes(tied, 'int8')).toBe(0)
  })

  it("onnxruntime-web's 4-bit path: the head dequantized to fp32, at least its measured floor on a tiny model", () => {
    const q4 = { ...inputs, dtype: 'q4', weightFileBytes: 400e6, allPositionLogits: false }
    const head = qwen3.vocabSize * qwen3.hiddenSize * 4
    const withHead = estimateMemory('ort-wasm', q4).parts.scratch
    expect(withHead - estimateMemory('ort-wasm', { ...q4, dtype: 'q8' }).parts.scratch).toBeCloseTo(head, 0)
    // Hidden 64 (the Qwen3.5 tiny fixture's): a 37 MiB head, yet its prompt peaked ~200 MiB over a 1-token one.
    const tiny = parseModelConfig({ ...qwen3.raw, hidden_size: 64, num_hidden_layers: 2 })
    const tinyScratch = estimateMemory('ort-wasm', { ...q4, config: tiny, weightFileBytes: 12e6 }).parts
      .scratch
    expect(tinyScratch).toBeGreaterThanOrEqual(memoryCalibration['ort-wasm'].dequantizedFloorBytes as number)
  })

  it('refuses nonsense with the field named', () => {
    expect(() => estimateMemory('wasm', { ...inputs, contextLength: 0 })).toThrow(/contextLength/)
    expect(() => estimateMemory('wasm', { ...inputs, duplicateWeightBytes: 1e12 })).toThrow(
      /duplicateWeightBytes/,
    )
    expect(() => estimateMemory('gpu' as never, inputs)).toThrow(/backend must be one of/)
  })
})

describe('manifest memory figures', () => {
  const base = {
    format: 'ondevice-package/1',
    modelType: 'qwen3',
    files: [],
    dtypes: ['q8'],
    estimatedMemoryBytes: { q8: 3e9 },
    contextLength: 4096,
  }

  it('reads a plain per-dtype number (older packages) as the figure for every backend', () => {
    const manifest = parsePackageManifest(base)
    expect(manifestMemoryEstimate(manifest, 'q8', 'wasm')).toEqual({ bytes: 3e9 })
    expect(manifestMemoryEstimate(manifest, 'q4', 'wasm')).toBeUndefined()
  })

  it("reads a backend's own figure, shorter contexts costing less", () => {
    const manifest = parsePackageManifest({
      ...base,
      estimatedMemory: {
        q8: {
          wasm: { bytes: 1e9, perTokenBytes: 1000, modelBytes: 8e8 },
          webgpu: { bytes: 2e9, perTokenBytes: 2000, gpuBytes: 1.5e9 },
        },
      },
    })
    expect(manifestMemoryEstimate(manifest, 'q8', 'wasm')).toEqual({
      bytes: 1e9,
      modelBytes: 8e8,
      backend: 'wasm',
    })
    expect(manifestMemoryEstimate(manifest, 'q8', 'wasm', 96)?.bytes).toBe(1e9 - 1000 * 4000)
    expect(manifestMemoryEstimate(manifest, 'q8', 'webgpu', 96)?.gpuBytes).toBe(1.5e9 - 2000 * 4000)
    // A backend without its own figure falls back to the per-dtype number.
    expect(manifestMemoryEstimate(manifest, 'q8', 'native')).toEqual({ bytes: 3e9 })
  })

  it('rejects malformed figures with the field named', () => {
    expect(() =>
      parsePackageManifest({ ...base, estimatedMemory: { q8: { gpu: { bytes: 1, perTokenBytes: 0 } } } }),
    ).toThrow(/"estimatedMemory.q8.gpu" is not a backend/)
    expect(() =>
      parsePackageManifest({ ...base, estimatedMemory: { q8: { wasm: { bytes: -1, perTokenBytes: 0 } } } }),
    ).toThrow(/"estimatedMemory.q8.wasm" must be/)
    expect(() => parsePackageManifest({ ...base, estimatedMemoryBytes: { q8: 'big' } })).toThrow(
      /"estimatedMemoryBytes.q8" must be a byte count/,
    )
  })
})
