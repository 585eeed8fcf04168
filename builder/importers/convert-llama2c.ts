// llama2.c checkpoint + tokenizer.bin → an ondevice package (stories260K and friends).

import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import type { PackageManifest } from '../../core/model-package.ts'
import type { BuilderDtype } from '../architectures/decoder-graph.ts'
import { writeModelPackage } from '../package/package-writer.ts'
import { readLlama2cCheckpoint, readLlama2cTokenizer } from './llama2c.ts'
import { convertLlama2cTokenizer } from './llama2c-tokenizer.ts'

export interface ConvertLlama2cOptions {
  readonly checkpointPath: string
  readonly tokenizerPath: string
  readonly outDir: string
  readonly dtypes?: readonly BuilderDtype[]
  readonly name?: string
  readonly overwrite?: boolean
  /** 'gqa' writes com.microsoft GroupQueryAttention (see DecoderGraphOptions.attention). */
  readonly attention?: 'plain' | 'gqa'
  readonly onProgress?: (event: { step: string; done: number; total: number }) => void
}

export async function convertLlama2c(options: ConvertLlama2cOptions): Promise<PackageManifest> {
  const weights = readLlama2cCheckpoint(
    new Uint8Array(readFileSync(options.checkpointPath)),
    basename(options.checkpointPath),
  )
  const vocabulary = readLlama2cTokenizer(
    new Uint8Array(readFileSync(options.tokenizerPath)),
    weights.config.vocabSize,
    basename(options.tokenizerPath),
  )
  const tokenizer = convertLlama2cTokenizer(vocabulary)
  return writeModelPackage({
    outDir: options.outDir,
    weights,
    tokenizer: { tokenizerJson: tokenizer.tokenizerJson, tokenizerConfigJson: tokenizer.tokenizerConfigJson },
    dtypes: options.dtypes ?? ['fp32'],
    name: options.name ?? basename(options.checkpointPath).replace(/\.bin$/, ''),
    // llama2.c ends a story when the model emits BOS (id 1); </s> (2) ends it too.
    generationConfig: { bos_token_id: 1, eos_token_id: [1, 2] },
    ...(options.overwrite === undefined ? {} : { overwrite: options.overwrite }),
    ...(options.attention ? { graph: { attention: options.attention } } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  })
}
