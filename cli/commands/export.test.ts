import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { readGgufHeader } from '../../builder/gguf/index.ts'

// `ondevice export` through the real command line (a child process per command).
const main = fileURLToPath(new URL('../main.ts', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'ondevice-cli-export-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

function ondevice(args: string[]) {
  const result = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 120_000 })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

const stories = join(import.meta.dirname, '../../../shared/models/stories260K')

describe('ondevice export --format gguf', () => {
  it('converts stories260K, exports it as GGUF q8 (the builder name) and refuses bad requests clearly', () => {
    const pkg = join(root, 'stories')
    const converted = ondevice([
      'convert',
      '--from',
      'llama2c',
      '--checkpoint',
      join(stories, 'stories260K.bin'),
      '--tokenizer',
      join(stories, 'tok512.bin'),
      '--out',
      pkg,
      '--dtype',
      'fp32,q8',
    ])
    expect(converted.code, converted.stderr).toBe(0)
    const out = join(root, 'stories.gguf')
    const exported = ondevice(['export', '--format', 'gguf', '--in', pkg, '--out', out, '--dtype', 'q8'])
    expect(exported.code, exported.stderr).toBe(0)
    expect(exported.stdout).toMatch(/stories\.gguf: GGUF v3, llama, q8_0, 47 tensors, .*\(5 written as f16/)
    const header = readGgufHeader(new Uint8Array(readFileSync(out)))
    expect(header.metadata.get('general.architecture')).toBe('llama')
    expect(header.metadata.get('general.name')).toBe('stories260K')
    expect(header.tensors.find((t) => t.name === 'blk.0.attn_q.weight')?.type).toBe(8)

    const again = ondevice(['export', '--format', 'gguf', '--in', pkg, '--out', out])
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/exists: pass --force/)
    const badDtype = ondevice([
      'export',
      '--format',
      'gguf',
      '--in',
      pkg,
      '--out',
      join(root, 'x.gguf'),
      '--dtype',
      'q5_k',
    ])
    expect(badDtype.code).toBe(2)
    expect(badDtype.stderr).toMatch(/--dtype|q5_k.*use f32, f16, q8_0, q4_0, q4_1/)
    const noFormat = ondevice(['export', '--in', pkg, '--out', join(root, 'x.gguf')])
    expect(noFormat.code).toBe(2)
    expect(noFormat.stderr).toMatch(/Pass --format gguf/)
    expect(existsSync(join(root, 'x.gguf'))).toBe(false)
  })

  it('exports the tiny Qwen3.5 fixture as llama.cpp qwen35 (q4_0), and a q4-only package is refused', () => {
    const pkg = join(root, 'qwen3_5')
    const written = ondevice([
      'fixture',
      '--arch',
      'qwen3_5',
      '--size',
      'tiny',
      '--dtype',
      'fp32',
      '--out',
      pkg,
    ])
    expect(written.code, written.stderr).toBe(0)
    const out = join(root, 'qwen3_5.gguf')
    const exported = ondevice(['export', '--format', 'gguf', '--in', pkg, '--out', out, '--dtype', 'q4_0'])
    expect(exported.code, exported.stderr).toBe(0)
    // 4 layers: 3 linear (14 tensors each), 1 full attention (11), token_embd and output_norm.
    expect(exported.stdout).toMatch(/qwen3_5\.gguf: GGUF v3, qwen35, q4_0, 55 tensors, /)
    const header = readGgufHeader(new Uint8Array(readFileSync(out)))
    expect(header.metadata.get('general.architecture')).toBe('qwen35')
    expect(header.tensors.find((t) => t.name === 'blk.0.attn_qkv.weight')?.type).toBe(2)

    const quantizedOnly = join(root, 'qwen3_5-q4')
    expect(ondevice(['fixture', '--arch', 'qwen3_5', '--dtype', 'q4', '--out', quantizedOnly]).code).toBe(0)
    const refused = ondevice([
      'export',
      '--format',
      'gguf',
      '--in',
      quantizedOnly,
      '--out',
      join(root, 'y.gguf'),
    ])
    expect(refused.code).toBe(2)
    expect(refused.stderr).toMatch(/no fp32 or fp16 ONNX file/)
    expect(existsSync(join(root, 'y.gguf'))).toBe(false)
  }, 120_000)
})
