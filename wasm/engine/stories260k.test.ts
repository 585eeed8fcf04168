// stories260K (a real trained tiny Llama, ../shared/models/stories260K) on the engine through
// core's generate(): greedy decoding from BOS must give llama2.c's golden text in fp32, and the
// same greedy tokens as onnxruntime-node on the q8 file.
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { convertLlama2c } from '../../builder/importers/convert-llama2c.ts'
import { argmax, OrtDecoder } from '../../builder/testing/ort-decoder.ts'
import { generateText } from '../../core/generate.ts'
import { Tokenizer } from '../../core/tokenizer.ts'
import { folderWeightReader, loadEngineModule } from './node.ts'
import { createEngineSession } from './session.ts'

const modelFolder = join(import.meta.dirname, '../../../shared/models/stories260K')
const present = existsSync(join(modelFolder, 'stories260K.bin'))
if (!present)
  console.warn(
    `stories260K engine tests skipped: ${modelFolder} is absent (only this workplace has ../shared).`,
  )

const golden =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high'

let folder: string
let packageDir: string

describe.skipIf(!present)('stories260K on the engine', () => {
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'ondevice-engine-stories-'))
    packageDir = join(folder, 'stories260K')
    await convertLlama2c({
      checkpointPath: join(modelFolder, 'stories260K.bin'),
      tokenizerPath: join(modelFolder, 'tok512.bin'),
      outDir: packageDir,
      dtypes: ['fp32', 'q8'],
    })
  })
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true })
  })

  const tokenizer = () =>
    Tokenizer.fromFiles({
      tokenizerJson: readFileSync(join(packageDir, 'tokenizer.json'), 'utf8'),
      configJson: readFileSync(join(packageDir, 'config.json'), 'utf8'),
      tokenizerConfigJson: readFileSync(join(packageDir, 'tokenizer_config.json'), 'utf8'),
      generationConfigJson: readFileSync(join(packageDir, 'generation_config.json'), 'utf8'),
    })

  it('fp32: core generate() reproduces the golden text from BOS', async () => {
    const session = await createEngineSession({
      module: await loadEngineModule(),
      files: folderWeightReader(packageDir),
      dtype: 'fp32',
      modelId: 'stories260K',
    })
    const result = await generateText(session, tokenizer(), {
      promptTokenIds: [1],
      maxTokens: 60,
      sampling: { temperature: 0 },
    })
    expect(result.text.startsWith(golden), result.text).toBe(true)
    expect(result.usage).toMatchObject({
      backend: 'wasm',
      dtype: 'fp32',
      promptTokens: 1,
      completionTokens: 60,
    })
  })

  it('q8: the same 60 greedy tokens as onnxruntime-node on the same file', async () => {
    const session = await createEngineSession({
      module: await loadEngineModule(),
      files: folderWeightReader(packageDir),
      dtype: 'q8',
    })
    const decoder = await OrtDecoder.create(ort, join(packageDir, 'onnx', 'model_quantized.onnx'), {
      kvHeads: 4,
      headDim: 8,
    })
    const engineTokens: number[] = []
    const ortTokens: number[] = []
    let engineLogits = await session.append([1])
    let [ortLogits] = await decoder.append([1])
    for (let i = 0; i < 60; i++) {
      engineTokens.push(argmax(engineLogits))
      ortTokens.push(argmax(ortLogits!))
      engineLogits = await session.append([engineTokens.at(-1)!])
      ;[ortLogits] = await decoder.append([ortTokens.at(-1)!])
    }
    await decoder.release()
    expect(engineTokens).toEqual(ortTokens)
    expect(tokenizer().decode(engineTokens).startsWith(golden.slice(0, 40))).toBe(true)
  })
})
