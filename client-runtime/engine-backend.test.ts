// loadModel's 'wasm' backend: ondevice's WebAssembly engine where it covers the package,
// onnxruntime-web ('ort-wasm') where it does not (with a note in the load result), and 'ort-wasm'
// on request; usage reports the backend that ran.
import { cpSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { generateText } from '../core/generate.ts'
import { loadModel } from './index.ts'
import { createNodeStore } from './store/node-store.ts'

let folder: string
let packageDir: string
const store = () => createNodeStore({ cacheDir: join(folder, 'cache'), onWarning: () => undefined })

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-engine-backend-'))
  packageDir = join(folder, 'llama')
  await writeFixture({ arch: 'llama', size: 'tiny', outDir: packageDir, dtype: ['q4', 'q8'] })
}, 120_000)
afterAll(async () => {
  await rm(folder, { recursive: true, force: true })
})

const request = { promptTokenIds: [1, 2, 3, 4, 5], maxTokens: 8, sampling: { temperature: 0 } }

describe("backend 'wasm'", () => {
  it('runs the engine on q4 and reports it; ort-wasm runs onnxruntime-web on q8 ', async () => {
    const engine = await loadModel({ model: packageDir, backend: 'wasm', store: store() })
    const ortWeb = await loadModel({ model: packageDir, backend: 'ort-wasm', store: store(), numThreads: 1 })
    try {
      expect([engine.backend, engine.dtype, engine.session.info.backend]).toEqual(['wasm', 'q4', 'wasm'])
      expect(engine.backendSetup).toMatchObject({ engine: 'ondevice-wasm', host: 'node', threads: 1 })
      // The build, and on the relaxed one the 4-bit products' forms its probe chose (wasm/engine/dot-form.ts).
      if (process.env.ONDEVICE_ENGINE_SIMD !== 'plain')
        expect(engine.backendSetup).toMatchObject({
          simd: 'relaxed',
          dot: { prefill: expect.any(String), decode: expect.any(String), chosenBy: 'measured' },
        })
      expect(engine.warnings).toEqual([])
      expect([ortWeb.backend, ortWeb.dtype, ortWeb.session.info.backend]).toEqual([
        'ort-wasm',
        'q8',
        'ort-wasm',
      ])
      const fromEngine = await generateText(engine.session, engine.tokenizer, request)
      expect(fromEngine.usage).toMatchObject({ backend: 'wasm', dtype: 'q4', completionTokens: 8 })
      // numThreads: helper threads split the rows; the answer is the same, token for token.
      const threaded = await loadModel({ model: packageDir, backend: 'wasm', store: store(), numThreads: 2 })
      expect(threaded.backendSetup).toMatchObject({ engine: 'ondevice-wasm', threads: 2 })
      expect((await generateText(threaded.session, threaded.tokenizer, request)).tokenIds).toEqual(
        fromEngine.tokenIds,
      )
      await threaded.dispose()
      const fromOrt = await generateText(ortWeb.session, ortWeb.tokenizer, request)
      expect(fromOrt.usage).toMatchObject({ backend: 'ort-wasm', dtype: 'q8' })
      // The caller's dtype wins on the engine too.
      const engineQ8 = await loadModel({ model: packageDir, backend: 'wasm', dtype: 'q8', store: store() })
      const q8 = await generateText(engineQ8.session, engineQ8.tokenizer, request)
      expect(q8.usage).toMatchObject({ backend: 'wasm', dtype: 'q8', completionTokens: 8 })
      await engineQ8.dispose()
    } finally {
      await engine.dispose()
      await ortWeb.dispose()
    }
  })

  it('runs an fp16 package (the tied LM head reads the fp16 table through a Cast): the greedy tokens of onnxruntime-node', async () => {
    const fp16 = join(folder, 'qwen3-fp16')
    await writeFixture({ arch: 'qwen3', size: 'tiny', outDir: fp16, dtype: 'fp16' })
    expect(JSON.parse(readFileSync(join(fp16, 'config.json'), 'utf8')).tie_word_embeddings).toBe(true)
    const engine = await loadModel({ model: fp16, backend: 'wasm', dtype: 'fp16', store: store() })
    const native = await loadModel({ model: fp16, backend: 'native', dtype: 'fp16', store: store() })
    try {
      expect([engine.backend, engine.session.info.backend, engine.warnings]).toEqual(['wasm', 'wasm', []])
      const long = { ...request, maxTokens: 16 }
      const fromEngine = await generateText(engine.session, engine.tokenizer, long)
      expect(fromEngine.usage).toMatchObject({ backend: 'wasm', dtype: 'fp16', completionTokens: 16 })
      expect(fromEngine.tokenIds).toEqual(
        (await generateText(native.session, native.tokenizer, long)).tokenIds,
      )
    } finally {
      await engine.dispose()
      await native.dispose()
    }
  })

  it('falls back to onnxruntime-web, with a note, for a graph the engine does not know', async () => {
    // The same model with one weight renamed (equal length, so the protobuf stays valid): ONNX
    // Runtime runs it; the engine, which reads the builder's names, does not cover it.
    const renamed = join(folder, 'renamed')
    cpSync(packageDir, renamed, { recursive: true })
    const onnx = join(renamed, 'onnx', 'model_quantized.onnx')
    const bytes = readFileSync(onnx)
      .toString('latin1')
      .replaceAll('post_attention_layernorm', 'post_attention_layerNORM')
    writeFileSync(onnx, Buffer.from(bytes, 'latin1'))
    rmSync(join(renamed, 'manifest.json'))
    const loaded = await loadModel({
      model: renamed,
      backend: 'wasm',
      dtype: 'q8',
      store: store(),
      numThreads: 1,
    })
    try {
      expect([loaded.backend, loaded.dtype, loaded.session.info.backend]).toEqual([
        'ort-wasm',
        'q8',
        'ort-wasm',
      ])
      expect(loaded.warnings.join('\n')).toMatch(
        /WebAssembly engine does not cover this package.*post_attention_layernorm/,
      )
      const result = await generateText(loaded.session, loaded.tokenizer, request)
      expect(result.usage.backend).toBe('ort-wasm')
    } finally {
      await loaded.dispose()
    }
  })

  it('refuses a package too large for 32-bit WebAssembly memory with the sizes, instead of handing it to onnxruntime-web', async () => {
    // onnxruntime-web has the same 4 GiB (and a 2 GiB file limit): falling back to it ended in its
    // own message ('File size (5137244160) is greater than 2 GiB' for a 1B fp32 package), and the
    // engine's reason and fix were lost. The weights here are one initializer of 4.5 GiB in a sparse
    // file: the check reads sizes from the graph, never the bytes.
    const large = join(folder, 'too-large')
    cpSync(packageDir, large, { recursive: true })
    rmSync(join(large, 'manifest.json'))
    mkdirSync(join(large, 'onnx'), { recursive: true })
    const elements = 1_207_959_552 // 4.5 GiB of float32
    writeFileSync(join(large, 'onnx', 'model.onnx'), oneExternalInitializer('model.onnx_data', elements))
    writeFileSync(join(large, 'onnx', 'model.onnx_data'), '')
    truncateSync(join(large, 'onnx', 'model.onnx_data'), elements * 4)
    await expect(
      loadModel({ model: large, backend: 'wasm', dtype: 'fp32', store: store() }),
    ).rejects.toMatchObject({
      code: 'unsupported',
      message: expect.stringMatching(
        /needs 4\.\d+ GiB of WebAssembly memory.*more than wasm32's 4 GiB: use a smaller dtype/,
      ),
    })
  })
})

/** A ModelProto whose graph holds one float32 initializer kept in an external file. */
function oneExternalInitializer(file: string, elements: number): Uint8Array {
  const varint = (value: number): number[] => {
    const out: number[] = []
    for (let rest = value; ; rest = Math.floor(rest / 128)) {
      if (rest < 128) return [...out, rest]
      out.push((rest % 128) | 128)
    }
  }
  const bytes = (field: number, payload: readonly number[]) => [
    field * 8 + 2,
    ...varint(payload.length),
    ...payload,
  ]
  const text = (field: number, value: string) => bytes(field, [...Buffer.from(value)])
  const entry = (key: string, value: string) => bytes(13, [...text(1, key), ...text(2, value)])
  const tensor = [
    8,
    ...varint(elements),
    2 * 8,
    1, // float32
    ...text(8, 'model.embed_tokens.weight'),
    ...entry('location', file),
    ...entry('offset', '0'),
    ...entry('length', String(elements * 4)),
    14 * 8,
    1, // external
  ]
  return Uint8Array.from(bytes(7, bytes(5, tensor)))
}
