// `ondevice fixture --arch llama|qwen3|qwen3_5 --out DIR [--seed N] [--dtype ...] [--size ...]`:
// writes a seeded random-weight package with the real Qwen3 tokenizer (tests, demos, benchmarks).
import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { parseArgs } from 'node:util'
import { formatSize, parseDtypes, progressBar } from '../../builder/cli-options.ts'
import {
  type FixtureArchitecture,
  type FixtureChatTemplate,
  fixtureChatTemplates,
  fixtureSizes,
  writeFixture,
} from '../../builder/fixtures/fixture.ts'
import { InvalidArgumentError } from '../../core/errors.ts'
import { prepareOutputFolder } from '../output-folder.ts'

export const help = `Usage: ondevice fixture --arch llama|qwen3|qwen3_5 --out DIR [options]

Writes a model package with seeded random weights (same seed, same bytes) and the real Qwen3
tokenizer. The text it generates is not meaningful; the shapes, I/O and speed are real.

Options:
  --arch A        llama, qwen3 or qwen3_5
  --out DIR       Package folder to create
  --seed N        Weight seed (default 1)
  --dtype D       fp32, q4, q8, fp16 (repeat or comma-separate; default fp32; qwen3_5: fp32, q4, q8)
  --size S        ${Object.entries(fixtureSizes)
    .map(([name, entry]) => `${name} (${entry.arch.join('/')})`)
    .join(', ')}; qwen3_5: tiny, 0.8b
                  (default tiny)
  --attention A   plain (default: standard ops, any backend) or gqa (com.microsoft
                  GroupQueryAttention: one fused node per layer; no left padding)
  --chat-template T
                  qwen3 (default: Qwen3's template; the model opens <think> itself, which a
                  random-weight model never does), think-open (the generation prompt opens
                  <think> as Qwen3.5's does, so every answer starts with reasoning; thinking off
                  writes the empty block) or a .jinja file to carry as the template
  --force         Replace DIR if it exists
  --help, -h      Show this help`

/** The flags this command's parser accepts: every one is in `help` (cli/help.test.ts). */
export const options = {
  arch: { type: 'string' },
  out: { type: 'string' },
  seed: { type: 'string' },
  dtype: { type: 'string', multiple: true },
  size: { type: 'string' },
  force: { type: 'boolean' },
  attention: { type: 'string' },
  'chat-template': { type: 'string' },
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
  const arch = values.arch
  if (arch !== 'llama' && arch !== 'qwen3' && arch !== 'qwen3_5')
    throw new InvalidArgumentError(
      '--arch',
      `Pass --arch llama, qwen3 or qwen3_5 (got ${JSON.stringify(arch)}).`,
    )
  if (!values.out) throw new InvalidArgumentError('--out', 'Pass --out DIR, the package folder to create.')
  const seed = values.seed === undefined ? 1 : Number(values.seed)
  if (!Number.isInteger(seed) || seed < 0)
    throw new InvalidArgumentError('--seed', `--seed must be a non-negative integer (got ${values.seed}).`)
  const attention = values.attention
  if (attention !== undefined && attention !== 'plain' && attention !== 'gqa')
    throw new InvalidArgumentError(
      '--attention',
      `--attention must be plain or gqa (got ${JSON.stringify(attention)}).`,
    )
  const chatTemplate = await chatTemplateOption(values['chat-template'])
  const dtypes = parseDtypes(values.dtype, ['fp32'])
  await prepareOutputFolder(dirname(values.out), '--out', true)
  const manifest = await writeFixture({
    arch: arch as FixtureArchitecture,
    outDir: values.out,
    seed,
    dtype: dtypes,
    ...(values.size === undefined ? {} : { size: values.size }),
    overwrite: values.force ?? false,
    ...(attention ? { attention } : {}),
    ...(chatTemplate === undefined ? {} : { chatTemplate }),
    onProgress: progressBar('fixture'),
  })
  const total = manifest.files.reduce((sum, f) => sum + f.bytes, 0)
  process.stdout.write(
    `${values.out}: ${manifest.modelType} fixture, dtypes ${manifest.dtypes.join(', ')}, ${manifest.files.length} files, ${formatSize(total)}\n`,
  )
  return 0
}

/** --chat-template: a name the builder knows, or a file whose text is the template. */
async function chatTemplateOption(value: string | undefined): Promise<FixtureChatTemplate | undefined> {
  if (value === undefined) return undefined
  if ((fixtureChatTemplates as readonly string[]).includes(value)) return value as FixtureChatTemplate
  const text = await readFile(value, 'utf8').catch(() => undefined)
  if (text === undefined || text.trim() === '')
    throw new InvalidArgumentError(
      '--chat-template',
      `--chat-template takes ${fixtureChatTemplates.join(' or ')}, or a readable, non-empty template file (got ${JSON.stringify(value)}).`,
    )
  return { text }
}
