// manifest.json parsing and the path rules every store applies: a package path is relative,
// uses '/', and never climbs out of the package (no '..', no absolute paths, no drive letters),
// because these paths become file names on disk and cache keys.

import { ModelError } from '../../core/errors.ts'
import { htmlPageReason, isHtmlPage } from '../../core/html-page.ts'
import type { PackageFileEntry, StoreManifest } from './types.ts'

/** Throws ModelError('model_invalid') unless `path` is a safe package-relative path. */
export function assertPackagePath(path: string, where = 'package path'): void {
  const bad =
    typeof path !== 'string' ||
    path === '' ||
    path.length > 512 ||
    path.startsWith('/') ||
    path.includes('\\') ||
    path.includes('\0') ||
    /^[a-zA-Z]:/.test(path) ||
    path.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')
  if (bad) {
    throw new ModelError(
      'model_invalid',
      `Unsafe ${where} ${JSON.stringify(path)}: package paths must be relative, use '/', and may not contain '..', '.' or empty segments.`,
    )
  }
}

/** Largest manifest.json read (a manifest lists files: a few hundred bytes each). */
export const maximumManifestBytes = 4 * 1024 * 1024

/** What an HTML page where manifest.json should be means: the sentence every reader says it in. */
export function htmlManifestMessage(source: string): string {
  return `manifest.json of ${source} is not a package manifest: ${htmlPageReason(`${source.replace(/\/?$/, '/')}manifest.json`)}. Check that the model URL is the folder that holds config.json and manifest.json.`
}

export function parseManifest(text: string, source: string): StoreManifest {
  if (isHtmlPage(undefined, text)) throw new ModelError('model_invalid', htmlManifestMessage(source))
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw new ModelError(
      'model_invalid',
      `manifest.json of ${source} is not valid JSON: ${(error as Error).message}. Rebuild the package.`,
      { cause: error },
    )
  }
  if (typeof json !== 'object' || json === null)
    throw new ModelError('model_invalid', `manifest.json of ${source} must be a JSON object.`)
  const record = json as Record<string, unknown>
  if (typeof record.format !== 'string' || !record.format.startsWith('ondevice-package/')) {
    throw new ModelError(
      'model_invalid',
      `manifest.json of ${source} has format ${JSON.stringify(record.format)}; expected 'ondevice-package/1'.`,
    )
  }
  if (!Array.isArray(record.files))
    throw new ModelError('model_invalid', `manifest.json of ${source} has no 'files' array.`)
  const seen = new Set<string>()
  const files: PackageFileEntry[] = record.files.map((entry: unknown, index: number) => {
    const file = entry as Record<string, unknown>
    if (typeof file !== 'object' || file === null)
      throw new ModelError('model_invalid', `manifest.json files[${index}] of ${source} must be an object.`)
    assertPackagePath(file.path as string, `manifest.json files[${index}].path`)
    if (typeof file.bytes !== 'number' || !Number.isSafeInteger(file.bytes) || file.bytes < 0) {
      throw new ModelError(
        'model_invalid',
        `manifest.json files[${index}].bytes of ${source} must be a non-negative integer.`,
      )
    }
    if (typeof file.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(file.sha256)) {
      throw new ModelError(
        'model_invalid',
        `manifest.json files[${index}].sha256 of ${source} must be 64 lowercase hex digits.`,
      )
    }
    if (seen.has(file.path as string))
      throw new ModelError('model_invalid', `manifest.json of ${source} lists ${file.path as string} twice.`)
    seen.add(file.path as string)
    return { path: file.path as string, bytes: file.bytes, sha256: file.sha256 }
  })
  return { ...(record as object), format: record.format, files } as StoreManifest
}

export function manifestEntry(
  manifest: StoreManifest | undefined,
  path: string,
): PackageFileEntry | undefined {
  return manifest?.files.find((file) => file.path === path)
}

export function toHex(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)
  let out = ''
  for (const byte of view) out += byte.toString(16).padStart(2, '0')
  return out
}
