// A host that gives the engine less memory than it asks for (a phone, a crowded browser; here V8's
// --wasm-max-mem-pages on a real `ondevice logits --backend wasm`): the load fails with what was
// needed and what to do, not the host's bare RangeError, and a model that fits what the host
// gives loads even though the engine grows its memory in steps larger than one allocation.
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { writeFixture } from '../../builder/fixtures/fixture.ts'

const main = fileURLToPath(new URL('../../cli/main.ts', import.meta.url))
let folder: string
let packageDir: string

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-memory-refused-'))
  packageDir = join(folder, 'small')
  await writeFixture({ arch: 'qwen3', size: 'small', outDir: packageDir, dtype: ['q4'] })
}, 120_000)

afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true })
})

/** `ondevice logits --backend wasm` in a Node whose WebAssembly memories stop at `pages` × 64 KiB. */
function logits(pages: number) {
  const result = spawnSync(
    process.execPath,
    [
      `--wasm-max-mem-pages=${pages}`,
      main,
      'logits',
      '--model',
      packageDir,
      '--backend',
      'wasm',
      '--ids',
      '1,2,3',
    ],
    { encoding: 'utf8', timeout: 120_000 },
  )
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

it('a host that refuses the memory the weights need: a clear error with the sizes and the fix', () => {
  // 300 pages (18.75 MiB): less than this package's weights and scratch.
  const { code, stderr } = logits(300)
  expect(code).toBe(1)
  expect(stderr).toMatch(
    /would not give the WebAssembly engine more memory: it holds \d+ MiB and needs \d+ MiB more .*smaller dtype \(q4\) or a shorter contextLength/,
  )
  expect(stderr).not.toMatch(/Unable to grow instance memory/)
}, 120_000)

it('a host that gives what the model needs, though less than the engine grows by at once: it loads', () => {
  // 800 pages (50 MiB): enough for this package, not for its 64 MiB growth step.
  const { code, stdout, stderr } = logits(800)
  expect(stderr).not.toMatch(/memory/)
  expect(code).toBe(0)
  expect(stdout).toMatch(/\d+\s+-?\d+\.\d+/)
}, 120_000)
