// loadModel on Node: weight format per backend, caller override, and the bad inputs a user
// will hit (missing path, a folder that is not a package, weights the package lacks, ONNX graphs
// that don't match config.json), each a clear error. Plus the capability probe and the probe run.
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeQwen35Package } from '../builder/architectures/qwen3-5-package.ts'
import { randomQwen35Weights, tinyQwen35Config } from '../builder/architectures/qwen3-5-weights.ts'
import { qwen3TokenizerFiles } from '../test/support/qwen3-tokenizer.ts'
import { inspectPackage, loadModel, measureDecodeSpeed, probeCapabilities } from './index.ts'
import { createNodeStore } from './store/node-store.ts'

const config = tinyQwen35Config(300)
let folder: string
let packageDir: string
const store = () => createNodeStore({ cacheDir: join(folder, 'cache'), onWarning: () => undefined })

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-load-model-'))
  packageDir = join(folder, 'pkg')
  const tokenizer = qwen3TokenizerFiles()
  await writeQwen35Package({
    outDir: packageDir,
    config,
    weights: randomQwen35Weights(config, 5),
    dtypes: ['fp32', 'q4'],
    tokenizer: {
      tokenizerJson: tokenizer.tokenizerJson as string,
      tokenizerConfigJson: tokenizer.tokenizerConfigJson as string,
    },
    name: 'tiny-qwen3.5',
  })
})
afterAll(async () => {
  await rm(folder, { recursive: true, force: true })
})

describe('loadModel', () => {
  it('picks the fastest weight format per backend, honours an override, and reports it', async () => {
    const native = await loadModel({ model: packageDir, backend: 'native', store: store() })
    expect([native.dtype, native.session.info.dtype, native.session.info.modelId]).toEqual([
      'q4',
      'q4',
      'tiny-qwen3.5',
    ])
    const speed = await measureDecodeSpeed(native, { tokens: 4 })
    expect(speed.tokensPerSecond).toBeGreaterThan(0)
    expect(native.session.tokens).toEqual([])
    await native.dispose()
    // 'wasm' is ondevice's engine, which runs Qwen3.5 and takes q4 first.
    const wasm = await loadModel({ model: packageDir, backend: 'wasm', store: store() })
    expect([wasm.dtype, wasm.backend]).toEqual(['q4', 'wasm'])
    expect(wasm.backendSetup).toMatchObject({ engine: 'ondevice-wasm', host: 'node', threads: 1 })
    await wasm.dispose()
    // onnxruntime-web's WASM prefers dynamic int8; this package has none, so fp32 (never the
    // slow-on-WASM q4 first).
    const ortWasm = await loadModel({ model: packageDir, backend: 'ort-wasm', store: store() })
    expect(ortWasm.dtype).toBe('fp32')
    expect(ortWasm.backendSetup).toMatchObject({ host: 'node', threads: expect.any(Number) })
    await ortWasm.dispose()
    const forced = await loadModel({ model: packageDir, backend: 'native', dtype: 'fp32', store: store() })
    expect(forced.dtype).toBe('fp32')
    await forced.dispose()
    // numThreads reaches onnxruntime-node too (its intra-op threads), not only WASM.
    const twoThreads = await loadModel({
      model: packageDir,
      backend: 'native',
      numThreads: 2,
      store: store(),
    })
    expect(twoThreads.backendSetup).toMatchObject({ runtime: 'onnxruntime-node', threads: 2 })
    expect((await twoThreads.session.append([1, 2, 3])).length).toBeGreaterThan(0)
    await twoThreads.dispose()
  })

  it('gives clear errors for bad input', async () => {
    await expect(
      loadModel({ model: join(folder, 'nowhere'), backend: 'native', store: store() }),
    ).rejects.toMatchObject({ code: 'model_not_found', message: expect.stringMatching(/does not exist/) })
    const notPackage = join(folder, 'not-a-package')
    await mkdir(notPackage, { recursive: true })
    await writeFile(join(notPackage, 'notes.txt'), 'hello')
    await expect(loadModel({ model: notPackage, backend: 'native', store: store() })).rejects.toMatchObject({
      code: 'model_invalid',
      message: expect.stringMatching(/not a model package/),
    })
    await expect(
      loadModel({ model: packageDir, backend: 'native', dtype: 'q8', store: store() }),
    ).rejects.toMatchObject({
      code: 'model_not_found',
      message: expect.stringMatching(/no q8 weights.*Available: fp32, q4/),
    })
    await expect(
      loadModel({ model: packageDir, backend: 'cuda' as never, store: store() }),
    ).rejects.toMatchObject({ code: 'invalid_argument', param: 'backend' })
    await expect(
      loadModel({ model: packageDir, backend: 'native', dtype: 'int3', store: store() }),
    ).rejects.toMatchObject({ code: 'invalid_argument', param: 'dtype' })
    await expect(loadModel({ model: '', store: store() })).rejects.toMatchObject({
      code: 'invalid_argument',
      param: 'model',
    })
    for (const numThreads of [0, 2.5, 65])
      await expect(
        loadModel({ model: packageDir, backend: 'native', numThreads, store: store() }),
      ).rejects.toMatchObject({ code: 'invalid_argument', param: 'numThreads' })
    // A string is named as one: 'got 2' for '2' read as a value in range.
    await expect(
      loadModel({ model: packageDir, numThreads: '2' as unknown as number, store: store() }),
    ).rejects.toMatchObject({ message: expect.stringContaining('got "2"') })
    await expect(
      loadModel({ model: packageDir, sessions: '2' as unknown as number, store: store() }),
    ).rejects.toMatchObject({ param: 'sessions', message: expect.stringContaining('got "2"') })
    // A misspelt name was dropped without a word (numthreads left the default thread count,
    // contextLenght the model's whole context), where createClient refuses its own.
    for (const name of ['numthreads', 'contextLenght', 'cacheDir'])
      await expect(
        loadModel({ model: packageDir, backend: 'native', store: store(), [name]: 2 } as never),
      ).rejects.toMatchObject({
        code: 'invalid_argument',
        param: name,
        message: expect.stringContaining('numThreads'),
      })
  })

  it('refuses a package whose ONNX inputs do not match its config.json', async () => {
    const mismatched = join(folder, 'mismatched')
    await cp(packageDir, mismatched, { recursive: true })
    await rm(join(mismatched, 'manifest.json'))
    const json = JSON.parse(await readFile(join(mismatched, 'config.json'), 'utf8')) as Record<
      string,
      unknown
    >
    // Full attention on layer 0 instead of 3: the graph carries its KV cache on layer 3.
    json.layer_types = ['full_attention', 'linear_attention', 'linear_attention', 'linear_attention']
    await writeFile(join(mismatched, 'config.json'), JSON.stringify(json))
    await expect(
      loadModel({ model: mismatched, backend: 'native', dtype: 'fp32', store: store() }),
    ).rejects.toMatchObject({
      code: 'model_invalid',
      message: expect.stringMatching(/ONNX inputs do not match config\.json.*layers \[0\].*\[3\]/),
    })
  })

  it('inspects a package without loading it', async () => {
    const summary = await inspectPackage({ model: packageDir, backend: 'native', store: store() })
    expect(summary).toMatchObject({
      dtype: 'q4',
      cached: true,
      downloadBytes: 0,
      requiresShaderF16: false,
      name: 'tiny-qwen3.5 q4',
    })
    expect(summary.files).toEqual(
      expect.arrayContaining([
        'onnx/decoder_model_merged_q4.onnx',
        'onnx/decoder_model_merged_q4.onnx_data',
        'tokenizer.json',
      ]),
    )
    expect(summary.estimatedMemoryBytes).toBeGreaterThan(0)
  })
})

describe('probeCapabilities on Node', () => {
  it('reports cores, memory, WASM, onnxruntime-node and no WebGPU, with a reason', async () => {
    const capabilities = await probeCapabilities({ estimate: () => store().estimate() })
    expect(capabilities).toMatchObject({
      host: 'node',
      wasm: true,
      native: true,
      online: true,
      webgpu: { available: false, reason: expect.any(String) },
    })
    expect(capabilities.cores).toBeGreaterThan(0)
    expect(capabilities.deviceMemoryBytes).toBeGreaterThan(0)
    expect(capabilities.storage?.quotaBytes).toBeGreaterThan(0)
  })
})
