import { describe, expect, it } from 'vitest'
import {
  cacheBytes,
  estimateMemory,
  estimateMemoryByBackend,
  type MemoryBackend,
  memoryBackends,
  memoryCalibration,
  storedTableBytes,
} from './memory-estimate.ts'
import {
  type ModelDtype,
  manifestMemoryEstimate,
  onnxFileNames,
  parseModelConfig,
  parsePackageManifest,
} from './model-package.ts'
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
  // tokens; median of 2-3 processes each, 6 December 2026, 19:40-20:20; docs/benchmarks.md)
  // with the stored bytes of the dtype's files: every backend and dtype the router can pick, on
  // the Qwen3.5 tiny fixture and 0.8B shape (two graphs), the Qwen3-0.6B shape and the mid-size
  // Qwen3 package of test/memory (one graph; tied and untied, with num_logits_to_keep and
  // without it: packages built before the input), within the 15 % the router relies on.
  it('matches the measured peaks within 15 % (two-graph and one-graph, tied and untied, old graphs)', () => {
    const qwen35 = (raw: Record<string, unknown>) =>
      parseModelConfig({
        model_type: 'qwen3_5_text',
        tie_word_embeddings: true,
        linear_conv_kernel_dim: 4,
        layer_types: Array.from({ length: raw.num_hidden_layers as number }, (_, i) =>
          i % 4 === 3 ? 'full_attention' : 'linear_attention',
        ),
        ...raw,
      })
    const qwen35Tiny = qwen35({
      hidden_size: 64,
      intermediate_size: 128,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 32,
      vocab_size: 151936,
      max_position_embeddings: 4096,
      linear_num_key_heads: 2,
      linear_num_value_heads: 4,
      linear_key_head_dim: 16,
      linear_value_head_dim: 16,
    })
    const qwen35Shape08 = qwen35({
      hidden_size: 1024,
      intermediate_size: 3584,
      num_hidden_layers: 24,
      num_attention_heads: 8,
      num_key_value_heads: 2,
      head_dim: 256,
      vocab_size: 248320,
      max_position_embeddings: 262144,
      linear_num_key_heads: 16,
      linear_num_value_heads: 16,
      linear_key_head_dim: 128,
      linear_value_head_dim: 128,
    })
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
    const qwen3Shape06 = parseModelConfig({ ...qwen3.raw, tie_word_embeddings: true })
    interface Shape {
      readonly config: typeof qwen3
      /** Stored bytes per dtype: the decoder's files and, for Qwen3.5, embed_tokens'. */
      readonly files: Record<string, readonly [model: number, embedTokens?: number]>
      /** The graph computes every position's logits (built before num_logits_to_keep). */
      readonly old?: boolean
    }
    const shapes: Record<string, Shape> = {
      qwen35Tiny: {
        config: qwen35Tiny,
        files: { fp32: [39666857, 38895993], q4: [6401495, 6230189], q8: [10572261, 19448257] },
      },
      qwen35Shape08: {
        config: qwen35Shape08,
        files: { q4: [483960170, 162898744], q8: [756717676, 508559812] },
      },
      qwen3Shape06: {
        config: qwen3Shape06,
        files: { fp32: [2384418529], q4: [406684234], q8: [778398109] },
      },
      midTied: {
        config: mid(true),
        files: { fp32: [336361571], fp16: [168198575], q4: [66058011], q8: [174712696] },
      },
      midUntied: {
        config: mid(false),
        files: { fp32: [647526183], fp16: [323780746], q4: [104953745], q8: [174712696] },
      },
      midTiedOld: {
        config: mid(true),
        files: { fp32: [336361112], fp16: [168198116], q4: [66057618], q8: [174712303] },
        old: true,
      },
      midUntiedOld: {
        config: mid(false),
        files: { fp32: [647525790], fp16: [323780353], q4: [104953352] },
        old: true,
      },
    }
    type Row = readonly [
      shape: keyof typeof shapes,
      dtype: ModelDtype,
      prompt: number,
      mib: Record<string, number>,
    ]
    const rows: readonly Row[] = [
      ['qwen35Tiny', 'fp32', 32, { wasm: 93, native: 131, 'ort-wasm': 334 }],
      ['qwen35Tiny', 'q4', 32, { wasm: 33, native: 76, 'ort-wasm': 397 }],
      ['qwen35Tiny', 'q8', 32, { wasm: 47, native: 81, 'ort-wasm': 195 }],
      ['qwen35Tiny', 'fp32', 500, { wasm: 93, native: 137, 'ort-wasm': 340 }],
      ['qwen35Tiny', 'q4', 500, { wasm: 35, native: 90, 'ort-wasm': 376 }],
      ['qwen35Tiny', 'q8', 500, { wasm: 48, native: 104, 'ort-wasm': 199 }],
      ['qwen35Shape08', 'q4', 32, { wasm: 581, 'ort-wasm': 2041, native: 852 }],
      ['qwen35Shape08', 'q8', 32, { wasm: 1270, 'ort-wasm': 2809, native: 1016 }],
      ['qwen3Shape06', 'q4', 32, { wasm: 434, native: 663, 'ort-wasm': 1511 }],
      ['qwen3Shape06', 'q8', 32, { wasm: 773, native: 778, 'ort-wasm': 1607 }],
      ['qwen3Shape06', 'fp32', 32, { wasm: 2297, native: 2965 }],
      ['midTied', 'fp32', 500, { wasm: 341, native: 703, 'ort-wasm': 1108 }],
      ['midTied', 'q8', 500, { wasm: 190, native: 243, 'ort-wasm': 503 }],
      ['midTied', 'q4', 500, { wasm: 93, native: 189, 'ort-wasm': 709 }],
      ['midTied', 'fp16', 500, { wasm: 494, native: 683, 'ort-wasm': 1182 }],
      ['midUntied', 'fp32', 500, { wasm: 641, native: 665, 'ort-wasm': 1679 }],
      ['midUntied', 'q8', 500, { wasm: 188, native: 233, 'ort-wasm': 490 }],
      ['midUntied', 'q4', 500, { wasm: 130, native: 199, 'ort-wasm': 747 }],
      ['midUntied', 'fp16', 500, { wasm: 501, native: 681, 'ort-wasm': 1447 }],
      ['midUntiedOld', 'fp32', 500, { native: 1183, 'ort-wasm': 1965, wasm: 642 }],
      ['midUntiedOld', 'fp16', 500, { native: 1083, 'ort-wasm': 1732, wasm: 500 }],
      ['midTiedOld', 'fp32', 500, { native: 1600, 'ort-wasm': 1944, wasm: 343 }],
      ['midTiedOld', 'fp16', 500, { native: 1439, 'ort-wasm': 1763, wasm: 492 }],
      ['midTiedOld', 'q8', 500, { native: 847, 'ort-wasm': 1048 }],
      ['midTiedOld', 'q4', 500, { native: 782, 'ort-wasm': 1220 }],
      ['midUntiedOld', 'q4', 500, { native: 796, 'ort-wasm': 1328 }],
    ]
    const outside: string[] = []
    for (const [name, dtype, promptTokens, measured] of rows) {
      const shape = shapes[name] as Shape
      const [model, embedTokens] = shape.files[dtype] as readonly [number, number?]
      const names = onnxFileNames(shape.config.modelType, dtype)
      const files = [
        { path: names.model, bytes: model },
        ...(embedTokens === undefined || names.embedTokens === undefined
          ? []
          : [{ path: names.embedTokens, bytes: embedTokens }]),
      ]
      const inputs = memoryInputsFromFiles(shape.config, dtype, files, 11422654, promptTokens + 8, {
        allPositionLogits: shape.old === true,
      })
      for (const [backend, mib] of Object.entries(measured)) {
        const estimate = estimateMemory(backend as MemoryBackend, { ...inputs, promptTokens })
        const ratio = estimate.bytes / (mib * 2 ** 20)
        if (ratio < 0.85 || ratio > 1.15) outside.push(`${name} ${backend} ${dtype}: ${ratio.toFixed(2)}`)
      }
    }
    expect(outside).toEqual([])
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

  it("onnxruntime-web's 4-bit path: the initializers plus the head dequantized to fp32, or the load's copies if larger", () => {
    const calibration = memoryCalibration['ort-wasm']
    const q4 = { ...inputs, dtype: 'q4', weightFileBytes: 400e6, allPositionLogits: false }
    const head = qwen3.vocabSize * qwen3.hiddenSize * 4
    const estimate = estimateMemory('ort-wasm', q4)
    // The load's copies (2.15x the files) are gone when the head is first widened.
    expect(estimate.parts.weights).toBeCloseTo(400e6 * (calibration.weightFactor.q4 as number), 0)
    const steady = 400e6 * (calibration.steadyWeightFactor?.q4 as number)
    const dequantized = head + (calibration.dequantizedFixedBytes as number)
    expect(
      estimate.parts.weights +
        estimate.parts.scratch -
        estimateMemory('ort-wasm', { ...q4, dtype: 'q8' }).parts.scratch,
    ).toBeCloseTo(steady + dequantized, 0)
    // A package whose files outweigh its head: the load's copies are the peak, nothing added.
    const heavyInputs = { ...q4, weightFileBytes: 4e9, contextLength: 1, promptTokens: 1 }
    expect(estimateMemory('ort-wasm', heavyInputs).parts.scratch).toBe(
      estimateMemory('ort-wasm', { ...heavyInputs, dtype: 'q8' }).parts.scratch,
    )
    // Hidden 64 (the Qwen3.5 tiny fixture's): a 37 MiB head, yet a prompt of 2 or more rows peaked
    // ~265 MiB over the load: the floor holds.
    const tiny = parseModelConfig({ ...qwen3.raw, hidden_size: 64, num_hidden_layers: 2 })
    const small = estimateMemory('ort-wasm', { ...q4, config: tiny, weightFileBytes: 12e6 })
    expect(small.parts.weights + small.parts.scratch).toBeGreaterThanOrEqual(
      calibration.dequantizedFloorBytes as number,
    )
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
