// The one dtype chooser: the backend's fastest dtype the package holds, from manifest.json's list
// or, without one, from which graph files exist; a package with nothing the backend runs fails
// with model_invalid naming what it found.
import { describe, expect, it } from 'vitest'
import { availableDtypes, chooseDtype } from './dtype.ts'

const filesExist =
  (files: readonly string[]) =>
  async (path: string): Promise<boolean> =>
    files.includes(path)

describe('chooseDtype', () => {
  it('takes the fastest listed dtype per backend', async () => {
    const listed = ['fp32', 'q8', 'q4']
    const choose = (backend: 'wasm' | 'ort-wasm' | 'native' | 'webgpu') =>
      chooseDtype({ backend, modelType: 'qwen3', listed, source: 'pkg' })
    // Our WebAssembly engine reads 4-bit fastest; onnxruntime-web's WASM int8 (docs/builder.md).
    expect([
      await choose('wasm'),
      await choose('ort-wasm'),
      await choose('native'),
      await choose('webgpu'),
    ]).toEqual(['q4', 'q8', 'q4', 'q4'])
    expect(
      await chooseDtype({
        backend: 'webgpu',
        modelType: 'qwen3',
        listed: ['q4', 'q4f16'],
        shaderF16: true,
        source: 'pkg',
      }),
    ).toBe('q4f16')
  })

  it('without a list, looks for every graph file of a dtype (Qwen3.5: embedding and decoder)', async () => {
    // A q8 decoder without its q8 embedding graph is not a q8 package.
    const exists = filesExist([
      'onnx/decoder_model_merged_quantized.onnx',
      'onnx/embed_tokens.onnx',
      'onnx/decoder_model_merged.onnx',
    ])
    expect(await chooseDtype({ backend: 'wasm', modelType: 'qwen3_5', exists, source: 'pkg' })).toBe('fp32')
    expect(await availableDtypes({ modelType: 'qwen3_5', exists })).toEqual(['fp32'])
    // An empty list says nothing: the files decide.
    expect(
      await chooseDtype({
        backend: 'wasm',
        modelType: 'llama',
        listed: [],
        exists: filesExist(['onnx/model_q4.onnx']),
        source: 'pkg',
      }),
    ).toBe('q4')
  })

  it('a package without weights the backend runs: model_invalid, naming what it found', async () => {
    const failure = chooseDtype({
      backend: 'webgpu',
      modelType: 'qwen3',
      listed: ['bnb4'],
      source: '/models/x/',
    })
    await expect(failure).rejects.toMatchObject({ code: 'model_invalid' })
    await expect(failure).rejects.toThrow(
      /\/models\/x\/ carries no ONNX weights webgpu can run \(found: bnb4; expected e\.g\. onnx\/model_q4\.onnx\)/,
    )
  })

  it('a package that can say nothing about its files gets the backend fastest', async () => {
    expect(await chooseDtype({ backend: 'ort-wasm', modelType: 'qwen3', source: 'pkg' })).toBe('q8')
    // Without the model type the graph files cannot be named: only a list counts.
    expect(await chooseDtype({ backend: 'ort-wasm', exists: filesExist([]), source: 'pkg' })).toBe('q8')
    expect(await chooseDtype({ backend: 'native', listed: ['q8', 'fp32'], source: 'pkg' })).toBe('q8')
    await expect(chooseDtype({ backend: 'webgpu', listed: ['q4f16'], source: 'pkg' })).rejects.toThrow(
      'pkg carries no ONNX weights webgpu can run (found: q4f16).',
    )
  })
})
