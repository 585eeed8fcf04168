// Seeded Qwen3.5 fixture packages: `tiny` (4 layers, layer 3 full attention, V heads > K heads,
// the real Qwen3 tokenizer, builder/fixtures/qwen3-tokenizer.ts) for tests and the embedded default, and
// `0.8b` (Qwen3.5-0.8B's exact shape, random weights, q4 by default) for benchmarks.

import type { PackageManifest } from '../../core/model-package.ts'
import { type Qwen3TokenizerFiles, qwen3TokenizerFiles } from '../fixtures/qwen3-tokenizer.ts'
import type { Qwen35Config } from './qwen3-5-config.ts'
import { type Qwen35PackageDtype, writeQwen35Package } from './qwen3-5-package.ts'
import { qwen35Small08bConfig, randomQwen35Weights, tinyQwen35Config } from './qwen3-5-weights.ts'

export type Qwen35FixtureSize = 'tiny' | '0.8b'

export interface WriteQwen35FixtureOptions {
  readonly outDir: string
  /** Same seed, same weights (default 1). */
  readonly seed?: number
  /** Default: ['fp32', 'q4'] for tiny, ['q4'] for 0.8b. */
  readonly dtypes?: readonly Qwen35PackageDtype[]
  /** Default 'tiny'. */
  readonly size?: Qwen35FixtureSize
  /** The tokenizer files (default the Qwen3 tokenizer with its own chat template). */
  readonly tokenizer?: Qwen3TokenizerFiles
}

/** Qwen3's tokenizer: 151,669 ids; the model vocabulary is padded to 151,936 as Qwen3 does. */
export const qwen3TokenizerVocabularySize = 151_936
/** <|im_end|> and <|endoftext|> in the Qwen3 tokenizer. */
export const qwen3TokenizerEosTokenIds = [151_645, 151_643] as const

/** The fixture's model config (before weights): the tiny test shape or the real 0.8B shape. */
export function qwen35FixtureConfig(size: Qwen35FixtureSize): Qwen35Config {
  const base = size === 'tiny' ? tinyQwen35Config(qwen3TokenizerVocabularySize) : qwen35Small08bConfig()
  // The fixtures ship the Qwen3 tokenizer, so its end-of-turn ids are the ones that stop generation.
  return { ...base, eosTokenId: [...qwen3TokenizerEosTokenIds] }
}

export async function writeQwen35Fixture(options: WriteQwen35FixtureOptions): Promise<PackageManifest> {
  const size = options.size ?? 'tiny'
  if (size !== 'tiny' && size !== '0.8b')
    throw new Error(`Qwen3.5 fixture: size "${String(size)}" is not known: use "tiny" or "0.8b"`)
  const seed = options.seed ?? 1
  if (!Number.isInteger(seed) || seed < 0)
    throw new Error(`Qwen3.5 fixture: seed must be a non-negative integer, got ${seed}`)
  const config = qwen35FixtureConfig(size)
  return writeQwen35Package({
    outDir: options.outDir,
    config,
    weights: randomQwen35Weights(config, seed),
    dtypes: options.dtypes ?? (size === 'tiny' ? ['fp32', 'q4'] : ['q4']),
    tokenizer: options.tokenizer ?? qwen3TokenizerFiles(),
    name: `qwen3_5-${size}-seed${seed}`,
    generationConfig: { do_sample: false },
  })
}
