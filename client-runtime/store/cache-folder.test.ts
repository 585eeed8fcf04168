// The Node cache folder: an unusable ONDEVICE_CACHE_DIR (under /proc, a file on its path, a
// link to nothing, a folder this user may not write) fails at once with InvalidArgumentError
// naming the variable and the fix. Node's own recursive mkdir never settles on the first and
// third (a native loop), which is what `ONDEVICE_CACHE_DIR=/proc/x ondevice generate` hit; the
// CLI case runs the real command in a child process.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../../core/errors.ts'
import { makeFolder, prepareCacheFolder, usableCacheDir } from './cache-folder.ts'
import { createNodeStore } from './node-store.ts'

let workDir: string
const savedVariable = process.env.ONDEVICE_CACHE_DIR

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ondevice-cache-folder-'))
})
afterEach(() => {
  if (savedVariable === undefined) delete process.env.ONDEVICE_CACHE_DIR
  else process.env.ONDEVICE_CACHE_DIR = savedVariable
})
afterAll(async () => {
  await chmod(join(workDir, 'locked'), 0o755).catch(() => undefined)
  await rm(workDir, { recursive: true, force: true })
})

/** Sets ONDEVICE_CACHE_DIR and returns what usableCacheDir() rejects with (or undefined). */
async function refusal(folder: string): Promise<InvalidArgumentError | undefined> {
  process.env.ONDEVICE_CACHE_DIR = folder
  return usableCacheDir().then(
    () => undefined,
    (error: unknown) => {
      expect(error).toBeInstanceOf(InvalidArgumentError)
      return error as InvalidArgumentError
    },
  )
}

describe('the cache folder', () => {
  it('makes nested folders, and accepts one that exists', async () => {
    const nested = join(workDir, 'a', 'b', 'c')
    await makeFolder(nested)
    expect((await stat(nested)).isDirectory()).toBe(true)
    await makeFolder(nested)
    await prepareCacheFolder(nested)
    // The write check leaves nothing behind.
    expect(existsSync(join(nested, `.write-check-${process.pid}`))).toBe(false)
  })

  it('under /proc: refused at once, naming ONDEVICE_CACHE_DIR and the fix (Node’s recursive mkdir spins there)', async () => {
    const error = await refusal('/proc/ondevice-cache/x')
    expect(error?.param).toBe('ONDEVICE_CACHE_DIR')
    expect(error?.message).toContain(
      '/proc/ondevice-cache/x (from ONDEVICE_CACHE_DIR=/proc/ondevice-cache/x)',
    )
    expect(error?.message).toMatch(/takes no new folders \(such as \/proc or \/sys\)/)
    expect(error?.message).toMatch(/Point ONDEVICE_CACHE_DIR at a folder this user can create and write/)
  })

  it('a file on its path, a link to nothing, a folder this user may not write: each refused with the reason', async () => {
    const file = join(workDir, 'plain-file')
    await writeFile(file, 'x')
    expect((await refusal(file))?.message).toMatch(/is a file/)
    expect((await refusal(join(file, 'cache')))?.message).toMatch(/is a file/)

    const dangling = join(workDir, 'dangling')
    await symlink(join(workDir, 'nowhere'), dangling)
    expect((await refusal(join(dangling, 'cache')))?.message).toMatch(/link to a path that does not exist/)

    // Root writes through permission bits, so as root the unwritable folder is sysfs's.
    let locked = '/sys/ondevice-cache'
    if (process.getuid?.() !== 0) {
      locked = join(workDir, 'locked')
      await makeFolder(locked)
      await chmod(locked, 0o555)
    }
    expect((await refusal(join(locked, 'cache')))?.message).toMatch(/this user may not write there/)
  })

  it('the store refuses a download into it before any request, and a usable folder fixed later is accepted', async () => {
    const file = join(workDir, 'store-file')
    await writeFile(file, 'x')
    const store = createNodeStore({ cacheDir: join(file, 'cache') })
    // No server listens there: the folder's check comes first.
    await expect(store.open('http://127.0.0.1:9/package/')).rejects.toMatchObject({
      code: 'invalid_argument',
      param: 'cacheDir',
      message: expect.stringMatching(
        /the cacheDir option\) cannot be used: it, or a folder on its path, is a file/,
      ),
    })
    await rm(file)
    await expect(prepareCacheFolder(join(file, 'cache'))).resolves.toBeUndefined()
  })

  it('`ondevice generate` with ONDEVICE_CACHE_DIR under /proc exits 2 with the message, without hanging', async () => {
    const cli = join(import.meta.dirname, '../../cli/main.ts')
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [cli, 'generate', '--prompt', 'x', '--max-tokens', '1'],
        { env: { ...process.env, ONDEVICE_CACHE_DIR: '/proc/x' }, timeout: 60_000 },
        (error, _stdout, stderr) =>
          resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
      )
    })
    expect(result.code, result.stderr).toBe(2)
    expect(result.stderr).toMatch(
      /ondevice generate: The model cache folder \/proc\/x \(from ONDEVICE_CACHE_DIR=\/proc\/x\)/,
    )
  }, 70_000)
})
