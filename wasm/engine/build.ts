// Builds wasm/engine/engine.wasm from wasm/engine/src/*.c with clang's wasm32 target and wasm-ld
// (`npm run build:engine`). Why C + clang: LLVM's WebAssembly backend schedules and unrolls SIMD128
// code well, the kernels stay plain C a reader can check against the math, and the toolchain is a
// Debian package (clang, lld). The flags are fixed and the output carries no paths, timestamps or
// debug names, so the same compiler gives the same bytes; the committed engine.wasm is checked
// against a fresh build by build.test.ts.
//
//   npm run build:engine              rebuild engine.wasm
//   npm run build:engine -- --check   exit 1 if the committed file differs from a fresh build
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const engineFolder = import.meta.dirname
export const engineWasmPath = join(engineFolder, 'engine.wasm')
/** The same kernels over shared memory (atomics), for worker threads splitting rows. */
export const engineThreadsWasmPath = join(engineFolder, 'engine-threads.wasm')
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

export class ToolchainMissingError extends Error {
  constructor(tool: string, cause: unknown) {
    super(
      `${tool} was not found: building the engine needs clang (wasm32 target) and wasm-ld. Install them with \`apt-get install clang lld\` (Debian/Ubuntu) or \`brew install llvm lld\` (macOS), then run \`npm run build:engine\`.`,
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

/** The clang version line, or undefined when clang is not installed. */
export function clangVersion(): string | undefined {
  try {
    return execFileSync('clang', ['--version'], { encoding: 'utf8' }).split('\n')[0]
  } catch {
    return undefined
  }
}

/** Extra flags for the shared-memory variant. */
const threadsCompileFlags = ['-matomics'] as const
const threadsLinkFlags = ['--shared-memory'] as const

/**
 * Compiles and links every src/*.c (sorted, so the link order is fixed); returns the module
 * bytes. `threads`: the shared-memory variant (engine-threads.wasm).
 */
export function buildEngine(threads = false): Uint8Array {
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
        'clang',
        [
          ...compileFlags,
          ...(threads ? threadsCompileFlags : []),
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
      'wasm-ld',
      [...linkFlags, ...(threads ? threadsLinkFlags : []), ...objects, '-o', 'engine.wasm'],
      work,
    )
    return new Uint8Array(readFileSync(join(work, 'engine.wasm')))
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

function main(argv: readonly string[]): void {
  for (const [path, threads] of [
    [engineWasmPath, false],
    [engineThreadsWasmPath, true],
  ] as const) {
    const bytes = buildEngine(threads)
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
}

if (import.meta.main) main(process.argv.slice(2))
