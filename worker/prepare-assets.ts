// Copies a model package into a folder to deploy as a Worker's static assets. Workers cap one
// asset at 25 MiB, so every file over the chunk size (4 MiB by default: ONNX external data, and
// tokenizer.json or a graph when they are that large) is split into chunks plus an index that
// assetsPackageReader joins back; the package's manifest.json still names the whole files, so
// verification checks exactly what the builder wrote. Node only (deploy-time tool).
//
//   npx node worker/prepare-assets.ts <package-folder> <assets-folder>/<prefix>
import { copyFile, mkdir, open, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import { InvalidArgumentError } from '../core/errors.ts'
import { type ChunkIndex, chunkIndexPath } from './package-sources.ts'

/**
 * Workers serve assets of up to 25 MiB. Chunks are kept far smaller: where the assets binding
 * answers no Range request (wrangler dev's does not), the engine's streamed load reads one chunk
 * whole at a time, so this bounds what a Worker isolate holds in JavaScript while a model loads.
 */
export const defaultChunkBytes = 4 * 1024 * 1024

async function listFiles(root: string, folder = root): Promise<string[]> {
  const files: string[] = []
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const full = join(folder, entry.name)
    if (entry.isDirectory()) files.push(...(await listFiles(root, full)))
    else if (entry.isFile()) files.push(relative(root, full).split(sep).join('/'))
  }
  return files
}

export interface PrepareAssetsResult {
  readonly files: number
  readonly chunkedFiles: readonly string[]
}

export async function prepareAssetsPackage(
  packageDir: string,
  outDir: string,
  options: { readonly chunkBytes?: number } = {},
): Promise<PrepareAssetsResult> {
  const chunkBytes = options.chunkBytes ?? defaultChunkBytes
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > 25 * 1024 * 1024) {
    throw new InvalidArgumentError(
      'chunkBytes',
      'chunkBytes must be an integer from 1 to 25 MiB (the Workers asset limit).',
    )
  }
  const files = await listFiles(packageDir).catch((cause: unknown) => {
    throw new InvalidArgumentError(
      'packageDir',
      `Cannot read the package folder ${packageDir}: ${String(cause)}.`,
    )
  })
  if (!files.includes('config.json')) {
    throw new InvalidArgumentError(
      'packageDir',
      `${packageDir} has no config.json: point at a model package folder.`,
    )
  }
  await rm(outDir, { recursive: true, force: true })
  const chunkedFiles: string[] = []
  for (const path of files) {
    const source = join(packageDir, path)
    const size = (await stat(source)).size
    await mkdir(dirname(join(outDir, path)), { recursive: true })
    if (size <= chunkBytes) {
      await copyFile(source, join(outDir, path))
      continue
    }
    chunkedFiles.push(path)
    const handle = await open(source, 'r')
    try {
      const chunks: { path: string; bytes: number }[] = []
      for (let offset = 0, index = 0; offset < size; offset += chunkBytes, index++) {
        const length = Math.min(chunkBytes, size - offset)
        const buffer = Buffer.alloc(length)
        await handle.read(buffer, 0, length, offset)
        const chunkPath = `${path}.chunk-${index}`
        await writeFile(join(outDir, chunkPath), buffer)
        chunks.push({ path: chunkPath, bytes: length })
      }
      const index: ChunkIndex = { bytes: size, chunks }
      await writeFile(join(outDir, chunkIndexPath(path)), JSON.stringify(index))
    } finally {
      await handle.close()
    }
  }
  return { files: files.length, chunkedFiles }
}

if (import.meta.main) {
  const [packageDir, outDir] = process.argv.slice(2)
  if (!packageDir || !outDir) {
    console.error('usage: npx node worker/prepare-assets.ts <package-folder> <assets-folder>/<prefix>')
    process.exit(2)
  }
  const result = await prepareAssetsPackage(packageDir, outDir)
  console.log(
    `Wrote ${result.files} files to ${outDir}${result.chunkedFiles.length > 0 ? ` (chunked: ${result.chunkedFiles.join(', ')})` : ''}.`,
  )
}
