// The ondevice side of the browser benchmark: onnxruntime-web set up by wasm/browser.ts (files from
// this origin, threads when cross-origin isolated), the package read over fetch, createOrtSession
// and core's generate loop, greedy with EOS ignored. Leaves a PageResult on window.benchResult.
import { createOrtSession, type OrtModule } from '../../../client-runtime/ort-session.ts'
import type { PackageReader } from '../../../client-runtime/package-reader.ts'
import { generate } from '../../../core/generate.ts'
import { Tokenizer } from '../../../core/tokenizer.ts'
import { loadOrtWebForBrowser } from '../../../wasm/browser.ts'
import { decodeRate, type PageResult, readRequest } from './page-protocol.ts'

declare const window: { benchResult?: PageResult; location: { search: string } }

async function main(): Promise<PageResult> {
  const request = readRequest(window.location.search)
  const started = performance.now()
  const { ort, setup } = await loadOrtWebForBrowser({
    wasmBaseUrl: '/ort/',
    flavor: request.backend,
    numThreads: request.threads,
    cacheName: false,
  })
  const fetchOk = async (path: string): Promise<Response> => {
    const response = await fetch(`${request.packageUrl}${path}`)
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`)
    return response
  }
  const reader: PackageReader = {
    readText: async (path) => (await fetchOk(path)).text(),
    readBytes: async (path) => new Uint8Array(await (await fetchOk(path)).arrayBuffer()),
    exists: async (path) => {
      const response = await fetch(`${request.packageUrl}${path}`, { method: 'HEAD' })
      return response.ok
    },
  }
  const text = async (path: string): Promise<string | undefined> =>
    (await reader.exists?.(path)) ? reader.readText(path) : undefined
  const tokenizerConfigJson = await text('tokenizer_config.json')
  const generationConfigJson = await text('generation_config.json')
  const tokenizer = Tokenizer.fromFiles({
    tokenizerJson: (await text('tokenizer.json')) as string,
    configJson: (await text('config.json')) as string,
    ...(tokenizerConfigJson === undefined ? {} : { tokenizerConfigJson }),
    ...(generationConfigJson === undefined ? {} : { generationConfigJson }),
  })
  const session = await createOrtSession(ort as unknown as OrtModule, reader, {
    backend: request.backend,
    dtype: request.dtype,
  })
  const loadMs = performance.now() - started
  const view = {
    eosTokenIds: [] as number[],
    decode: (ids: readonly number[], options?: { readonly skipSpecialTokens?: boolean }) =>
      tokenizer.decode(ids, options),
  }
  const run = async (prompt: readonly number[], maxTokens: number) => {
    await session.reset()
    const tokens: number[] = []
    const runStarted = performance.now()
    let firstAt = 0
    let lastAt = 0
    for await (const part of generate(session, view, {
      promptTokenIds: [...prompt],
      maxTokens,
      sampling: { temperature: 0 },
    })) {
      if (part.type !== 'text-delta' || part.tokenIds.length === 0) continue
      lastAt = performance.now()
      if (firstAt === 0) firstAt = lastAt
      tokens.push(...part.tokenIds)
    }
    return {
      tokens,
      ttftMs: firstAt - runStarted,
      decodeTokensPerSecond: decodeRate(tokens.length, firstAt, lastAt),
    }
  }
  await run(request.promptTokenIds.slice(0, 8), 2)
  const measured = await run(request.promptTokenIds, request.maxTokens)
  await session.dispose()
  return { loadMs, ...measured, setup: { ...setup } }
}

main().then(
  (result) => {
    window.benchResult = result
  },
  (error: unknown) => {
    window.benchResult = {
      loadMs: 0,
      ttftMs: 0,
      decodeTokensPerSecond: 0,
      tokens: [],
      setup: {},
      error: error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error),
    }
  },
)
