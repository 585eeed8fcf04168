// One structured line per request: enough to see traffic, latency and failures, never the
// prompt or the answer (they may hold personal data), never the API key (only its short id).

export interface RequestLogLine {
  readonly time: string
  readonly requestId: string
  readonly method: string
  readonly path: string
  readonly status: number
  readonly durationMs: number
  readonly keyId?: string
  readonly model?: string
  readonly stream?: boolean
  readonly promptTokens?: number
  readonly completionTokens?: number
  /** Of completionTokens, those of a thinking model's think block (usage's reasoning_tokens). */
  readonly reasoningTokens?: number
  readonly timeToFirstTokenMs?: number
  readonly decodeTokensPerSecond?: number
  readonly finishReason?: string
  readonly continuationTokens?: number
  readonly queuedMs?: number
  readonly errorCode?: string
}

/** Mutable fields the handlers fill in while the request runs. */
export type RequestLogFields = { -readonly [K in keyof RequestLogLine]?: RequestLogLine[K] }

/** What an unknown model name may look like to be logged as sent: short, no spaces or markup. */
const loggableModelName = /^[A-Za-z0-9._:/-]{1,64}$/

/**
 * The `model` field as it may be logged. The client chose that string, so an unknown one is
 * logged only when it is a short plain name (so an operator can see what clients ask for);
 * anything else (prompt text, newlines, escapes, kilobytes) becomes '<invalid>'.
 */
export function modelForLog(model: unknown, servedIds: ReadonlySet<string>): string | undefined {
  if (model === undefined) return undefined
  if (typeof model === 'string' && (servedIds.has(model) || loggableModelName.test(model))) return model
  return '<invalid>'
}

export function defaultLog(line: RequestLogLine): void {
  console.log(JSON.stringify({ level: line.status >= 500 ? 'error' : 'info', message: 'request', ...line }))
}
