// The wllama side of the GGUF checks and the WASM-peer benchmark: llama.cpp's WebAssembly build
// (npm @wllama/wllama, its .wasm served from node_modules on this origin; no CDN) loads a GGUF file
// fetched from this origin and runs a greedy completion on a text prompt (its completion entry
// takes text only and streams text, one chunk per generated token), reporting each token's text,
// llama.cpp's count of prompt tokens and the timings. `window.runWllama(request)` resolves to it.
import { Wllama } from '@wllama/wllama'

export interface WllamaRequest {
  readonly ggufUrl: string
  /** Tokenized by llama.cpp from the GGUF's vocabulary (the caller checks it against its ids). */
  readonly prompt: string
  /** The prompt's length in tokens as the caller's tokenizer counts it (sizes the context). */
  readonly promptTokens: number
  /** A shorter text for the warm-up run. */
  readonly warmupPrompt?: string
  readonly maxTokens: number
  /** Token ids the sampler must never pick (see test/browser/wllama.ts: text that is not UTF-8). */
  readonly bannedTokenIds?: readonly number[]
  /** Ask llama.cpp for each step's top log-probabilities (token ids included); costs a softmax a step. */
  readonly topLogprobs?: number
  /** The KV cache's type (llama.cpp's default is f16); f32 also turns flash attention off, whose CPU path rounds through f16 (exactness checks). */
  readonly kvCacheType?: 'f32' | 'f16'
  /** 1: the single-thread build; more needs a cross-origin isolated page. */
  readonly threads: number
}

export interface WllamaResult {
  /** The text of each generated token, in order (one streamed chunk each). */
  readonly texts: readonly string[]
  /** With topLogprobs: each step's chosen id and its top candidates (id, log-probability). */
  readonly steps?: readonly WllamaStep[]
  readonly loadMs: number
  readonly ttftMs: number
  readonly decodeTokensPerSecond: number
  /** llama.cpp's own timings of the measured run (prompt_ms, predicted_per_second, ...). */
  readonly timings?: Readonly<Record<string, number>>
  readonly setup: Readonly<Record<string, unknown>>
  readonly error?: string
}

export interface WllamaStep {
  readonly id: number
  readonly logprob: number
  readonly top: readonly { readonly id: number; readonly logprob: number }[]
}

interface Chunk {
  readonly timings?: Readonly<Record<string, number>>
  readonly choices?: readonly {
    readonly text?: string
    readonly finish_reason?: string | null
    readonly logprobs?: {
      readonly content?: readonly (WllamaStep & { top_logprobs?: WllamaStep['top'] })[]
    } | null
  }[]
}

async function runWllama(request: WllamaRequest): Promise<WllamaResult> {
  const started = performance.now()
  const response = await fetch(request.ggufUrl)
  if (!response.ok) throw new Error(`${request.ggufUrl}: HTTP ${response.status}`)
  const blob = await response.blob()
  const quiet = { debug: () => {}, log: () => {}, warn: console.warn, error: console.error }
  const wllama = new Wllama(
    { default: '/wllama/wasm/wllama.wasm' },
    { logger: quiet, suppressNativeLog: true },
  )
  // Its Safari fallback would fetch from a CDN; nothing here leaves 127.0.0.1.
  wllama.setCompat(null)
  try {
    await wllama.loadModel([blob], {
      n_threads: request.threads,
      n_gpu_layers: 0,
      n_ctx: Math.max(256, request.promptTokens + request.maxTokens + 16),
      n_batch: 512,
      n_parallel: 1,
      ...(request.kvCacheType
        ? { cache_type_k: request.kvCacheType, cache_type_v: request.kvCacheType, flash_attn: false }
        : {}),
    })
    const loadMs = performance.now() - started
    const complete = async (prompt: string, maxTokens: number) => {
      const texts: string[] = []
      const steps: WllamaStep[] = []
      let timings: Record<string, number> | undefined
      let firstAt = 0
      let lastAt = 0
      const runStarted = performance.now()
      // llama-server's own fields (ignore_eos, logit_bias as [[id, false], ...] where false is
      // minus infinity) go through as JSON; the typed options do not list them all.
      const options: Record<string, unknown> = {
        prompt,
        max_tokens: maxTokens,
        stream: true,
        temperature: 0,
        top_k: 1,
        ignore_eos: true,
        ...(request.topLogprobs ? { logprobs: request.topLogprobs } : {}),
        cache_prompt: false,
        logit_bias: (request.bannedTokenIds ?? []).map((id) => [id, false]),
      }
      const stream = await wllama.createCompletion(
        options as unknown as Parameters<Wllama['createCompletion']>[0] & { stream: true },
      )
      for await (const chunk of stream as AsyncIterable<Chunk>) {
        if (chunk.timings) timings = { ...chunk.timings }
        for (const step of chunk.choices?.[0]?.logprobs?.content ?? [])
          steps.push({
            id: step.id,
            logprob: step.logprob,
            top: (step.top_logprobs ?? []).map(({ id, logprob }) => ({ id, logprob })),
          })
        const text = chunk.choices?.[0]?.text ?? ''
        if (text === '') continue
        lastAt = performance.now()
        if (firstAt === 0) firstAt = lastAt
        texts.push(text)
      }
      return {
        texts,
        ...(request.topLogprobs ? { steps } : {}),
        timings,
        ttftMs: firstAt - runStarted,
        decodeTokensPerSecond:
          texts.length > 1 && lastAt > firstAt
            ? ((texts.length - 1) * 1000) / (lastAt - firstAt)
            : Number.NaN,
      }
    }
    if (request.warmupPrompt !== undefined) await complete(request.warmupPrompt, 2)
    const measured = await complete(request.prompt, request.maxTokens)
    return {
      loadMs,
      ...measured,
      ...(measured.timings ? { timings: measured.timings } : {}),
      setup: {
        libllama: Wllama.getLibllamaVersion(),
        threads: request.threads,
        crossOriginIsolated: globalThis.crossOriginIsolated,
      },
    }
  } finally {
    await wllama.exit()
  }
}

;(globalThis as { runWllama?: typeof runWllama }).runWllama = runWllama
;(globalThis as { wllamaPageReady?: boolean }).wllamaPageReady = true
