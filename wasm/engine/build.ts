// Builds the engine's modules from wasm/engine/src/*.c with clang's wasm32 target and wasm-ld
// (`npm run build:engine`). Why C + clang: LLVM's WebAssembly backend schedules and unrolls SIMD128
// code well, the kernels stay plain C a reader can check against the math, and the toolchain is a
// Debian package (clang-16, lld-16). The flags are fixed and the output carries no paths, timestamps or
// debug names, so the same compiler gives the same bytes; the committed .wasm files are checked
// against a fresh build by build.test.ts.
//
// Beside them it writes engine-sha256.ts, the sha256 of each module: the browser's scripts check
// a kept (Cache API) or served copy of a .wasm against it, so an earlier deploy's engine is never
// run with this version's scripts (browser.ts, engine-cache.ts).
//
// Four modules: engine.wasm (SIMD128, every host), engine-threads.wasm (the same over shared
// memory), and their relaxed-SIMD builds engine-relaxed.wasm / engine-threads-relaxed.wasm, which
// add the 4-bit kernels on the relaxed dot products (src/gemm-q4-relaxed.c) for hosts
// that validate them. All four are built by one compiler, clang 16 (`clang-16`, `wasm-ld-16`,
// Debian 12's versioned packages): the relaxed dot's builtin arrived in clang 16, and one compiler
// for every module means the plain and relaxed builds share every other kernel's code generation.
//
//   npm run build:engine              rebuild every module
//   npm run build:engine -- --check   exit 1 if a committed file differs from a fresh build
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const engineFolder = import.meta.dirname
export const engineWasmPath = join(engineFolder, 'engine.wasm')
/** The same kernels over shared memory (atomics), for worker threads splitting rows. */
export const engineThreadsWasmPath = join(engineFolder, 'engine-threads.wasm')
/** The relaxed-SIMD builds of the two (src/gemm-q4-relaxed.c). */
export const engineRelaxedWasmPath = join(engineFolder, 'engine-relaxed.wasm')
export const engineThreadsRelaxedWasmPath = join(engineFolder, 'engine-threads-relaxed.wasm')

/** The module naming each build's sha256, written with the .wasm files. */
export const engineSha256Path = join(engineFolder, 'engine-sha256.ts')

/** One module the build writes. */
export interface EngineVariant {
  readonly file: string
  readonly path: string
  /** Shared memory and atomics (helper threads). */
  readonly threads: boolean
  /** Relaxed SIMD (`-mrelaxed-simd`). */
  readonly relaxed: boolean
}

export const engineVariants: readonly EngineVariant[] = [
  { file: 'engine.wasm', path: engineWasmPath, threads: false, relaxed: false },
  { file: 'engine-threads.wasm', path: engineThreadsWasmPath, threads: true, relaxed: false },
  { file: 'engine-relaxed.wasm', path: engineRelaxedWasmPath, threads: false, relaxed: true },
  { file: 'engine-threads-relaxed.wasm', path: engineThreadsRelaxedWasmPath, threads: true, relaxed: true },
]

/**
 * The compiler and linker of every module: clang 16 by its versioned name, so a newer or older
 * system `clang` next to it cannot change the committed bytes.
 */
export const toolchain = { clang: 'clang-16', wasmLd: 'wasm-ld-16' } as const
const sourceFolder = join(engineFolder, 'src')

/** Compiler flags: the target features every host we support accepts (Node 22+, Chromium 91+, workerd). */
export const compileFlags = [
  '--target=wasm32',
  '-O3',
  '-msimd128',
  '-mbulk-memory',
  '-mnontrapping-fptoint',
  '-msign-ext',
  '-mmutable-globals',
  '-nostdlib',
  '-ffreestanding',
  '-fno-exceptions',
  '-ffp-contract=off',
  '-fvisibility=hidden',
  '-g0',
  '-Wall',
  '-Wextra',
  '-Werror',
  '-Wno-unused-parameter',
] as const

export const linkFlags = [
  '--no-entry',
  '--import-memory',
  '--strip-all',
  '--stack-first',
  '-z',
  'stack-size=262144',
  '--export=__heap_base',
  '--export=__stack_pointer',
  '--initial-memory=1048576',
  '--max-memory=4294967296',
] as const

/** How to get clang 16, said by every error about a missing compiler. */
export const installHint =
  "Install them with `apt-get install clang-16 lld-16` (Debian 12, Ubuntu 24.04; or run scripts/setup-system.sh); elsewhere put LLVM 16's clang and wasm-ld on PATH as clang-16 and wasm-ld-16;"

export class ToolchainMissingError extends Error {
  constructor(tool: string, cause: unknown) {
    super(
      `${tool} was not found: building the engine (wasm/engine/*.wasm) needs clang 16 and its wasm-ld (wasm32 target). ${installHint} then run \`npm run build:engine\`.`,
      { cause },
    )
    this.name = 'ToolchainMissingError'
  }
}

function run(tool: string, args: readonly string[], cwd: string): void {
  try {
    execFileSync(tool, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (error) {
    const code = (error as { code?: string }).code
    if (code === 'ENOENT') throw new ToolchainMissingError(tool, error)
    const stderr = String((error as { stderr?: unknown }).stderr ?? '')
    throw new Error(`${tool} failed:\n${stderr}`, { cause: error })
  }
}

/** The clang version line, or undefined when clang 16 is not installed. */
export function clangVersion(): string | undefined {
  try {
    return execFileSync(toolchain.clang, ['--version'], { encoding: 'utf8' }).split('\n')[0]
  } catch {
    return undefined
  }
}

/** Extra flags for the shared-memory variant. */
const threadsCompileFlags = ['-matomics'] as const
const threadsLinkFlags = ['--shared-memory'] as const
/** Extra flag for the relaxed-SIMD variant. */
const relaxedCompileFlags = ['-mrelaxed-simd'] as const

/**
 * Compiles and links every src/*.c (sorted, so the link order is fixed); returns the module
 * bytes. `threads`: the shared-memory variant (engine-threads.wasm); `relaxed`: the relaxed-SIMD
 * one (engine-relaxed.wasm).
 */
export function buildEngine(threads = false, relaxed = false): Uint8Array {
  const tools = toolchain
  const sources = readdirSync(sourceFolder)
    .filter((file) => file.endsWith('.c'))
    .sort()
  const work = mkdtempSync(join(tmpdir(), 'ondevice-engine-'))
  try {
    const objects: string[] = []
    for (const source of sources) {
      const object = `${source.replace(/\.c$/, '')}.o`
      // Compiling from inside src/ with relative names keeps absolute paths out of the objects.
      run(
        tools.clang,
        [
          ...compileFlags,
          ...(threads ? threadsCompileFlags : []),
          ...(relaxed ? relaxedCompileFlags : []),
          `-ffile-prefix-map=${sourceFolder}=.`,
          '-c',
          source,
          '-o',
          join(work, object),
        ],
        sourceFolder,
      )
      objects.push(object)
    }
    run(
      tools.wasmLd,
      [...linkFlags, ...(threads ? threadsLinkFlags : []), ...objects, '-o', 'engine.wasm'],
      work,
    )
    return new Uint8Array(readFileSync(join(work, 'engine.wasm')))
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** The hex sha256 of a module's bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/**
 * engine-sha256.ts for these module bytes (by file name, in engineVariants' order), formatted as
 * the linter formats it.
 */
export function engineSha256Module(bytesByFile: ReadonlyMap<string, Uint8Array>): string {
  const lines = engineVariants.map(({ file }) => {
    const bytes = bytesByFile.get(file)
    if (bytes === undefined) throw new Error(`engineSha256Module: no bytes for ${file}`)
    return `  '${file}': '${sha256Hex(bytes)}',`
  })
  return [
    '// Written by wasm/engine/build.ts (`npm run build:engine`) with the .wasm files beside it; do not edit.',
    "// The sha256 of each engine build this version's scripts run: a copy of a .wasm, kept in the",
    "// browser's Cache API or served by the network, is compiled only when it has this hash",
    "// (browser.ts, engine-cache.ts), so a page never runs another deploy's engine with its scripts.",
    'export const engineSha256 = {',
    ...lines,
    '} as const',
    '',
    '/** An engine build, by its file name. */',
    'export type EngineBuild = keyof typeof engineSha256',
    '',
  ].join('\n')
}

function main(argv: readonly string[]): void {
  const built = new Map<string, Uint8Array>()
  for (const { file, path, threads, relaxed } of engineVariants) {
    const bytes = buildEngine(threads, relaxed)
    built.set(file, bytes)
    if (argv.includes('--check')) {
      const committed = new Uint8Array(readFileSync(path))
      const same = committed.length === bytes.length && committed.every((byte, i) => byte === bytes[i])
      if (!same) {
        console.error(`${path} differs from a fresh build: run \`npm run build:engine\` and commit it.`)
        process.exit(1)
      }
      console.log(`${path} matches a fresh build (${bytes.length} bytes, ${clangVersion()})`)
      continue
    }
    writeFileSync(path, bytes)
    console.log(`wrote ${path} (${bytes.length} bytes, ${clangVersion()})`)
  }
  const hashes = engineSha256Module(built)
  if (argv.includes('--check')) {
    if (readFileSync(engineSha256Path, 'utf8') !== hashes) {
      console.error(
        `${engineSha256Path} differs from a fresh build: run \`npm run build:engine\` and commit it.`,
      )
      process.exit(1)
    }
    console.log(`${engineSha256Path} matches a fresh build`)
    return
  }
  writeFileSync(engineSha256Path, hashes)
  console.log(`wrote ${engineSha256Path}`)
}

if (import.meta.main) main(process.argv.slice(2))
