// createClient's cacheDir and cacheQuotaBytes in Node: the client's own store, not
// $ONDEVICE_CACHE_DIR's folder, keeps what it downloads and the embedded default package; the
// quota stops a download before it starts; a page refuses both (its storage is the browser's).
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { InvalidArgumentError, OndeviceError } from '../core/errors.ts'
import { startStaticServer } from '../demo/static-server.ts'
import { createClient } from './client.ts'
import { validateClientOptions } from './options.ts'

const request = { messages: [{ role: 'user' as const, content: 'Hi' }], seed: 1, maxTokens: 4 }

let workDir: string
let server: Awaited<ReturnType<typeof startStaticServer>>
let model: string

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ondevice-cache-options-'))
  const packageDir = join(workDir, 'qwen3-tiny')
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: 'fp32' })
  server = await startStaticServer({ mounts: [{ prefix: '/models/qwen3-tiny/', directory: packageDir }] })
  model = `${server.url}/models/qwen3-tiny/`
  // Anything written to the default folder instead of the option's would land here.
  vi.stubEnv('ONDEVICE_CACHE_DIR', join(workDir, 'environment-cache'))
})

afterAll(async () => {
  vi.unstubAllEnvs()
  await server?.close()
  await rm(workDir, { recursive: true, force: true })
})

const entries = (folder: string): Promise<string[]> => readdir(folder).catch(() => [])

describe('createClient cacheDir / cacheQuotaBytes (Node)', () => {
  it('a URL package is downloaded into cacheDir, and nothing into the default folder', async () => {
    const cacheDir = join(workDir, 'app-cache')
    const client = createClient({ model, backend: 'wasm', policy: 'device-only', cacheDir })
    try {
      const answer = await client.chat(request)
      expect(answer.route).toBe('device')
      expect(answer.tokenIds.length).toBeGreaterThan(0)
    } finally {
      await client.dispose()
    }
    expect(await entries(join(cacheDir, 'packages'))).toHaveLength(1)
    expect(await entries(join(workDir, 'environment-cache'))).toEqual([])
  })

  it('no model: the embedded default package is written into cacheDir', async () => {
    const cacheDir = join(workDir, 'default-cache')
    const client = createClient({ backend: 'wasm', policy: 'device-only', cacheDir })
    try {
      expect((await client.chat(request)).route).toBe('device')
    } finally {
      await client.dispose()
    }
    expect(await entries(join(cacheDir, 'default'))).toHaveLength(1)
    expect(await entries(join(workDir, 'environment-cache'))).toEqual([])
  })

  it('cacheQuotaBytes below the package: storage_quota_exceeded before any weight is kept', async () => {
    const cacheDir = join(workDir, 'small-cache')
    const client = createClient({
      model,
      backend: 'wasm',
      policy: 'device-only',
      cacheDir,
      cacheQuotaBytes: 1000,
    })
    try {
      const failure = await client.chat(request).then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(failure).toBeInstanceOf(OndeviceError)
      expect(failure).toMatchObject({ code: 'storage_quota_exceeded' })
    } finally {
      await client.dispose()
    }
    // Only the package's description (manifest.json, source.json) was read and kept.
    const kept = await entries(join(cacheDir, 'packages'))
    for (const folder of kept) {
      expect(await entries(join(cacheDir, 'packages', folder))).toEqual(['manifest.json', 'source.json'])
    }
  })

  it('a cacheDir that is a file: an InvalidArgumentError naming cacheDir and how to fix it', async () => {
    const file = join(workDir, 'a-file')
    await writeFile(file, '')
    const client = createClient({ backend: 'wasm', policy: 'device-only', cacheDir: file })
    try {
      const failure = await client.chat(request).then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(failure).toBeInstanceOf(InvalidArgumentError)
      expect(failure).toMatchObject({ param: 'cacheDir', message: expect.stringContaining('Pass cacheDir') })
    } finally {
      await client.dispose()
    }
  })

  it('bad values are refused at createClient, and a page refuses both options', () => {
    expect(() => createClient({ cacheDir: '' })).toThrow(InvalidArgumentError)
    expect(() => createClient({ cacheQuotaBytes: -1 })).toThrow(/cacheQuotaBytes must be a positive number/)
    expect(() => createClient({ cacheQuotaBytes: '1GB' } as never)).toThrow(/cacheQuotaBytes/)
    const page = { host: 'browser' as const, pageUrl: 'https://app.example/' }
    for (const option of [{ cacheDir: './cache' }, { cacheQuotaBytes: 1e9 }]) {
      expect(() => validateClientOptions({ model: '/models/m/', ...option }, page)).toThrow(/OPFS/)
    }
  })
})
