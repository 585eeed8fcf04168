// Server-sent events from a fetch body, as the HTML spec parses them: lines end in \n, \r\n
// or \r; `data:` lines of one event join with \n; a blank line ends the event; lines starting
// with ':' are comments (keep-alives). Only what the OpenAI stream uses is kept: data and event.

export interface ServerSentEvent {
  readonly event: string
  readonly data: string
}

/** Yields each complete event of `body`; an event cut off by the end of the body is dropped. */
export async function* parseServerSentEvents(
  body: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<ServerSentEvent> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  let data: string[] = []
  let event = ''
  // A lone \r at the end of a chunk may be the first half of \r\n: wait for the next chunk.
  const lineBreak = /\r\n|\n|\r(?=[^\n])/
  try {
    while (true) {
      if (signal?.aborted) return
      const { value, done } = await reader.read()
      if (done) break
      buffer += decoder.decode(value, { stream: true })
      while (true) {
        const match = lineBreak.exec(buffer)
        if (!match) break
        const line = buffer.slice(0, match.index)
        buffer = buffer.slice(match.index + match[0].length)
        if (line === '') {
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n') }
          data = []
          event = ''
          continue
        }
        if (line.startsWith(':')) continue
        const colon = line.indexOf(':')
        const field = colon === -1 ? line : line.slice(0, colon)
        let value = colon === -1 ? '' : line.slice(colon + 1)
        if (value.startsWith(' ')) value = value.slice(1)
        if (field === 'data') data.push(value)
        else if (field === 'event') event = value
      }
    }
  } finally {
    // Stop the download when the consumer stops reading (abort, handoff done, error).
    await reader.cancel().catch(() => {})
    reader.releaseLock()
  }
}
