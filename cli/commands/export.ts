// `ondevice export --format gguf --in PACKAGE --out FILE.gguf [--dtype D]`: a package's float
// weights and tokenizer as a llama.cpp GGUF file (llama.cpp, wllama, ollama and friends load it).
import { existsSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { parseArgs } from 'node:util'
import { formatSize, progressBar } from '../../builder/cli-options.ts'
import { InvalidArgumentError } from '../../core/errors.ts'
import { prepareOutputFolder } from '../output-folder.ts'

export const help = `Usage: ondevice export --format gguf --in DIR --out FILE.gguf [--dtype D] [--force]

Writes a package's weights and tokenizer as a GGUF v3 file for llama.cpp (and wllama, its
WebAssembly build). Reads the package's fp32 (or fp16) ONNX file: write the package with
--dtype fp32 (ondevice convert / ondevice fixture). llama, qwen3 and Qwen3.5 (text) packages;
Qwen3.5 is written as llama.cpp's qwen35 architecture.

Options:
  --format F   gguf (the only format so far)
  --in DIR     Package folder (config.json, tokenizer.json, onnx/model.onnx, or Qwen3.5's
               onnx/embed_tokens.onnx + onnx/decoder_model_merged.onnx)
  --out FILE   GGUF file to write (written whole or not at all)
  --dtype D    f32, f16, q8_0, q4_0 or q4_1 (default q8_0); the builder's names map to the
               nearest type: fp32 → f32, fp16 → f16, q8 → q8_0, q4 → q4_1. Norms stay f32;
               a matrix whose rows are not whole 32-value blocks is written as f16.
  --force      Replace FILE if it exists
  --help, -h   Show this help

Progress goes to stderr.`

/** The flags this command's parser accepts: every one is in `help` (cli/help.test.ts). */
export const options = {
  format: { type: 'string' },
  in: { type: 'string' },
  out: { type: 'string' },
  dtype: { type: 'string' },
  force: { type: 'boolean' },
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
  if (values.format !== 'gguf')
    throw new InvalidArgumentError(
      '--format',
      `Pass --format gguf, the format to write (got ${JSON.stringify(values.format)}).`,
    )
  if (!values.in || !existsSync(values.in) || !statSync(values.in).isDirectory())
    throw new InvalidArgumentError(
      '--in',
      `Pass --in DIR, an existing package folder (got ${JSON.stringify(values.in)}).`,
    )
  if (!values.out) throw new InvalidArgumentError('--out', 'Pass --out FILE.gguf, the file to write.')
  await prepareOutputFolder(dirname(values.out) || '.', '--out', false)
  if (existsSync(values.out) && !values.force)
    throw new InvalidArgumentError('--out', `${values.out} exists: pass --force to replace it.`)
  const { parseGgufDtype, readGgufSource, writeGguf } = await import('../../builder/gguf/index.ts')
  let dtype: ReturnType<typeof parseGgufDtype>
  try {
    dtype = parseGgufDtype(values.dtype ?? 'q8_0')
  } catch (error) {
    throw new InvalidArgumentError('--dtype', (error as Error).message)
  }
  const source = await readGgufSource(values.in)
  const result = await writeGguf({
    weights: source.weights,
    tokenizer: source.tokenizer,
    dtype,
    outPath: values.out,
    name: source.name,
    overwrite: values.force ?? false,
    onProgress: progressBar('export'),
  })
  process.stdout.write(
    `${values.out}: GGUF v3, ${result.architecture}, ${dtype}, ${result.tensors} tensors, ${formatSize(result.bytes)}` +
      (result.fallbacks.length > 0
        ? ` (${result.fallbacks.length} written as f16: rows not whole blocks)`
        : '') +
      '\n',
  )
  return 0
}
