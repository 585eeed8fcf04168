import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { prepareOutputFolder } from './output-folder.ts'

const root = mkdtempSync(join(tmpdir(), 'ondevice-output-folder-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

describe('prepareOutputFolder', () => {
  it('makes a nested folder and leaves nothing of its check behind', async () => {
    const folder = join(root, 'a', 'b', 'c')
    await prepareOutputFolder(folder, '--out', true)
    expect(readdirSync(folder)).toEqual([])
  })

  it('refuses a missing folder it may not create, and a file in a folder’s place, naming the flag', async () => {
    await expect(prepareOutputFolder(join(root, 'missing'), '--out', false)).rejects.toMatchObject({
      code: 'invalid_argument',
      message: expect.stringContaining('does not exist: create it first'),
    })
    const file = join(root, 'file')
    writeFileSync(file, 'x')
    await expect(prepareOutputFolder(join(file, 'pkg'), '--out', true)).rejects.toMatchObject({
      code: 'invalid_argument',
      message: expect.stringContaining('choose another --out'),
    })
  })
})

// /proc answers ENOENT for any new entry: Node's recursive mkdir never settled there, so
// `ondevice fixture --out /proc/x` used to hang at 100% CPU.
describe.runIf(existsSync('/proc/self'))(
  'the commands that write a package or a file, with --out under /proc',
  () => {
    const main = fileURLToPath(new URL('./main.ts', import.meta.url))
    it.each([
      [['fixture', '--arch', 'llama', '--out', '/proc/ondevice-x']],
      [['fixture', '--arch', 'llama', '--out', '/proc/ondevice-x/y']],
      [['convert', '--from', 'safetensors', '--in', root, '--out', '/proc/ondevice-x']],
      [['export', '--format', 'gguf', '--in', root, '--out', '/proc/ondevice-x.gguf']],
    ])('%j fails at once with exit 2 and says to choose another --out', (args) => {
      const result = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 60_000 })
      expect(result.status, result.stderr).toBe(2)
      expect(result.stderr).toMatch(/choose another --out/)
    })
  },
)
