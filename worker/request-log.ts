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
  readonly timeToFirstTokenMs?: number
  readonly decodeTokensPerSecond?: number
  readonly finishReason?: string
  readonly continuationTokens?: number
  readonly queuedMs?: number
  readonly errorCode?: string
}

/** Mutable fields the handlers fill in while the request runs. */
export type RequestLogFields = { -readonly [K in keyof RequestLogLine]?: RequestLogLine[K] }

export function defaultLog(line: RequestLogLine): void {
  console.log(JSON.stringify({ level: line.status >= 500 ? 'error' : 'info', message: 'request', ...line }))
}
