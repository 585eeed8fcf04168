// The committed engine modules must be what their C sources compile to. Without clang 16 / wasm-ld 16
// this fails and says how to install them: a skipped check would let a stale binary ship.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  buildEngine,
  clangVersion,
  engineSha256Module,
  engineSha256Path,
  engineVariants,
  installHint,
  toolchain,
} from './build.ts'

describe('wasm/engine/engine.wasm', () => {
  it.each(engineVariants)(
    '$file equals a fresh build of wasm/engine/src (npm run build:engine)',
    ({ file: name, path, threads, relaxed }) => {
      const version = clangVersion()
      if (version === undefined)
        throw new Error(
          `${toolchain.clang} is not installed, so the committed wasm/engine/${name} cannot be checked against its sources. ${installHint} then run \`npm run build:engine\`.`,
        )
      const fresh = buildEngine(threads, relaxed)
      const committed = new Uint8Array(readFileSync(path))
      const same = fresh.length === committed.length && fresh.every((byte, i) => byte === committed[i])
      expect(
        same,
        `wasm/engine/${name} differs from a fresh build with ${version}: run \`npm run build:engine\` and commit the result.`,
      ).toBe(true)
    },
    60_000,
  )

  // A browser compiles a kept or served .wasm only when its sha256 is the one engine-sha256.ts
  // names (browser.ts): a .wasm committed without it would fail every load in a page.
  it('engine-sha256.ts names the sha256 of each committed .wasm (npm run build:engine writes both)', () => {
    const committed = new Map(
      engineVariants.map(({ file, path }) => [file, new Uint8Array(readFileSync(path))]),
    )
    expect(
      readFileSync(engineSha256Path, 'utf8'),
      'wasm/engine/engine-sha256.ts does not match the committed .wasm files: run `npm run build:engine` and commit both.',
    ).toBe(engineSha256Module(committed))
  })

  it('is small and imports only its memory', async () => {
    for (const { path } of engineVariants) {
      const bytes = readFileSync(path)
      expect(bytes.length).toBeLessThan(1024 * 1024)
      const module = await WebAssembly.compile(bytes)
      expect(WebAssembly.Module.imports(module)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }])
    }
  })
})
