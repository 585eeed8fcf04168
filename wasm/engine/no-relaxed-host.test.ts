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
// Needs a Node without relaxed SIMD (20.x): $ONDEVICE_NODE20, else /usr/bin/node (Debian's
// NodeSource package here).
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
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

/** A Node whose V8 has no relaxed SIMD by default, or an error saying how to provide one. */
async function findOldNode(): Promise<string> {
  const candidate = process.env['ONDEVICE_NODE20'] || '/usr/bin/node'
  const howToFix =
    'This test needs a Node 20 binary (its V8 has no relaxed SIMD): set ONDEVICE_NODE20 to one, or install Node 20 as /usr/bin/node.'
  if (!existsSync(candidate)) throw new Error(`${candidate} does not exist. ${howToFix}`)
  const { stdout } = await run(candidate, ['--version'])
  const major = Number(/^v(\d+)\./.exec(stdout.trim())?.[1])
  if (!(major >= 20 && major < 22))
    throw new Error(`${candidate} is Node ${stdout.trim()}, which has relaxed SIMD. ${howToFix}`)
  return candidate
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
