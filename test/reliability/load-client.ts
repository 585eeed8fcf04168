// The load generator shared by the `ondevice serve` and `wrangler dev` load tests: N concurrent
// streaming clients for a bounded time, some of them hanging up mid-stream, each finished answer
// compared with the single-client answer for its seed.
import { withDeadline } from './api-fuzz.ts'

export interface Answer {
  readonly text: string
  readonly tokenIds: readonly number[]
}

export interface LoadOptions {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly model: string
  readonly clients: number
  readonly seconds: number
  readonly seeds: number
  readonly maxTokens: number
  /** Client i hangs up mid-stream when i % disconnectEvery === 0. */
  readonly disconnectEvery: number
  readonly references: ReadonlyMap<number, Answer>
  readonly requestDeadlineMs: number
}

export interface LoadReport {
  started: number
  completed: number
  disconnected: number
  mismatched: string[]
  rejected429: number
  retryAfterMissing: number
  serverErrors: string[]
  otherStatuses: string[]
  maxQueueWaitMs: number
  tokens: number
  /** Connections reset before any response (a reused keep-alive socket the server had closed, on an overloaded box). */
  transportErrors: string[]
}

export function chatBody(model: string, seed: number, maxTokens: number, stream: boolean): string {
  return JSON.stringify({
    model,
    messages: [{ role: 'user', content: `Tell story number ${seed % 5} about a lighthouse.` }],
    temperature: 0.9,
    top_k: 40,
    seed,
    max_tokens: maxTokens,
    stream,
  })
}

/** The answer one client alone gets for a seed (non-streaming). */
export async function referenceAnswer(
  options: Pick<LoadOptions, 'url' | 'headers' | 'model' | 'maxTokens'>,
  seed: number,
): Promise<Answer> {
  const response = await fetch(`${options.url}/v1/chat/completions`, {
    method: 'POST',
    headers: options.headers,
    body: chatBody(options.model, seed, options.maxTokens, false),
  })
  const text = await response.text()
  if (response.status !== 200) throw new Error(`reference for seed ${seed}: HTTP ${response.status} ${text}`)
  const body = JSON.parse(text) as {
    choices: { message: { content: string } }[]
    ondevice: { token_ids: number[] }
  }
  return { text: body.choices[0]!.message.content, tokenIds: body.ondevice.token_ids }
}

/** Reads an SSE chat stream; stops reading (and aborts) after `stopAfterChunks` content chunks when given. */
async function readStream(
  response: Response,
  abort: AbortController,
  stopAfterChunks: number | undefined,
): Promise<{ text: string; tokenIds: number[]; done: boolean; error?: string }> {
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  let text = ''
  const tokenIds: number[] = []
  let chunks = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return { text, tokenIds, done: false }
    buffer += decoder.decode(value, { stream: true })
    let boundary = buffer.indexOf('\n\n')
    while (boundary >= 0) {
      const block = buffer.slice(0, boundary)
      buffer = buffer.slice(boundary + 2)
      boundary = buffer.indexOf('\n\n')
      if (!block.startsWith('data: ')) continue
      const data = block.slice(6)
      if (data === '[DONE]') return { text, tokenIds, done: true }
      const event = JSON.parse(data) as {
        error?: { message: string }
        choices?: { delta: { content?: string; token_ids?: number[] } }[]
      }
      if (event.error) return { text, tokenIds, done: false, error: event.error.message }
      const delta = event.choices?.[0]?.delta
      // A token with no visible text comes as a chunk with token_ids and no content.
      tokenIds.push(...(delta?.token_ids ?? []))
      if (delta?.content !== undefined) {
        text += delta.content
        if (delta.content.length > 0) chunks++
      }
      if (stopAfterChunks !== undefined && chunks >= stopAfterChunks) {
        abort.abort()
        await reader.cancel().catch(() => undefined)
        return { text, tokenIds, done: false }
      }
    }
  }
}

export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const report: LoadReport = {
    started: 0,
    completed: 0,
    disconnected: 0,
    mismatched: [],
    rejected429: 0,
    retryAfterMissing: 0,
    serverErrors: [],
    otherStatuses: [],
    maxQueueWaitMs: 0,
    tokens: 0,
    transportErrors: [],
  }
  const deadline = Date.now() + options.seconds * 1000
  const client = async (index: number) => {
    let round = 0
    while (Date.now() < deadline) {
      const seed = (index + round++) % options.seeds
      const disconnects = index % options.disconnectEvery === 0
      const abort = new AbortController()
      report.started++
      const sentAt = Date.now()
      try {
        const response = await withDeadline(
          fetch(`${options.url}/v1/chat/completions`, {
            method: 'POST',
            headers: options.headers,
            body: chatBody(options.model, seed, options.maxTokens, true),
            signal: abort.signal,
          }),
          options.requestDeadlineMs,
          `client ${index} waiting for headers`,
        )
        report.maxQueueWaitMs = Math.max(report.maxQueueWaitMs, Date.now() - sentAt)
        if (response.status === 429 || response.status === 503) {
          report.rejected429++
          if (!response.headers.get('retry-after')) report.retryAfterMissing++
          await response.body?.cancel()
          // A real client waits Retry-After; here a short jittered pause keeps the pressure on.
          await new Promise((resolve) => setTimeout(resolve, 50 + ((index * 37) % 100)))
          continue
        }
        if (response.status >= 500) {
          report.serverErrors.push(`${response.status} ${await response.text()}`)
          continue
        }
        if (response.status !== 200) {
          report.otherStatuses.push(`${response.status} ${(await response.text()).slice(0, 200)}`)
          continue
        }
        const stopAfter = disconnects ? 1 + (round % 2) : undefined
        const result = await withDeadline(
          readStream(response, abort, stopAfter),
          options.requestDeadlineMs,
          `client ${index} reading its stream`,
        )
        report.tokens += result.tokenIds.length
        if (result.error) {
          report.serverErrors.push(`stream error: ${result.error}`)
          continue
        }
        if (!result.done) {
          report.disconnected++
          continue
        }
        report.completed++
        const expected = options.references.get(seed)!
        if (result.text !== expected.text || result.tokenIds.join(',') !== expected.tokenIds.join(',')) {
          report.mismatched.push(
            `seed ${seed}: ${JSON.stringify(result.text.slice(0, 60))} vs ${JSON.stringify(expected.text.slice(0, 60))}`,
          )
        }
      } catch (error) {
        abort.abort()
        const cause = (error as { cause?: { code?: string; message?: string } }).cause
        if (error instanceof TypeError && error.message === 'fetch failed') {
          report.transportErrors.push(`client ${index}: ${cause?.code ?? ''} ${cause?.message ?? ''}`)
          continue
        }
        report.serverErrors.push(
          `client ${index}: ${error instanceof Error ? error.message : String(error)}${cause ? ` (${cause.code ?? ''} ${cause.message ?? ''})` : ''}`,
        )
      }
    }
  }
  await Promise.all(Array.from({ length: options.clients }, (_, index) => client(index)))
  return report
}

/** Resident memory of a process, from /proc (Linux), in MiB. */
export async function residentMiB(pid: number): Promise<number | undefined> {
  const { readFile } = await import('node:fs/promises')
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined)
  const match = status ? /VmRSS:\s+(\d+) kB/.exec(status) : null
  return match ? Math.round(Number(match[1]) / 1024) : undefined
}
