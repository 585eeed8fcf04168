// Qwen3.5 through the real command line: `ondevice fixture --arch qwen3_5` and
// `ondevice convert --from safetensors` on a checkpoint written here with HF names (F32, the
// multimodal `model.language_model.` prefix), each followed by `ondevice logits`, which runs the
// project's runtime (client-runtime ORT session): its logits must be the reference's.

import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { qwen35ConfigJson } from '../architectures/qwen3-5-config.ts'
import { qwen35FixtureConfig } from '../architectures/qwen3-5-fixture.ts'
import { createQwen35State, type Qwen35Model, qwen35Forward } from '../architectures/qwen3-5-reference.ts'
import { randomQwen35Weights } from '../architectures/qwen3-5-weights.ts'
import { qwen3TokenizerFiles } from '../fixtures/qwen3-tokenizer.ts'
import { writeSafetensors } from './safetensors.ts'

const main = fileURLToPath(new URL('../../cli/main.ts', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'ondevice-qwen3-5-cli-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

function ondevice(args: string[]) {
  const result = spawnSync(process.execPath, [main, ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, ONDEVICE_CACHE_DIR: join(root, 'cache') },
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

const ids = [151644, 872, 198, 9707, 0, 11, 1246, 30, 151645]

function expectReferenceLogits(packageDir: string, model: Qwen35Model): void {
  const printed = ondevice([
    'logits',
    '--model',
    packageDir,
    '--ids',
    ids.join(','),
    '--dtype',
    'fp32',
    '--json',
  ])
  expect(printed.code, printed.stderr).toBe(0)
  const result = JSON.parse(printed.stdout) as { logits: number[]; vocabularySize: number }
  const expected = qwen35Forward(model, ids, createQwen35State(model.config), {
    logits: 'last',
  })[0] as Float32Array
  expect(result.vocabularySize).toBe(expected.length)
  let worst = 0
  for (let i = 0; i < expected.length; i++)
    worst = Math.max(worst, Math.abs((result.logits[i] as number) - (expected[i] as number)))
  expect(worst).toBeLessThan(1e-4)
}

describe('ondevice with Qwen3.5', () => {
  it('fixture --arch qwen3_5 → logits gives the reference logits', () => {
    const out = join(root, 'fixture')
    const written = ondevice(['fixture', '--arch', 'qwen3_5', '--out', out, '--seed', '4', '--dtype', 'fp32'])
    expect(written.code, written.stderr).toBe(0)
    const config = qwen35FixtureConfig('tiny')
    expectReferenceLogits(out, { config, weights: randomQwen35Weights(config, 4) })
  })

  it('convert --from safetensors (HF names, F32) → logits gives the reference logits', async () => {
    const config = { ...qwen35FixtureConfig('tiny'), tieWordEmbeddings: false }
    const weights = randomQwen35Weights(config, 5)
    const checkpoint = join(root, 'checkpoint')
    mkdirSync(checkpoint, { recursive: true })
    writeSafetensors(
      join(checkpoint, 'model.safetensors'),
      [...weights].map(([name, tensor]) => ({
        name: name === 'lm_head.weight' ? name : name.replace(/^model\./, 'model.language_model.'),
        dtype: 'F32' as const,
        shape: tensor.shape,
        data: new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength),
      })),
    )
    const { architectures: _, ...textConfig } = qwen35ConfigJson(config)
    writeFileSync(
      join(checkpoint, 'config.json'),
      JSON.stringify({
        architectures: ['Qwen3_5ForConditionalGeneration'],
        model_type: 'qwen3_5',
        text_config: textConfig,
      }),
    )
    const tokenizer = qwen3TokenizerFiles()
    writeFileSync(join(checkpoint, 'tokenizer.json'), tokenizer.tokenizerJson)
    writeFileSync(join(checkpoint, 'tokenizer_config.json'), tokenizer.tokenizerConfigJson)
    const out = join(root, 'converted')
    const converted = ondevice([
      'convert',
      '--from',
      'safetensors',
      '--in',
      checkpoint,
      '--out',
      out,
      '--dtype',
      'fp32',
    ])
    expect(converted.code, converted.stderr).toBe(0)
    expectReferenceLogits(out, { config, weights })
  })
})
