// The real edge app (worker/createApp over core's deterministic test session with the real Qwen3
// tokenizer, CORS open to any page) served over HTTP/1.1 on 127.0.0.1 by @hono/node-server, which
// counts what a client does with its connections: the TCP connections it accepts, and the requests
// whose client went away (the request's signal aborted: the connection closed before the response
// was all written). `afterDone` changes what follows the app's last event, as a proxy or another
// server in front of it would.
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import { createApp } from '../../worker/app.ts'
import type { RequestLogLine } from '../../worker/request-log.ts'
import { createTestHost } from '../worker/test-host.ts'

export type AfterDone =
  /** The app's own stream: the body ends with the event that carries [DONE]. */
  | { readonly kind: 'end' }
  /** The body's end passed on this long after the last event (a slower network, a proxy). */
  | { readonly kind: 'late-end'; readonly delayMs: number }
  /** The body never ends after [DONE] (a server that holds it open). */
  | { readonly kind: 'hold-open' }
  /** After [DONE], a comment of 1 KiB every few milliseconds without end. */
  | { readonly kind: 'comments' }

export interface CountingEdge {
  readonly url: string
  /** TCP connections accepted so far. */
  readonly connections: number
  /** "METHOD /path" of each request whose client went away before its response was all sent. */
  readonly aborted: readonly string[]
  /** The app's request log (status 499: it counted a client that went away). */
  readonly log: readonly RequestLogLine[]
  close(): Promise<void>
}

export async function startCountingEdge(afterDone: AfterDone = { kind: 'end' }): Promise<CountingEdge> {
  const log: RequestLogLine[] = []
  const app = createApp({ modelHost: createTestHost(), allowedOrigins: ['*'], log: (line) => log.push(line) })
  const aborted: string[] = []
  let connections = 0
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve(
      {
        fetch: async (request: Request) => {
          const name = `${request.method} ${new URL(request.url).pathname}`
          request.signal.addEventListener('abort', () => aborted.push(name), { once: true })
          const response = await app.fetch(request)
          return response.body === null || afterDone.kind === 'end' ? response : withTail(response, afterDone)
        },
        hostname: '127.0.0.1',
        port: 0,
      },
      () => resolve(started),
    )
  })
  server.on('connection', () => connections++)
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get connections() {
      return connections
    },
    aborted,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        // A body held open keeps its socket: drop them all so close() returns.
        ;(server as Server).closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** The app's response with `afterDone` in place of its body's end. */
function withTail(response: Response, afterDone: Exclude<AfterDone, { kind: 'end' }>): Response {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader()
  let timer: ReturnType<typeof setInterval> | undefined
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await reader.read()
      if (!done) {
        controller.enqueue(value)
        return
      }
      if (afterDone.kind === 'late-end') {
        await new Promise((resolve) => setTimeout(resolve, afterDone.delayMs))
        controller.close()
      } else if (afterDone.kind === 'comments') {
        const comment = new TextEncoder().encode(`: ${'x'.repeat(1021)}\n\n`)
        timer = setInterval(() => controller.enqueue(comment), 5)
        await new Promise(() => undefined)
      } else await new Promise(() => undefined)
    },
    cancel(reason) {
      clearInterval(timer)
      return reader.cancel(reason)
    },
  })
  return new Response(body, response)
}
