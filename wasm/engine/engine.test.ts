// The WebAssembly engine against the builder's TypeScript reference (fp32, exact to 1e-4) and
// against onnxruntime-node on the same quantized files (q8, q4), on seeded Llama and Qwen3
// packages; plus the errors a broken package must give before any compute.
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeQwen35Fixture } from '../../builder/architectures/qwen3-5-fixture.ts'
import { randomDecoderWeights } from '../../builder/architectures/random-weights.ts'
import type { DecoderWeights } from '../../builder/architectures/weights.ts'
import { writeModelPackage } from '../../builder/package/package-writer.ts'
import { ReferenceModel } from '../../builder/reference/reference-model.ts'
import { OrtDecoder } from '../../builder/testing/ort-decoder.ts'
import { type ModelConfig, parseModelConfig } from '../../core/model-package.ts'
import type { DotFormRequest } from './dot-form.ts'
import { folderWeightReader, loadEngineModule, nodeEngineThreads } from './node.ts'
import { createEngineSession, type EngineBuild, type EngineSession } from './session.ts'
import { type EngineSimd, hostHasRelaxedSimd } from './simd.ts'

const folder = mkdtempSync(join(tmpdir(), 'ondevice-engine-'))
afterAll(() => rmSync(folder, { recursive: true, force: true }))

const configs: Record<string, ModelConfig> = {
  'llama (untied)': parseModelConfig({
    model_type: 'llama',
    hidden_size: 48,
    intermediate_size: 96,
    num_hidden_layers: 2,
    num_attention_heads: 6,
    num_key_value_heads: 2,
    vocab_size: 302,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    max_position_embeddings: 512,
    tie_word_embeddings: false,
  }),
  'llama (tied, llama3 rope scaling)': parseModelConfig({
    model_type: 'llama',
    hidden_size: 64,
    intermediate_size: 96,
    num_hidden_layers: 1,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    vocab_size: 300,
    rope_theta: 500000,
    rope_scaling: {
      rope_type: 'llama3',
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 64,
    },
    max_position_embeddings: 512,
    tie_word_embeddings: true,
  }),
  'qwen3 (tied, head_dim 32 ≠ hidden / heads)': parseModelConfig({
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
    max_position_embeddings: 512,
    tie_word_embeddings: true,
  }),
}

const tokens = Array.from({ length: 320 }, (_, i) => (i * 37 + 11) % 300)
const packages = new Map<string, { dir: string; weights: DecoderWeights }>()

beforeAll(async () => {
  let seed = 11
  for (const [name, config] of Object.entries(configs)) {
    const weights = randomDecoderWeights(config, seed++)
    const dir = join(folder, name.replace(/\W+/g, '-'))
    await writeModelPackage({
      outDir: dir,
      weights,
      tokenizer: { tokenizerJson: {}, tokenizerConfigJson: {} },
      dtypes: ['fp32', 'q8', 'q4'],
    })
    packages.set(name, { dir, weights })
  }
}, 60_000)

async function open(dir: string, dtype: string): Promise<EngineSession> {
  return createEngineSession({ module: await loadEngineModule(), files: folderWeightReader(dir), dtype })
}

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length)
  let max = 0
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!))
  return max
}

function argmax(values: Float32Array): number {
  let best = 0
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i
  return best
}

describe.each(Object.keys(configs))('%s on the engine', (name) => {
  it('fp32 logits match the TypeScript reference within 1e-4 (prefill 1, 7, 64, 300, then 14 decode steps)', async () => {
    const { dir, weights } = packages.get(name)!
    const expected = new ReferenceModel(weights).forward(tokens.slice(0, 314))
    const session = await open(dir, 'fp32')
    let worst = 0
    for (const length of [1, 7, 64, 300]) {
      await session.reset()
      worst = Math.max(
        worst,
        maxAbsDifference(await session.append(tokens.slice(0, length)), expected[length - 1]!),
      )
      for (let i = length; i < length + 14; i++)
        worst = Math.max(worst, maxAbsDifference(await session.append([tokens[i]!]), expected[i]!))
    }
    console.log(`${name}: engine fp32 vs reference, max abs logit difference ${worst.toExponential(2)}`)
    expect(worst).toBeLessThanOrEqual(1e-4)
    expect(session.info).toMatchObject({
      backend: 'wasm',
      dtype: 'fp32',
      vocabularySize: weights.config.vocabSize,
    })
  })

  it('gives the same logit bits however the prompt is split into appends, and after a rewind', async () => {
    const { dir } = packages.get(name)!
    const whole = await open(dir, 'q4')
    const expected = await whole.append(tokens.slice(0, 100))
    const pieces = await open(dir, 'q4')
    await pieces.append(tokens.slice(0, 1))
    await pieces.append(tokens.slice(1, 66))
    const split = await pieces.append(tokens.slice(66, 100))
    expect(Buffer.from(split.buffer).equals(Buffer.from(expected.buffer))).toBe(true)
    expect(await pieces.rewind(40)).toBe(true)
    expect(pieces.tokens.length).toBe(40)
    const again = await pieces.append(tokens.slice(40, 100))
    expect(Buffer.from(again.buffer).equals(Buffer.from(expected.buffer))).toBe(true)
  })

  it.each(['q8', 'q4'])(
    '%s: as close to the fp32 reference as onnxruntime-node on the same file, same greedy tokens',
    async (dtype) => {
      const { dir, weights } = packages.get(name)!
      const file = dtype === 'q8' ? 'model_quantized.onnx' : 'model_q4.onnx'
      const count = 40
      const expected = new ReferenceModel(weights).forward(tokens.slice(0, count))
      const decoder = await OrtDecoder.create(ort, join(dir, 'onnx', file), {
        kvHeads: weights.config.numKeyValueHeads,
        headDim: weights.config.headDim,
      })
      const fromOrt = await decoder.append(tokens.slice(0, count))
      await decoder.release()
      const session = await open(dir, dtype)
      let engineError = 0
      let ortError = 0
      let engineVsOrt = 0
      let greedyAgreement = 0
      const first = await session.append(tokens.slice(0, 8))
      const rows = [first]
      for (let i = 8; i < count; i++) rows.push(await session.append([tokens[i]!]))
      rows.forEach((logits, j) => {
        const i = j === 0 ? 7 : j + 7
        engineError = Math.max(engineError, maxAbsDifference(logits, expected[i]!))
        ortError = Math.max(ortError, maxAbsDifference(fromOrt[i]!, expected[i]!))
        engineVsOrt = Math.max(engineVsOrt, maxAbsDifference(logits, fromOrt[i]!))
        if (argmax(logits) === argmax(fromOrt[i]!)) greedyAgreement++
      })
      console.log(
        `${name} ${dtype}: max abs error vs fp32 reference: engine ${engineError.toFixed(4)}, onnxruntime-node ${ortError.toFixed(4)}; engine vs onnxruntime-node ${engineVsOrt.toFixed(4)}; greedy agreement ${greedyAgreement}/${rows.length}`,
      )
      // Both quantize the activations on the fly (ORT per tensor for q8, per block of 32 for q4
      // at accuracy level 4; the engine per block of 32): the engine may not be worse than ORT.
      expect(engineError).toBeLessThanOrEqual(Math.max(ortError * 1.25, 0.05))
      expect(engineVsOrt).toBeLessThanOrEqual(dtype === 'q4' ? 0.25 : 0.75)
      expect(greedyAgreement).toBeGreaterThanOrEqual(rows.length - 2)
    },
  )
})

/** Helper threads a host made ahead of their start, recording whether they were started or released. */
async function recordedThreads() {
  const calls: string[] = []
  const threads = {
    count: 2,
    module: await loadEngineModule(),
    start: async () => {
      calls.push('start')
      return undefined
    },
    release: () => calls.push('release'),
  }
  return { calls, threads }
}

describe('bad packages fail before any compute, with what is wrong', () => {
  it('a truncated .onnx_data', async () => {
    const { dir } = packages.get('llama (untied)')!
    const broken = join(folder, 'truncated')
    await writeModelPackage({
      outDir: broken,
      weights: packages.get('llama (untied)')!.weights,
      tokenizer: { tokenizerJson: {}, tokenizerConfigJson: {} },
      dtypes: ['q8'],
    })
    const data = join(broken, 'onnx', 'model_quantized.onnx_data')
    truncateSync(data, statSync(data).size - 100)
    await expect(open(broken, 'q8')).rejects.toMatchObject({
      code: 'model_invalid',
      message: expect.stringMatching(/too short/),
    })
    expect(dir).not.toBe(broken)
  })

  it('a graph that is not ONNX, on helper threads the host made ahead of their start: the load fails and releases them unstarted', async () => {
    const broken = join(folder, 'not-onnx')
    await writeModelPackage({
      outDir: broken,
      weights: packages.get('llama (untied)')!.weights,
      tokenizer: { tokenizerJson: {}, tokenizerConfigJson: {} },
      dtypes: ['q8'],
    })
    writeFileSync(join(broken, 'onnx', 'model_quantized.onnx'), '<!doctype html><p>app</p>')
    // A browser's helpers are Web Workers created at load, before the weights are read; a load
    // that failed before starting them left them waiting for a start that never came.
    const { calls, threads } = await recordedThreads()
    await expect(
      createEngineSession({
        module: await loadEngineModule(),
        files: folderWeightReader(broken),
        dtype: 'q8',
        threads,
      }),
    ).rejects.toMatchObject({ code: 'model_invalid' })
    expect(calls).toEqual(['release'])
  })

  it('a dtype the engine has no kernels for, on helper threads the host made ahead: refused, and the helpers given back', async () => {
    // Refused before the weights were opened; the loader then runs onnxruntime-web instead, and
    // the browser's helpers made for the engine were left waiting for a start that never came.
    const { calls, threads } = await recordedThreads()
    await expect(
      createEngineSession({
        module: await loadEngineModule(),
        files: folderWeightReader(packages.get('llama (untied)')!.dir),
        dtype: 'q4f16',
        threads,
      }),
    ).rejects.toThrow(/no kernels for q4f16/)
    expect(calls).toEqual(['release'])
  })

  it('a config.json that does not match the weights', async () => {
    const { dir } = packages.get('qwen3 (tied, head_dim 32 ≠ hidden / heads)')!
    const config = parseModelConfig({
      ...configs['qwen3 (tied, head_dim 32 ≠ hidden / heads)']!.raw,
      intermediate_size: 96,
    })
    await expect(
      createEngineSession({
        module: await loadEngineModule(),
        files: folderWeightReader(dir),
        dtype: 'fp32',
        config,
      }),
    ).rejects.toMatchObject({
      code: 'model_invalid',
      message: expect.stringMatching(/expected float32\[64, 96\]/),
    })
  })

  it("an external data offset that is negative (Node read from the file's current position at -1, and threw a bare RangeError below)", async () => {
    const broken = join(folder, 'negative-offset')
    await writeModelPackage({
      outDir: broken,
      weights: packages.get('llama (untied)')!.weights,
      tokenizer: { tokenizerJson: {}, tokenizerConfigJson: {} },
      dtypes: ['q8'],
    })
    // An `offset` entry of external_data ("\n\x06offset\x12" + length + digits): its first digit
    // becomes '-', so the message keeps its length.
    const graphPath = join(broken, 'onnx', 'model_quantized.onnx')
    const graph = readFileSync(graphPath)
    const key = Buffer.from('\n\x06offset\x12', 'latin1')
    let at = graph.indexOf(key)
    while (at >= 0 && graph[at + key.length]! < 2) at = graph.indexOf(key, at + 1)
    expect(at).toBeGreaterThan(0)
    graph[at + key.length + 1] = '-'.charCodeAt(0)
    writeFileSync(graphPath, graph)
    await expect(open(broken, 'q8')).rejects.toMatchObject({
      code: 'model_invalid',
      message: expect.stringMatching(/invalid external data location/),
    })
  })

  it('a config.json with fewer layers than the graph (the engine ran only those, silently)', async () => {
    const name = 'qwen3 (tied, head_dim 32 ≠ hidden / heads)'
    const config = parseModelConfig({ ...configs[name]!.raw, num_hidden_layers: 1 })
    await expect(
      createEngineSession({
        module: await loadEngineModule(),
        files: folderWeightReader(packages.get(name)!.dir),
        dtype: 'fp32',
        config,
      }),
    ).rejects.toMatchObject({
      code: 'model_invalid',
      message: expect.stringMatching(/has 2 layers.*num_hidden_layers 1/),
    })
    const qwen35 = join(folder, 'qwen3_5-layers')
    await writeQwen35Fixture({ outDir: qwen35, size: 'tiny', dtypes: ['q4'] })
    const raw = JSON.parse(readFileSync(join(qwen35, 'config.json'), 'utf8')) as {
      num_hidden_layers: number
      layer_types: string[]
    }
    const layers = raw.num_hidden_layers
    raw.num_hidden_layers = layers - 1
    raw.layer_types = raw.layer_types.slice(0, layers - 1)
    await expect(
      createEngineSession({
        module: await loadEngineModule(),
        files: folderWeightReader(qwen35),
        dtype: 'q4',
        config: parseModelConfig(raw),
      }),
    ).rejects.toMatchObject({
      code: 'model_invalid',
      message: expect.stringMatching(new RegExp(`has ${layers} layers.*num_hidden_layers ${layers - 1}`)),
    })
  })

  it("a config.json whose rms_norm_eps is not the graph's (the engine answered otherwise than ONNX Runtime on the same files)", async () => {
    const name = 'qwen3 (tied, head_dim 32 ≠ hidden / heads)'
    const config = parseModelConfig({ ...configs[name]!.raw, rms_norm_eps: 0.5 })
    await expect(
      createEngineSession({
        module: await loadEngineModule(),
        files: folderWeightReader(packages.get(name)!.dir),
        dtype: 'fp32',
        config,
      }),
    ).rejects.toMatchObject({ code: 'unsupported', message: expect.stringMatching(/rms_norm_eps 0\.5/) })
  })

  it("a Qwen3.5 config.json whose rope_theta is not the graph's: the engine rotates by the graph's frequencies, as ONNX Runtime does", async () => {
    const dir = join(folder, 'qwen3_5-theta')
    await writeQwen35Fixture({ outDir: dir, size: 'tiny', dtypes: ['q4'] })
    const raw = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as {
      rope_parameters: { rope_theta: number }
    }
    const logits = async (config?: ModelConfig): Promise<Buffer> => {
      const session = await createEngineSession({
        module: await loadEngineModule(),
        files: folderWeightReader(dir),
        dtype: 'q4',
        ...(config ? { config } : {}),
      })
      const row = await session.append(tokens.slice(0, 12))
      await session.dispose()
      return Buffer.from(row.buffer, row.byteOffset, row.byteLength)
    }
    const edited = parseModelConfig({ ...raw, rope_parameters: { ...raw.rope_parameters, rope_theta: 10 } })
    expect((await logits(edited)).equals(await logits())).toBe(true)
  })

  it('a llama config.json over a graph with QK-norm weights (a Qwen3 graph) is not run without them', async () => {
    const name = 'qwen3 (tied, head_dim 32 ≠ hidden / heads)'
    const config = parseModelConfig({ ...configs[name]!.raw, model_type: 'llama' })
    await expect(
      createEngineSession({
        module: await loadEngineModule(),
        files: folderWeightReader(packages.get(name)!.dir),
        dtype: 'fp32',
        config,
      }),
    ).rejects.toMatchObject({ code: 'unsupported', message: expect.stringMatching(/q_norm/) })
  })

  it('an architecture or dtype the engine does not run is "unsupported" (callers fall back)', async () => {
    const { dir } = packages.get('llama (untied)')!
    await expect(open(dir, 'q4f16')).rejects.toMatchObject({ code: 'unsupported' })
  })

  it('token ids outside the vocabulary and a full context', async () => {
    const { dir } = packages.get('llama (untied)')!
    const session = await createEngineSession({
      module: await loadEngineModule(),
      files: folderWeightReader(dir),
      dtype: 'q8',
      contextLength: 10,
    })
    await expect(session.append([302])).rejects.toMatchObject({ code: 'invalid_argument' })
    await expect(session.append([])).rejects.toMatchObject({ code: 'invalid_argument' })
    await expect(session.append(tokens.slice(0, 11))).rejects.toMatchObject({
      code: 'context_length_exceeded',
    })
    expect(session.tokens).toEqual([])
    // A cap above the model's context is refused, not quietly lowered to it.
    const { max_position_embeddings: maximum } = JSON.parse(
      readFileSync(join(dir, 'config.json'), 'utf8'),
    ) as {
      max_position_embeddings: number
    }
    await expect(
      createEngineSession({
        module: await loadEngineModule(),
        files: folderWeightReader(dir),
        dtype: 'q8',
        contextLength: maximum + 1,
      }),
    ).rejects.toMatchObject({
      param: 'contextLength',
      message: expect.stringContaining(`at most ${maximum}`),
    })
  })
})

// Each run also on the other build of the module: the plain SIMD128 engine.wasm against the
// relaxed-SIMD engine-relaxed.wasm this Node picks by default (src/gemm-q4-relaxed.c).
const builds: readonly EngineSimd[] = hostHasRelaxedSimd() ? ['plain', 'relaxed'] : ['plain']

describe('threads and module builds', () => {
  it.each(['fp32', 'q8', 'q4'])(
    '%s: identical logit bytes on 1, 2 and 4 threads (rows and heads split, each output reduced in one order), plain and relaxed-SIMD builds',
    async (dtype) => {
      const { dir } = packages.get('qwen3 (tied, head_dim 32 ≠ hidden / heads)')!
      const run = async (count: number, simd?: EngineSimd): Promise<Buffer> => {
        const session = await createEngineSession({
          module: await loadEngineModule(simd),
          files: folderWeightReader(dir),
          dtype,
          ...(count > 1 ? { threads: await nodeEngineThreads(count, simd) } : {}),
        })
        try {
          const rows = [await session.append(tokens.slice(0, 70))]
          for (let i = 70; i < 76; i++) rows.push(await session.append([tokens[i]!]))
          return Buffer.concat(rows.map((row) => Buffer.from(row.buffer)))
        } finally {
          await session.dispose()
        }
      }
      const one = await run(1, 'plain')
      for (const simd of builds) expect((await run(1, simd)).equals(one)).toBe(true)
      expect((await run(2)).equals(one)).toBe(true)
      expect((await run(4)).equals(one)).toBe(true)
      expect((await run(2, 'plain')).equals(one)).toBe(true)
    },
  )

  it("q4, relaxed build: the 4-bit products' pairs and dot-add forms give identical logit bytes on 1 and 2 threads, and the session reports which ran", async () => {
    const { dir } = packages.get('qwen3 (tied, head_dim 32 ≠ hidden / heads)')!
    const run = async (count: number, dot: DotFormRequest): Promise<[Buffer, EngineBuild]> => {
      const session = await createEngineSession({
        module: await loadEngineModule('relaxed'),
        files: folderWeightReader(dir),
        dtype: 'q4',
        dot,
        ...(count > 1 ? { threads: await nodeEngineThreads(count, 'relaxed') } : {}),
      })
      try {
        // 70 tokens: one prefill pass whose last quad is partial (2 tokens), then decode steps.
        const rows = [await session.append(tokens.slice(0, 70))]
        for (let i = 70; i < 74; i++) rows.push(await session.append([tokens[i]!]))
        return [Buffer.concat(rows.map((row) => Buffer.from(row.buffer))), session.build]
      } finally {
        await session.dispose()
      }
    }
    const plainSession = await createEngineSession({
      module: await loadEngineModule('plain'),
      files: folderWeightReader(dir),
      dtype: 'q4',
    })
    const plain = Buffer.from((await plainSession.append(tokens.slice(0, 70))).buffer)
    expect(plainSession.build).toEqual({ simd: 'plain' })
    await plainSession.dispose()
    const [pairs, pairsBuild] = await run(1, 'pairs')
    expect(pairsBuild).toEqual({
      simd: 'relaxed',
      dot: { prefill: 'pairs', decode: 'pairs', chosenBy: 'requested' },
    })
    expect(pairs.subarray(0, plain.byteLength).equals(plain)).toBe(true)
    for (const [count, dot] of [
      [1, 'dot-add'],
      [2, 'dot-add'],
      [2, 'pairs'],
      [1, 'auto'],
    ] as const) {
      const [bytes, build] = await run(count, dot)
      expect(bytes.equals(pairs), `${dot} on ${count} threads`).toBe(true)
      if (dot === 'auto') {
        expect(build.dot?.chosenBy).toBe('measured')
        expect(['pairs', 'dot-add']).toContain(build.dot?.prefill)
        expect(['pairs', 'dot-add']).toContain(build.dot?.decode)
      } else expect(build.dot).toEqual({ prefill: dot, decode: dot, chosenBy: 'requested' })
    }
  }, 120_000)

  it('Qwen3.5 q4: identical logit bytes on 1 and 3 threads, plain and relaxed-SIMD builds', async () => {
    const dir = join(folder, 'qwen3_5-tiny')
    await writeQwen35Fixture({ outDir: dir, size: 'tiny', dtypes: ['q4'] })
    const run = async (count: number, simd?: EngineSimd): Promise<Buffer> => {
      const session = await createEngineSession({
        module: await loadEngineModule(simd),
        files: folderWeightReader(dir),
        dtype: 'q4',
        ...(count > 1 ? { threads: await nodeEngineThreads(count, simd) } : {}),
      })
      try {
        const rows = [await session.append(tokens.slice(0, 40))]
        for (let i = 40; i < 44; i++) rows.push(await session.append([tokens[i]!]))
        return Buffer.concat(rows.map((row) => Buffer.from(row.buffer)))
      } finally {
        await session.dispose()
      }
    }
    const one = await run(1, 'plain')
    for (const simd of builds) {
      expect((await run(1, simd)).equals(one)).toBe(true)
      expect((await run(3, simd)).equals(one)).toBe(true)
    }
  }, 120_000)
})
