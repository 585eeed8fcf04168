// The engine on a host without relaxed SIMD, as Safari / iOS WebKit and Firefox without its flag
// meet it: a real V8 that does not implement the proposal. Node 24's V8 (13.6) and Chromium 156's
// have no flag left that turns relaxed SIMD off (the experimental flag went when it shipped, and
// `--no-enable-ssse3` / `--no-enable-sse4-1` turn off all of SIMD, so neither build would
// validate), but Node 20's V8 (11.3) predates it: there the 37-byte probe of ./simd.ts does not
// validate, so the engine must pick engine.wasm by itself, say so in `build.simd`, and give the
// relaxed build's logit bytes and greedy tokens; with V8's `--experimental-wasm-relaxed-simd`
// the same Node validates the probe and runs engine-relaxed.wasm, same bytes again. The engine's
// script (test/support/engine-logits-digest.ts) is bundled with Vite beside copies of the four
// .wasm files, since Node 20 does not run TypeScript.
//
// Needs a Node without relaxed SIMD (20.x): $ONDEVICE_NODE20, else /usr/bin/node where that is Node
// 20, else the npm registry's node-linux-<arch>@20.20.2 (the binaries nodejs.org ships), fetched
// once with `npm pack` into node_modules/.cache/ondevice-node20/ (as cross-arch.test.ts fetches its
// arm64 Node).
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { build } from 'vite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeQwen35Fixture } from '../../builder/architectures/qwen3-5-fixture.ts'
import { engineVariants } from './build.ts'

const run = promisify(execFile)
const repository = join(import.meta.dirname, '..', '..')
const digestScript = join(repository, 'test', 'support', 'engine-logits-digest.ts')

interface Digest {
  readonly node: string
  readonly relaxedSimd: boolean
  readonly simd: 'relaxed' | 'plain'
  readonly greedy: readonly number[]
  readonly digest: string
}

let folder: string
let fixture: string
let bundle: string
let oldNode: string

/** Node 20 from the npm registry: node-linux-<arch> publishes nodejs.org's binaries. */
const registryNode20 = '20.20.2'

/** The major version of a Node binary, or undefined when it does not run. */
async function nodeMajor(binary: string): Promise<number | undefined> {
  if (!existsSync(binary)) return undefined
  const { stdout } = await run(binary, ['--version']).catch(() => ({ stdout: '' }))
  const major = Number(/^v(\d+)\./.exec(stdout.trim())?.[1])
  return Number.isFinite(major) ? major : undefined
}

/**
 * node-linux-<arch>@20.20.2 kept in node_modules/.cache: fetched into a temporary folder and moved
 * into place whole, so an interrupted fetch leaves nothing half-written.
 */
async function ensureRegistryNode20(): Promise<string> {
  const cache = join(repository, 'node_modules', '.cache', 'ondevice-node20')
  const binary = join(cache, registryNode20, 'node')
  if (existsSync(binary)) return binary
  await mkdir(cache, { recursive: true })
  const work = await mkdtemp(join(cache, 'fetch-'))
  const name = `node-linux-${process.arch}`
  try {
    try {
      await run('npm', ['pack', `${name}@${registryNode20}`, '--silent', '--pack-destination', work], {
        cwd: work,
        maxBuffer: 1 << 20,
      })
    } catch (error) {
      throw new Error(
        `could not fetch ${name}@${registryNode20} from the npm registry with \`npm pack\` (this test needs a Node 20, whose V8 has no relaxed SIMD; or set ONDEVICE_NODE20 to one): ${(error as Error).message}`,
        { cause: error },
      )
    }
    await run('tar', ['-xzf', `${name}-${registryNode20}.tgz`, 'package/bin/node'], { cwd: work })
    await mkdir(join(work, registryNode20))
    await rename(join(work, 'package', 'bin', 'node'), join(work, registryNode20, 'node'))
    await rename(join(work, registryNode20), join(cache, registryNode20)).catch(async (error: unknown) => {
      // Another run put it there first: theirs is as good.
      if (!existsSync(binary)) throw error
    })
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  return binary
}

/** A Node whose V8 has no relaxed SIMD by default (20.x). */
async function findOldNode(): Promise<string> {
  const requested = process.env['ONDEVICE_NODE20']
  if (requested) {
    const major = await nodeMajor(requested)
    if (major !== 20 && major !== 21)
      throw new Error(
        `ONDEVICE_NODE20 (${requested}) must be a Node 20 binary, found ${String(major ?? 'none')}.`,
      )
    return requested
  }
  const system = '/usr/bin/node'
  const major = await nodeMajor(system)
  if (major === 20 || major === 21) return system
  return ensureRegistryNode20()
}

function digests(stdout: string): Digest[] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Digest)
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'ondevice-no-relaxed-'))
  fixture = join(folder, 'tiny')
  bundle = join(folder, 'digest.mjs')
  const [node] = await Promise.all([
    findOldNode(),
    writeQwen35Fixture({ outDir: fixture, size: 'tiny', dtypes: ['q4'] }),
    // The engine's modules are found beside the bundle (new URL('./engine.wasm', import.meta.url)).
    build({
      configFile: false,
      logLevel: 'error',
      resolve: { conditions: ['ondevice-source'] },
      ssr: { noExternal: true, target: 'node' },
      build: {
        ssr: digestScript,
        outDir: folder,
        emptyOutDir: false,
        target: 'node20',
        rollupOptions: { output: { format: 'es', entryFileNames: 'digest.mjs' } },
      },
    }),
    ...engineVariants.map((variant) => copyFile(variant.path, join(folder, variant.file))),
  ])
  oldNode = node
}, 120_000)
afterAll(async () => {
  if (folder) await rm(folder, { recursive: true, force: true })
})

describe('the engine on a V8 without relaxed SIMD (Node 20)', () => {
  it('picks engine.wasm by itself, reports it, and gives the relaxed build’s logit bytes and greedy tokens; with V8’s flag the same Node runs engine-relaxed.wasm', async () => {
    const args = [fixture, '--simd', 'auto']
    const [without, flagged, here, herePlain] = await Promise.all([
      run(oldNode, [bundle, ...args]).then(({ stdout }) => digests(stdout)),
      run(oldNode, ['--experimental-wasm-relaxed-simd', bundle, ...args]).then(({ stdout }) =>
        digests(stdout),
      ),
      run(process.execPath, [digestScript, ...args], { cwd: repository }).then(({ stdout }) =>
        digests(stdout),
      ),
      run(process.execPath, [digestScript, fixture, '--simd', 'plain'], { cwd: repository }).then(
        ({ stdout }) => digests(stdout),
      ),
    ])
    expect(without).toHaveLength(1)
    expect(without[0]).toMatchObject({
      node: expect.stringMatching(/^v2[01]\./),
      relaxedSimd: false,
      simd: 'plain',
    })
    expect(flagged[0]).toMatchObject({ relaxedSimd: true, simd: 'relaxed' })
    expect(here[0]).toMatchObject({ node: process.version, relaxedSimd: true, simd: 'relaxed' })
    expect(herePlain[0]).toMatchObject({ simd: 'plain' })
    const reference = here[0]!
    expect(reference.digest).toMatch(/^[0-9a-f]{64}$/)
    expect(reference.greedy).toHaveLength(5)
    for (const row of [without[0]!, flagged[0]!, herePlain[0]!]) {
      expect(row.digest, JSON.stringify(row)).toBe(reference.digest)
      expect(row.greedy).toEqual(reference.greedy)
    }
  }, 120_000)
})
