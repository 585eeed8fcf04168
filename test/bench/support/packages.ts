// The model packages the benchmarks run, built on first use into a cache folder (never committed)
// and reused while the builder's source is unchanged: stories260K converted from llama2.c (real
// weights, from ../shared when present), the tiny Qwen3.5 fixture, and random-weight packages in
// the full shapes of Qwen3-0.6B and Qwen3.5-0.8B.
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { writeQwen35Fixture } from '../../../builder/architectures/qwen3-5-fixture.ts'
import { writeFixture } from '../../../builder/fixtures/fixture.ts'
import { readLlama2cCheckpoint, readLlama2cTokenizer } from '../../../builder/importers/llama2c.ts'
import { convertLlama2cTokenizer } from '../../../builder/importers/llama2c-tokenizer.ts'
import { readModelSummary } from '../../../builder/onnx/model-reader.ts'
import { writeModelPackage } from '../../../builder/package/package-writer.ts'

export const repositoryRoot = resolve(import.meta.dirname, '../../..')
export const stories260KFolder = resolve(repositoryRoot, '../shared/models/stories260K')

export type PackageId = 'stories260K' | 'qwen3_5-tiny' | 'qwen3-0.6b' | 'qwen3_5-0.8b'

export interface BenchPackage {
  readonly id: PackageId
  readonly label: string
  readonly folder: string
  readonly dtypes: readonly string[]
  /** Qwen3.5 (embed_tokens + decoder_model_merged). */
  readonly split: boolean
  /** Most tokens the model takes (prompt + answer). */
  readonly contextLength: number
  /** Full-size shapes get fewer repetitions. */
  readonly large: boolean
  /** Prompts come from the package's tokenizer; stories260K starts with BOS. */
  readonly bosTokenId: number | undefined
}

interface Recipe {
  readonly label: string
  readonly dtypes: readonly string[]
  readonly split: boolean
  readonly large: boolean
  readonly build: (outDir: string) => Promise<unknown>
  readonly available?: () => string | undefined
}

const recipes: Record<PackageId, Recipe> = {
  stories260K: {
    label: 'stories260K (llama2.c, real weights)',
    dtypes: ['fp32', 'q4'],
    split: false,
    large: false,
    available: () =>
      existsSync(join(stories260KFolder, 'stories260K.bin'))
        ? undefined
        : `${stories260KFolder} is absent (real weights live outside the repository)`,
    build: async (outDir) => {
      const weights = readLlama2cCheckpoint(
        new Uint8Array(readFileSync(join(stories260KFolder, 'stories260K.bin'))),
      )
      const tokenizer = convertLlama2cTokenizer(
        readLlama2cTokenizer(
          new Uint8Array(readFileSync(join(stories260KFolder, 'tok512.bin'))),
          weights.config.vocabSize,
        ),
      )
      await writeModelPackage({
        outDir,
        weights,
        tokenizer,
        dtypes: ['fp32', 'q4'],
        name: 'stories260K',
        overwrite: true,
      })
    },
  },
  'qwen3_5-tiny': {
    label: 'Qwen3.5 tiny fixture (random)',
    dtypes: ['fp32', 'q4', 'q8'],
    split: true,
    large: false,
    build: (outDir) => writeQwen35Fixture({ outDir, size: 'tiny', dtypes: ['fp32', 'q4', 'q8'] }),
  },
  'qwen3-0.6b': {
    label: 'Qwen3-0.6B shape (random)',
    dtypes: ['q4', 'q8'],
    split: false,
    large: true,
    build: (outDir) =>
      writeFixture({ arch: 'qwen3', size: 'qwen3-0.6b', dtype: ['q4', 'q8'], outDir, overwrite: true }),
  },
  'qwen3_5-0.8b': {
    label: 'Qwen3.5-0.8B shape (random)',
    // q8 for onnxruntime-web's WASM (its fast format) in group 7.
    dtypes: ['q4', 'q8'],
    split: true,
    large: true,
    build: (outDir) => writeQwen35Fixture({ outDir, size: '0.8b', dtypes: ['q4', 'q8'] }),
  },
}

export const packageIds = Object.keys(recipes) as PackageId[]

/** Why a package can't be built here, or undefined when it can. */
export function unavailableReason(id: PackageId): string | undefined {
  return recipes[id].available?.()
}

/** A fingerprint of everything that decides the bytes of a package: the builder's and core's package code. */
export function builderFingerprint(): string {
  const hash = createHash('sha256')
  const files: string[] = []
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name)
      // The builder's test harness does not change what a package holds.
      if (entry.isDirectory()) {
        if (entry.name !== 'testing') walk(path)
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) files.push(path)
    }
  }
  walk(join(repositoryRoot, 'builder'))
  files.push(join(repositoryRoot, 'core/model-package.ts'))
  for (const file of files.sort())
    hash.update(relative(repositoryRoot, file)).update('\0').update(readFileSync(file)).update('\0')
  return hash.digest('hex').slice(0, 16)
}

export function defaultCacheFolder(): string {
  return resolve(process.env.ONDEVICE_BENCH_CACHE ?? join(repositoryRoot, '.cache/bench'))
}

let fingerprint: string | undefined
let keepPackages = false
const keptNotices = new Set<string>()

/** --keep-packages: reuse complete packages even when built by older builder code. */
export function setKeepPackages(keep: boolean): void {
  keepPackages = keep
}

/** The package's folder, built now when it is missing or was built by different builder code. */
export async function ensurePackage(
  id: PackageId,
  cacheFolder: string,
  log: (line: string) => void,
  keep = keepPackages,
): Promise<BenchPackage> {
  const recipe = recipes[id]
  const missing = recipe.available?.()
  if (missing) throw new Error(`${id}: ${missing}`)
  fingerprint ??= builderFingerprint()
  const folder = join(cacheFolder, 'packages', id)
  const stampPath = join(folder, 'bench-build.json')
  const stamp = existsSync(stampPath)
    ? (JSON.parse(readFileSync(stampPath, 'utf8')) as { fingerprint?: string })
    : undefined
  const complete = existsSync(join(folder, 'manifest.json'))
  if (keep && complete && stamp?.fingerprint !== fingerprint && !keptNotices.has(id)) {
    keptNotices.add(id)
    log(`keeping ${id} although the builder changed since it was built (--keep-packages)`)
  }
  if (!(keep && complete) && (stamp?.fingerprint !== fingerprint || !complete)) {
    log(`building ${id} into ${folder} (${stamp ? 'builder changed since the last build' : 'first use'})...`)
    mkdirSync(join(cacheFolder, 'packages'), { recursive: true })
    rmSync(folder, { recursive: true, force: true })
    const started = performance.now()
    await recipe.build(folder)
    const seconds = (performance.now() - started) / 1000
    writeFileSync(
      stampPath,
      `${JSON.stringify({ fingerprint, builtAt: new Date().toISOString(), seconds }, null, 2)}\n`,
    )
    log(`built ${id} in ${seconds.toFixed(1)} s`)
  }
  const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as {
    max_position_embeddings?: number
    bos_token_id?: number
  }
  return {
    id,
    label: recipe.label,
    folder,
    dtypes: recipe.dtypes,
    split: recipe.split,
    large: recipe.large,
    contextLength: config.max_position_embeddings ?? 2048,
    bosTokenId: id === 'stories260K' ? (config.bos_token_id ?? 1) : undefined,
  }
}

/**
 * Bytes of weights one decode step reads from the decoder graph of one dtype: every initializer
 * once, except tables that only an embedding lookup (Gather / GatherBlockQuantized) reads, which
 * cost one row per token. A tied lm_head that reads the table as a matrix counts it whole.
 */
export function decoderWeightBytes(pkg: BenchPackage, dtype: string): { perToken: number; stored: number } {
  const suffix = dtype === 'fp32' ? '' : dtype === 'q8' ? '_quantized' : `_${dtype}`
  const path = join(
    pkg.folder,
    'onnx',
    pkg.split ? `decoder_model_merged${suffix}.onnx` : `model${suffix}.onnx`,
  )
  const summary = readModelSummary(new Uint8Array(readFileSync(path)))
  const lookupOnly = new Map<string, boolean>()
  for (const node of summary.nodes) {
    node.inputs.forEach((input, index) => {
      const lookup =
        (node.opType === 'Gather' && index === 0) || (node.opType === 'GatherBlockQuantized' && index !== 1)
      lookupOnly.set(input, (lookupOnly.get(input) ?? true) && lookup)
    })
  }
  let perToken = 0
  let stored = 0
  for (const initializer of summary.initializers) {
    const bytes = initializer.external?.length ?? initializer.inlineBytes
    stored += bytes
    perToken +=
      lookupOnly.get(initializer.name) && (initializer.dims[0] ?? 0) > 0
        ? bytes / (initializer.dims[0] as number)
        : bytes
  }
  return { perToken, stored }
}
