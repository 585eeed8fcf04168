// `ondevice prepare-assets` as a user runs it, the real command in a Node process: docs/worker.md
// pointed projects of their own at worker/prepare-assets.ts, which only a checkout has (the
// installed package has no such file, and its built copy ran nothing on Node before 22.18).
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const bin = fileURLToPath(new URL('../bin.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'ondevice-prepare-assets-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const ondevice = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 })

// A package folder: the files prepare-assets copies (it checks for config.json), one of them
// over the 4 MiB chunk size.
const weights = Buffer.alloc(9 * 1024 * 1024 + 5)
for (let index = 0; index < weights.length; index++) weights[index] = (index * 7 + (index >> 12)) & 255
const packageDir = join(root, 'my-package')
mkdirSync(join(packageDir, 'onnx'), { recursive: true })
writeFileSync(join(packageDir, 'config.json'), '{"model_type":"qwen3"}')
writeFileSync(join(packageDir, 'manifest.json'), '{"format":"ondevice-package/1","files":[]}')
writeFileSync(join(packageDir, 'onnx/model.onnx_data'), weights)

describe('ondevice prepare-assets', () => {
  it('writes the package with its large files as chunks and an index that join back to the file', () => {
    const result = ondevice('prepare-assets', 'my-package', 'model-assets/model')
    expect(result.status, result.stderr).toBe(0)
    expect(result.stdout).toContain('chunked: onnx/model.onnx_data')
    const out = join(root, 'model-assets/model')
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toBe('{"model_type":"qwen3"}')
    const index = JSON.parse(readFileSync(join(out, 'onnx/model.onnx_data.chunks.json'), 'utf8')) as {
      bytes: number
      chunks: { path: string; bytes: number }[]
    }
    expect(index.bytes).toBe(weights.length)
    expect(index.chunks.map((chunk) => chunk.path)).toEqual([
      'onnx/model.onnx_data.chunk-0',
      'onnx/model.onnx_data.chunk-1',
      'onnx/model.onnx_data.chunk-2',
    ])
    const joined = Buffer.concat(index.chunks.map((chunk) => readFileSync(join(out, chunk.path))))
    expect(joined.equals(weights)).toBe(true)
    expect(readdirSync(join(out, 'onnx'))).not.toContain('model.onnx_data')
    // Again over its own output: replaced, the same files.
    expect(ondevice('prepare-assets', 'my-package', 'model-assets/model').status).toBe(0)
  })

  it('refuses an output folder of other files, or one that overlaps the package, and deletes nothing', () => {
    mkdirSync(join(root, 'src'), { recursive: true })
    writeFileSync(join(root, 'src/index.ts'), "export { default } from 'ondevice/worker'\n")
    const other = ondevice('prepare-assets', 'my-package', 'src')
    expect(other.status).toBe(2)
    expect(other.stderr).toContain('holds other files')
    expect(readdirSync(join(root, 'src'))).toEqual(['index.ts'])
    for (const out of ['.', 'my-package', 'my-package/assets']) {
      const overlap = ondevice('prepare-assets', 'my-package', out)
      expect(overlap.status, out).toBe(2)
      expect(overlap.stderr, out).toContain('overlap')
    }
    expect(readdirSync(packageDir).sort()).toEqual(['config.json', 'manifest.json', 'onnx'])
    const missing = ondevice('prepare-assets', 'my-package')
    expect(missing.status).toBe(2)
    expect(missing.stderr).toContain('a package folder and an output folder')
  })
})
