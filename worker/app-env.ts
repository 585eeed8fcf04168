// The per-request state the app's middleware sets and its handlers read (Hono's typed context
// variables). Its own module so handlers (chat-completions.ts) need not import the app that
// mounts them: the arrows run app.ts -> handlers -> app-env.ts, never back.
import type { RequestLogFields } from './request-log.ts'

export interface RequestState {
  readonly requestId: string
  readonly startedAt: number
  /**
   * Where the request's `Prefer: wait` counts from (prefer-wait.ts): its arrival, then the end of
   * its body's read. The SDK gives an upload its own time past its connect timeout (a second per
   * 4 KiB), so a slow body does not spend the wait it asked for.
   */
  waitFrom: number
  readonly fields: RequestLogFields
  /**
   * The client's address as the app counts clients (app.ts: the socket's, or the header the
   * deployment trusts); undefined when it cannot tell. Each client's share of the bodies read at
   * once is counted by it.
   */
  readonly client: string | undefined
  /** Set by a streaming handler: it writes the log line itself when the stream ends. */
  deferred: boolean
}

export type AppEnv = { Variables: { request: RequestState; keyId: string } }

/**
 * What a host may pass the app as its bindings (Hono's `env`) besides its own. `shutdownSignal`
 * (serveApp's): aborted when the server's shutdown grace ends, so an answer still running ends
 * with a retryable `edge_unavailable` error (an error event in a stream, a 503 before the
 * headers) instead of a cut connection. Its own signal: a client that goes away is a different
 * thing (the request's signal), logged as 499 with nothing written.
 */
export interface AppBindings {
  readonly shutdownSignal?: AbortSignal
}

/** The host's shutdown signal, where it passed one. */
export function shutdownSignalOf(env: unknown): AbortSignal | undefined {
  const signal = (env as AppBindings | null | undefined)?.shutdownSignal
  return signal instanceof AbortSignal ? signal : undefined
}
