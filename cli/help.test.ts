// Every flag a command's parser accepts is in its --help, and docs/cli.md shows each help as the
// command prints it. Flags went undocumented: generate's --system and --top-k and the --force of
// convert, export and fixture were in no doc, chat's --help and --raw and export-default's --help
// in no help, and tokenize's allowNegative accepted --no-json, --no-help and --special unlisted.
import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { qwen3TokenizerDirectory } from '../test/support/qwen3-tokenizer.ts'
import { commands, main, usage } from './main.ts'

const names = Object.keys(commands).sort()
const cliDoc = readFileSync(new URL('../docs/cli.md', import.meta.url), 'utf8')
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

afterEach(() => {
  vi.restoreAllMocks()
})

describe('ondevice <command> --help', () => {
  for (const name of names) {
    it(`${name}: every flag its parser accepts is in its help, and --help prints that help`, async () => {
      const module = await commands[name]!.load()
      for (const [flag, config] of Object.entries(module.options)) {
        expect(module.help, `--${flag}`).toMatch(new RegExp(`--${escapeRegExp(flag)}(?![\\w-])`))
        if (config.short !== undefined)
          expect(module.help, `-${config.short}`).toMatch(new RegExp(`(^|[\\s,(\\[])-${config.short}\\b`))
      }
      let printed = ''
      vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
        printed += String(chunk)
        return true
      })
      expect(await main([name, '--help'])).toBe(0)
      expect(printed).toBe(`${module.help}\n`)
    })
  }

  it('serve: its help names every variable the server reads (but the Worker-only ones)', async () => {
    const source = readFileSync(new URL('../worker/env-config.ts', import.meta.url), 'utf8')
    const read = [...source.matchAll(/\(env, '([A-Z][A-Z0-9_]+)'/g)].map((match) => match[1])
    // The Worker's alone: its rate-limiting binding's period, and packages from a URL or R2.
    const workerOnly = new Set(['RATE_LIMIT_PERIOD_SECONDS', 'MODEL_REQUIRE_MANIFEST'])
    expect(read.length).toBeGreaterThan(15)
    const { help } = await commands.serve!.load()
    for (const name of read)
      if (!workerOnly.has(name!)) expect(help, name).toMatch(new RegExp(`\\b${name}\\b`))
  })

  it('tokenize takes --no-special, and no negation its help does not list', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true)
    const args = ['tokenize', '--tokenizer', qwen3TokenizerDirectory(), '--text', 'Hi', '--json']
    expect(await main([...args, '--no-special'])).toBe(0)
    for (const flag of ['--no-json', '--no-help', '--special'])
      await expect(commands.tokenize!.load().then((module) => module.run([flag]))).rejects.toMatchObject({
        code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION',
      })
  })
})

describe('docs/cli.md', () => {
  it("shows `ondevice --help` and every command's help as the command prints it", async () => {
    expect(cliDoc).toContain(`\`\`\`text\n${usage()}\n\`\`\``)
    for (const name of names) {
      const module = await commands[name]!.load()
      expect(cliDoc, name).toContain(`## \`ondevice ${name}\`\n\n\`\`\`text\n${module.help}\n\`\`\``)
    }
  })

  it('README links to it', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    expect(readme).toContain('](docs/cli.md)')
  })
})
