// The per-request state the app's middleware sets and its handlers read (Hono's typed context
// variables). Its own module so handlers (chat-completions.ts) need not import the app that
// mounts them: the arrows run app.ts -> handlers -> app-env.ts, never back.
import type { RequestLogFields } from './request-log.ts'

export interface RequestState {
  readonly requestId: string
  readonly startedAt: number
  readonly fields: RequestLogFields
  /** Set by a streaming handler: it writes the log line itself when the stream ends. */
  deferred: boolean
}

export type AppEnv = { Variables: { request: RequestState; keyId: string } }
