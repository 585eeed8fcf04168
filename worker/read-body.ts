// Reads a JSON request body without ever holding more than the cap in memory: the declared
// Content-Length is checked first, and a chunked body is counted as it streams in, so a client
// cannot make the isolate buffer a huge body before it is refused. Bounds on time and memory
// hold across requests: a body may send nothing for at most a stall bound and must arrive in full
// within an overall one (a client that sends its headers, then withholds its body, is let go
// after the first; one that trickles it, after the second; a slow but steady one is read), and
// the bytes of all bodies being read at once stay within a budget (many clients each sending a
// body just under the cap cannot exhaust memory), and one client's bodies stay within a share of
// that budget (one client's slow uploads cannot hold all of it and lock every other client out).
import { concatBytes } from '../core/concat-bytes.ts'
import { AbortedError, InvalidArgumentError, OndeviceError } from '../core/errors.ts'

/** The bytes of request bodies held at once, across requests (`limits.maxBodyBytesInFlight`). */
export interface BodyBudget {
  /**
   * One body's share, empty at first. It is given back by its `release()` or, whatever became of
   * the code reading that body, once its expiry (`performance.now()` time: `expiresAt`, then
   * what its reading last set with `expireAt`) has passed: in
   * workerd a client that resets its connection mid-body can end its request with the read still
   * pending and its timer gone, so neither the body timeout nor a `finally` ever runs, and bytes
   * given back only there were held for good (100 such uploads refused every body over 10 KB
   * with 429 for as long as the isolate lived).
   */
  open(expiresAt: number, client?: string): BodyShare
  /** Bytes taken now (shares past their time not counted). */
  readonly held: number
  /** Bytes `client`'s shares hold now (shares past their time not counted). */
  heldBy(client: string): number
  readonly limit: number
  /** The most the shares of one client may hold together (`limits.maxBodyBytesInFlightPerClient`). */
  readonly clientLimit: number
}

export interface BodyShare {
  /** Takes `bytes` more from the budget: false, taking nothing, when they do not fit. */
  take(bytes: number): boolean
  /**
   * Moves its expiry: its body's deadline moves as bytes arrive (the stall bound counts from the
   * last ones), and the share lasts as long as its body may, not as long as the longest body.
   */
  expireAt(expiresAt: number): void
  /** Gives back all this share took (again: nothing). */
  release(): void
}

interface Share {
  bytes: number
  expiresAt: number
  /** Whose body it is; undefined when the server cannot tell (no client's share then applies). */
  readonly client: string | undefined
}

/**
 * `clientLimit` bounds what the shares opened for one client hold together (a body whose client
 * is unknown counts against `limit` only). At most `limit`; by default `limit` itself.
 */
export function createBodyBudget(limit: number, clientLimit = limit): BodyBudget {
  const shares = new Set<Share>()
  let held = 0
  /** Bytes held per client; a client holding none has no entry (the map stays as small as the shares). */
  const heldByClient = new Map<string, number>()
  const heldBy = (client: string | undefined): number =>
    client === undefined ? 0 : (heldByClient.get(client) ?? 0)
  const addTo = (client: string | undefined, bytes: number) => {
    if (client === undefined) return
    const next = heldBy(client) + bytes
    if (next === 0) heldByClient.delete(client)
    else heldByClient.set(client, next)
  }
  // No share runs out before this (at most the earliest expiry: one moved later leaves it early,
  // and the sweep then finds the true one): until then no sweep is needed.
  let nextExpiry = Number.POSITIVE_INFINITY
  const drop = (share: Share) => {
    if (!shares.delete(share)) return
    held -= share.bytes
    addTo(share.client, -share.bytes)
  }
  const sweep = () => {
    const now = performance.now()
    if (now < nextExpiry) return
    nextExpiry = Number.POSITIVE_INFINITY
    for (const share of shares) {
      if (share.expiresAt <= now) drop(share)
      else nextExpiry = Math.min(nextExpiry, share.expiresAt)
    }
  }
  return {
    open(expiresAt, client) {
      const share: Share = { bytes: 0, expiresAt, client }
      shares.add(share)
      nextExpiry = Math.min(nextExpiry, expiresAt)
      return {
        take(bytes) {
          const fits = () =>
            held + bytes <= limit && (client === undefined || heldBy(client) + bytes <= clientLimit)
          if (!fits()) sweep()
          // A share past its time reads no further (its body's timeout has passed).
          if (!shares.has(share) || !fits()) return false
          share.bytes += bytes
          held += bytes
          addTo(client, bytes)
          return true
        },
        expireAt(expiresAt) {
          share.expiresAt = expiresAt
          nextExpiry = Math.min(nextExpiry, expiresAt)
        },
        release: () => drop(share),
      }
    },
    get held() {
      sweep()
      return held
    },
    heldBy(client) {
      sweep()
      return heldBy(client)
    },
    limit,
    clientLimit,
  }
}

/**
 * How long a body's share outlives its body's deadline: the parse that follows the read holds the
 * bytes too. Past it the share is given back even if its reading never ended (see BodyBudget).
 */
const shareGraceMs = 1000

export interface ReadBodyOptions {
  /** The body must have arrived in full this long after reading starts (`limits.bodyTimeoutMs`). */
  readonly timeoutMs: number
  /**
   * The longest the body may send nothing, from the start of reading and then from its last bytes
   * (`limits.bodyStallTimeoutMs`); at most `timeoutMs`.
   */
  readonly stallTimeoutMs: number
  readonly budget: BodyBudget
  /**
   * Who sent the body (its address: app.ts says which), for its client's share of the budget;
   * undefined when the server cannot tell, and then only the whole budget bounds it.
   */
  readonly client: string | undefined
}

function bodyTimedOut(timeoutMs: number, received: number): OndeviceError {
  return new OndeviceError(
    'request_timeout',
    `The request body did not arrive in full within ${timeoutMs} ms (${received} bytes came, BODY_TIMEOUT_MS): the connection stalled or is too slow for a body this size. Retry; send a shorter body, or ask the server's operator to raise BODY_TIMEOUT_MS.`,
    { isRetryable: true },
  )
}

function bodyStalled(stallTimeoutMs: number, received: number): OndeviceError {
  return new OndeviceError(
    'request_timeout',
    `The request body stalled: no bytes came for ${stallTimeoutMs} ms (${received} bytes came before, BODY_STALL_TIMEOUT_MS). Retry; the connection may have dropped.`,
    { isRetryable: true },
  )
}

function bodiesInFlight(budget: BodyBudget): OndeviceError {
  return new OndeviceError(
    'overloaded',
    `This server is reading as many request bodies as it holds at once (${budget.limit} bytes together, MAX_BODY_BYTES_IN_FLIGHT). Retry in a second.`,
    { isRetryable: true, retryAfterSeconds: 1 },
  )
}

function clientShareFull(budget: BodyBudget): OndeviceError {
  return new OndeviceError(
    'overloaded',
    `This client is already sending as many request body bytes as one client may at once (${budget.clientLimit} bytes, MAX_BODY_BYTES_IN_FLIGHT_PER_CLIENT, of ${budget.limit} for all clients, MAX_BODY_BYTES_IN_FLIGHT): its other uploads are still arriving. Retry once they have, or send fewer bodies at once.`,
    { isRetryable: true, retryAfterSeconds: 1 },
  )
}

/** Why `bytes` more do not fit: this client's share, when that is what is full, else the whole budget. */
function refusal(budget: BodyBudget, client: string | undefined, bytes: number): OndeviceError {
  if (client !== undefined && budget.heldBy(client) + bytes > budget.clientLimit)
    return clientShareFull(budget)
  return bodiesInFlight(budget)
}

/**
 * The client a body counts against: an IPv4 address as it is, an IPv6 one by its /64 (one
 * subscriber's network: a host there can take a new address per connection, so counting each
 * address apart gave one client as many shares as it liked), an IPv4 address mapped into IPv6
 * (`::ffff:192.0.2.1`, as a dual-stack socket reports one) as the IPv4 address. Anything else (a
 * proxy's header that holds no address) is taken as written.
 */
export function clientOfAddress(address: string): string {
  const bare = address.split('%')[0] ?? address
  if (!bare.includes(':')) return address
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(bare)
  if (mapped?.[1] !== undefined) return mapped[1]
  const halves = bare.toLowerCase().split('::')
  if (halves.length > 2) return address
  const groupsOf = (part: string | undefined): string[] =>
    part === undefined || part === '' ? [] : part.split(':')
  const head = groupsOf(halves[0])
  const tail = groupsOf(halves[1])
  // An IPv4 address written in the last 32 bits counts as two groups (the /64 never reaches it).
  const width = (groups: string[]) => groups.length + (groups.at(-1)?.includes('.') === true ? 1 : 0)
  const missing = 8 - width(head) - width(tail)
  if (halves.length === 1 ? missing !== 0 : missing < 1) return address
  const groups = [...head, ...Array<string>(halves.length === 1 ? 0 : missing).fill('0'), ...tail]
  const prefix = groups.slice(0, 4)
  if (!prefix.every((group) => /^[0-9a-f]{1,4}$/.test(group))) return address
  return `${prefix.map((group) => Number.parseInt(group, 16).toString(16)).join(':')}::/64`
}

function tooLarge(maxBytes: number): OndeviceError {
  return new OndeviceError(
    'payload_too_large',
    `The request body is larger than this server accepts (${maxBytes} bytes). Send fewer or shorter messages.`,
  )
}

/** `application/json` or a `+json` type, with any parameters (`; charset=utf-8`). */
function isJsonContentType(value: string | null): boolean {
  const type = value?.split(';')[0]?.trim().toLowerCase() ?? ''
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'))
}

export async function readJsonBody(
  request: Request,
  maxBytes: number,
  options: ReadBodyOptions,
): Promise<unknown> {
  // A POST with text/plain (a fetch() without headers), a form type or none is a "simple"
  // cross-origin request: browsers send it without a preflight, so a page on any origin, not only
  // those in ALLOWED_ORIGINS, could start generations on an edge open to browsers (no API_KEYS)
  // with its visitors' browsers. Only JSON is read.
  const contentType = request.headers.get('content-type')
  if (!isJsonContentType(contentType)) {
    throw new InvalidArgumentError(
      'content-type',
      `The request's Content-Type is ${contentType === null ? 'missing' : JSON.stringify(contentType.slice(0, 100))}: send the JSON body with Content-Type: application/json.`,
    )
  }
  // The body is read as sent: a compressed one was refused as "not valid UTF-8", which the client
  // had not got wrong. Decompressing would need its own bound on what the bytes expand to; a
  // request body here is at most MAX_BODY_BYTES of JSON, so it is refused by name instead.
  const encoding = request.headers.get('content-encoding')?.trim().toLowerCase()
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
    throw new InvalidArgumentError(
      'content-encoding',
      `The request's Content-Encoding is ${JSON.stringify(encoding.slice(0, 100))}: this server reads the body as sent. Leave the header out and send the JSON body uncompressed (at most ${maxBytes} bytes).`,
    )
  }
  const declared = request.headers.get('content-length')
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(maxBytes)
  if (request.body === null) {
    throw new InvalidArgumentError('body', 'The request has no body: send a JSON chat completion request.')
  }
  // Its bytes count against the budget until they are parsed (the text and the parse are the
  // peak), then go back: what a request holds afterwards is bounded by the queue.
  // Until the first bytes come, the body's deadline is the stall bound's.
  const counted = {
    ...options,
    client: options.client === undefined ? undefined : clientOfAddress(options.client),
  }
  const share = options.budget.open(
    performance.now() + Math.min(options.stallTimeoutMs, options.timeoutMs) + shareGraceMs,
    counted.client,
  )
  try {
    return parseJson(await readWithin(request.body, maxBytes, declared, counted, share))
  } finally {
    share.release()
  }
}

function parseJson(bytes: Uint8Array): unknown {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw new InvalidArgumentError('body', 'The request body is not valid UTF-8: send JSON encoded as UTF-8.')
  }
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error)
    throw new InvalidArgumentError(
      'body',
      `The request body is not valid JSON (${detail}). Send a JSON object.`,
    )
  }
}

/**
 * The body's bytes, within the cap, the time bounds and the budget. Bytes count against the budget
 * as they arrive, so a client that declares 1 MiB and sends nothing holds nothing of it (64 such
 * sockets would otherwise lock every body out until their time ran out); a declared length that
 * does not fit in what is left is refused before anything is read. They are taken into `share`,
 * which the caller gives back; its expiry follows the body's deadline, which each arrival moves.
 */
async function readWithin(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  declaredHeader: string | null,
  options: ReadBodyOptions,
  share: BodyShare,
): Promise<Uint8Array> {
  const { budget, timeoutMs, client } = options
  const stallMs = Math.min(options.stallTimeoutMs, timeoutMs)
  const declared = declaredHeader === null ? 0 : Number(declaredHeader)
  if (Number.isSafeInteger(declared) && declared > 0) {
    if (client !== undefined && budget.heldBy(client) + declared > budget.clientLimit)
      throw clientShareFull(budget)
    if (budget.held + declared > budget.limit) throw bodiesInFlight(budget)
  }
  const reader = body.getReader()
  const startedAt = performance.now()
  const overallDeadline = startedAt + timeoutMs
  let lastBytesAt = startedAt
  /** When the body runs out of time as things stand: the stall bound or the overall one. */
  const deadline = (): number => Math.min(overallDeadline, lastBytesAt + stallMs)
  // One timer for the whole read, not one per chunk: when it fires early (bytes came since it was
  // set) it is set again for what is left.
  let timer: ReturnType<typeof setTimeout> | undefined
  const timedOut = new Promise<'stalled' | 'overall'>((resolve) => {
    const check = () => {
      const left = deadline() - performance.now()
      if (left > 0) timer = setTimeout(check, Math.max(1, Math.ceil(left)))
      else resolve(overallDeadline <= lastBytesAt + stallMs ? 'overall' : 'stalled')
    }
    timer = setTimeout(check, stallMs)
  })
  const chunks: Uint8Array[] = []
  let total = 0
  // What is left unread stays so: on Node the refusal then still reaches the client, and the
  // connection is closed after it (serveApp); cancelling is for a body that is too large.
  const giveUp = async (error: OndeviceError, cancel: boolean): Promise<never> => {
    if (cancel) await reader.cancel().catch(() => undefined)
    else
      try {
        reader.releaseLock()
      } catch {
        // A runtime that keeps the lock while a read is pending: the body is dropped with the request.
      }
    throw error
  }
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array> | 'stalled' | 'overall'
      try {
        next = await Promise.race([reader.read(), timedOut])
      } catch (error) {
        // The client hung up mid-body (Node's request stream errors with "aborted"): a client
        // event, not a server failure, so it is logged as such and not as a 500.
        throw new AbortedError('The client closed the connection before the request body arrived in full.', {
          cause: error,
        })
      }
      if (next === 'overall') return await giveUp(bodyTimedOut(timeoutMs, total), false)
      if (next === 'stalled') return await giveUp(bodyStalled(stallMs, total), false)
      const { done, value } = next
      if (done) break
      total += value.byteLength
      if (total > maxBytes) return await giveUp(tooLarge(maxBytes), true)
      if (!share.take(value.byteLength)) return await giveUp(refusal(budget, client, value.byteLength), false)
      chunks.push(value)
      if (value.byteLength > 0) {
        lastBytesAt = performance.now()
        share.expireAt(deadline() + shareGraceMs)
      }
    }
  } finally {
    clearTimeout(timer)
  }
  return concatBytes(chunks, total)
}
