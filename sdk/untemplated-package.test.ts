// A package without a chat template (a llama2.c conversion such as stories260K) on the device:
// the load says so in the ready event and status().loadWarnings, and chat() refuses with the
// fix. It used to load silently, and an app learnt it only from each request's failure.

import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeFixture } from '../builder/fixtures/fixture.ts'
import { InvalidArgumentError } from '../core/errors.ts'
import { type ClientEvents, createClient } from './client.ts'

let workDir: string
let packageDir: string

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'ondevice-untemplated-'))
  packageDir = join(workDir, 'untemplated')
  await writeFixture({ arch: 'qwen3', outDir: packageDir, dtype: 'fp32' })
  // The template out of tokenizer_config.json, and manifest.json vouching for the new file.
  const configPath = join(packageDir, 'tokenizer_config.json')
  const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>
  delete config['chat_template']
  const configText = JSON.stringify(config)
  await writeFile(configPath, configText)
  const manifestPath = join(packageDir, 'manifest.json')
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as {
    files: { path: string; bytes: number; sha256: string }[]
  }
  for (const file of manifest.files)
    if (file.path === 'tokenizer_config.json') {
      file.bytes = Buffer.byteLength(configText)
      file.sha256 = createHash('sha256').update(configText).digest('hex')
    }
  await writeFile(manifestPath, JSON.stringify(manifest))
}, 120_000)

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true })
})

describe('a package without a chat template on the device', () => {
  it('the load warns that chats are refused; a chat is refused naming messages', async () => {
    const client = createClient({
      model: packageDir,
      policy: 'device-only',
      backend: 'wasm',
      cacheDir: join(workDir, 'cache'),
    })
    const ready: ClientEvents['ready'][] = []
    client.on('ready', (event) => ready.push(event))
    try {
      const status = await client.prepare()
      expect(ready).toHaveLength(1)
      const warning = ready[0]?.warnings.find((each) => each.includes('no chat template'))
      expect(warning).toMatch(/every chat request is refused/)
      expect(status.loadWarnings).toContain(warning)
      const refused = await client
        .chat({ messages: [{ role: 'user', content: 'Hi' }], maxTokens: 4 })
        .catch((error: unknown) => error)
      expect(refused).toBeInstanceOf(InvalidArgumentError)
      expect((refused as InvalidArgumentError).param).toBe('messages')
    } finally {
      await client.dispose()
    }
  }, 120_000)
})
