// `ondevice prepare-assets PACKAGE_DIR OUT_DIR`: a model package as a Worker's static assets
// (MODEL_SOURCE = "assets"), its large files in chunks the Worker joins back. The docs once told
// users to run worker/prepare-assets.ts, which only a checkout of the repository has; the
// installed package's command is this one.
import { readdir, readFile, stat } from 'node:fs/promises'
import { isAbsolute, join, relative, resolve, sep } from 'node:path'
import { parseArgs } from 'node:util'
import { InvalidArgumentError } from '../../core/errors.ts'
import { defaultChunkBytes, prepareAssetsPackage } from '../../worker/prepare-assets.ts'

export const help = `Usage: ondevice prepare-assets PACKAGE_DIR OUT_DIR

Copies a model package into OUT_DIR for a Worker's static assets (MODEL_SOURCE = "assets"):
every file over ${defaultChunkBytes / 1024 / 1024} MiB becomes pieces FILE.chunk-0, FILE.chunk-1, ... and an index
FILE.chunks.json that the Worker joins back (Workers cap one asset at 25 MiB); smaller files are
copied as they are. OUT_DIR is replaced when an earlier prepare-assets wrote it; any other folder
with files in it is refused. OUT_DIR is the assets folder plus MODEL_PREFIX (default model/).

Example: npx ondevice prepare-assets my-package model-assets/model
         wrangler.toml: [assets] directory = "model-assets", binding = "ASSETS",
         run_worker_first = true; [vars] MODEL_SOURCE = "assets"

Options:
  --help, -h  Show this help`

/** The flags this command's parser accepts: every one is in `help` (cli/help.test.ts). */
export const options = { help: { type: 'boolean', short: 'h' } } as const

/** Whether `folder` is `parent` or inside it. */
const inside = (folder: string, parent: string) => {
  const path = relative(parent, folder)
  return path === '' || (path !== '..' && !path.startsWith(`..${sep}`) && !isAbsolute(path))
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  if (values.help) {
    process.stdout.write(`${help}\n`)
    return 0
  }
  if (positionals.length !== 2 || positionals.some((value) => value === '')) {
    throw new InvalidArgumentError(
      'OUT_DIR',
      `prepare-assets takes a package folder and an output folder, e.g. \`ondevice prepare-assets my-package model-assets/model\` (got ${positionals.length === 0 ? 'none' : positionals.join(' ')}).`,
    )
  }
  const packageDir = resolve(positionals[0] as string)
  const outDir = resolve(positionals[1] as string)
  // prepareAssetsPackage empties OUT_DIR first: never the package itself, a folder holding it, or
  // a folder of other files given by mistake.
  if (inside(packageDir, outDir) || inside(outDir, packageDir))
    throw new InvalidArgumentError(
      'OUT_DIR',
      `${outDir} and the package folder ${packageDir} overlap: give OUT_DIR a folder outside the package (e.g. model-assets/model).`,
    )
  const info = await stat(outDir).catch(() => undefined)
  if (info && !info.isDirectory())
    throw new InvalidArgumentError('OUT_DIR', `${outDir} is a file: give OUT_DIR a new or empty folder.`)
  if (info && (await readdir(outDir)).length > 0) {
    const manifest = await readFile(join(outDir, 'manifest.json'), 'utf8').catch(() => undefined)
    if (!manifest?.includes('"ondevice-package/'))
      throw new InvalidArgumentError(
        'OUT_DIR',
        `${outDir} holds other files: prepare-assets replaces OUT_DIR, so give it a new or empty folder (or one it wrote before).`,
      )
  }
  const result = await prepareAssetsPackage(packageDir, outDir)
  process.stdout.write(
    `Wrote ${result.files} files to ${outDir}${result.chunkedFiles.length > 0 ? ` (chunked: ${result.chunkedFiles.join(', ')})` : ''}.\n`,
  )
  return 0
}
