// The page test/browser/edge-connections.test.ts drives: an edge-only client (what an app without
// a device path builds) asking the edge for answers one after another, as a chat page does, and
// the edge client's JSON reads (the model list, /healthz).
import { createClient } from '../../../sdk/client.ts'
import { EdgeClient } from '../../../sdk/edge-client.ts'

export interface AnswersRequest {
  readonly edgeUrl: string
  readonly answers: number
  /** Each answer's maxTokens (default 8). */
  readonly maxTokens?: number
  /** Abort each answer at its first text-delta instead (its request must still end at once). */
  readonly abortAtFirstDelta?: boolean
}

export interface AnswersResult {
  readonly texts: readonly string[]
  /** Each answer's finish reason, in order. */
  readonly finishReasons: readonly string[]
  readonly errors: readonly string[]
}

async function runAnswers(request: AnswersRequest): Promise<AnswersResult> {
  const client = createClient({ policy: 'edge-only', edge: { url: request.edgeUrl } })
  const texts: string[] = []
  const errors: string[] = []
  const finishReasons: string[] = []
  try {
    for (let index = 0; index < request.answers; index++) {
      const controller = new AbortController()
      let text = ''
      for await (const part of client.stream({
        messages: [{ role: 'user', content: `Question ${index}` }],
        maxTokens: request.maxTokens ?? 8,
        // Greedy: the test asks for answers cut at maxTokens, and a sampled one drew the end of
        // turn early now and then (a CI run got 'stop' for one of five).
        temperature: 0,
        signal: controller.signal,
      })) {
        if (part.type === 'text-delta') {
          text += part.text
          if (request.abortAtFirstDelta) controller.abort()
        }
        if (part.type === 'finish') finishReasons.push(part.finishReason)
        if (part.type === 'error') errors.push(`${part.error.code}: ${part.error.message}`)
      }
      texts.push(text)
    }
  } catch (caught) {
    errors.push(`${(caught as { code?: string }).code}: ${(caught as Error).message}`)
  } finally {
    await client.dispose()
  }
  return { texts, finishReasons, errors }
}

/** The JSON reads, `reads` times each: the model list (a new client each time: it is kept) and /healthz. */
async function runReads(request: { edgeUrl: string; reads: number }): Promise<number> {
  let read = 0
  for (let index = 0; index < request.reads; index++) {
    const edge = new EdgeClient({ url: request.edgeUrl })
    await edge.maxTokens()
    await edge.health()
    read++
  }
  return read
}

const page = globalThis as { runAnswers?: typeof runAnswers; runReads?: typeof runReads }
page.runAnswers = runAnswers
page.runReads = runReads
