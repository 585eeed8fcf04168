// The `ondevice` command: one file per subcommand in cli/commands/<name>.ts exporting
// `run(argv): Promise<number>` (the exit code). Commands load lazily, so `ondevice --help` is fast
// and a command that needs heavy modules (ONNX Runtime, wrangler) costs nothing to the others.
import { existsSync, readFileSync } from 'node:fs'
import type { ParseArgsOptionsConfig } from 'node:util'
import { OndeviceError } from '../core/errors.ts'

export interface CommandModule {
  run(argv: string[]): Promise<number>
  /** What `ondevice <command> --help` prints: every flag in `options` is in it (cli/help.test.ts). */
  readonly help: string
  /** The flags the command's parser (node:util parseArgs) accepts. */
  readonly options: ParseArgsOptionsConfig
}

interface CommandEntry {
  readonly summary: string
  readonly load: () => Promise<CommandModule>
}

// One line per command (each engineer adds theirs).
export const commands: Readonly<Record<string, CommandEntry>> = {
  tokenize: {
    summary: 'Print the token ids and pieces of a text',
    load: () => import('./commands/tokenize.ts'),
  },
  generate: {
    summary: 'Generate an answer with a model on this machine',
    load: () => import('./commands/generate.ts'),
  },
  chat: {
    summary: 'Chat with a model on this machine in the terminal',
    load: () => import('./commands/chat.ts'),
  },
  fixture: {
    summary: 'Write a seeded random-weight model package (llama, qwen3, qwen3_5)',
    load: () => import('./commands/fixture.ts'),
  },
  convert: {
    summary: 'Convert a llama2.c or Hugging Face safetensors checkpoint to a package',
    load: () => import('./commands/convert.ts'),
  },
  export: {
    summary: "Write a package's weights and tokenizer as a GGUF file (llama.cpp, wllama)",
    load: () => import('./commands/export.ts'),
  },
  inspect: {
    summary: "Show a package's architecture, dtypes, files and ONNX inputs/outputs",
    load: () => import('./commands/inspect.ts'),
  },
  logits: {
    summary: "Print the last position's logits for token ids (check a conversion)",
    load: () => import('./commands/logits.ts'),
  },
  edge: {
    summary: 'Run the edge worker locally (wrangler dev, offline) on a package folder',
    load: () => import('./commands/edge.ts'),
  },
  'export-default': {
    summary: 'Write the embedded default package into a folder a page can serve',
    load: () => import('./commands/export-default.ts'),
  },
  'prepare-assets': {
    summary: "Copy a package into a folder for a Worker's static assets (large files chunked)",
    load: () => import('./commands/prepare-assets.ts'),
  },
  serve: {
    summary: 'Serve a model behind an OpenAI-compatible API on Node (the edge worker app)',
    load: () => import('./commands/serve.ts'),
  },
}

export function version(): string {
  // cli/main.ts in the repository, dist/cli/main.js in the published package.
  for (const candidate of ['../package.json', '../../package.json']) {
    const url = new URL(candidate, import.meta.url)
    if (!existsSync(url)) continue
    const packageJson = JSON.parse(readFileSync(url, 'utf8')) as { name?: string; version: string }
    if (packageJson.name === 'ondevice') return packageJson.version
  }
  return 'unknown'
}

export function usage(): string {
  const names = Object.keys(commands).sort()
  const width = Math.max(...names.map((name) => name.length))
  return [
    'Usage: ondevice <command> [options]',
    '',
    'Commands:',
    ...names.map((name) => `  ${name.padEnd(width)}  ${commands[name]!.summary}`),
    '',
    'Options:',
    '  --help, -h     Show this help (or `ondevice <command> --help` for a command)',
    '  --version, -v  Print the version',
  ].join('\n')
}

/** Runs the command line `argv` (without node and the script) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv
  // No command is a bad command line (exit 2, as docs/cli.md says): the usage goes to stderr, as
  // for an unknown command, so a script that captures stdout does not take it for output.
  if (first === undefined) {
    process.stderr.write(`ondevice: no command given.\n\n${usage()}\n`)
    return 2
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(`${usage()}\n`)
    return 0
  }
  if (first === '--version' || first === '-v') {
    process.stdout.write(`${version()}\n`)
    return 0
  }
  const command = Object.hasOwn(commands, first) ? commands[first] : undefined
  if (command === undefined) {
    process.stderr.write(`ondevice: unknown command '${first}'.\n\n${usage()}\n`)
    return 2
  }
  try {
    const module = await command.load()
    return await module.run(rest)
  } catch (error) {
    if (error instanceof OndeviceError) {
      process.stderr.write(`ondevice ${first}: ${error.message}\n`)
      return error.code === 'invalid_argument' ? 2 : 1
    }
    // Node's parseArgs reports bad flags with a code; show its message, not a stack.
    if (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(
        `ondevice ${first}: ${error.message}\nRun 'ondevice ${first} --help' for its options.\n`,
      )
      return 2
    }
    process.stderr.write(
      `ondevice ${first} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    )
    return 1
  }
}

// `node cli/main.ts` in the repository; the published command goes through cli/bin.js, which calls main().
if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2))
}
