// A package that is a local folder (a built or converted package, an onnx-community checkout):
// read in place, never written to or removed; every file manifest.json lists is checked against
// its sha256 before first use (the memo spares the hashing on later runs).
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ModelError, StoreError } from '../../core/errors.ts'
import { assertPackagePath, manifestEntry, parseManifest } from './manifest.ts'
import { shared } from './shared-work.ts'
import type { EnsureOptions, StoredPackage } from './types.ts'
import type { VerifiedMemo } from './verified-memo.ts'

export async function openFolderPackage(
  folder: string,
  memo: VerifiedMemo,
  warn: (message: string) => void,
): Promise<StoredPackage> {
  let info: Awaited<ReturnType<typeof stat>>
  try {
    info = await stat(folder)
  } catch {
    throw new ModelError(
      'model_not_found',
      `No model package at ${folder}: the path does not exist. Pass a package folder (config.json, tokenizer.json, onnx/) or a URL prefix.`,
    )
  }
  if (!info.isDirectory())
    throw new ModelError(
      'model_invalid',
      `${folder} is a file, not a model package folder. Pass the folder that holds config.json.`,
    )
  const manifestText = await readFile(join(folder, 'manifest.json'), 'utf8').catch(() => undefined)
  const manifest = manifestText === undefined ? undefined : parseManifest(manifestText, folder)
  const hasConfig = await stat(join(folder, 'config.json')).then(
    () => true,
    () => false,
  )
  if (!hasConfig) {
    throw new ModelError(
      'model_invalid',
      `${folder} is not a model package: it has no config.json. Point --model at a folder written by 'ondevice convert' / 'ondevice fixture', or an onnx-community model folder.`,
    )
  }
  const warnings: string[] = []
  if (!manifest) {
    warnings.push(`${folder} has no manifest.json: its files are used without an integrity check.`)
    warn(warnings[0] as string)
  }
  const verified = new Set<string>()
  const local = (path: string): string => {
    assertPackagePath(path)
    return join(folder, ...path.split('/'))
  }
  const ensure = async (paths: readonly string[], ensureOptions: EnsureOptions = {}): Promise<void> => {
    const total = paths.reduce<number | undefined>((sum, path) => {
      const bytes = manifestEntry(manifest, path)?.bytes
      return sum === undefined || bytes === undefined ? undefined : sum + bytes
    }, 0)
    let loaded = 0
    for (const path of paths) {
      ensureOptions.signal?.throwIfAborted()
      const file = local(path)
      const size = await stat(file).then(
        (s) => s.size,
        () => undefined,
      )
      if (size === undefined)
        throw new ModelError(
          'model_not_found',
          `The package ${folder} has no file ${path}. Rebuild or re-copy the package.`,
        )
      const entry = manifestEntry(manifest, path)
      if (manifest && !entry)
        throw new ModelError(
          'model_invalid',
          `${path} is not listed in ${folder}/manifest.json, so it cannot be verified. Rebuild the package so its manifest lists every file.`,
        )
      if (entry && !verified.has(path)) {
        await shared(file, async () => {
          if (!(await memo.verify(file, entry))) {
            throw new StoreError(
              'integrity_failed',
              `${join(folder, path)} does not match the sha256/size in manifest.json: the file is corrupted or was changed. Rebuild or re-copy the package.`,
            )
          }
        })
        verified.add(path)
      }
      loaded += size
      ensureOptions.onProgress?.({
        phase: 'cached',
        file: path,
        fileLoadedBytes: size,
        fileTotalBytes: size,
        loadedBytes: loaded,
        totalBytes: total,
      })
    }
  }
  return {
    source: folder,
    kind: 'folder',
    manifest,
    warnings,
    directory: folder,
    ensure,
    exists: async (path) =>
      manifest
        ? manifestEntry(manifest, path) !== undefined
        : stat(local(path)).then(
            () => true,
            () => false,
          ),
    size: async (path) =>
      manifestEntry(manifest, path)?.bytes ??
      stat(local(path)).then(
        (s) => s.size,
        () => undefined,
      ),
    readText: async (path) => {
      await ensure([path])
      return readFile(local(path), 'utf8')
    },
    readBytes: async (path) => {
      await ensure([path])
      return new Uint8Array(await readFile(local(path)))
    },
    localPath: (path) => local(path),
    // The folder belongs to the user, not the store: nothing is removed from it.
    discard: async (paths) => {
      for (const path of paths) assertPackagePath(path)
    },
  }
}
