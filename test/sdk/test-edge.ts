// For the SDK's tests: the real edge app (worker/createApp) served over real HTTP on
// 127.0.0.1 by @hono/node-server, its model being core's deterministic test session with the
// real Qwen3 tokenizer (the worker's createTestHost), so device and edge compute the very same
// logits. Node only.
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import type { Tokenizer } from '../../core/tokenizer.ts'
import { createApp } from '../../worker/app.ts'
import type { AppOptions } from '../../worker/options.ts'
import type { TestSessionOptions } from '../support/test-session.ts'
import { createTestHost } from '../worker/test-host.ts'

export interface TestEdge {
  readonly url: string
  readonly modelId: string
  /** Request bodies of POST /v1/chat/completions, in order. */
  readonly chatBodies: readonly Record<string, unknown>[]
  /** Every request's method and path ("GET /v1/models"), in order. */
  readonly requests: readonly string[]
  close(): Promise<void>
}

export interface TestEdgeOptions {
  readonly session?: Omit<TestSessionOptions, 'vocabularySize'>
  /** The model's tokenizer (default: Qwen3's). */
  readonly tokenizer?: Tokenizer
  readonly apiKeys?: readonly string[]
  readonly limits?: AppOptions['limits']
  /** How long the model takes to load (on the first request). */
  readonly loadDelayMs?: number
}

export async function startTestEdge(options: TestEdgeOptions = {}): Promise<TestEdge> {
  const modelHost = createTestHost({
    ...(options.session ? { session: options.session } : {}),
    ...(options.tokenizer ? { tokenizer: options.tokenizer } : {}),
    ...(options.loadDelayMs === undefined ? {} : { loadDelayMs: options.loadDelayMs }),
  })
  const app = createApp({
    modelHost,
    ...(options.apiKeys ? { apiKeys: options.apiKeys } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    log: () => {},
  })
  return serveApp(app.fetch, modelHost.modelId)
}

/** Serves any fetch handler (an edge app) on 127.0.0.1, recording chat request bodies. */
export async function serveApp(
  handler: (request: Request) => Response | Promise<Response>,
  modelId: string,
  /** Default: any free port. */
  port = 0,
): Promise<TestEdge> {
  const chatBodies: Record<string, unknown>[] = []
  const requests: string[] = []
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve(
      {
        fetch: async (request: Request) => {
          requests.push(`${request.method} ${new URL(request.url).pathname}`)
          if (request.method === 'POST' && new URL(request.url).pathname === '/v1/chat/completions') {
            chatBodies.push((await request.clone().json()) as Record<string, unknown>)
          }
          return handler(request)
        },
        hostname: '127.0.0.1',
        port,
      },
      () => resolve(started),
    )
  })
  const { port: listening } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${listening}`,
    modelId,
    chatBodies,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        // Streams a test aborted may still hold sockets: drop them so close() returns.
        ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
        server.close(() => resolve())
      }),
  }
}

/** A URL on 127.0.0.1 where nothing listens (the edge is down). */
export async function unusedUrl(): Promise<string> {
  const { createServer } = await import('node:net')
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return `http://127.0.0.1:${port}`
}
