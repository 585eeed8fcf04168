// ondevice's WebAssembly engine in a page, one thread, for the WASM-peer benchmark (group 9):
// engine.wasm fetched from beside this bundle, the package's files fetched whole from this origin,
// createEngineSession and core's generate loop, greedy with EOS ignored. Leaves a PageResult on
// window.benchResult, as ours-page.ts does for onnxruntime-web.
import { generate } from '../../../core/generate.ts'
import { Tokenizer } from '../../../core/tokenizer.ts'
import { loadEngineModuleForBrowser } from '../../../wasm/engine/browser.ts'
import { wholeFileWeightReader } from '../../../wasm/engine/package-files.ts'
import { createEngineSession } from '../../../wasm/engine/session.ts'
import { decodeRate, type PageResult, readRequest } from './page-protocol.ts'

declare const window: { benchResult?: PageResult; location: { search: string } }

async function main(): Promise<PageResult> {
  const request = readRequest(window.location.search)
  const started = performance.now()
  const files = wholeFileWeightReader({
    readBytes: async (path) => {
      const response = await fetch(`${request.packageUrl}${path}`)
      if (!response.ok)
        throw Object.assign(new Error(`${path}: HTTP ${response.status}`), {
          code: response.status === 404 ? 'model_not_found' : 'http',
        })
      return new Uint8Array(await response.arrayBuffer())
    },
    exists: async (path) => (await fetch(`${request.packageUrl}${path}`, { method: 'HEAD' })).ok,
  })
  const session = await createEngineSession({
    module: await loadEngineModuleForBrowser(),
    files,
    dtype: request.dtype,
  })
  const loadMs = performance.now() - started
  const text = async (path: string): Promise<string | undefined> => {
    const response = await fetch(`${request.packageUrl}${path}`)
    return response.ok ? response.text() : undefined
  }
  const tokenizerConfigJson = await text('tokenizer_config.json')
  const tokenizer = Tokenizer.fromFiles({
    tokenizerJson: (await text('tokenizer.json')) as string,
    configJson: (await text('config.json')) as string,
    ...(tokenizerConfigJson === undefined ? {} : { tokenizerConfigJson }),
  })
  // EOS ignored: every run makes maxTokens tokens, as the peer's does.
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
  return { loadMs, ...measured, setup: { engine: 'ondevice wasm engine', threads: 1 } }
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
