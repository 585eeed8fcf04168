// The embedded default package's cache folder, when it cannot be one: the project's error naming
// cacheDir (ONDEVICE_CACHE_DIR) with the fix, never Node's raw ENOTDIR, and nothing written.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../core/errors.ts'
import { ensureDefaultPackage } from './default-package.ts'

const folder = mkdtempSync(join(tmpdir(), 'ondevice-default-package-'))
afterAll(() => rmSync(folder, { recursive: true, force: true }))

describe('ensureDefaultPackage with a cache folder that is not one', () => {
  it('a file where the folder should be: InvalidArgumentError(cacheDir) saying so; the file untouched', async () => {
    const file = join(folder, 'not-a-folder')
    writeFileSync(file, 'keep me')
    for (const cacheDir of [file, join(file, 'below')]) {
      const error = await ensureDefaultPackage({ cacheDir }).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(InvalidArgumentError)
      expect((error as InvalidArgumentError).param).toBe('cacheDir')
      expect((error as Error).message).toContain('ONDEVICE_CACHE_DIR')
    }
    expect(readFileSync(file, 'utf8')).toBe('keep me')
  })
})
