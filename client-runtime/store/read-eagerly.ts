// Node's bundled undici (7.29 in Node 24.21) crashes the whole process with an uncatchable
// `assert(!this.paused)` when a server closes the connection (FIN) while the response parser is
// paused by backpressure, that is whenever the disk is slower than the network and the server
// sends `Connection: close` (nodejs/undici#5360, fixed upstream in #5474). Reading the body as fast
// as it arrives keeps the parser from pausing; chunks wait in memory for the file writes instead.

/** Yields a response body's chunks, draining the network side without backpressure. */
export async function* readEagerly(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const queue: Uint8Array[] = []
  const stop = new AbortController()
  let finished = false
  let failure: unknown
  let wake: (() => void) | undefined
  const sink = new WritableStream<Uint8Array>(
    {
      write(chunk) {
        queue.push(chunk)
        wake?.()
      },
    },
    { highWaterMark: Number.POSITIVE_INFINITY },
  )
  const pump = body.pipeTo(sink, { signal: stop.signal }).then(
    () => {
      finished = true
      wake?.()
    },
    (error: unknown) => {
      failure = error
      finished = true
      wake?.()
    },
  )
  try {
    while (true) {
      const chunk = queue.shift()
      if (chunk) {
        yield chunk
        continue
      }
      if (finished) {
        if (failure !== undefined) throw failure
        return
      }
      await new Promise<void>((resolve) => {
        wake = resolve
      })
      wake = undefined
    }
  } finally {
    // The reader left early (quota, oversized file, abort): cancel the download itself.
    if (!finished) stop.abort()
    await pump
  }
}
