import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { randomDecoderWeights } from '../../builder/architectures/random-weights.ts'
import { fixtureConfig } from '../../builder/fixtures/fixture.ts'
import { ReferenceModel } from '../../builder/reference/reference-model.ts'
import { Tokenizer } from '../../core/tokenizer.ts'

// The builder commands through the real command line (a child process per command).
const main = fileURLToPath(new URL('../main.ts', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'ondevice-cli-builder-'))
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

const stories = join(import.meta.dirname, '../../../shared/models/stories260K')

describe('ondevice fixture / inspect / logits / convert', () => {
  it('fixture → inspect → logits, and the logits match the TypeScript reference', () => {
    const out = join(root, 'llama-tiny')
    const written = ondevice(['fixture', '--arch', 'llama', '--out', out, '--seed', '9', '--dtype', 'fp32'])
    expect(written.code, written.stderr).toBe(0)
    expect(written.stdout).toMatch(/llama fixture, dtypes fp32/)

    const inspected = ondevice(['inspect', out, '--json'])
    expect(inspected.code, inspected.stderr).toBe(0)
    const report = JSON.parse(inspected.stdout)
    expect(report.config.modelType).toBe('llama')
    expect(report.onnxFiles[0].inputs.map((i: { name: string }) => i.name).slice(0, 3)).toEqual([
      'input_ids',
      'attention_mask',
      'position_ids',
    ])

    const ids = [9707, 1879, 11, 1246]
    const logits = ondevice(['logits', '--model', out, '--ids', ids.join(','), '--dtype', 'fp32', '--json'])
    expect(logits.code, logits.stderr).toBe(0)
    const result = JSON.parse(logits.stdout) as { logits: number[]; vocabularySize: number }
    const expected = new ReferenceModel(randomDecoderWeights(fixtureConfig('llama', 'tiny'), 9))
      .forward(ids)
      .at(-1)!
    expect(result.logits.length).toBe(expected.length)
    let worst = 0
    for (let i = 0; i < expected.length; i++)
      worst = Math.max(worst, Math.abs(result.logits[i]! - expected[i]!))
    expect(worst).toBeLessThanOrEqual(1e-4)
  })

  it('fixture --chat-template: think-open opens <think> in the generation prompt, a file is carried as it is, a bad value exits 2', () => {
    const chatTemplateOf = (dir: string) =>
      (JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as { chat_template: string })
        .chat_template
    const open = join(root, 'think-open')
    expect(
      ondevice(['fixture', '--arch', 'llama', '--out', open, '--chat-template', 'think-open']).code,
    ).toBe(0)
    const tokenizer = Tokenizer.fromFiles({
      tokenizerJson: readFileSync(join(open, 'tokenizer.json'), 'utf8'),
      tokenizerConfigJson: readFileSync(join(open, 'tokenizer_config.json'), 'utf8'),
    })
    const messages = [{ role: 'user' as const, content: 'Hi' }]
    expect(tokenizer.decode(tokenizer.encodeChat(messages))).toMatch(/<\|im_start\|>assistant\n<think>\n$/)
    expect(tokenizer.decode(tokenizer.encodeChat(messages, { enableThinking: false }))).toMatch(
      /<\|im_start\|>assistant\n<think>\n\n<\/think>\n\n$/,
    )
    const file = join(root, 'plain.jinja')
    const text = "{% for m in messages %}{{ m.role + ': ' + m.content + '\\n' }}{% endfor %}"
    writeFileSync(file, text)
    const carried = join(root, 'from-file')
    expect(ondevice(['fixture', '--arch', 'llama', '--out', carried, '--chat-template', file]).code).toBe(0)
    expect(chatTemplateOf(carried)).toBe(text)
    const bad = ondevice(['fixture', '--arch', 'llama', '--out', join(root, 'y'), '--chat-template', 'qwen9'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(
      /--chat-template takes qwen3 or think-open, or a readable, non-empty template file/,
    )
  })

  it('reports bad arguments with exit code 2', () => {
    const result = ondevice(['fixture', '--arch', 'gpt2', '--out', join(root, 'x')])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/--arch llama, qwen3 or qwen3_5/)
    expect(ondevice(['logits', '--model', join(root, 'llama-tiny'), '--ids', '1,x']).stderr).toMatch(/--ids/)
  })

  it.skipIf(!existsSync(join(stories, 'stories260K.bin')))(
    'convert --from llama2c on stories260K, then greedy generation prints the golden text (fp32 and q8)',
    () => {
      const out = join(root, 'stories')
      const converted = ondevice([
        'convert',
        '--from',
        'llama2c',
        '--checkpoint',
        join(stories, 'stories260K.bin'),
        '--tokenizer',
        join(stories, 'tok512.bin'),
        '--out',
        out,
      ])
      expect(converted.code, converted.stderr).toBe(0)
      expect(converted.stderr).toMatch(/convert \[#+\] 5\/5 done/)
      const golden =
        'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.'
      for (const dtype of ['fp32', 'q8']) {
        const generated = ondevice([
          'generate',
          '--model',
          out,
          '--raw',
          '--prompt',
          '',
          '--temperature',
          '0',
          '--max-tokens',
          '80',
          '--dtype',
          dtype,
        ])
        expect(generated.code, generated.stderr).toBe(0)
        expect(generated.stdout.slice(0, golden.length), dtype).toBe(golden)
      }
    },
  )
})
