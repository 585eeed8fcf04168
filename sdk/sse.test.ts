// The SSE parser on hand-cut bodies: every line-break form split at every byte, comments, joined
// data lines, and its bounds (line and event length, idle time without events).
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
