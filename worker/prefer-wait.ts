// How long a client waits for an answer to start, as it says so: `Prefer: wait=N` (RFC 7240), which
// the SDK sends a little under its connectTimeoutMs. A request whose model is not up yet (a cold
// container, a model the Worker's isolate is still loading) waits at most that long, then gets
// 503 `edge_starting` with a Retry-After while the start goes on, instead of a silence its client
// would read as an unreachable edge. A queued request (all generation slots busy) waits at most
// what is left of it too, then gets the queue's 429 `overloaded` with a Retry-After. A request
// without the header waits as before (up to the server's own bounds, QUEUE_TIMEOUT_MS for the
// queue): what an OpenAI client, which sends none, expects of a cold start or a busy server.
import type { Context } from 'hono'
import type { AppEnv } from './app-env.ts'

/**
 * The least a request waits, whatever its `Prefer: wait`: time for a warm model's check (one call
 * to a container's Durable Object), so `wait=0` is refused only by a cold one.
 */
export const minimumWaitMs = 500

/**
 * The `wait` preference of a `Prefer` header (RFC 7240: `Prefer: wait=10`, possibly among other
 * preferences, several headers joined by commas) in milliseconds, or undefined when there is none.
 */
export function preferredWaitMs(headers: Headers): number | undefined {
  const prefer = headers.get('prefer')
  if (prefer === null) return undefined
  for (const preference of prefer.split(',')) {
    const match = /^\s*wait\s*=\s*"?(\d{1,9})"?\s*(?:;.*)?$/i.exec(preference)
    if (match?.[1] !== undefined) return Number(match[1]) * 1000
  }
  return undefined
}

/**
 * What is left of the request's `Prefer: wait` now, counted from when its body was in (`waitFrom`:
 * a container's start and a model's load have used their share; the upload has not, the SDK gives
 * it its own time), at least
 * `minimumWaitMs`; undefined when the request says nothing. Each wait the request meets (the
 * container's start, the model's load, the generation-slot queue) is bounded by what the earlier
 * ones left, so together they stay within what the client said it waits for headers.
 */
export function remainingWaitMs(c: Context<AppEnv>, now = Date.now()): number | undefined {
  const preferred = preferredWaitMs(c.req.raw.headers)
  if (preferred === undefined) return undefined
  return Math.max(minimumWaitMs, preferred - (now - c.get('request').waitFrom))
}

/** Keeps a start going after the response was sent (Workers end a request's tasks with it). */
export function keepGoing(c: Context<AppEnv>, task: Promise<unknown>): void {
  try {
    c.executionCtx.waitUntil(task)
  } catch {
    // Node: no execution context, and nothing is cancelled.
  }
}

/**
 * `task`'s value, or `undefined` when `waitMs` passed first (the task goes on: kept alive past the
 * response on Workers). A rejection of the task within the wait is thrown.
 */
export async function withinWait<T>(
  c: Context<AppEnv>,
  task: Promise<T>,
  waitMs: number,
): Promise<T | undefined> {
  keepGoing(
    c,
    task.catch(() => undefined),
  )
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<{ readonly late: true }>((resolve) => {
    timer = setTimeout(() => resolve({ late: true }), waitMs)
  })
  try {
    const first = await Promise.race([task.then((value) => ({ value })), timeout])
    return 'value' in first ? first.value : undefined
  } finally {
    clearTimeout(timer)
  }
}
