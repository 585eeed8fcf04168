// stories260K (a real trained tiny Llama, ../shared/models/stories260K) converted by the builder's
// llama2.c importer, run through the full runtime (loadModel + core generate) and through the
// CLI, on both Node backends: greedy decoding from BOS must reproduce llama2.c's golden text.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { convertLlama2c } from '../../builder/importers/convert-llama2c.ts'
import { type Backend, loadModel } from '../../client-runtime/index.ts'
import { createNodeStore } from '../../client-runtime/store/node-store.ts'
import { generateText } from '../../core/generate.ts'

const modelFolder = join(import.meta.dirname, '../../../shared/models/stories260K')
const present = existsSync(join(modelFolder, 'stories260K.bin'))
if (!present)
  console.warn(`stories260K tests skipped: ${modelFolder} is absent (only this workplace has ../shared).`)

const golden =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high'

let folder: string
let packageDir: string

describe.skipIf(!present)('stories260K golden text', () => {
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'ondevice-stories-'))
    packageDir = join(folder, 'stories260K')
    await convertLlama2c({
      checkpointPath: join(modelFolder, 'stories260K.bin'),
      tokenizerPath: join(modelFolder, 'tok512.bin'),
      outDir: packageDir,
      dtypes: ['fp32'],
    })
  })
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true })
  })

  it.each<Backend>(['native', 'wasm'])(
    'loadModel + generate on %s reproduces it from BOS',
    async (backend) => {
      const model = await loadModel({
        model: packageDir,
        backend,
        store: createNodeStore({ cacheDir: join(folder, 'cache') }),
      })
      try {
        expect(model.dtype).toBe('fp32')
        const promptTokenIds = model.tokenizer.encode('')
        expect(promptTokenIds).toEqual([1])
        const result = await generateText(model.session, model.tokenizer, {
          promptTokenIds,
          maxTokens: 60,
          sampling: { temperature: 0 },
        })
        expect(result.text.startsWith(golden), result.text).toBe(true)
        expect(result.usage).toMatchObject({ backend, dtype: 'fp32', promptTokens: 1, completionTokens: 60 })
      } finally {
        await model.dispose()
      }
    },
  )

  it('the CLI reproduces it (--json on wasm, streamed text on native)', async () => {
    const run = promisify(execFile)
    const cli = join(import.meta.dirname, '../../cli/main.ts')
    const env = { ...process.env, ONDEVICE_CACHE_DIR: join(folder, 'cli-cache') }
    const common = [
      'generate',
      '--model',
      packageDir,
      '--raw',
      '--prompt',
      '',
      '--max-tokens',
      '60',
      '--temperature',
      '0',
    ]
    const json = await run(process.execPath, [cli, ...common, '--backend', 'wasm', '--json'], { env })
    const answer = JSON.parse(json.stdout) as {
      text: string
      token_ids: number[]
      usage: Record<string, unknown>
    }
    expect(answer.text.startsWith(golden), answer.text).toBe(true)
    expect(answer.token_ids).toHaveLength(60)
    expect(Object.keys(answer.usage)).toEqual(
      expect.arrayContaining([
        'prompt_tokens',
        'completion_tokens',
        'time_to_first_token_ms',
        'prefill_tokens_per_second',
        'decode_tokens_per_second',
        'backend',
      ]),
    )
    expect(answer.usage).toMatchObject({
      backend: 'wasm',
      dtype: 'fp32',
      prompt_tokens: 1,
      completion_tokens: 60,
    })
    const streamed = await run(process.execPath, [cli, ...common, '--backend', 'native'], { env })
    expect(streamed.stdout.startsWith(golden), streamed.stdout).toBe(true)
  })
})
