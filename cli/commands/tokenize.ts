// `ondevice tokenize --tokenizer DIR --text "..." [--json]`: shows how a model package's tokenizer
// splits a text, so prompts and stop strings can be checked without loading the model.
import { existsSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { loadPackageTokenizer } from '../../client-runtime/package-tokenizer.ts'
import { InvalidArgumentError } from '../../core/errors.ts'
import type { Tokenizer } from '../../core/tokenizer.ts'

export const help = `Usage: ondevice tokenize --tokenizer DIR (--text TEXT | --file PATH) [--json] [--no-special]

Prints the token ids of TEXT and, per token, its vocabulary piece and the text it decodes to.

Options:
  --tokenizer DIR  A model package folder (tokenizer.json, tokenizer_config.json, ...)
  --text TEXT      The text to tokenize
  --file PATH      Read the text from a file instead ('-' for standard input)
  --json           Print { count, ids, pieces, texts } as JSON
  --no-special     Do not add the special tokens the tokenizer's post-processor adds (e.g. BOS)
  --help, -h       Show this help`

/** A package folder's tokenizer (tokenizer.json required, the rest when present), as every host builds it. */
export async function loadTokenizerFromDirectory(directory: string): Promise<Tokenizer> {
  const tokenizerPath = join(directory, 'tokenizer.json')
  if (!existsSync(tokenizerPath)) {
    throw new InvalidArgumentError(
      '--tokenizer',
      `${tokenizerPath} does not exist: pass a model package folder that has tokenizer.json.`,
    )
  }
  return loadPackageTokenizer({
    readText: (path) => readFile(join(directory, path), 'utf8'),
    readBytes: async (path) => new Uint8Array(await readFile(join(directory, path))),
    exists: async (path) => existsSync(join(directory, path)),
  })
}

/** The flags this command's parser accepts: every one is in `help` (cli/help.test.ts). */
export const options = {
  tokenizer: { type: 'string' },
  text: { type: 'string' },
  file: { type: 'string' },
  json: { type: 'boolean' },
  // Its own name, as serve's --no-preload: parseArgs' allowNegative also took --no-json, --no-help
  // and --special, which no help listed.
  'no-special': { type: 'boolean' },
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
  if (values.tokenizer === undefined) {
    throw new InvalidArgumentError(
      '--tokenizer',
      '--tokenizer DIR is required: the model package folder holding tokenizer.json.',
    )
  }
  if ((values.text === undefined) === (values.file === undefined)) {
    throw new InvalidArgumentError('--text', 'Pass exactly one of --text TEXT or --file PATH.')
  }
  const text = values.text ?? readFileSync(values.file === '-' ? 0 : values.file!, 'utf8')
  const tokenizer = await loadTokenizerFromDirectory(values.tokenizer)
  const { ids, pieces } = tokenizer.tokenize(text, { addSpecialTokens: values['no-special'] !== true })
  const texts = ids.map((id) => tokenizer.decode([id]))
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ count: ids.length, ids, pieces, texts })}\n`)
    return 0
  }
  const lines = [`${ids.length} tokens`, ids.join(' '), '']
  const width = Math.max(2, ...ids.map((id) => String(id).length))
  lines.push(`${'id'.padStart(width)}  piece → text`)
  ids.forEach((id, index) => {
    lines.push(
      `${String(id).padStart(width)}  ${JSON.stringify(pieces[index])} → ${JSON.stringify(texts[index])}`,
    )
  })
  process.stdout.write(`${lines.join('\n')}\n`)
  return 0
}
