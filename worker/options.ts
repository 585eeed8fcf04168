// What `createApp` takes, its defaults, and their validation. Every limit has a default that is
// safe for a public endpoint; a deployment raises them deliberately.
import type { Context } from 'hono'
import { InvalidArgumentError, refuseUnknownNames } from '../core/errors.ts'
import type { AppEnv } from './app-env.ts'
import type { ModelHost } from './model-host.ts'
import type { RateLimiter } from './rate-limit.ts'
import type { RequestLogLine } from './request-log.ts'

export interface Limits {
  /** Largest request body, in bytes (413 above it). Default 1 MiB. */
  readonly maxBodyBytes: number
  /**
   * How long a request body may take to arrive in full, counted from when the server starts
   * reading it (`BODY_TIMEOUT_MS`); past it the request gets 408 `request_timeout` and its
   * connection is closed. The overall cap: a client that trickles its body a byte at a time, each
   * within `bodyStallTimeoutMs`, holds a socket and its bytes no longer than this. Default 300 s
   * (a body of the 1 MiB cap then needs 3.5 KB/s on average; it was 30 s, which a phone at
   * 80 kbit/s sending a 300 KB conversation could not meet, and its retries never could either),
   * or `bodyStallTimeoutMs` when that is set longer.
   */
  readonly bodyTimeoutMs: number
  /**
   * How long a request body may send nothing (`BODY_STALL_TIMEOUT_MS`): its first bytes after
   * the server starts reading, and each next bytes after the last; past it the request gets 408
   * `request_timeout` and its connection is closed. A slow but steady upload is read to its end
   * (within `bodyTimeoutMs`); a stalled one is let go after this. Default 30 s (every body the old
   * 30 s whole-body bound let through sends no gap that long), or `bodyTimeoutMs` when that is
   * set shorter; at most `bodyTimeoutMs`.
   */
  readonly bodyStallTimeoutMs: number
  /**
   * Bytes of request bodies the server holds at once while they arrive, across all requests: a
   * body that would take the total past it gets 429 `overloaded` (Retry-After 1) instead of being
   * read, so many clients each sending a body just under `maxBodyBytes` cannot exhaust memory.
   * Bytes count as they arrive (a declared Content-Length that no longer fits is refused before
   * reading). Default: 64 MiB on Node; 8 MiB in a Worker (worker/index.ts: an isolate has 128 MB
   * for everything, the model it answers with included); or `maxBodyBytes` when that is larger.
   * At least `maxBodyBytes`.
   */
  readonly maxBodyBytesInFlight: number | undefined
  /**
   * Bytes of request bodies one client may have in `maxBodyBytesInFlight` at once
   * (`MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT`): a body that would take its client past it gets 429
   * `overloaded` (Retry-After 1), naming this limit, while other clients' bodies are still read.
   * Without it one client could hold the whole budget with a few slow uploads (each sending a byte
   * just often enough for `bodyStallTimeoutMs`) and lock every other client out; on Node that took
   * ~220 KB/s. A client is its address, an IPv6 one by its /64 (`clientAddressHeader` says which
   * address); a body whose client the server cannot tell (no socket address, no header) counts
   * against the whole budget only.
   * Default: a quarter of `maxBodyBytesInFlight` (16 MiB on Node, 2 MiB in a Worker isolate), or
   * `maxBodyBytes` when that is larger. From `maxBodyBytes` to `maxBodyBytesInFlight`.
   */
  readonly maxBodyBytesInFlightPerClient: number | undefined
  /** Most messages in one request (400 above it). Default 256. */
  readonly maxMessages: number
  /** Most prompt tokens (after the chat template, plus continuation tokens); 400 context_length_exceeded above it. Default: the model's context. */
  readonly maxPromptTokens: number | undefined
  /**
   * Most characters of text (messages, tool calls, tools) a request may send; 400 context_length_exceeded above it, before
   * any tokenizer work. Default: `charactersPerPromptToken` (6) per token of the prompt limit, above
   * real text (English averages about 4.5 per token, code less) and small enough that tokenizing
   * the worst text (one unbroken run of a character, about 30 µs each) stays under a second at a
   * 4,096-token limit.
   */
  readonly maxPromptCharacters: number | undefined
  /** Largest `max_tokens` a request may ask for (400 above it), and the default when it asks for none. Default 2048. */
  readonly maxTokens: number
  /** Generations running at once in this isolate / process. Default 1 (one model session). */
  readonly maxConcurrent: number
  /** Requests that may wait for a slot; beyond it they get 429 at once. Default 16. */
  readonly maxQueue: number
  /**
   * How long a request waits for a slot before 429. Default 30 s. A queued request has no response
   * headers yet, so one that says how long it waits for them (`Prefer: wait=N`, as the ondevice SDK
   * does a little under its `connectTimeoutMs`) waits at most what is left of N, and gets its 429
   * (with Retry-After) before it gives up on the edge as unreachable; a client that says nothing
   * (OpenAI's, curl) waits the whole QUEUE_TIMEOUT_MS.
   */
  readonly queueTimeoutMs: number
  /**
   * A generation that makes no progress this long is presumed dead and its slot reclaimed (Workers
   * can cancel a request without running any of its cleanup). Default 60 s.
   */
  readonly stallTimeoutMs: number
  /**
   * A streaming answer whose reader takes no chunk for this long is stopped and its slot freed:
   * its client is gone without the runtime saying so (under `wrangler dev`, wrangler's proxy may
   * not pass a disconnect on) or has stopped reading. Measured only while a chunk is waiting for
   * the reader, never during prefill. Default 15 s.
   */
  readonly readerStallTimeoutMs: number
}

/** The default character cap per token of the prompt limit (see Limits.maxPromptCharacters). */
export const charactersPerPromptToken = 6

export const defaultLimits: Limits = {
  maxBodyBytes: 1024 * 1024,
  bodyTimeoutMs: 300_000,
  bodyStallTimeoutMs: 30_000,
  maxBodyBytesInFlight: undefined,
  maxBodyBytesInFlightPerClient: undefined,
  maxMessages: 256,
  maxPromptTokens: undefined,
  maxPromptCharacters: undefined,
  maxTokens: 2048,
  maxConcurrent: 1,
  maxQueue: 16,
  queueTimeoutMs: 30_000,
  stallTimeoutMs: 60_000,
  readerStallTimeoutMs: 15_000,
}

export interface AppOptions {
  readonly modelHost: ModelHost
  /** Bearer keys accepted (from secrets). Empty or absent: no authentication (local use only). */
  readonly apiKeys?: readonly string[]
  /**
   * Origins allowed to call the API from a browser (exact `https://app.example` strings, or `*`).
   * Empty or absent: no CORS headers, so browsers on other origins are refused.
   */
  readonly allowedOrigins?: readonly string[]
  /** Per-key rate limit. Absent: none (put one in front, or pass `createMemoryRateLimiter`). */
  readonly rateLimiter?: RateLimiter
  /**
   * The app runs behind Cloudflare (a Worker, or a Node server only reachable through a Cloudflare
   * tunnel or proxy): a keyless client is then rate limited by `cf-connecting-ip`, which Cloudflare
   * sets. Default false: the socket's address (any client can send that header itself).
   */
  readonly behindCloudflare?: boolean
  /**
   * A request header that names the client's address, set by a proxy in front of the app that the
   * app is only reachable through (`x-forwarded-for`, `x-real-ip`, `fly-client-ip`): the address
   * that keyless rate limits and each client's share of the bodies read at once
   * (`limits.maxBodyBytesInFlightPerClient`) count by. A list (`X-Forwarded-For: a, b`) counts by
   * its last entry, the one the proxy next to the app added; a request without the header, by its
   * socket's address. Unset: the socket's address (or `cf-connecting-ip` with `behindCloudflare`).
   * Any client can send any header, so name one only when every request passes that proxy, which
   * sets or appends it. Not with `behindCloudflare` (that is `cf-connecting-ip`).
   */
  readonly clientAddressHeader?: string
  readonly limits?: Partial<Limits>
  /** Reported by /healthz and in `system_fingerprint`. */
  readonly version?: string
  /** Receives one line per request. Default: `console.log(JSON.stringify(line))`. */
  readonly log?: (line: RequestLogLine) => void
  /** Also accept these ids in `model` (e.g. a short alias the SDK sends). */
  readonly modelAliases?: readonly string[]
  /**
   * Answers POST /v1/chat/completions elsewhere (a container, worker/container/) after the app's
   * keys, CORS and rate limit passed; resolves undefined to answer here, in this isolate.
   */
  readonly forwardChatCompletion?: (c: Context<AppEnv>) => Promise<Response | undefined>
  /**
   * With `forwardChatCompletion`: /healthz's body and status when chats are answered elsewhere
   * (the containers' state, not this isolate's unloaded model); undefined when answered here.
   */
  readonly forwardedHealth?: () => Promise<
    { readonly body: Record<string, unknown>; readonly status: 200 | 503 } | undefined
  >
}

/**
 * The names createApp takes, one per AppOptions field (a Record, so a field added there without
 * its name here fails the type check): a misspelt `apikeys` was dropped without a word, leaving
 * the API open to anyone.
 */
const appOptionFields: Record<keyof AppOptions, true> = {
  modelHost: true,
  apiKeys: true,
  allowedOrigins: true,
  rateLimiter: true,
  behindCloudflare: true,
  clientAddressHeader: true,
  limits: true,
  version: true,
  log: true,
  modelAliases: true,
  forwardChatCompletion: true,
  forwardedHealth: true,
}
export const appOptionNames: readonly string[] = Object.keys(appOptionFields)

/** `maxBodyBytesInFlight` when none is set (or `maxBodyBytes`, when that is larger). */
export const defaultBodyBytesInFlight = 64 * 1024 * 1024

/**
 * `maxBodyBytesInFlight` when none is set in a Worker isolate (worker/index.ts), which has 128 MB
 * for everything: its code and heap, and in an isolate that answers chats itself the model, the
 * tokenizer and their load, which EDGE_RUNTIME "auto" lets fill it (the isolate budget). 64 MiB of
 * bodies there could take what the model was counted to have. 8 MiB is eight bodies of the 1 MiB
 * cap arriving at once per isolate (one generation runs there, 16 wait): past it a body gets 429
 * with Retry-After 1, and Cloudflare spreads clients over isolates.
 */
export const defaultIsolateBodyBytesInFlight = 8 * 1024 * 1024

/** The largest request body a server may be set to take (1 GiB). */
export const maximumBodyBytes = 2 ** 30
/**
 * The most concurrent generations a server may be set to run: each slot holds a session with its
 * own cache, made at start, and generations on one process share its cores, so thousands would
 * only exhaust memory (MAX_CONCURRENT=100000 built 100,000 sessions before serving).
 */
export const maximumConcurrent = 256

const positiveInteger = (name: keyof Limits, value: unknown, allowZero = false): void => {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new InvalidArgumentError(
      `limits.${name}`,
      `limits.${name} must be an integer ${allowZero ? '>= 0' : '>= 1'}, got ${String(value)}.`,
    )
  }
}

/** `value` within [1, maximum]: `why` says where the ceiling comes from. */
const atMost = (name: keyof Limits, value: unknown, maximum: number, why: string): void => {
  positiveInteger(name, value)
  if ((value as number) > maximum)
    throw new InvalidArgumentError(
      `limits.${name}`,
      `limits.${name} must be an integer from 1 to ${maximum} (${why}), got ${String(value)}.`,
    )
}

/** A delay a timer takes: over 2^31 - 1 ms a timer fires at once, so the wait would be none. */
const timerDelay = (name: keyof Limits, value: unknown): void => {
  positiveInteger(name, value)
  if ((value as number) > 2_147_483_647)
    throw new InvalidArgumentError(
      `limits.${name}`,
      `limits.${name} must be an integer from 1 to 2147483647 (a timer's longest delay, about 24.8 days), got ${String(value)}.`,
    )
}

/**
 * Each allowed origin exactly as a browser sends `Origin` (scheme, host, port; no path, no
 * trailing slash), or `*`. Anything else never matches, so CORS would stay shut without a word:
 * `example.com` for `https://example.com` is the usual slip.
 */
/** Schemes whose pages never call an edge (URL's special schemes other than http and https). */
const notPageSchemes = new Set(['ftp:', 'file:', 'ws:', 'wss:'])

/**
 * The origin a browser sends for a page at `url`: http(s) as URL computes it; an app or extension
 * scheme (chrome-extension://ID, moz-extension://UUID, capacitor://localhost, tauri://localhost)
 * as scheme://host, which URL's `origin` spells 'null' though browsers send it whole.
 */
function originOf(url: URL): string | undefined {
  if (url.protocol === 'http:' || url.protocol === 'https:') return url.origin
  if (notPageSchemes.has(url.protocol) || url.host === '') return undefined
  return `${url.protocol}//${url.host}`
}

export function checkAllowedOrigins(origins: readonly string[], name: string): void {
  // createApp's callers are JavaScript too: one origin as a string was read letter by letter, and
  // an entry that is not a string crashed with a TypeError (entry.slice).
  if (!Array.isArray(origins))
    throw new InvalidArgumentError(
      name,
      `${name} must be an array of origins (e.g. ['https://app.example.com']), got ${typeof origins === 'string' ? `the string '${(origins as string).slice(0, 100)}': wrap it in [ ]` : String(origins)}.`,
    )
  for (const [index, entry] of origins.entries()) {
    if (typeof entry !== 'string')
      throw new InvalidArgumentError(
        name,
        `${name} entry ${index} must be a string (an origin such as 'https://app.example.com', or '*'), got ${entry === null ? 'null' : typeof entry}.`,
      )
    if (entry === '*') continue
    let origin: string | undefined
    try {
      origin = originOf(new URL(entry))
    } catch {
      origin = undefined
    }
    if (origin === entry) continue
    const suggestion = origin ?? (/^[\w.-]+(:\d+)?$/.test(entry) ? `https://${entry}` : undefined)
    throw new InvalidArgumentError(
      name,
      `${name} entry '${entry.slice(0, 100)}' is not an origin as browsers send it (scheme://host[:port], no path), so it would never match.${suggestion === undefined ? ' Write e.g. https://app.example.com, or * for any.' : ` Write '${suggestion}'.`}`,
    )
  }
}

/** Limits with every default filled in. */
export type ResolvedLimits = Limits & {
  readonly maxBodyBytesInFlight: number
  readonly maxBodyBytesInFlightPerClient: number
}

/** The default share of one client: `maxBodyBytesInFlight` divided by this. */
export const bodyBytesInFlightClientShares = 4

/** Fills in defaults and checks every limit, naming the bad field. */
export function resolveLimits(limits: Partial<Limits> | undefined): ResolvedLimits {
  if (typeof limits === 'object' && limits !== null)
    refuseUnknownNames(limits, limitNames, 'limit', (name) => `limits.${name}`, limitAliases)
  const given = stripUndefined(limits ?? {})
  const merged: Limits = { ...defaultLimits, ...given }
  atMost('maxBodyBytes', merged.maxBodyBytes, maximumBodyBytes, 'a body is read whole into memory')
  const resolved = {
    ...merged,
    maxBodyBytesInFlight:
      merged.maxBodyBytesInFlight ?? Math.max(defaultBodyBytesInFlight, merged.maxBodyBytes),
  }
  positiveInteger('maxBodyBytesInFlight', resolved.maxBodyBytesInFlight)
  if (resolved.maxBodyBytesInFlight < resolved.maxBodyBytes)
    throw new InvalidArgumentError(
      'limits.maxBodyBytesInFlight',
      `limits.maxBodyBytesInFlight (MAX_BODY_BYTES_IN_FLIGHT) must be at least limits.maxBodyBytes (MAX_BODY_BYTES, ${resolved.maxBodyBytes}): a body of the largest size allowed could never be read. Got ${resolved.maxBodyBytesInFlight}.`,
    )
  const perClient = clientShare(
    resolved.maxBodyBytes,
    resolved.maxBodyBytesInFlight,
    merged.maxBodyBytesInFlightPerClient,
  )
  const complete = {
    ...resolved,
    maxBodyBytesInFlightPerClient: perClient,
    ...bodyTimes(given.bodyTimeoutMs, given.bodyStallTimeoutMs),
  }
  checkOtherLimits(complete)
  return complete
}

/**
 * One client's share of the bodies read at once: given, from the largest body (a smaller share
 * would refuse a body of the cap from everyone) to the whole budget (more could never be held);
 * unset, a quarter of the budget, at least one body of the cap.
 */
function clientShare(maxBodyBytes: number, inFlight: number, given: number | undefined): number {
  if (given === undefined)
    return Math.min(inFlight, Math.max(maxBodyBytes, Math.floor(inFlight / bodyBytesInFlightClientShares)))
  positiveInteger('maxBodyBytesInFlightPerClient', given)
  if (given < maxBodyBytes)
    throw new InvalidArgumentError(
      'limits.maxBodyBytesInFlightPerClient',
      `limits.maxBodyBytesInFlightPerClient (MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT) must be at least limits.maxBodyBytes (MAX_BODY_BYTES, ${maxBodyBytes}): a body of the largest size allowed could never be read. Got ${given}.`,
    )
  if (given > inFlight)
    throw new InvalidArgumentError(
      'limits.maxBodyBytesInFlightPerClient',
      `limits.maxBodyBytesInFlightPerClient (MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT, ${given}) must be at most limits.maxBodyBytesInFlight (MAX_BODY_BYTES_IN_FLIGHT, ${inFlight}): one client cannot hold more than all of them together. Lower it, raise MAX_BODY_BYTES_IN_FLIGHT, or leave it unset (a quarter of MAX_BODY_BYTES_IN_FLIGHT).`,
    )
  return given
}

/**
 * The body's two bounds. One set alone moves the other's default out of its way, so raising
 * one setting is enough: BODY_TIMEOUT_MS=10000 alone (a deployment from before the stall bound)
 * keeps its meaning exactly, the whole body within 10 s (so no stall past 10 s either);
 * BODY_STALL_TIMEOUT_MS=600000 alone gets a whole-body bound of 600 s. Both set, a stall bound longer than the whole body's is refused:
 * it could never be reached.
 */
function bodyTimes(
  total: number | undefined,
  stall: number | undefined,
): Pick<Limits, 'bodyTimeoutMs' | 'bodyStallTimeoutMs'> {
  if (total !== undefined) timerDelay('bodyTimeoutMs', total)
  if (stall !== undefined) timerDelay('bodyStallTimeoutMs', stall)
  if (total !== undefined && stall !== undefined && stall > total)
    throw new InvalidArgumentError(
      'limits.bodyStallTimeoutMs',
      `limits.bodyStallTimeoutMs (BODY_STALL_TIMEOUT_MS, ${stall}) must be at most limits.bodyTimeoutMs (BODY_TIMEOUT_MS, ${total}): the stall bound is the longest a body may send nothing, the other its whole time. Lower the stall bound, raise the whole-body bound, or leave one unset (it then follows the other).`,
    )
  const bodyTimeoutMs = total ?? Math.max(defaultLimits.bodyTimeoutMs, stall ?? 0)
  return {
    bodyTimeoutMs,
    bodyStallTimeoutMs: stall ?? Math.min(defaultLimits.bodyStallTimeoutMs, bodyTimeoutMs),
  }
}

/** What `limits` takes: a misspelt name would otherwise be dropped without a word. */
const limitNames = Object.keys(defaultLimits)
/** Names another server (or a guess) would give a limit. */
const limitAliases: Readonly<Record<string, string>> = {
  bodyIdleTimeoutMs: 'bodyStallTimeoutMs',
  bodyReadTimeoutMs: 'bodyStallTimeoutMs',
  requestBodyTimeoutMs: 'bodyTimeoutMs',
  maxBodyBytesPerClient: 'maxBodyBytesInFlightPerClient',
  maxBodyBytesInFlightPerIp: 'maxBodyBytesInFlightPerClient',
}

function checkOtherLimits(resolved: ResolvedLimits): void {
  positiveInteger('maxMessages', resolved.maxMessages)
  if (resolved.maxPromptTokens !== undefined) positiveInteger('maxPromptTokens', resolved.maxPromptTokens)
  if (resolved.maxPromptCharacters !== undefined)
    positiveInteger('maxPromptCharacters', resolved.maxPromptCharacters)
  positiveInteger('maxTokens', resolved.maxTokens)
  atMost(
    'maxConcurrent',
    resolved.maxConcurrent,
    maximumConcurrent,
    'each slot holds a session and its cache',
  )
  positiveInteger('maxQueue', resolved.maxQueue, true)
  timerDelay('queueTimeoutMs', resolved.queueTimeoutMs)
  timerDelay('stallTimeoutMs', resolved.stallTimeoutMs)
  timerDelay('readerStallTimeoutMs', resolved.readerStallTimeoutMs)
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as Partial<T>
}
