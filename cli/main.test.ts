import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { qwen3TokenizerDirectory } from '../test/support/qwen3-tokenizer.ts'

const bin = fileURLToPath(new URL('./bin.js', import.meta.url))
const main = fileURLToPath(new URL('./main.ts', import.meta.url))

// The real command line, in a child process with this Node (>= 22.18, from the devDependency).
function ondevice(args: string[], script = bin) {
  const result = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 30_000 })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe('ondevice CLI', () => {
  it('prints its version from package.json and its help', () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string
    }
    expect(ondevice(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n` })
    const help = ondevice(['--help'], main)
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/Usage: ondevice <command>/)
    expect(help.stdout).toMatch(/tokenize\s+Print the token ids/)
  })

  it('in the repository, refuses a Node before 22.18 (no type stripping by default) saying so', () => {
    // It let 22.12 to 22.17 through, which then failed importing main.ts (or on registerHooks).
    const asNode = (version: string) =>
      spawnSync(
        process.execPath,
        [
          '--import',
          `data:text/javascript,Object.defineProperty(process.versions,"node",{value:"${version}"})`,
          bin,
          '--version',
        ],
        { encoding: 'utf8', timeout: 30_000 },
      )
    const old = asNode('22.17.0')
    expect(old.status).toBe(1)
    expect(old.stderr).toMatch(/ondevice needs Node >= 22\.18 \(this is v22\.17\.0\)/)
    expect(asNode('22.18.0').status).toBe(0)
    // Node 23 strips types by default from 23.6 (22.18's backport came later): 23.0 to 23.5
    // passed the check (23 > 22) and then failed importing main.ts.
    const odd = asNode('23.5.0')
    expect(odd.status).toBe(1)
    expect(odd.stderr).toMatch(/ondevice needs Node >= 23\.6 \(this is v23\.5\.0\)/)
    expect(asNode('23.6.0').status).toBe(0)
  })

  it('refuses an unknown command with exit code 2', () => {
    const result = ondevice(['frobnicate'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/unknown command 'frobnicate'/)
  })

  it('refuses a command line without a command with exit code 2, the usage on stderr', () => {
    // It exited 1 (docs/cli.md: 1 is a command that failed, 2 a bad command line) with the
    // usage on stdout.
    const result = ondevice([])
    expect(result.code).toBe(2)
    expect(result.stdout).toBe('')
    expect(result.stderr).toMatch(/no command given[\s\S]*Usage: ondevice <command>/)
  })

  it('tokenizes text with a package folder, as a table and as JSON', () => {
    const directory = qwen3TokenizerDirectory()
    const text = 'Hello, my dog is cute. 你好世界 1234'
    const table = ondevice(['tokenize', '--tokenizer', directory, '--text', text])
    expect(table.code).toBe(0)
    expect(table.stdout).toContain(
      '15 tokens\n9707 11 847 5562 374 18838 13 220 108386 99489 220 16 17 18 19\n',
    )
    expect(table.stdout).toContain('108386  "ä½łå¥½" → "你好"')
    const json = ondevice(['tokenize', '--tokenizer', directory, '--text', text, '--json'])
    expect(json.code).toBe(0)
    const parsed = JSON.parse(json.stdout) as {
      count: number
      ids: number[]
      pieces: string[]
      texts: string[]
    }
    expect(parsed.count).toBe(15)
    expect(parsed.ids.slice(0, 3)).toEqual([9707, 11, 847])
    expect(parsed.texts.join('')).toBe(text)
    expect(parsed.pieces[2]).toBe('Ġmy')
  })

  it('explains missing or bad options', () => {
    const missing = ondevice(['tokenize', '--text', 'x'])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toMatch(/--tokenizer DIR is required/)
    const noFolder = ondevice(['tokenize', '--tokenizer', '/nonexistent-folder', '--text', 'x'])
    expect(noFolder.code).toBe(2)
    expect(noFolder.stderr).toMatch(/tokenizer\.json does not exist/)
    const bogus = ondevice(['tokenize', '--bogus'])
    expect(bogus.code).toBe(2)
    expect(bogus.stderr).toMatch(/Unknown option '--bogus'/)
  })
})
