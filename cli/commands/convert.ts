// `ondevice convert`: a llama2.c checkpoint or a Hugging Face safetensors folder → a package.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { formatSize, parseDtypes, progressBar } from '../../builder/cli-options.ts'
import { convertLlama2c } from '../../builder/importers/convert-llama2c.ts'
import { convertHfCheckpoint } from '../../builder/importers/hf-decoder.ts'
import { InvalidArgumentError } from '../../core/errors.ts'
import { type PackageManifest, parseModelConfig } from '../../core/model-package.ts'
import { prepareOutputFolder } from '../output-folder.ts'

export const help = `Usage:
  ondevice convert --from llama2c --checkpoint FILE --tokenizer FILE --out DIR [--dtype D] [--force]
  ondevice convert --from safetensors --in DIR --out DIR [--dtype D] [--force]

Converts a checkpoint into a model package (config.json, tokenizer files, onnx/model*.onnx,
manifest.json). Nothing is left in --out if the conversion fails.

Options:
  --from F          llama2c (legacy .bin + tokenizer.bin) or safetensors (Hugging Face folder:
                    config.json, model.safetensors or shards, tokenizer.json; llama, qwen3, qwen3_5)
  --checkpoint FILE llama2.c checkpoint (e.g. stories260K.bin)
  --tokenizer FILE  llama2.c tokenizer (e.g. tok512.bin)
  --in DIR          Hugging Face model folder
  --out DIR         Package folder to create
  --dtype D         fp32, q4, q8, fp16 (repeat or comma-separate; default fp32,q4,q8)
  --attention A     plain (default: standard ops, any backend) or gqa (com.microsoft
                    GroupQueryAttention: one fused node per layer; no left padding)
  --force           Replace DIR if it exists
  --help, -h        Show this help

Progress goes to stderr.`

/** The flags this command's parser accepts: every one is in `help` (cli/help.test.ts). */
export const options = {
  from: { type: 'string' },
  checkpoint: { type: 'string' },
  tokenizer: { type: 'string' },
  in: { type: 'string' },
  out: { type: 'string' },
  dtype: { type: 'string', multiple: true },
  force: { type: 'boolean' },
  attention: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options,
    strict: true,
  })
  if (values.help) {
    process.stdout.write(`${help}\n`)
    return 0
  }
  if (!values.out) throw new InvalidArgumentError('--out', 'Pass --out DIR, the package folder to create.')
  const attention = values.attention
  if (attention !== undefined && attention !== 'plain' && attention !== 'gqa')
    throw new InvalidArgumentError(
      '--attention',
      `--attention must be plain or gqa (got ${JSON.stringify(attention)}).`,
    )
  const dtypes = parseDtypes(values.dtype, ['fp32', 'q4', 'q8'])
  await prepareOutputFolder(dirname(values.out), '--out', true)
  const overwrite = values.force ?? false
  const onProgress = progressBar('convert')
  let manifest: PackageManifest
  if (values.from === 'llama2c') {
    for (const [flag, value] of [
      ['--checkpoint', values.checkpoint],
      ['--tokenizer', values.tokenizer],
    ] as const)
      if (!value || !existsSync(value))
        throw new InvalidArgumentError(
          flag,
          `Pass ${flag} FILE (an existing file; got ${JSON.stringify(value)}).`,
        )
    manifest = await convertLlama2c({
      checkpointPath: values.checkpoint!,
      tokenizerPath: values.tokenizer!,
      outDir: values.out,
      dtypes,
      overwrite,
      onProgress,
      ...(attention ? { attention } : {}),
    })
  } else if (values.from === 'safetensors') {
    if (!values.in || !existsSync(join(values.in, 'config.json')))
      throw new InvalidArgumentError(
        '--in',
        `Pass --in DIR, a Hugging Face model folder with config.json (got ${JSON.stringify(values.in)}).`,
      )
    const config = parseModelConfig(readFileSync(join(values.in, 'config.json'), 'utf8'))
    if (config.modelType === 'qwen3_5' || config.modelType === 'qwen3_5_text') {
      const { convertQwen35Checkpoint } = await import('../../builder/importers/qwen3-5-safetensors.ts')
      const qwen35Dtypes = dtypes.filter((d) => d === 'fp32' || d === 'q4' || d === 'q8')
      if (qwen35Dtypes.length === 0)
        throw new InvalidArgumentError('--dtype', 'Qwen3.5 packages are written as fp32, q4 or q8.')
      if (overwrite) (await import('node:fs')).rmSync(values.out, { recursive: true, force: true })
      onProgress({ step: 'converting Qwen3.5', done: 0, total: 1 })
      manifest = await convertQwen35Checkpoint({
        checkpointDir: values.in,
        outDir: values.out,
        dtypes: qwen35Dtypes,
      })
      onProgress({ step: 'done', done: 1, total: 1 })
    } else
      manifest = await convertHfCheckpoint({
        inDir: values.in,
        outDir: values.out,
        dtypes,
        overwrite,
        onProgress,
      })
  } else
    throw new InvalidArgumentError(
      '--from',
      `Pass --from llama2c or --from safetensors (got ${JSON.stringify(values.from)}).`,
    )
  const total = manifest.files.reduce((sum, f) => sum + f.bytes, 0)
  process.stdout.write(
    `${values.out}: ${manifest.modelType}, dtypes ${manifest.dtypes.join(', ')}, ${manifest.files.length} files, ${formatSize(total)}\n`,
  )
  return 0
}
