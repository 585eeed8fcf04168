// `ondevice generate` and `ondevice chat` as a user runs them (a child process per command): the
// embedded default package is built on first use into the cache folder and announced once as not
// meaningful; --json has the documented shape on both Node backends; chat keeps a conversation
// from piped input; bad flags are clear errors. (stories260K's golden text through the CLI is in
// test/conformance/stories260k.test.ts.)
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { convertLlama2c } from '../../builder/importers/convert-llama2c.ts'
import { engineCoversModelType } from '../../wasm/engine/session.ts'

const cli = join(import.meta.dirname, '../main.ts')
const stories = join(import.meta.dirname, '../../../shared/models/stories260K')
let cacheDir: string

beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'ondevice-cli-'))
})
afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true })
})

function ondevice(args: string[], input?: string): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [cli, ...args],
      { env: { ...process.env, ONDEVICE_CACHE_DIR: cacheDir } },
      (error, stdout, stderr) => {
        resolve({ stdout, stderr, code: error ? ((error as { code?: number }).code ?? 1) : 0 })
      },
    )
    if (input !== undefined) child.stdin?.end(input)
  })
}

describe('ondevice generate / chat on the embedded default model', () => {
  it('builds the default once, says its text is not meaningful, and prints --json on both backends', async () => {
    for (const backend of ['native', 'wasm']) {
      const result = await ondevice([
        'generate',
        '--prompt',
        'Hello',
        '--max-tokens',
        '5',
        '--seed',
        '7',
        '--backend',
        backend,
        '--json',
      ])
      expect(result.code, result.stderr).toBe(0)
      expect(result.stderr.match(/not meaningful/g)).toHaveLength(1)
      const answer = JSON.parse(result.stdout) as {
        text: string
        token_ids: number[]
        usage: Record<string, unknown>
      }
      expect(answer.token_ids).toHaveLength(5)
      expect(typeof answer.text).toBe('string')
      // --backend wasm is the WebAssembly engine (q4 first) where it has the architecture, else
      // onnxruntime-web (reported as ort-wasm, q8 first); usage names the one that ran.
      const ran =
        backend === 'native'
          ? { backend: 'native', dtype: 'q4' }
          : engineCoversModelType('qwen3_5')
            ? { backend: 'wasm', dtype: 'q4' }
            : { backend: 'ort-wasm', dtype: 'q8' }
      expect(answer.usage).toMatchObject({
        completion_tokens: 5,
        ...ran,
        prompt_tokens: expect.any(Number),
        time_to_first_token_ms: expect.any(Number),
        prefill_tokens_per_second: expect.any(Number),
        decode_tokens_per_second: expect.any(Number),
      })
    }
    expect(existsSync(join(cacheDir, 'default', 'qwen3_5-tiny-seed1-v4', 'manifest.json'))).toBe(true)
  }, 180_000)

  it("--json's usage counts the think block's tokens (completion_tokens_details.reasoning_tokens)", async () => {
    // A raw prompt that ends inside an open <think>: every token the model writes (no </think> in
    // 5 tokens of random weights) is reasoning.
    const thinking = await ondevice([
      'generate',
      '--raw',
      '--prompt',
      '<think>\n',
      '--max-tokens',
      '5',
      '--seed',
      '3',
      '--json',
    ])
    expect(thinking.code, thinking.stderr).toBe(0)
    const answer = JSON.parse(thinking.stdout) as {
      reasoning?: string
      text: string
      usage: Record<string, unknown>
    }
    expect(answer.text).toBe('')
    expect(answer.reasoning?.length).toBeGreaterThan(0)
    expect(answer.usage).toMatchObject({
      completion_tokens: 5,
      completion_tokens_details: { reasoning_tokens: 5 },
    })
    const plain = await ondevice([
      'generate',
      '--raw',
      '--prompt',
      'Once',
      '--max-tokens',
      '3',
      '--seed',
      '3',
      '--json',
    ])
    expect(plain.code, plain.stderr).toBe(0)
    expect(JSON.parse(plain.stdout).usage).toMatchObject({
      completion_tokens: 3,
      completion_tokens_details: { reasoning_tokens: 0 },
    })
  }, 120_000)

  it('chat keeps the conversation across piped lines', async () => {
    const result = await ondevice(
      ['chat', '--max-tokens', '3', '--temperature', '0', '--stats'],
      'Hi\nAnd again\n/exit\n',
    )
    expect(result.code, result.stderr).toBe(0)
    const stats = [...result.stderr.matchAll(/\((\d+) prompt \+ (\d+) tokens/g)].map((match) =>
      Number(match[1]),
    )
    expect(stats).toHaveLength(2)
    // The second turn's prompt holds the first turn too.
    expect(stats[1]).toBeGreaterThan((stats[0] as number) + 3)
  }, 120_000)

  it('--json-schema: the answer follows the schema; a cut says partial; an unsupported keyword is refused before loading', async () => {
    const schemaFile = join(cacheDir, 'person.json')
    const schema = {
      type: 'object',
      properties: {
        name: { type: 'string', maxLength: 8 },
        age: { type: 'integer', minimum: 0, maximum: 99 },
      },
      required: ['name', 'age'],
      additionalProperties: false,
    }
    await writeFile(schemaFile, JSON.stringify(schema))
    const result = await ondevice([
      'generate',
      '--prompt',
      'A person.',
      '--json-schema',
      schemaFile,
      '--max-tokens',
      '60',
      '--seed',
      '3',
      '--json',
    ])
    expect(result.code, result.stderr).toBe(0)
    const answer = JSON.parse(result.stdout) as { text: string; finish_reason: string; partial?: boolean }
    expect(answer.finish_reason).toBe('stop')
    const value = JSON.parse(answer.text) as { name: string; age: number }
    expect(Object.keys(value)).toEqual(['name', 'age'])
    expect(Number.isInteger(value.age) && value.age >= 0 && value.age <= 99).toBe(true)
    const cut = await ondevice([
      'generate',
      '--prompt',
      'A person.',
      '--json-schema',
      schemaFile,
      '--max-tokens',
      '2',
      '--seed',
      '3',
      '--json',
    ])
    expect(JSON.parse(cut.stdout)).toMatchObject({ finish_reason: 'length', partial: true })
    await writeFile(schemaFile, JSON.stringify({ type: 'string', format: 'regex' }))
    const refused = await ondevice(['generate', '--prompt', 'x', '--json-schema', schemaFile])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(/format "regex" is not supported/)
  }, 120_000)

  it('--thinking off renders the thinking-off prompt (the empty <think> block); a bad value is refused', async () => {
    const promptTokens = async (extra: string[]) => {
      const result = await ondevice([
        'generate',
        '--prompt',
        'Hello',
        '--max-tokens',
        '1',
        '--json',
        ...extra,
      ])
      expect(result.code, result.stderr).toBe(0)
      return (JSON.parse(result.stdout) as { usage: { prompt_tokens: number } }).usage.prompt_tokens
    }
    const byDefault = await promptTokens([])
    expect(await promptTokens(['--thinking', 'on'])).toBe(byDefault)
    // Qwen3's template thinks by default; off adds `<think>\n\n</think>\n\n` (4 tokens).
    expect(await promptTokens(['--thinking', 'off'])).toBe(byDefault + 4)
    const bad = await ondevice(['generate', '--prompt', 'x', '--thinking', 'maybe'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--thinking takes on or off/)
  }, 120_000)

  it.skipIf(!existsSync(stories))(
    '--thinking or --system on a model without a chat template names the model, not a --raw the user never gave',
    async () => {
      const packageDir = join(cacheDir, 'stories260K')
      await convertLlama2c({
        checkpointPath: join(stories, 'stories260K.bin'),
        tokenizerPath: join(stories, 'tok512.bin'),
        outDir: packageDir,
        dtypes: ['fp32'],
      })
      for (const flag of [
        ['--thinking', 'on'],
        ['--system', 'Be brief.'],
      ]) {
        const result = await ondevice(['generate', '--model', packageDir, '--prompt', 'Once', ...flag])
        expect(result.code, result.stderr).toBe(2)
        expect(result.stderr).toMatch(new RegExp(`${flag[0]} needs a chat template, and this model has none`))
        expect(result.stderr).not.toMatch(/drop --raw/)
      }
      const raw = await ondevice(['generate', '--raw', '--prompt', 'x', '--thinking', 'on'])
      expect(raw.stderr).toMatch(/drop --raw/)
    },
    60_000,
  )

  it('rejects bad flags with a clear message and exit code 2', async () => {
    const bad = await ondevice(['generate', '--prompt', 'x', '--backend', 'webgpu'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--backend must be native or wasm/)
    const missing = await ondevice(['generate', '--model', join(cacheDir, 'nope'), '--prompt', 'x'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/does not exist/)
    const noPrompt = await ondevice(['generate'])
    expect(noPrompt.stderr).toMatch(/--prompt is required/)
  })

  it('--temperature takes the SDK and edge range, [0, 2], and is checked before the model loads', async () => {
    // A missing --model folder would fail the load: the flag's error must come first.
    const nowhere = join(cacheDir, 'nope')
    for (const command of ['generate', 'chat']) {
      for (const temperature of ['2.5', '10', '-1']) {
        const prompt = command === 'generate' ? ['--prompt', 'x'] : []
        const result = await ondevice([
          command,
          '--model',
          nowhere,
          ...prompt,
          `--temperature=${temperature}`,
        ])
        expect(result.code, result.stderr).toBe(2)
        expect(result.stderr).toContain(
          `--temperature must be a number from 0 to 2 (0 = greedy), got "${temperature}"`,
        )
        expect(result.stderr).not.toMatch(/does not exist/)
      }
    }
    const help = await ondevice(['generate', '--help'])
    expect(help.stdout).toMatch(/--temperature T\s+From 0 to 2 \(0 = greedy/)
  })

  it('--seed takes any whole number, as the SDK and the edge do', async () => {
    const negative = await ondevice([
      'generate',
      '--prompt',
      'Hi',
      '--max-tokens',
      '2',
      '--seed=-7',
      '--json',
    ])
    expect(negative.code, negative.stderr).toBe(0)
    const fraction = await ondevice([
      'generate',
      '--model',
      join(cacheDir, 'nope'),
      '--prompt',
      'x',
      '--seed',
      '1.5',
    ])
    expect(fraction.code).toBe(2)
    expect(fraction.stderr).toContain('--seed must be a whole number, got "1.5"')
  }, 120_000)
})
