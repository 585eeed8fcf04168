// `ondevice export-default DIR`: puts the embedded default package (a tiny random-weight
// Qwen3.5-architecture model with the real Qwen3 tokenizer) into DIR, so a page can fetch it:
// e.g. `npx ondevice export-default public/models/default` in a Vite app, then
// createClient({ model: '/models/default/' }). Any other package is served the same way: copy its
// folder (config.json, tokenizer files, manifest.json, onnx/) under the app's static files.
// The folder is written beside DIR and renamed into place, so DIR never holds half a package.
import { cp, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { usableCacheDir } from '../../client-runtime/store/node-store.ts'
import { InvalidArgumentError } from '../../core/errors.ts'

export const help = `Usage: ondevice export-default DIR

Writes the embedded default model package into DIR (created; replaced if it holds an earlier
export), for a web page to fetch: serve DIR as static files and pass its URL as createClient's
\`model\`. The package is a tiny Qwen3.5-architecture model with random weights and the real Qwen3
tokenizer (q4 for ondevice's WebAssembly engine and WebGPU, q8 for onnxruntime-web's WASM): it exercises the whole stack, but its text is not
meaningful. For a real model, copy that package's folder the same way.

Example (a Vite app): npx ondevice export-default public/models/default
                      createClient({ model: '/models/default/' })

Options:
  --help, -h  Show this help`

async function folderState(folder: string): Promise<'absent' | 'empty' | 'package' | 'other' | 'file'> {
  const info = await stat(folder).catch(() => undefined)
  if (!info) return 'absent'
  if (!info.isDirectory()) return 'file'
  const entries = await readdir(folder)
  if (entries.length === 0) return 'empty'
  const manifest = await readFile(join(folder, 'manifest.json'), 'utf8').catch(() => undefined)
  if (manifest?.includes('"ondevice-package/')) return 'package'
  return 'other'
}

/** The flags this command's parser accepts: every one is in `help` (cli/help.test.ts). */
export const options = { help: { type: 'boolean', short: 'h' } } as const

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options,
    allowPositionals: true,
    strict: true,
  })
  if (values.help) {
    process.stdout.write(`${help}\n`)
    return 0
  }
  if (positionals.length !== 1 || positionals[0] === '') {
    throw new InvalidArgumentError(
      'DIR',
      `export-default takes one folder, e.g. \`ondevice export-default public/models/default\` (got ${positionals.length === 0 ? 'none' : positionals.join(' ')}).`,
    )
  }
  const target = resolve(positionals[0] as string)
  const state = await folderState(target)
  if (state === 'file' || state === 'other') {
    throw new InvalidArgumentError(
      'DIR',
      `${target} ${state === 'file' ? 'is a file' : 'holds other files'}: export-default writes a whole package folder, so give it a new or empty folder (or one an earlier export wrote).`,
    )
  }
  const { defaultPackageDescription, ensureDefaultPackage } = await import('../../builder/default-package.ts')
  const source = await ensureDefaultPackage({ cacheDir: await usableCacheDir() })
  const staging = join(dirname(target), `.${basename(target)}.partial-${process.pid}`)
  await rm(staging, { recursive: true, force: true })
  try {
    await cp(source, staging, { recursive: true })
    if (state !== 'absent') await rm(target, { recursive: true, force: true })
    await rename(staging, target)
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
  const files = await readdir(target, { recursive: true })
  process.stdout.write(
    `Wrote ${target} (${files.length} entries): ${defaultPackageDescription}.\nServe that folder with your app's static files and pass its URL prefix as createClient({ model }).\n`,
  )
  return 0
}
