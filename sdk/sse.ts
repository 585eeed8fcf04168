// Server-sent events from a fetch body, as the HTML spec parses them: lines end in \n, \r\n
// or \r; `data:` lines of one event join with \n; a blank line ends the event; lines starting
// with ':' are comments (keep-alives). Only what the OpenAI stream uses is kept: data and event.
//
// The body comes from a server the SDK does not control, so the parser is bounded and linear: each
// character is scanned for a line break once (a body with no newline used to be rescanned on every
// chunk: 7.7 s and 506 MB for 32 MB), a line or an event longer than `maxEventLength` is an error,
// and with `idleTimeoutMs` a body that sends no event for that long (only silence, or only
// keep-alive comments) is an error too.

export interface ServerSentEvent {
  readonly event: string
  readonly data: string
}

export interface ServerSentEventOptions {
  /** Once it aborts, no further event is yielded, even one already read; the body is cancelled. */
  readonly signal?: AbortSignal
  /** Longest line, and longest event (its data lines joined), in characters. Default 4 MiB. */
  readonly maxEventLength?: number
  /**
   * Fail when no event arrives for this long. Comments do not count: a server that sends only
   * `: keepalive` lines is as stuck as a silent one. Default: no limit.
   */
  readonly idleTimeoutMs?: number
  /**
   * Whether a comment (its text after ':' and spaces) is the server's progress, which counts as
   * an event for the idle timeout: an ondevice edge's ': ondevice-prefill N' during a long
   * prefill. The caller bounds it (a rising N, at most the tokens it sent).
   */
  readonly isProgress?: (comment: string) => boolean
  /**
   * The event after which the server ends the body (an OpenAI stream's `data: [DONE]`). A consumer
   * that stops right after it does not cancel the body: the rest is read to its end (it normally
   * arrives with that event), so the request completes and its HTTP/1.1 connection is kept for the
   * next one, where a cancelled body closes it (a new TCP and TLS handshake per answer, the request
   * "canceled" in a browser's network log, a client that went away for the server). Bounded: at
   * most `drainBytes` more, for at most `drainMs`; past either, or on the signal's abort, the body
   * is cancelled as before.
   */
  readonly isFinal?: (event: ServerSentEvent) => boolean
  /** After the final event, the most bytes read before the body is cancelled. Default 16 KiB. */
  readonly drainBytes?: number
  /** After the final event, the longest wait for the body's end before it is cancelled. Default 500 ms. */
  readonly drainMs?: number
}

/** Default bound on one line or event: far above the largest chunk an edge sends (every token id of a long answer). */
export const defaultMaxEventLength = 4 * 1024 * 1024

/** Default `drainBytes`: a body that goes on past the final event by more is not ending. */
export const defaultDrainBytes = 16 * 1024
/**
 * Default `drainMs`: the end of the body is written with the final event and arrives with it or
 * a packet after; a lost packet's resend is within it. A server that holds the body open past
 * it costs the answer this long once, then is cancelled.
 */
export const defaultDrainMs = 500

/** Why parsing stopped: the stream broke one of the bounds above. */
export class ServerSentEventError extends Error {
  readonly reason: 'too-long' | 'idle'
  constructor(reason: 'too-long' | 'idle', message: string) {
    super(message)
    this.name = 'ServerSentEventError'
    this.reason = reason
  }
}

/** Yields each complete event of `body`; an event cut off by the end of the body is dropped. */
export async function* parseServerSentEvents(
  body: ReadableStream<Uint8Array>,
  options: ServerSentEventOptions | AbortSignal = {},
): AsyncGenerator<ServerSentEvent> {
  const {
    signal,
    maxEventLength = defaultMaxEventLength,
    idleTimeoutMs,
    isProgress,
    isFinal,
    drainBytes = defaultDrainBytes,
    drainMs = defaultDrainMs,
  } = options instanceof AbortSignal ? { signal: options } : options
  const reader = body.getReader()
  const decoder = new TextDecoder()
  // The current line's text so far, in pieces (joined once, when its line break arrives).
  let carry: string[] = []
  let carryLength = 0
  // The last piece ended in \r: a \n starting the next one belongs to that line break.
  let skipLeadingNewline = false
  let data: string[] = []
  let dataLength = 0
  let event = ''
  // performance.now, not the wall clock: one set forward ended a live stream as idle, one set back
  // kept a stalled one waiting as long as the change (as core/idle-timer.ts).
  let lastEventAt = performance.now()
  // The consumer holds the final event (isFinal): if it stops here, the body's end is read, not cancelled.
  let atFinal = false
  const read = (): Promise<ReadableStreamReadResult<Uint8Array>> => {
    if (idleTimeoutMs === undefined) return reader.read()
    const left = Math.max(0, lastEventAt + idleTimeoutMs - performance.now())
    let timer: ReturnType<typeof setTimeout> | undefined
    const idle = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ServerSentEventError(
              'idle',
              `no event for ${idleTimeoutMs} ms (keep-alive comments do not count)`,
            ),
          ),
        left,
      )
    })
    return Promise.race([reader.read(), idle]).finally(() => clearTimeout(timer))
  }
  try {
    while (true) {
      if (signal?.aborted) return
      const { value, done } = await read()
      if (done) break
      const text = decoder.decode(value, { stream: true })
      let position = 0
      if (skipLeadingNewline && text.length > 0) {
        skipLeadingNewline = false
        if (text.charCodeAt(0) === 10) position = 1
      }
      while (position < text.length) {
        // Each character is looked at once here, whatever the chunking.
        let end = position
        while (end < text.length) {
          const code = text.charCodeAt(end)
          if (code === 10 || code === 13) break
          end++
        }
        if (end === text.length) {
          carry.push(text.slice(position))
          carryLength += text.length - position
          if (carryLength > maxEventLength) {
            throw new ServerSentEventError('too-long', `a line longer than ${maxEventLength} characters`)
          }
          break
        }
        const piece = text.slice(position, end)
        if (carryLength + piece.length > maxEventLength) {
          throw new ServerSentEventError('too-long', `a line longer than ${maxEventLength} characters`)
        }
        const line = carry.length === 0 ? piece : carry.join('') + piece
        carry = []
        carryLength = 0
        position = end + 1
        if (text.charCodeAt(end) === 13) {
          if (position < text.length) {
            if (text.charCodeAt(position) === 10) position++
          } else skipLeadingNewline = true
        }
        if (line === '') {
          if (data.length > 0) {
            // One read can bring many events: a caller that aborted while it handled the last
            // one gets none of the rest (its answer ends where it stopped reading).
            if (signal?.aborted) return
            lastEventAt = performance.now()
            const parsed = { event: event || 'message', data: data.join('\n') }
            atFinal = isFinal?.(parsed) === true
            yield parsed
            atFinal = false
          }
          data = []
          dataLength = 0
          event = ''
          continue
        }
        if (line.charCodeAt(0) === 58) {
          // ':' starts a comment: a keep-alive, or the edge's progress when the caller says so.
          if (isProgress?.(line.slice(1).trimStart())) lastEventAt = performance.now()
          continue
        }
        const colon = line.indexOf(':')
        const field = colon === -1 ? line : line.slice(0, colon)
        let fieldValue = colon === -1 ? '' : line.slice(colon + 1)
        if (fieldValue.startsWith(' ')) fieldValue = fieldValue.slice(1)
        if (field === 'data') {
          dataLength += fieldValue.length + 1
          if (dataLength > maxEventLength) {
            throw new ServerSentEventError('too-long', `an event longer than ${maxEventLength} characters`)
          }
          data.push(fieldValue)
        } else if (field === 'event') event = fieldValue
      }
    }
  } finally {
    // After the final event, the body's end (see isFinal); then stop the download, if it has not
    // ended, when the consumer stops reading (abort, handoff done, error) or the drain's bound passed.
    if (atFinal && !signal?.aborted) await readToEnd(reader, drainBytes, drainMs, signal)
    await reader.cancel().catch(() => {})
    reader.releaseLock()
  }
}

/**
 * Reads and drops what is left of a body, until it ends, more than `maxBytes` came, `timeoutMs`
 * passed, `signal` aborted or the read failed: whichever is first. Never throws.
 */
async function readToEnd(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  maxBytes: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  let onAbort: (() => void) | undefined
  const stop = new Promise<'stop'>((resolve) => {
    timer = setTimeout(resolve, timeoutMs, 'stop')
    onAbort = () => resolve('stop')
    signal?.addEventListener('abort', onAbort, { once: true })
  })
  let received = 0
  try {
    for (;;) {
      const result = await Promise.race([reader.read(), stop])
      if (result === 'stop' || result.done) return
      received += result.value.byteLength
      if (received > maxBytes) return
    }
  } catch {
    // A body that broke after the final event: the answer is whole all the same.
  } finally {
    clearTimeout(timer)
    if (onAbort) signal?.removeEventListener('abort', onAbort)
  }
}
