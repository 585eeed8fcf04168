// The SSE parser on hand-cut bodies: every line-break form split at every byte, comments, joined
// data lines, and its bounds (line and event length, idle time without events); what follows the
// final event when the consumer stops there (the body read to its end, within bounds).
import { afterEach, describe, expect, it, vi } from 'vitest'
import { parseServerSentEvents, ServerSentEventError } from './sse.ts'

afterEach(() => {
  vi.restoreAllMocks()
})

function body(pieces: readonly string[], endOpen = false): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder()
  let index = 0
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (index < pieces.length) controller.enqueue(encoder.encode(pieces[index++]))
      else if (!endOpen) controller.close()
    },
  })
}

async function events(stream: ReadableStream<Uint8Array>, options = {}) {
  const found: { event: string; data: string }[] = []
  for await (const event of parseServerSentEvents(stream, options)) found.push(event)
  return found
}

describe('parseServerSentEvents', () => {
  const text = 'data: one\r\n\r\n: keepalive\n\nevent: custom\ndata: a\ndata: b\r\rdata:no-space\n\n'
  const expected = [
    { event: 'message', data: 'one' },
    { event: 'custom', data: 'a\nb' },
    { event: 'message', data: 'no-space' },
  ]

  it('parses \\n, \\r\\n and \\r line breaks, comments and joined data lines', async () => {
    expect(await events(body([text]))).toEqual(expected)
  })

  it('gives the same events however the body is cut (every split point, and one character at a time)', async () => {
    for (let cut = 1; cut < text.length; cut++) {
      expect(await events(body([text.slice(0, cut), text.slice(cut)])), `cut at ${cut}`).toEqual(expected)
    }
    expect(await events(body([...text]))).toEqual(expected)
  })

  it('yields no event after its signal aborts, not even the rest of a chunk already read', async () => {
    const controller = new AbortController()
    const found: string[] = []
    for await (const event of parseServerSentEvents(
      body(['data: 1\n\ndata: 2\n\ndata: 3\n\n', 'data: 4\n\n']),
      {
        signal: controller.signal,
      },
    )) {
      found.push(event.data)
      controller.abort()
    }
    expect(found).toEqual(['1'])
  })

  it('refuses a line or an event longer than maxEventLength', async () => {
    const long = events(body(['data: ', 'x'.repeat(50), 'y'.repeat(60)]), { maxEventLength: 100 })
    await expect(long).rejects.toThrow(ServerSentEventError)
    await expect(events(body([`data: ${'x'.repeat(150)}\n`]), { maxEventLength: 100 })).rejects.toThrow(
      /a line longer than 100/,
    )
    const lines = Array.from({ length: 40 }, () => 'data: xxxx\n').join('')
    await expect(events(body([lines]), { maxEventLength: 100 })).rejects.toThrow(/an event longer than 100/)
  })

  it('with idleTimeoutMs, a body that sends only comments ends in an idle error', async () => {
    const comments = Array.from({ length: 1000 }, () => ': keepalive\n\n')
    let index = 0
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise((resolve) => setTimeout(resolve, 20))
        controller.enqueue(new TextEncoder().encode(comments[index++ % comments.length]))
      },
    })
    const error = await events(stream, { idleTimeoutMs: 200 }).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(ServerSentEventError)
    expect((error as ServerSentEventError).reason).toBe('idle')
  })

  it('comments the caller takes for progress count as events for the idle time, and only while it does', async () => {
    // An ondevice edge's long prefill sends ': ondevice-prefill N' about every 250 ms; the edge
    // client counts a rising N up to the tokens it sent (sdk/edge-client.ts).
    const encoder = new TextEncoder()
    let index = 0
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        index++
        controller.enqueue(
          encoder.encode(index === 12 ? 'data: token\n\n' : `: ondevice-prefill ${index}\n\n`),
        )
        if (index === 12) controller.close()
      },
    })
    const seen: string[] = []
    const found = await events(stream, {
      idleTimeoutMs: 200,
      isProgress: (comment: string) => {
        seen.push(comment)
        return true
      },
    })
    // 600 ms of comments, then the event: the idle timeout of 200 ms never ended it.
    expect(found).toEqual([{ event: 'message', data: 'token' }])
    expect(seen[0]).toBe('ondevice-prefill 1')
    // The same comments refused (past the caller's bound): idle after 200 ms.
    index = 0
    const refused = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        controller.enqueue(encoder.encode(`: ondevice-prefill ${++index}\n\n`))
      },
    })
    const error = await events(refused, { idleTimeoutMs: 200, isProgress: () => false }).catch(
      (caught: unknown) => caught,
    )
    expect((error as ServerSentEventError).reason).toBe('idle')
  })

  it('the idle time is the same however the wall clock moves (set forward: a live stream failed; back: a stalled one waited a day)', async () => {
    // A real clock change cannot be made in a test (NTP, a phone syncing its time): Date.now is
    // what moves here (after each event the reader gets), as in device-slot.test.ts.
    const realNow = Date.now.bind(Date)
    let shift = 0
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + shift)
    const read = async (stream: ReadableStream<Uint8Array>, move: number) => {
      const found: string[] = []
      for await (const event of parseServerSentEvents(stream, { idleTimeoutMs: 200 })) {
        found.push(event.data)
        shift += move
      }
      return found
    }
    // Events every 20 ms, the clock set an hour forward after each: all ten arrive.
    let sent = 0
    const live = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise((resolve) => setTimeout(resolve, 20))
        if (sent++ === 10) controller.close()
        else controller.enqueue(new TextEncoder().encode(`data: ${sent}\n\n`))
      },
    })
    expect(await read(live, 3_600_000)).toHaveLength(10)
    // One event, then nothing, the clock set a day back: the idle error after 200 ms, not a day.
    const stalled = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('data: 1\n\n'))
      },
      pull: () => new Promise(() => undefined),
    })
    const started = performance.now()
    const error = await Promise.race([
      read(stalled, -86_400_000).catch((caught: unknown) => caught),
      new Promise((resolve) => setTimeout(resolve, 5_000, 'still waiting')),
    ])
    expect((error as ServerSentEventError).reason).toBe('idle')
    expect(performance.now() - started).toBeLessThan(2_000)
  })

  it('a body of 1 MB of short lines in one chunk is read in one pass', async () => {
    const line = 'data: x\n\n'
    const big = line.repeat(Math.floor((1024 * 1024) / line.length))
    const found = await events(body([big]))
    expect(found).toHaveLength(Math.floor((1024 * 1024) / line.length))
  })
})

describe('parseServerSentEvents after the final event (isFinal)', () => {
  /**
   * A body that sends `events`, then `tail` one piece per pull (each after `delayMs`), then ends
   * unless `endOpen`; it records whether the reader cancelled it and whether it ended.
   */
  function recorded(
    events: string,
    tail: readonly string[],
    options: { delayMs?: number; endOpen?: boolean } = {},
  ) {
    const encoder = new TextEncoder()
    const seen = { cancelled: false, ended: false, tailSent: 0 }
    let started = false
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (!started) {
          started = true
          controller.enqueue(encoder.encode(events))
          return
        }
        if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs))
        if (seen.tailSent < tail.length) controller.enqueue(encoder.encode(tail[seen.tailSent++]))
        else if (options.endOpen) await new Promise(() => undefined)
        else {
          seen.ended = true
          controller.close()
        }
      },
      cancel() {
        seen.cancelled = true
      },
    })
    return { stream, seen }
  }
  const isFinal = (event: { data: string }) => event.data === '[DONE]'

  async function readUntilDone(stream: ReadableStream<Uint8Array>, options: object = {}): Promise<string[]> {
    const found: string[] = []
    for await (const event of parseServerSentEvents(stream, { isFinal, ...options })) {
      found.push(event.data)
      if (event.data === '[DONE]') break
    }
    return found
  }

  /** `promise`'s value, or 'held' if it takes 10 s (far past the bounds these tests set). */
  const within = <T>(promise: Promise<T>) =>
    Promise.race([promise, new Promise<'held'>((resolve) => setTimeout(resolve, 10_000, 'held'))])

  it('a consumer that stops at the final event: the rest of the body is read to its end, not cancelled', async () => {
    // The body's end a few reads after [DONE] (as over a network): it used to be cancelled.
    const { stream, seen } = recorded('data: a\n\ndata: [DONE]\n\n', ['', ': bye\n\n'], { delayMs: 20 })
    expect(await readUntilDone(stream)).toEqual(['a', '[DONE]'])
    expect(seen).toEqual({ cancelled: false, ended: true, tailSent: 2 })
  })

  it('without isFinal, or stopping at another event, the body is cancelled at once', async () => {
    // Its end would come later than any test waits (the body stays open).
    const plain = recorded('data: a\n\ndata: [DONE]\n\n', [''], { endOpen: true })
    const found: string[] = []
    for await (const event of parseServerSentEvents(plain.stream)) {
      found.push(event.data)
      if (event.data === '[DONE]') break
    }
    expect(found).toEqual(['a', '[DONE]'])
    expect(plain.seen).toMatchObject({ cancelled: true, ended: false })
    const early = recorded('data: a\n\ndata: [DONE]\n\n', [''], { endOpen: true })
    for await (const event of parseServerSentEvents(early.stream, { isFinal })) if (event.data === 'a') break
    expect(early.seen).toMatchObject({ cancelled: true, ended: false })
  })

  it('a body held open past drainMs after the final event is cancelled then', async () => {
    const { stream, seen } = recorded('data: [DONE]\n\n', [], { endOpen: true })
    expect(await within(readUntilDone(stream, { drainMs: 100 }))).toEqual(['[DONE]'])
    expect(seen).toMatchObject({ cancelled: true, ended: false })
  })

  it('more than drainBytes after the final event: cancelled, the rest never asked for', async () => {
    const tail = Array.from({ length: 100 }, () => `: ${'x'.repeat(1000)}\n\n`)
    const { stream, seen } = recorded('data: [DONE]\n\n', tail, { endOpen: true })
    expect(await within(readUntilDone(stream, { drainBytes: 4096, drainMs: 60_000 }))).toEqual(['[DONE]'])
    expect(seen.cancelled).toBe(true)
    // 4096 bytes are 5 pieces of 1004; the stream may have pulled one more ahead of the reader.
    expect(seen.tailSent).toBeLessThanOrEqual(6)
  })

  it("the signal's abort while the end is awaited cancels the body at once", async () => {
    const { stream, seen } = recorded('data: [DONE]\n\n', [], { endOpen: true })
    const controller = new AbortController()
    const found: string[] = []
    const read = async () => {
      for await (const event of parseServerSentEvents(stream, {
        isFinal,
        drainMs: 60_000,
        signal: controller.signal,
      })) {
        found.push(event.data)
        setTimeout(() => controller.abort(), 50)
        break
      }
      return 'returned'
    }
    expect(await within(read())).toBe('returned')
    expect(found).toEqual(['[DONE]'])
    expect(seen.cancelled).toBe(true)
  })

  it('a body that breaks after the final event: the consumer never sees the error', async () => {
    let started = false
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (started) controller.error(new TypeError('network error'))
        else controller.enqueue(new TextEncoder().encode('data: [DONE]\n\n'))
        started = true
      },
    })
    expect(await readUntilDone(stream)).toEqual(['[DONE]'])
  })
})
