// The memo of verified files (verified.json) under clients that share a cache folder in one
// process: a server that makes a client per request, or an app with two clients, verifies a new
// package in both at once. Each memo wrote its copy through the same temporary file
// (verified.json.<pid>.tmp), so one rename found the file gone and that client's load failed
// with "ENOENT: no such file or directory, rename '.../verified.json.<pid>.tmp'".
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createVerifiedMemo, sha256File } from './verified-memo.ts'

let folder: string
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-verified-memo-'))
})
afterAll(async () => {
  await rm(folder, { recursive: true, force: true })
})

describe('verified.json shared by two memos in one process', () => {
  it('from two copies of this module (a worker thread, each bundle of a bundled server): no failed write', async () => {
    // Separate module instances, as a worker_threads thread or a second bundle has: the temporary
    // names counted per copy (verified.json.<pid>.1.tmp in both), and 24 of the 48 writes failed
    // with ENOENT.
    const copy = async (name: string) =>
      (await import(
        /* @vite-ignore */ `./verified-memo.ts?copy=${name}`
      )) as typeof import('./verified-memo.ts')
    const copies = [await copy('a'), await copy('b')]
    expect(copies[0]?.createVerifiedMemo).not.toBe(copies[1]?.createVerifiedMemo)
    const cacheDir = join(folder, 'cache-copies')
    const files = await Promise.all(
      Array.from({ length: 24 }, async (_, index) => {
        const path = join(folder, `copies-${index}.bin`)
        await writeFile(path, `bytes of file ${index}`)
        return { path, sha256: await sha256File(path) }
      }),
    )
    const memos = copies.map((copy) => copy.createVerifiedMemo(cacheDir))
    const outcomes = await Promise.allSettled(
      files.flatMap(({ path, sha256 }) => memos.map((memo) => memo.remember(path, sha256))),
    )
    expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([])
    // Whole JSON, and what it records is trusted by a memo made afterwards.
    JSON.parse(await readFile(join(cacheDir, 'verified.json'), 'utf8'))
  })

  it('records files from both at once without a failed write, and the file stays whole JSON', async () => {
    const cacheDir = join(folder, 'cache')
    const files = await Promise.all(
      Array.from({ length: 24 }, async (_, index) => {
        const path = join(folder, `file-${index}.bin`)
        await writeFile(path, `bytes of file ${index}`)
        return { path, sha256: await sha256File(path) }
      }),
    )
    const first = createVerifiedMemo(cacheDir)
    const second = createVerifiedMemo(cacheDir)
    // Both clients verify the same package at once: each records every file it checked.
    const outcomes = await Promise.allSettled(
      files.flatMap(({ path, sha256 }) => [first.remember(path, sha256), second.remember(path, sha256)]),
    )
    expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([])
    const written = JSON.parse(await readFile(join(cacheDir, 'verified.json'), 'utf8')) as Record<
      string,
      unknown
    >
    expect(Object.keys(written).length).toBeGreaterThan(0)
    // A third client trusts what is recorded (no hashing needed to say yes).
    const third = createVerifiedMemo(cacheDir)
    const { path, sha256 } = files[0] as { path: string; sha256: string }
    expect(await third.verify(path, { bytes: `bytes of file 0`.length, sha256 })).toBe(true)
  })
})
