// wllama (llama.cpp's WebAssembly build, npm @wllama/wllama) in headless Chromium, for the GGUF
// export test and the WASM-peer benchmark: a page bundled from ./wllama-page/main.ts, wllama's
// .wasm from node_modules and the GGUF files from a folder, all served from 127.0.0.1.
//
// wllama's completion entry serializes llama.cpp's text strictly: a generated token whose bytes
// are not valid UTF-8 on their own (a fragment of a multi-byte character, which random-weight
// models emit often) makes the JSON encoder throw and the worker fail. Callers therefore ban
// those tokens with a logit bias (bannedTokenIds) and apply the same ban to their own argmax.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { startStaticServer } from '../../demo/static-server.ts'
import { launchChromium } from './chromium.ts'
import type { WllamaRequest, WllamaResult, WllamaStep } from './wllama-page/main.ts'

export type { WllamaRequest, WllamaResult, WllamaStep }

const repositoryRoot = join(import.meta.dirname, '../..')

export interface WllamaSite {
  /** A fresh page (its own browser context) with window.runWllama ready. */
  newPage(): Promise<{ page: Page; close(): Promise<void> }>
  run(page: Page, request: WllamaRequest): Promise<WllamaResult>
  close(): Promise<void>
}

/** Serves `ggufFolder` under /gguf/ next to the wllama page; `isolated` is the pages' COOP/COEP. */
export async function startWllamaSite(ggufFolder: string): Promise<WllamaSite> {
  const pageFolder = mkdtempSync(join(tmpdir(), 'ondevice-wllama-page-'))
  const esbuild = await import('esbuild')
  await esbuild.build({
    entryPoints: [join(repositoryRoot, 'test/browser/wllama-page/main.ts')],
    outfile: join(pageFolder, 'wllama-page.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    logLevel: 'error',
  })
  writeFileSync(
    join(pageFolder, 'wllama.html'),
    '<!doctype html><html><head><meta charset="utf-8"><title>wllama</title></head><body><script type="module" src="/wllama-page.js"></script></body></html>\n',
  )
  const server = await startStaticServer({
    mounts: [
      { prefix: '/wllama/', directory: join(repositoryRoot, 'node_modules/@wllama/wllama/esm') },
      { prefix: '/gguf/', directory: ggufFolder },
      { prefix: '/', directory: pageFolder },
    ],
  })
  const chromium = await launchChromium({ webgpu: false })
  return {
    newPage: async () => {
      const context = await chromium.newContext()
      const page = await context.newPage()
      await page.goto(`${server.url}/wllama.html`)
      await page.waitForFunction(() => (globalThis as { wllamaPageReady?: boolean }).wllamaPageReady === true)
      return { page, close: () => context.close() }
    },
    run: (page, request) =>
      page.evaluate(
        (r) => (globalThis as unknown as { runWllama(r: WllamaRequest): Promise<WllamaResult> }).runWllama(r),
        request,
      ),
    close: async () => {
      await chromium.close()
      await server.close()
      rmSync(pageFolder, { recursive: true, force: true })
    },
  }
}

/** GPT-2's byte-level alphabet: the character that stands for each byte in a vocabulary entry. */
function byteLevelDecoder(): Map<string, number> {
  const printable: number[] = []
  for (let b = 33; b <= 126; b++) printable.push(b)
  for (let b = 161; b <= 172; b++) printable.push(b)
  for (let b = 174; b <= 255; b++) printable.push(b)
  const map = new Map<string, number>()
  for (const b of printable) map.set(String.fromCodePoint(b), b)
  let next = 0
  for (let b = 0; b < 256; b++)
    if (!printable.includes(b)) {
      map.set(String.fromCodePoint(256 + next), b)
      next++
    }
  return map
}

/**
 * Token ids a wllama run must not generate, for a GGUF vocabulary (its tokenizer.ggml.tokens and
 * model): pieces whose text is not valid UTF-8 on its own (byte-level pieces that decode to a
 * partial character, SentencePiece byte tokens <0x80>..<0xFF>), and special tokens (<s>, </s>,
 * <|...|>: llama.cpp ends on some, renders others as nothing, so a chunk would not be a token).
 */
export function bannedTokenIds(tokens: readonly string[], model: 'gpt2' | 'llama'): number[] {
  const strict = new TextDecoder('utf-8', { fatal: true })
  const decoder = byteLevelDecoder()
  const banned: number[] = []
  tokens.forEach((token, id) => {
    if (/^<(\|.*\||\/?s|unk)>$/.test(token)) {
      banned.push(id)
      return
    }
    if (model === 'llama') {
      const byte = /^<0x([0-9A-F]{2})>$/.exec(token)
      if (byte && Number.parseInt(byte[1]!, 16) >= 0x80) banned.push(id)
      return
    }
    if (token.startsWith('[PAD')) return
    const bytes: number[] = []
    for (const character of token) {
      const value = decoder.get(character)
      if (value === undefined) return // an added token written as plain text
      bytes.push(value)
    }
    try {
      strict.decode(new Uint8Array(bytes))
    } catch {
      banned.push(id)
    }
  })
  return banned
}

/** A GGUF vocabulary entry's text as llama.cpp renders it (byte-level or SentencePiece pieces). */
export function tokenText(tokens: readonly string[], model: 'gpt2' | 'llama', id: number): string {
  const token = tokens[id]
  if (token === undefined) throw new RangeError(`token ${id} is outside the vocabulary`)
  if (model === 'llama') {
    const byte = /^<0x([0-9A-F]{2})>$/.exec(token)
    return byte ? String.fromCharCode(Number.parseInt(byte[1]!, 16)) : token.replaceAll('\u2581', ' ')
  }
  const decoder = byteLevelDecoder()
  const bytes = Array.from(token, (character) => decoder.get(character) ?? 0)
  return new TextDecoder().decode(new Uint8Array(bytes))
}
