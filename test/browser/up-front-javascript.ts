// What a page built by Vite loads before its first answer, read from the build's manifest
// (`build.manifest: true`): an entry's chunk and every chunk it imports statically, never those it
// imports with import() (loaded when the code that needs them first runs). Sizes are the files'
// bytes and their gzip -9 bytes (what a server compressing at its best sends), each file on its own.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'

/**
 * The most JavaScript (gzip -9, each file on its own) a page that only calls createClient and
 * chat() may load up front: 24 KiB on 7 December, once the structured-output compiler, the
 * runtime and the chat template's Jinja engine were out of it (116 KiB before). The compiler alone
 * is 29 KiB, Jinja 14: neither can come back unnoticed.
 */
export const pageBudgetBytes = 32 * 2 ** 10

/**
 * Strings only the structured-output compiler holds (error messages survive minification): one
 * from the constraint compiler (constraint.ts), one from the JSON Schema compiler (json-schema.ts).
 */
export const compilerMarkers = [
  'does not apply when a tool call is required',
  'no validator can evaluate it',
] as const

interface ManifestChunk {
  readonly file: string
  readonly name?: string
  readonly isEntry?: boolean
  readonly imports?: readonly string[]
  readonly dynamicImports?: readonly string[]
}

export type ViteManifest = Readonly<Record<string, ManifestChunk>>

export interface ChunkSet {
  /** The files, as paths inside the build folder. */
  readonly files: readonly string[]
  readonly bytes: number
  readonly gzipBytes: number
}

export interface UpFront extends ChunkSet {
  /** What these chunks import with import(): loaded when the code that needs it first runs. */
  readonly onDemand: readonly string[]
}

export async function readViteManifest(dist: string): Promise<ViteManifest> {
  return JSON.parse(await readFile(join(dist, '.vite', 'manifest.json'), 'utf8')) as ViteManifest
}

/** The manifest key of the chunk named `name` (a worker's entry: `device-worker`), exactly one. */
export function chunkKeyNamed(manifest: ViteManifest, name: string): string {
  const keys = Object.keys(manifest).filter((key) => manifest[key]?.name === name && !key.endsWith('.wasm'))
  if (keys.length !== 1)
    throw new Error(`expected one chunk named ${name} in the manifest, found ${keys.join(', ')}`)
  return keys[0] as string
}

/**
 * What the model worker loads before it serves the page: its entry (sdk/device-worker.ts, which
 * only imports the worker's body) and the body it imports at once (sdk/device-worker-host.ts),
 * with every chunk they import statically; `onDemand` is what the body imports with import().
 */
export async function modelWorkerUpFront(dist: string, manifest: ViteManifest): Promise<UpFront> {
  const entry = manifest[chunkKeyNamed(manifest, 'device-worker')] as ManifestChunk
  const body = await upFront(dist, manifest, chunkKeyNamed(manifest, 'device-worker-host'))
  const files = [...new Set([entry.file, ...body.files])]
  return { ...(await sizes(dist, files)), onDemand: body.onDemand }
}

/** The chunk at `key` and every chunk it imports statically, transitively. */
export async function upFront(dist: string, manifest: ViteManifest, key: string): Promise<UpFront> {
  const seen = new Set<string>()
  const pending = [key]
  while (pending.length > 0) {
    const next = pending.pop() as string
    if (seen.has(next)) continue
    const chunk = manifest[next]
    if (chunk === undefined) throw new Error(`${next} is not in the build's manifest`)
    seen.add(next)
    pending.push(...(chunk.imports ?? []))
  }
  const onDemand = new Set<string>()
  for (const each of seen)
    for (const imported of manifest[each]?.dynamicImports ?? [])
      if (!seen.has(imported)) onDemand.add((manifest[imported] as ManifestChunk).file)
  const files = [...seen].map((each) => (manifest[each] as ManifestChunk).file)
  return { ...(await sizes(dist, files)), onDemand: [...onDemand].sort() }
}

export async function sizes(dist: string, files: readonly string[]): Promise<ChunkSet> {
  let bytes = 0
  let gzipBytes = 0
  for (const file of files) {
    const body = await readFile(join(dist, file))
    bytes += body.byteLength
    gzipBytes += gzipSync(body, { level: 9 }).byteLength
  }
  return { files: [...files].sort(), bytes, gzipBytes }
}

export const kib = (bytes: number): string => `${(bytes / 2 ** 10).toFixed(1)} KiB`

/** The part of esbuild's metafile (`metafile: true`, `--metafile=`) that says what loads what. */
export interface EsbuildMetafile {
  readonly outputs: Readonly<
    Record<
      string,
      {
        readonly entryPoint?: string
        readonly imports: readonly {
          readonly path: string
          readonly kind: string
          readonly external?: boolean
        }[]
        readonly inputs: Readonly<Record<string, { readonly bytesInOutput: number }>>
      }
    >
  >
}

export interface EsbuildUpFront extends UpFront {
  /** The modules (esbuild's input paths) whose code those chunks hold. */
  readonly modules: readonly string[]
}

/**
 * What a page built by esbuild with `--splitting` loads before its first answer: the output of
 * `entryPoint` (as the build named it) and every chunk it imports statically, transitively, never
 * those it imports with import(). esbuild makes the entry import every chunk holding code of a
 * module it reaches through a static import, whether or not the page uses anything of it (a
 * re-export it never calls included), so this is the figure that shows such an import. Paths are
 * the metafile's, relative to esbuild's working directory `cwd`.
 */
export async function esbuildUpFront(
  cwd: string,
  metafile: EsbuildMetafile,
  entryPoint: string,
): Promise<EsbuildUpFront> {
  const entries = Object.keys(metafile.outputs).filter(
    (path) => metafile.outputs[path]?.entryPoint === entryPoint && path.endsWith('.js'),
  )
  if (entries.length !== 1)
    throw new Error(`expected one output for ${entryPoint} in the metafile, found ${entries.join(', ')}`)
  const seen = new Set<string>()
  const pending = [entries[0] as string]
  while (pending.length > 0) {
    const next = pending.pop() as string
    if (seen.has(next)) continue
    seen.add(next)
    for (const { path, kind, external } of metafile.outputs[next]?.imports ?? [])
      if (kind === 'import-statement' && !external) pending.push(path)
  }
  const onDemand = new Set<string>()
  const modules = new Set<string>()
  for (const each of seen) {
    const output = metafile.outputs[each]
    for (const { path, kind, external } of output?.imports ?? [])
      if (kind === 'dynamic-import' && !external && !seen.has(path)) onDemand.add(path)
    for (const [input, { bytesInOutput }] of Object.entries(output?.inputs ?? {}))
      if (bytesInOutput > 0) modules.add(input)
  }
  return {
    ...(await sizes(cwd, [...seen])),
    onDemand: [...onDemand].sort(),
    modules: [...modules].sort(),
  }
}
